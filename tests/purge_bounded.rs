//! A purge runs in bounded memory (issue 11, item 8): one atomic step makes
//! the purged runs invisible and leaves a tombstone per run, then their
//! events and snapshots go a bounded batch at a time; a purge interrupted
//! between those batches leaves only unreachable keys, which the next purge
//! removes.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, temp_db};
use runjournal::*;
use runjournal_sled::{layout, OpenMode, SledStore};

/// Stored keys under `prefix ‖ run`.
fn keys_under(path: &std::path::Path, prefix: u8, run: u64) -> usize {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    store.sled().scan_prefix(layout::run_prefix(prefix, run)).count()
}

fn snapshots_stored(path: &std::path::Path) -> usize {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    store.sled_snapshots().iter().count()
}

fn tombstones(path: &std::path::Path) -> usize {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    store.sled().scan_prefix([layout::PURGING]).count()
}

/// A run of `1 + batches * 500` events.
/// Each event is larger than a store chunk may be (4 KiB), so each is one
/// stored key: a run of these has more keys than one purge batch removes.
fn long_run(journal: &Journal, run_key: &RunKey, batches: usize) {
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let padding = "x".repeat(4096);
    for batch in 0..batches {
        let events = (0..500)
            .map(|index| Event::Custom {
                kind: "payload".into(),
                data: format!("{batch}.{index}.{padding}"),
            })
            .collect();
        run.append(events).unwrap();
    }
}

#[test]
fn a_purge_removes_a_run_larger_than_its_batches_whole() {
    let (_dir, path) = temp_db();
    let big = key("bounded-purge", 0, "big");
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        long_run(&journal, &big, 20);
        let report = journal
            .purge(
                &PurgePolicy {
                    explicit: vec![big.clone()],
                    ..PurgePolicy::default()
                },
                false,
            )
            .unwrap();
        assert_eq!(report.purged, vec![(big.clone(), 10_001)]);
        assert!(report.freed_bytes > 10_001 * 17, "{}", report.freed_bytes);
        assert!(matches!(journal.run_info(&big), Err(ReadError::NotFound { .. })));
    }
    assert_eq!(keys_under(&path, layout::EVENT, 0), 0, "every event is gone");
    assert_eq!(
        keys_under(&path, layout::SNAPSHOT, 0),
        0,
        "every format 3 snapshot is gone"
    );
    assert_eq!(snapshots_stored(&path), 0, "every snapshot is gone");
    assert_eq!(tombstones(&path), 0, "the tombstone is gone once the run is");
    let journal = Journal::open(&path, Options::default()).unwrap();
    assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
}

#[test]
fn a_purge_interrupted_after_it_unpublished_a_run_is_finished_by_the_next_purge() {
    let (_dir, path) = temp_db();
    let big = key("bounded-purge", 0, "interrupted");
    let other = key("bounded-purge", 0, "other");
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        long_run(&journal, &big, 10);
        long_run(&journal, &other, 1);
    }
    // What the purge's first step leaves when the process dies right after
    // it: the run unpublished (no record, no key) and its tombstone.
    {
        let store = SledStore::open(&path, OpenMode::MustExist).unwrap();
        let mut batch = sled::Batch::default();
        batch.remove(&layout::run_key(0)[..]);
        batch.remove(layout::key_index_key(&big));
        batch.insert(&layout::purging_key(0)[..], &[][..]);
        store.sled().apply_batch(batch).unwrap();
        store.sled().flush().unwrap();
    }
    assert_eq!(keys_under(&path, layout::EVENT, 0), 5001, "the events are still stored");
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        assert!(
            matches!(journal.run_info(&big), Err(ReadError::NotFound { .. })),
            "an unpublished run is invisible"
        );
        assert_eq!(journal.runs(&RunFilter::default()).unwrap().len(), 1);
        let report = journal
            .purge(
                &PurgePolicy {
                    explicit: vec![other.clone()],
                    ..PurgePolicy::default()
                },
                false,
            )
            .unwrap();
        assert_eq!(report.purged, vec![(other, 501)]);
    }
    assert_eq!(
        keys_under(&path, layout::EVENT, 0),
        0,
        "the interrupted purge is finished"
    );
    assert_eq!(keys_under(&path, layout::EVENT, 1), 0);
    assert_eq!(tombstones(&path), 0);
}
