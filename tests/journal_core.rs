//! The journal core (issue 2): stored format round trips, chain integrity on
//! read, concurrency, begin/resume semantics, fencing, conflicts, atomic
//! batches, reopen, key validation.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{key, one_of_every_event, step, temp_db};
use runjournal::core::codec::{decode_event, DEFAULT_MAX_EVENT_SIZE};
use runjournal::core::ChainWriter;
use runjournal::*;
use runjournal_sled::{layout, OpenMode, SledStore};

#[test]
fn every_event_type_round_trips_through_json() {
    for event in one_of_every_event() {
        let envelope = Envelope {
            run: key("g", 1, "a"),
            seq: 9,
            epoch: 2,
            ts: 1_763_800_000_123,
            hash: ChainHash([7; 32]),
            event,
        };
        let line = envelope.to_json_line();
        let parsed: Envelope = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, envelope, "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"]["type"], envelope.event.type_name());
        assert_eq!(value["hash"], "07".repeat(32));
    }
}

#[test]
fn every_event_type_round_trips_through_the_stored_format() {
    let mut writer = ChainWriter::starting(key("g", 1, "a"), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE);
    for (seq, event) in (0u64..).zip(one_of_every_event()) {
        let written = writer.append(3, 1000 + seq, event.clone()).unwrap();
        let decoded = decode_event(&written.record).unwrap();
        assert_eq!(decoded.event, event);
        assert_eq!(
            (decoded.epoch, decoded.ts, decoded.hash),
            (3, 1000 + seq, written.envelope.hash)
        );
    }
}

/// Rewrites the stored value of one event directly in sled.
fn damage_event(path: &std::path::Path, run_id: u64, seq: u64, damage: impl FnOnce(&mut Vec<u8>)) {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    let event_key = layout::event_key(run_id, seq);
    let mut value = store.sled().get(event_key).unwrap().unwrap().to_vec();
    damage(&mut value);
    store.sled().insert(event_key, value).unwrap();
    store.sled().flush().unwrap();
}

#[test]
fn flipped_byte_in_stored_value_is_a_typed_error_naming_run_and_seq() {
    let (_dir, path) = temp_db();
    let run_key = key("fix-login-bug", 0, "orchestrator-0");
    let run_id = {
        let journal = Journal::open(&path, Options::default()).unwrap();
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        for index in 0..5 {
            run.step(step(&format!("message {index}"))).unwrap();
        }
        journal.run_info(&run_key).unwrap().id
    };
    damage_event(&path, run_id, 3, |value| {
        let last = value.len() - 2;
        value[last] ^= 0x40;
    });
    let journal = Journal::open(&path, Options::default()).unwrap();
    for error in [
        journal.verify(&run_key).unwrap_err(),
        journal.read(&run_key, 0).unwrap_err(),
        journal.state(&run_key).unwrap_err(),
    ] {
        let ReadError::Integrity(integrity) = &error else {
            panic!("expected an integrity error, got {error:?}");
        };
        assert_eq!(integrity.run, run_key);
        assert_eq!(integrity.seq, 3);
        let message = error.to_string();
        assert!(
            message.contains("fix-login-bug") && message.contains("seq 3"),
            "{message}"
        );
    }
    let error = journal.resume(&run_key).unwrap_err();
    assert!(error.to_string().contains("seq 3"), "{error}");
    // Reading from after the damage still verifies the chain from seq 0.
    let error = journal.read(&run_key, 4).unwrap_err();
    assert!(error.to_string().contains("seq 3"), "{error}");
}

#[test]
fn header_damage_is_reported_not_skipped() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    let run_id = {
        let journal = Journal::open(&path, Options::default()).unwrap();
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.step(step("one")).unwrap();
        journal.run_info(&run_key).unwrap().id
    };
    damage_event(&path, run_id, 1, |value| value[3] = 99);
    let journal = Journal::open(&path, Options::default()).unwrap();
    let error = journal.verify(&run_key).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("seq 1") && message.contains("unknown format version 99"),
        "{message}"
    );
}

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
    threads.into_iter().for_each(|thread| thread.join().unwrap());
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
fn begin_twice_is_already_exists() {
    let journal = Journal::with_store(Arc::new(runjournal::core::MemoryStore::new()), Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let error = journal.begin(run_key.clone(), RunMeta::default()).unwrap_err();
    assert!(
        matches!(&error, BeginError::AlreadyExists { run } if *run == run_key),
        "{error:?}"
    );
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 1, "nothing more was written");
}

#[test]
fn resume_of_a_missing_key_is_not_found_and_creates_nothing() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let error = journal.resume(&run_key).unwrap_err();
    assert!(
        matches!(&error, ResumeError::NotFound { run } if *run == run_key),
        "{error:?}"
    );
    assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
}

#[test]
fn resume_of_a_completed_or_failed_run_is_finished() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let completed = key("g", 0, "done");
    let failed = key("g", 0, "broken");
    journal
        .begin(completed.clone(), RunMeta::default())
        .unwrap()
        .finish(Outcome::Success { output: None })
        .unwrap();
    journal
        .begin(failed.clone(), RunMeta::default())
        .unwrap()
        .finish(Outcome::failure("backend", "503"))
        .unwrap();
    for (run_key, status) in [(completed, RunStatus::Completed), (failed, RunStatus::Failed)] {
        let error = journal.resume(&run_key).unwrap_err();
        assert!(
            matches!(&error, ResumeError::Finished { run, status: found } if *run == run_key && *found == status),
            "{error:?}"
        );
    }
}

