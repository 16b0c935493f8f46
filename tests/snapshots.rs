//! A state folded from the newest snapshot plus its verified tail equals the
//! full fold, at the end and at any earlier seq (`state_at`); a run keeps
//! only its newest snapshot, and one of another fold version is ignored and
//! replaced on resume.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::Arc;

use common::counting::CountingStore;
use common::{key, memory_journal, memory_run, run_over, run_with_steps, temp_db};
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
    let (store, journal, run_key) = memory_run(0, 12);
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

/// A copy of the stored bytes of one event with one byte of its body flipped.
fn damaged_record(store: &MemoryStore, run: runjournal::core::RunId, seq: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .scan(run, seq, seq + 1, &mut |_, record| {
            bytes = record.to_vec();
            runjournal::core::ScanControl::Stop
        })
        .unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    bytes
}

#[test]
#[expect(
    clippy::cast_possible_truncation,
    reason = "seqs of a 40-step run, far below usize::MAX"
)]
fn a_read_from_any_seq_equals_the_full_read_from_that_seq() {
    // A 40-step run with a snapshot every 10 events (the newest kept).
    let (store, journal, run_key) = memory_run(10, 40);
    let record = journal.run_info(&run_key).unwrap();
    let snapshot = store.latest_snapshot(record.id, u64::MAX).unwrap().unwrap();
    let all = journal.read(&run_key, 0).unwrap();
    assert_eq!(all.len() as u64, record.head.next_seq);
    for from in [
        1,
        5,
        snapshot.seq,
        snapshot.seq + 1,
        snapshot.seq + 2,
        record.head.next_seq - 1,
    ] {
        let tail = journal.read(&run_key, from).unwrap();
        assert_eq!(tail, all[from as usize..], "read from seq {from}");
    }
    assert_eq!(journal.read(&run_key, record.head.next_seq).unwrap(), Vec::new());
}

/// The seqs a walk of the run from seq 0 visits when its visitor stops at
/// the first event it is given.
fn seqs_visited_stopping_at_the_first(journal: &Journal, run_key: &RunKey) -> Vec<u64> {
    let mut seen = Vec::new();
    journal
        .for_each_event(run_key, 0, |envelope| {
            seen.push(envelope.seq);
            std::ops::ControlFlow::Break(())
        })
        .unwrap();
    seen
}

#[test]
fn a_walk_stopped_at_the_first_event_is_not_failed_by_damage_after_it() {
    // A 40-step run with a snapshot every 10 events (the newest kept).
    let (store, journal, run_key) = memory_run(10, 40);
    let record = journal.run_info(&run_key).unwrap();
    // Damage far after seq 0: a visitor that stops at seq 0 never reaches it.
    let damaged_seq = record.head.next_seq - 5;
    store
        .overwrite_record(record.id, damaged_seq, damaged_record(&store, record.id, damaged_seq))
        .unwrap();
    assert_eq!(seqs_visited_stopping_at_the_first(&journal, &run_key), vec![0]);
    assert!(journal.read(&run_key, 0).is_err(), "a full read does reach the damage");
}

#[test]
fn a_walk_stopped_at_the_first_event_reads_at_most_one_record_from_the_store() {
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let (journal, run_key) = run_over(store.clone(), Options::default(), 40);
    let before = store.records_scanned();
    assert_eq!(seqs_visited_stopping_at_the_first(&journal, &run_key), vec![0]);
    let read = store.records_scanned() - before;
    assert!(
        read <= 1,
        "the walk read {read} records of a run of {} to visit one",
        journal.run_info(&run_key).unwrap().head.next_seq
    );
}

/// Bytes of the files under `path`.
fn directory_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                directory_bytes(&entry.path())
            } else {
                metadata.len()
            }
        })
        .sum()
}

#[test]
fn a_long_run_s_snapshot_is_not_rewritten_with_its_appends() {
    // sled rewrites a whole leaf every few changes to it: were the snapshot
    // (which grows with the run's state) in the leaf its newest events go
    // to, each few steps would write it again, and the files would grow
    // with the square of the run's length.
    let (_dir, path) = common::temp_db();
    let steps = 3_000;
    let message = "m".repeat(256);
    let stored_bytes;
    {
        let journal = Journal::open(
            &path,
            Options {
                snapshot_every: 250,
                ..Options::with_durability(Durability::Buffered)
            },
        )
        .unwrap();
        let run = journal
            .begin(common::key("space", 0, "long"), RunMeta::default())
            .unwrap();
        for _ in 0..steps {
            run.step(vec![Message::new(Role::Assistant, message.clone())]).unwrap();
        }
        journal.sync().unwrap();
        let snapshot = journal.state(&common::key("space", 0, "long")).unwrap();
        stored_bytes = steps * 300 + serde_json::to_vec(&snapshot).unwrap().len() as u64;
    }
    // The run's own bytes are its events plus every snapshot it wrote (12,
    // growing to the last), a few times the last alone; sled's rewrites of
    // its leaves add about as much again. A snapshot rewritten with every
    // few appends would be over 60 × the stored bytes here.
    let on_disk = directory_bytes(&path);
    assert!(
        on_disk < 10 * stored_bytes,
        "{on_disk} bytes of files for about {stored_bytes} bytes stored"
    );
}
