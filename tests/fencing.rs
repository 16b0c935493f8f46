//! Fencing: once a run has a newer epoch, appends from an older handle fail
//! with `Fenced` and write nothing, for good; the store enforces it too, for a
//! handle of another journal on the same store.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::Arc;

use common::{key, step, temp_db};
use runjournal::*;

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