#[test]
fn a_handle_older_than_the_latest_resume_is_fenced_and_writes_nothing() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let old = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    old.step(step("before")).unwrap();
    let (new, state) = journal.resume(&run_key).unwrap();
    assert_eq!((new.epoch(), state.epoch), (1, 1));
    let error = old.step(step("zombie")).unwrap_err();
    assert!(
        matches!(&error, AppendError::Fenced { run, epoch: 0, current: 1, seq: 2 } if *run == run_key),
        "{error:?}"
    );
    assert!(error.to_string().contains("fenced"), "{error}");
    // Fenced for good, and nothing of the zombie was written.
    assert!(matches!(
        old.step(step("again")).unwrap_err(),
        AppendError::Fenced { .. }
    ));
    new.step(step("after")).unwrap();
    let events = journal.read(&run_key, 0).unwrap();
    assert_eq!(events.len(), 4);
    assert!(events
        .iter()
        .all(|envelope| !format!("{:?}", envelope.event).contains("zombie")));
    journal.verify(&run_key).unwrap();
}

#[test]
fn an_append_with_a_stale_expected_seq_is_a_conflict_and_writes_nothing() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.append_at(1, vec![Event::TurnCompleted]).unwrap();
    let error = run.append_at(1, vec![Event::TurnCompleted]).unwrap_err();
    assert!(
        matches!(&error, AppendError::Conflict { run, expected: 1, actual: 2 } if *run == run_key),
        "{error:?}"
    );
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 2);
    run.append_at(2, vec![Event::TurnCompleted]).unwrap();
}

#[test]
fn the_store_rejects_a_stale_seq_or_epoch_conditionally() {
    // The condition lives in the store, not only in the handle: a second
    // journal on the same store (another process, for a networked store)
    // cannot overwrite or skip.
    let store: Arc<dyn runjournal::core::Store> = Arc::new(runjournal::core::MemoryStore::new());
    let first = Journal::with_store(store.clone(), Options::default()).unwrap();
    let second = Journal::with_store(store, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let writer = first.begin(run_key.clone(), RunMeta::default()).unwrap();
    let (resumed, _) = second.resume(&run_key).unwrap();
    let error = writer.step(step("stale")).unwrap_err();
    assert!(
        matches!(
            error,
            AppendError::Fenced {
                epoch: 0,
                current: 1,
                ..
            }
        ),
        "{error:?}"
    );
    resumed.step(step("fresh")).unwrap();
    assert_eq!(second.verify(&run_key).unwrap().events, 3);
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
fn bad_keys_are_refused_with_messages_that_name_the_problem() {
    let journal = Journal::with_store(Arc::new(runjournal::core::MemoryStore::new()), Options::default()).unwrap();
    let cases = [
        (
            RunKey {
                goal: String::new(),
                episode: 0,
                agent: "a".into(),
            },
            "goal is empty",
        ),
        (
            RunKey {
                goal: "g".into(),
                episode: 0,
                agent: String::new(),
            },
            "agent is empty",
        ),
        (
            RunKey {
                goal: "g".repeat(300),
                episode: 0,
                agent: "a".into(),
            },
            "goal is 300 bytes long",
        ),
        (
            RunKey {
                goal: "g".into(),
                episode: 0,
                agent: "a\tb".into(),
            },
            "agent holds control character",
        ),
    ];
    for (bad, expected) in cases {
        let error = journal.begin(bad, RunMeta::default()).unwrap_err();
        assert!(matches!(error, BeginError::InvalidKey(_)), "{error:?}");
        assert!(
            error.to_string().contains(expected),
            "{error} should contain {expected}"
        );
    }
    assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
}

#[test]
fn invalid_event_fields_are_refused_and_write_nothing() {
    let journal = Journal::with_store(Arc::new(runjournal::core::MemoryStore::new()), Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let error = run.task_claimed("t", "a", 9, 0.5).unwrap_err();
    assert!(matches!(&error, AppendError::InvalidEvent { seq: 1, .. }), "{error:?}");
    assert!(error.to_string().contains("priority is 9"), "{error}");
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 1);
}

#[test]
fn nothing_may_follow_a_terminal_event_in_its_epoch() {
    let journal = Journal::with_store(Arc::new(runjournal::core::MemoryStore::new()), Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let error = run
        .append(vec![Event::RunCompleted { output: None }, Event::TurnCompleted])
        .unwrap_err();
    assert!(matches!(&error, AppendError::OutOfOrder { seq: 2, .. }), "{error:?}");
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 1);
    run.append(vec![Event::RunInterrupted {
        cause: InterruptCause::Shutdown,
    }])
    .unwrap();
    let error = run.step(step("late")).unwrap_err();
    assert!(error.to_string().contains("interrupted in this epoch"), "{error}");
    // A resume opens a new epoch after an interruption.
    let (resumed, state) = journal.resume(&run_key).unwrap();
    assert_eq!(state.status, RunStatus::Running);
    resumed.step(step("continues")).unwrap();
}

#[test]
fn run_started_and_attached_cannot_be_appended_raw() {
    let journal = Journal::with_store(Arc::new(runjournal::core::MemoryStore::new()), Options::default()).unwrap();
    let run = journal.begin(key("g", 0, "a"), RunMeta::default()).unwrap();
    let error = run
        .append(vec![Event::RunStarted {
            meta: RunMeta::default(),
        }])
        .unwrap_err();
    assert!(error.to_string().contains("run_started is only ever seq 0"), "{error}");
    let error = run.append(vec![Event::Attached { owner: "x".into() }]).unwrap_err();
    assert!(error.to_string().contains("written by resume"), "{error}");
}
