//! `Buffered` appends (docs/library.md): they return once queued, before they are
//! applied; reads still see every append that returned; fencing is checked
//! before anything is queued; a rejection by the store that comes after the
//! append returned breaks the handle, and its next append says so.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::Arc;

use common::{key, step, temp_db};
use runjournal::core::MemoryStore;
use runjournal::*;

fn buffered() -> Options {
    Options::with_durability(Durability::Buffered)
}

#[test]
fn reads_see_every_buffered_append_that_returned() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, buffered()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    for round in 0..20 {
        for index in 0..50 {
            run.step(step(&format!("{round}:{index}"))).unwrap();
        }
        assert_eq!(journal.state(&run_key).unwrap().iteration, (round + 1) * 50);
        assert_eq!(journal.run_info(&run_key).unwrap().head.next_seq, 1 + (round + 1) * 50);
    }
    drop(run);
    drop(journal);
    let journal = Journal::open(&path, Options::default()).unwrap();
    assert_eq!(
        journal.verify(&run_key).unwrap().events,
        1001,
        "every buffered append is stored at close"
    );
}

#[test]
fn an_older_handle_is_fenced_before_it_queues_anything() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, buffered()).unwrap();
    let run_key = key("g", 0, "a");
    let old = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    for index in 0..100 {
        old.step(step(&format!("old {index}"))).unwrap();
    }
    let (new, state) = journal.resume(&run_key).unwrap();
    assert_eq!(
        state.iteration, 100,
        "the resume saw every append the old handle queued"
    );
    let error = old.step(step("zombie")).unwrap_err();
    assert!(
        matches!(
            error,
            AppendError::Fenced {
                epoch: 0,
                current: 1,
                seq: 101,
                ..
            }
        ),
        "{error:?}"
    );
    new.step(step("new")).unwrap();
    let history = journal.read(&run_key, 0).unwrap();
    assert_eq!(history.len(), 103);
    assert!(history
        .iter()
        .all(|envelope| !format!("{:?}", envelope.event).contains("zombie")));
}

#[test]
fn a_rejection_after_a_buffered_append_returned_breaks_the_handle_naming_the_seq() {
    // Two journals on one store stand for two processes on a networked store:
    // only the store can fence across them.
    let store: Arc<dyn runjournal::core::Store> = Arc::new(MemoryStore::new());
    let first = Journal::with_store(store.clone(), buffered()).unwrap();
    let second = Journal::with_store(store, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let stale = first.begin(run_key.clone(), RunMeta::default()).unwrap();
    first.sync().unwrap();
    let (resumed, _) = second.resume(&run_key).unwrap();
    let returned = stale.step(step("lost")).unwrap();
    assert_eq!(returned, 1, "a buffered append returns once queued");
    first.sync().unwrap();
    let error = stale.step(step("next")).unwrap_err();
    assert!(
        matches!(error, AppendError::Fenced { current: 1, .. }),
        "the store's fencing reaches the handle: {error:?}"
    );
    resumed.step(step("kept")).unwrap();
    let events: Vec<String> = second
        .read(&run_key, 0)
        .unwrap()
        .iter()
        .map(|envelope| envelope.event.type_name().to_string())
        .collect();
    assert_eq!(events, vec!["run_started", "attached", "step"]);
}

#[test]
fn a_buffered_append_lost_to_a_conflict_is_named_by_the_next_append() {
    use runjournal::core::codec::DEFAULT_MAX_EVENT_SIZE;
    use runjournal::core::{AppendBatch, ChainWriter, Head, Store};

    let store = Arc::new(MemoryStore::new());
    let journal = Journal::with_store(store.clone(), buffered()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    // Another writer takes seq 1 behind the handle's back.
    let record = journal.run_info(&run_key).unwrap();
    let intruder = ChainWriter::new(run_key.clone(), record.head, DEFAULT_MAX_EVENT_SIZE)
        .append(0, 1, Event::TurnCompleted)
        .unwrap();
    let batch = AppendBatch {
        run: record.id,
        expected_seq: 1,
        epoch: 0,
        records: vec![intruder.record],
        head_after: Head {
            next_seq: 2,
            hash: intruder.envelope.hash,
            epoch: 0,
            last_ts: 1,
        },
        status_after: RunStatus::Running,
        snapshot: None,
    };
    assert_eq!(store.append(&[batch]).unwrap(), vec![Ok(())]);
    assert_eq!(run.step(step("lost")).unwrap(), 1, "returned once queued");
    journal.sync().unwrap();
    let error = run.step(step("next")).unwrap_err();
    assert!(
        matches!(&error, AppendError::Abandoned { seq: 1, reason, .. } if reason.to_string().contains("expected seq 2, not 1")),
        "{error:?}"
    );
    assert!(error.to_string().contains("was not stored"), "{error}");
    let events: Vec<&str> = journal
        .read(&run_key, 0)
        .unwrap()
        .iter()
        .map(|envelope| envelope.event.type_name())
        .collect();
    assert_eq!(
        events,
        vec!["run_started", "turn_completed"],
        "nothing of the stale handle was stored"
    );
}

/// docs/library.md: in every mode a run's boundaries (`run_started`, `attached`,
/// `agent_died`, the terminal events) return only once durable. The faulty
/// store counts the batches applied before each successful sync; the flush
/// interval is an hour, so only a boundary makes the writer sync.
#[test]
fn a_runs_boundaries_return_only_once_durable_in_every_mode() {
    use runjournal::core::testing::faulty::{FaultyStore, OpClass};
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let options = Options {
        flush_interval: std::time::Duration::from_secs(3600),
        ..buffered()
    };
    let journal = Journal::with_store(store.clone(), options).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    assert_eq!(store.calls(OpClass::Sync), 1, "begin returned after a sync");
    for index in 0..10 {
        run.step(step(&format!("{index}"))).unwrap();
    }
    journal.state(&run_key).unwrap();
    assert_eq!(store.batches_applied(), 10);
    assert_eq!(store.batches_synced(), 0, "buffered steps are not synced yet");
    run.agent_died("oom", Some(137)).unwrap();
    assert_eq!(
        store.batches_synced(),
        11,
        "agent_died returned once it and every step before it were durable"
    );
    run.finish(Outcome::Shutdown).unwrap();
    assert_eq!(
        store.batches_synced(),
        12,
        "finish returned once run_interrupted was durable"
    );
    let (resumed, _) = journal.resume(&run_key).unwrap();
    assert_eq!(store.batches_synced(), 13, "resume returned once attached was durable");
    resumed.step(step("after")).unwrap();
    resumed.finish(Outcome::failure("backend", "503")).unwrap();
    assert_eq!(
        store.batches_synced(),
        15,
        "finish(failure) returned once run_failed was durable"
    );
    assert_eq!(journal.state(&run_key).unwrap().status, RunStatus::Failed);
}
