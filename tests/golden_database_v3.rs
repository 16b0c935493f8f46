//! A sled database written by store format version 3 (commits) is committed
//! under `tests/fixtures/golden_db_v3/`: every event type, appended as
//! commits (one run's group in one value carrying the run's record, so the
//! stored run records are behind their runs' heads), some in multi-key
//! batches (with a snapshot), a resumed, a failed, an interrupted and a
//! forked run (forked from inside a commit), and snapshots. Every later build
//! must open it, verify every run, read from any seq, fold it to the
//! committed states and append to it (the checks and the variables that
//! rewrite it are in tests/common/golden.rs).
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::path::Path;

use common::golden::{write_batched_session, GoldenDatabase, FINISHED_AND_RUNNING};
use common::key;
use runjournal::core::codec::{decode_record, RecordKind};
use runjournal::core::Store as _;
use runjournal::*;
use runjournal_sled::{layout, OpenMode, SledStore};

const GOLDEN: GoldenDatabase = GoldenDatabase {
    name: "golden_db_v3",
    write: write_golden_database,
    format: 3,
    chunks: 10..=usize::MAX,
    commits: 10..=usize::MAX,
    event_types: 20,
    statuses: FINISHED_AND_RUNNING,
    writable_run: || key("golden", 1, "orchestrator-0"),
    writable_steps: 3,
};

fn write_golden_database(path: &Path) -> Journal {
    write_batched_session(path, "golden v3", 4)
}

#[test]
fn the_format_v3_golden_database_opens_verifies_and_folds() {
    GOLDEN.check();
}

#[test]
fn a_run_head_held_only_by_its_last_commit_is_the_run_head() {
    let (_dir, copy) = GOLDEN.copy();
    let store = std::sync::Arc::new(SledStore::open(&copy, OpenMode::MustExist).unwrap());
    let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
    let behind = journal
        .runs(&RunFilter::default())
        .unwrap()
        .iter()
        .filter(|record| {
            let stored = store.sled().get(layout::run_key(record.id)).unwrap().unwrap();
            let stored: RunRecord = decode_record(RecordKind::Run, &stored).unwrap();
            stored.head.next_seq < record.head.next_seq
        })
        .count();
    assert!(behind >= 3, "runs whose head is only in their last commit ({behind})");
}

#[test]
fn a_format_v3_snapshot_is_read_then_replaced_in_the_snapshot_tree() {
    let (_dir, copy) = GOLDEN.copy();
    let run_key = key("golden", 0, "orchestrator-0");
    let store = std::sync::Arc::new(SledStore::open(&copy, OpenMode::MustExist).unwrap());
    let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
    let record = journal.run_info(&run_key).unwrap();
    let stored = |store: &SledStore| {
        let prefix = layout::run_prefix(layout::SNAPSHOT, record.id);
        (
            store.sled().scan_prefix(prefix).count(),
            store.sled_snapshots().scan_prefix(prefix).count(),
        )
    };
    assert_eq!(
        stored(&store),
        (1, 0),
        "format 3 keeps the run's snapshot in the default tree"
    );
    let from_v3 = store.latest_snapshot(record.id, u64::MAX).unwrap().unwrap();
    let full_fold = ResumeState::fold(run_key.clone(), &journal.read(&run_key, 0).unwrap());
    assert_eq!(journal.state(&run_key).unwrap(), full_fold);

    store.replace_snapshots(record.id, Some(from_v3.clone())).unwrap();
    assert_eq!(
        stored(&store),
        (0, 1),
        "the replacement is in the tree, the format 3 one gone"
    );
    assert_eq!(store.latest_snapshot(record.id, u64::MAX).unwrap(), Some(from_v3));
    assert_eq!(journal.state(&run_key).unwrap(), full_fold);
}
