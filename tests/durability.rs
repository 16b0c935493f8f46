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

/// A sync extends sled's log to the end of the segment its last write is in
/// (the commits after it then write inside the file, and their fdatasync has
/// no new length to persist); the zeros past the data read as the end of the
/// log, so the database reopens with every event, also after the log grew
/// into further segments.
#[test]
fn a_sync_extends_the_log_to_its_segment_s_end_and_the_database_reopens_whole() {
    let (_dir, path) = temp_db();
    let log = path.join(runjournal_sled::files::LOG);
    let segment = runjournal_sled::files::LOG_SEGMENT;
    let run_key = key("presized", 0, "a");
    {
        let journal = Journal::open(&path, Options::with_durability(Durability::Durable)).unwrap();
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.step(step("small")).unwrap();
        let length = std::fs::metadata(&log).unwrap().len();
        assert_eq!(length % segment, 0, "{length} bytes after a sync");
        // About three segments of events: the log grows past its presized end.
        let big = "x".repeat(48 * 1024);
        for _ in 0..32 {
            run.step(step(&big)).unwrap();
        }
        let grown = std::fs::metadata(&log).unwrap().len();
        assert!(grown >= 3 * segment, "{grown} bytes");
        assert_eq!(grown % segment, 0, "{grown} bytes after the last sync");
    }
    let journal = Journal::open(&path, Options::with_durability(Durability::Durable)).unwrap();
    journal.verify(&run_key).unwrap();
    assert_eq!(journal.state(&run_key).unwrap().iteration, 33);
    let (run, _) = journal.resume(&run_key).unwrap();
    run.step(step("after the reopen")).unwrap();
    drop(run);
    drop(journal);
    let journal = Journal::open(&path, Options::default()).unwrap();
    journal.verify(&run_key).unwrap();
    assert_eq!(journal.state(&run_key).unwrap().iteration, 34);
}
