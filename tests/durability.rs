//! What an append returned survives closing and reopening the journal, in
//! both durability modes: runs, heads and chains are restored and appends
//! continue where they stopped.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, run_with_steps, step, temp_db};
use runjournal::*;

#[test]
fn close_and_reopen_restores_runs_heads_and_chains_and_appends_continue() {
    let (_dir, path) = temp_db();
    let keys: Vec<RunKey> = (0..3).map(|index| key("g", index, "a")).collect();
    let mut heads = Vec::new();
    {
        let journal = Journal::open(&path, Options::with_durability(Durability::Buffered)).unwrap();
        for (index, run_key) in keys.iter().enumerate() {
            let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
            for step_index in 0..=index {
                run.step(step(&format!("step {step_index}"))).unwrap();
            }
        }
        for run_key in &keys {
            heads.push(journal.run_info(run_key).unwrap().head);
        }
    }
    let journal = Journal::open(&path, Options::default()).unwrap();
    let runs = journal.runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.iter().map(|record| record.key.clone()).collect::<Vec<_>>(), keys);
    for (run_key, head) in keys.iter().zip(&heads) {
        assert_eq!(journal.run_info(run_key).unwrap().head, *head);
        assert_eq!(journal.verify(run_key).unwrap().head, head.hash);
    }
    let (run, state) = journal.resume(&keys[2]).unwrap();
    assert_eq!(state.iteration, 3);
    run.step(step("after reopen")).unwrap();
    let report = journal.verify(&keys[2]).unwrap();
    assert_eq!(report.events, heads[2].next_seq + 2);
}

#[test]
fn buffered_appends_survive_a_clean_close() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    {
        let journal = Journal::open(&path, Options::with_durability(Durability::Buffered)).unwrap();
        run_with_steps(&journal, &run_key, 25);
    }
    let journal = Journal::open(&path, Options::default()).unwrap();
    assert_eq!(journal.state(&run_key).unwrap().iteration, 25);
}
