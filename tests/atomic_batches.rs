//! A batch is stored all or nothing: a refused batch stores none of its
//! events, a stored one is there whole after reopening, and seqs stay gapless
//! under concurrent appenders.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::Arc;

use common::{key, step, temp_db};
use runjournal::*;

#[test]
fn four_threads_appending_to_100_runs_stay_gapless_and_verify() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let runs: Vec<Arc<Run>> = (0..100)
        .map(|index| Arc::new(journal.begin(key("load", index, "agent"), RunMeta::default()).unwrap()))
        .collect();
    let runs = Arc::new(runs);
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let runs = runs.clone();
            std::thread::spawn(move || {
                for round in 0..10 {
                    for run in runs.iter() {
                        run.step(step(&format!("thread {thread} round {round}"))).unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    for index in 0..100 {
        let run_key = key("load", index, "agent");
        let report = journal.verify(&run_key).unwrap();
        assert_eq!(report.events, 1 + 4 * 10);
        let events = journal.read(&run_key, 0).unwrap();
        let seqs: Vec<u64> = events.iter().map(|envelope| envelope.seq).collect();
        assert_eq!(seqs, (0..41).collect::<Vec<u64>>());
        let mut per_thread = [0; 4];
        for envelope in &events[1..] {
            let Event::Step { messages } = &envelope.event else {
                panic!("expected steps")
            };
            let thread: usize = messages[0].content[7..8].parse().unwrap();
            per_thread[thread] += 1;
        }
        assert_eq!(
            per_thread, [10; 4],
            "every append of every thread is there exactly once"
        );
    }
}

#[test]
fn a_batch_with_an_oversized_event_stores_none_of_its_events() {
    let (_dir, path) = temp_db();
    let options = Options {
        max_event_size: 1024,
        ..Options::default()
    };
    let journal = Journal::open(&path, options).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let batch = vec![
        Event::Step {
            messages: step("small"),
        },
        Event::Custom {
            kind: "blob".into(),
            data: "x".repeat(2000),
        },
        Event::TurnCompleted,
    ];
    let error = run.append(batch).unwrap_err();
    assert!(
        matches!(&error, AppendError::EventTooLarge { run, seq: 2, max: 1024, size } if *run == run_key && *size > 2000),
        "{error:?}"
    );
    assert_eq!(
        journal.read(&run_key, 0).unwrap().len(),
        1,
        "no event of the batch was stored"
    );
    assert_eq!(
        run.append(vec![Event::TurnCompleted]).unwrap(),
        1,
        "the handle goes on at seq 1"
    );
}

#[test]
fn a_batch_is_stored_whole() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        let last = run
            .append(vec![
                Event::PhaseStarted {
                    index: 0,
                    name: "plan".into(),
                },
                Event::Step { messages: step("a") },
                Event::Step { messages: step("b") },
            ])
            .unwrap();
        assert_eq!(last, 3);
    }
    let journal = Journal::open(&path, Options::default()).unwrap();
    assert_eq!(journal.read(&run_key, 1).unwrap().len(), 3);
}
