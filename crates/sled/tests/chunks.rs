//! Store formats 2 and 3: a group's events of one run are one stored value (a
//! chunk, or a commit, keyed by run and first seq), and reads by seq still
//! start anywhere.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use runjournal_core::chunk;
use runjournal_core::testing::conformance::{batch, key, new_run};
use runjournal_core::{ChainReader, RunRecord, ScanControl, Store};
use runjournal_sled::{layout, OpenMode, SledStore};

fn stored_values(store: &SledStore, record: &RunRecord) -> Vec<(u64, u64)> {
    store
        .sled()
        .scan_prefix(layout::run_prefix(layout::EVENT, record.id))
        .map(|entry| {
            let (key, value) = entry.unwrap();
            (layout::trailing_u64(&key).unwrap(), chunk::declared_count(&value))
        })
        .collect()
}

fn scanned(store: &SledStore, record: &RunRecord, from: u64, end: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    store
        .scan(record.id, from, end, &mut |seq, _| {
            seqs.push(seq);
            ScanControl::Continue
        })
        .unwrap();
    seqs
}

fn run_with_batches(store: &SledStore, sizes: &[usize]) -> RunRecord {
    let mut record = store
        .create_runs(&[new_run(&key("chunks", 0))])
        .unwrap()
        .unwrap()
        .remove(0);
    for &size in sizes {
        let append = batch(&record, record.head.next_seq, 0, size);
        assert_eq!(store.append(std::slice::from_ref(&append)).unwrap(), vec![Ok(())]);
        record = store.run(record.id).unwrap().unwrap();
    }
    record
}

#[test]
fn a_group_of_events_of_one_run_is_one_stored_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
    let record = run_with_batches(&store, &[1, 10]);
    // run_started bare at 0, one event bare at 1, the batch of ten one chunk at 2.
    assert_eq!(stored_values(&store, &record), vec![(0, 1), (1, 1), (2, 10)]);
    let mut reader = ChainReader::new(record.key.clone(), runjournal_core::ChainHash::GENESIS, 0);
    store
        .scan(record.id, 0, record.head.next_seq, &mut |seq, bytes| {
            reader.read(seq, bytes).unwrap();
            ScanControl::Continue
        })
        .unwrap();
    reader.finish(record.head.next_seq, Some(&record.head.hash)).unwrap();
}

#[test]
fn one_groups_batches_of_a_run_chunk_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
    let record = store
        .create_runs(&[new_run(&key("group", 0))])
        .unwrap()
        .unwrap()
        .remove(0);
    let first = batch(&record, 1, 0, 3);
    let after_first = RunRecord {
        head: first.head_after,
        ..record.clone()
    };
    let second = batch(&after_first, 4, 0, 2);
    assert_eq!(store.append(&[first, second]).unwrap(), vec![Ok(()), Ok(())]);
    assert_eq!(stored_values(&store, &record), vec![(0, 1), (1, 5)]);
}

#[test]
fn a_read_from_inside_a_chunk_starts_at_that_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
    let record = run_with_batches(&store, &[20, 20]);
    assert_eq!(stored_values(&store, &record), vec![(0, 1), (1, 20), (21, 20)]);
    assert_eq!(scanned(&store, &record, 5, 8), vec![5, 6, 7]);
    assert_eq!(scanned(&store, &record, 20, 23), vec![20, 21, 22]);
    assert_eq!(scanned(&store, &record, 40, 41), vec![40]);
    assert_eq!(scanned(&store, &record, 0, 41), (0..41).collect::<Vec<_>>());
}

#[test]
fn chunks_stay_below_sleds_blob_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
    let record = run_with_batches(&store, &[2000]);
    let values = stored_values(&store, &record);
    assert!(
        values.len() > 2,
        "2,000 events are split into several chunks: {values:?}"
    );
    for entry in store.sled().scan_prefix(layout::run_prefix(layout::EVENT, record.id)) {
        let (_, value) = entry.unwrap();
        assert!(value.len() <= 4 << 10, "a chunk of {} bytes", value.len());
    }
    assert_eq!(values.iter().map(|(_, count)| count).sum::<u64>(), 2001);
    assert_eq!(scanned(&store, &record, 0, 2001).len(), 2001);
}

#[test]
fn a_new_database_is_store_format_4() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
    let format = store.sled().get(layout::format_key()).unwrap().unwrap();
    let version: u8 = runjournal_core::codec::decode_record(runjournal_core::codec::RecordKind::Meta, &format).unwrap();
    assert_eq!(version, runjournal_sled::STORE_FORMAT);
    assert_eq!(version, 4);
}
