//! A state folded from the newest snapshot plus its verified tail equals the
//! full fold, at the end and at any earlier seq (`state_at`); a run keeps
//! only its newest snapshot, and one of another fold version is ignored and
//! replaced on resume.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::Arc;

use common::{key, memory_journal, run_with_steps, temp_db};
use runjournal::core::snapshot::encode_snapshot_as;
use runjournal::core::{MemoryStore, SnapshotRecord, Store};
use runjournal::*;
use runjournal_sled::{OpenMode, SledStore};

#[test]
#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn snapshots_are_stored_every_n_events_and_resume_folds_only_the_tail_to_the_same_state() {
    let (_dir, path) = temp_db();
    let options = Options {
        snapshot_every: 10,
        durability: Durability::Buffered,
        ..Options::default()
    };
    let run_key = key("g", 0, "a");
    let live = {
        let journal = Journal::open(&path, options.clone()).unwrap();
        run_with_steps(&journal, &run_key, 40);
        journal.state(&run_key).unwrap()
    };
    // The test keeps its own handle on the store to look at what is stored;
    // it only reads through it.
    let store = Arc::new(SledStore::open(&path, OpenMode::MustExist).unwrap());
    let journal = Journal::with_store(store.clone(), options).unwrap();
    let record = journal.run_info(&run_key).unwrap();
    let snapshot = store.latest_snapshot(record.id, u64::MAX).unwrap().unwrap();
    assert!(
        snapshot.seq >= record.head.next_seq - 10,
        "a snapshot within the last 10 events"
    );
    let older = store.latest_snapshot(record.id, snapshot.seq - 1).unwrap();
    assert_eq!(older, None, "a run keeps only its newest snapshot");
    let full_fold = ResumeState::fold(run_key.clone(), &journal.history(&run_key).unwrap());
    assert_eq!(journal.state(&run_key).unwrap(), full_fold);
    assert_eq!(full_fold, live);
    for seq in [0, 5, 9, 10, 11, 25, record.head.next_seq - 1] {
        let history = journal.history(&run_key).unwrap();
        let expected = ResumeState::fold(run_key.clone(), &history[..=seq as usize]);
        assert_eq!(journal.state_at(&run_key, seq).unwrap(), expected, "state at seq {seq}");
    }
}

#[test]
fn a_snapshot_of_another_fold_version_is_ignored_and_rebuilt_on_resume() {
    let store = Arc::new(MemoryStore::new());
    let options = Options {
        snapshot_every: 0,
        ..Options::default()
    };
    let journal = Journal::with_store(store.clone(), options).unwrap();
    let run_key = key("g", 0, "a");
    run_with_steps(&journal, &run_key, 12);
    let record = journal.run_info(&run_key).unwrap();
    let mut wrong = journal.state(&run_key).unwrap();
    wrong.iteration = 999;
    store
        .replace_snapshots(
            record.id,
            Some(SnapshotRecord {
                seq: record.head.next_seq - 1,
                bytes: encode_snapshot_as(&wrong, 999),
            }),
        )
        .unwrap();
    assert_eq!(
        journal.state(&run_key).unwrap().iteration,
        12,
        "the foreign snapshot is ignored"
    );
    let (_, state) = journal.resume(&run_key).unwrap();
    assert_eq!(state.iteration, 12);
    let rebuilt = store.latest_snapshot(record.id, u64::MAX).unwrap().unwrap();
    let decoded = runjournal::core::snapshot::decode_snapshot(&rebuilt.bytes).unwrap();
    assert!(
        matches!(&decoded, runjournal::core::snapshot::DecodedSnapshot::Current(state) if state.iteration == 12),
        "rebuilt with this fold version: {decoded:?}"
    );
}

#[test]
fn state_at_a_seq_past_the_end_is_an_error_naming_the_last_seq() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    run_with_steps(&journal, &run_key, 2);
    let error = journal.state_at(&run_key, 50).unwrap_err();
    assert!(
        error.to_string().contains("has no seq 50 (its last seq is 2)"),
        "{error}"
    );
}
