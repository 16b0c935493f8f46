//! The storage trait's contract, run against every store (memory, sled; a
//! networked store must pass the same functions).
#![allow(clippy::unwrap_used)]

use runjournal::core::codec::DEFAULT_MAX_EVENT_SIZE;
use runjournal::core::{
    AppendBatch, AppendRejection, ChainWriter, Head, KeyExists, MemoryStore, NewRun, RunFilter, RunRecord, ScanControl,
    Store,
};
use runjournal::{ChainHash, Event, RunKey, RunMeta, RunStatus};
use runjournal_sled::{OpenMode, SledStore};

fn key(goal: &str, episode: u32) -> RunKey {
    RunKey::new(goal, episode, "agent").unwrap()
}

fn new_run(key: &RunKey) -> NewRun {
    let started = Event::RunStarted {
        meta: RunMeta::default(),
    };
    let written = ChainWriter::starting(key.clone(), ChainHash::GENESIS, DEFAULT_MAX_EVENT_SIZE)
        .append(0, 1, started)
        .unwrap();
    NewRun {
        key: key.clone(),
        created_ts: 1,
        records: vec![written.record],
        head: Head {
            next_seq: 1,
            hash: written.envelope.hash,
            epoch: 0,
            last_ts: 1,
        },
        status: RunStatus::Running,
        fork: None,
        supersedes: None,
    }
}

fn batch(record: &RunRecord, expected_seq: u64, epoch: u64, events: usize) -> AppendBatch {
    let start = Head {
        next_seq: expected_seq,
        ..record.head
    };
    let mut writer = ChainWriter::new(record.key.clone(), start, DEFAULT_MAX_EVENT_SIZE);
    let mut records = Vec::new();
    for _ in 0..events {
        records.push(writer.append(epoch, 2, Event::TurnCompleted).unwrap().record);
    }
    let hash = writer.head().hash;
    AppendBatch {
        run: record.id,
        expected_seq,
        epoch,
        records,
        head_after: Head {
            next_seq: expected_seq + events as u64,
            hash,
            epoch,
            last_ts: 2,
        },
        status_after: RunStatus::Running,
        snapshot: None,
    }
}

fn seqs(store: &dyn Store, record: &RunRecord) -> Vec<u64> {
    let mut seqs = Vec::new();
    store
        .scan(record.id, 0, u64::MAX, &mut |seq, _| {
            seqs.push(seq);
            ScanControl::Continue
        })
        .unwrap();
    seqs
}

fn creating_runs_is_all_or_nothing(store: &dyn Store) {
    let created = store.create_runs(&[new_run(&key("a", 0))]).unwrap().unwrap();
    assert_eq!(created[0].head.next_seq, 1);
    let outcome = store
        .create_runs(&[new_run(&key("b", 0)), new_run(&key("a", 0))])
        .unwrap();
    assert_eq!(outcome, Err(KeyExists(key("a", 0))));
    assert!(
        store.find(&key("b", 0)).unwrap().is_none(),
        "nothing of a refused create is stored"
    );
    let twice = store
        .create_runs(&[new_run(&key("c", 0)), new_run(&key("c", 0))])
        .unwrap();
    assert_eq!(twice, Err(KeyExists(key("c", 0))));
}

fn appends_are_conditional_on_seq_and_epoch(store: &dyn Store) {
    let record = store
        .create_runs(&[new_run(&key("cond", 0))])
        .unwrap()
        .unwrap()
        .remove(0);
    assert_eq!(store.append(&[batch(&record, 1, 0, 2)]).unwrap(), vec![Ok(())]);
    let record = store.find(&key("cond", 0)).unwrap().unwrap();
    assert_eq!(record.head.next_seq, 3);
    let stale_seq = store.append(&[batch(&record, 1, 0, 1)]).unwrap();
    assert_eq!(
        stale_seq,
        vec![Err(AppendRejection::Conflict { expected: 1, actual: 3 })]
    );
    assert_eq!(
        store.append(&[batch(&record, 3, 1, 1)]).unwrap(),
        vec![Ok(())],
        "a newer epoch may write"
    );
    let record = store.find(&key("cond", 0)).unwrap().unwrap();
    let fenced = store.append(&[batch(&record, 4, 0, 1)]).unwrap();
    assert_eq!(fenced, vec![Err(AppendRejection::Fenced { epoch: 0, current: 1 })]);
    let both_stale = store.append(&[batch(&record, 0, 0, 1)]).unwrap();
    assert!(
        matches!(both_stale[0], Err(AppendRejection::Fenced { .. })),
        "fencing is checked first"
    );
    assert_eq!(seqs(store, &record), vec![0, 1, 2, 3], "rejected batches wrote nothing");
}

fn batches_of_one_call_apply_in_order(store: &dyn Store) {
    let record = store
        .create_runs(&[new_run(&key("order", 0))])
        .unwrap()
        .unwrap()
        .remove(0);
    let first = batch(&record, 1, 0, 1);
    let mut after_first = record.clone();
    after_first.head = first.head_after;
    let second = batch(&after_first, 2, 0, 3);
    let outcomes = store.append(&[first.clone(), second, first]).unwrap();
    assert_eq!(
        outcomes,
        vec![
            Ok(()),
            Ok(()),
            Err(AppendRejection::Conflict { expected: 1, actual: 5 })
        ]
    );
    assert_eq!(seqs(store, &record), vec![0, 1, 2, 3, 4]);
}

fn listing_and_episodes(store: &dyn Store) {
    for (goal, episode) in [("list", 0), ("list", 3), ("list-other", 9)] {
        store.create_runs(&[new_run(&key(goal, episode))]).unwrap().unwrap();
    }
    let goal = RunFilter {
        goal: Some("list".into()),
        ..RunFilter::default()
    };
    let keys: Vec<RunKey> = store
        .list(&goal)
        .unwrap()
        .into_iter()
        .map(|record| record.key)
        .collect();
    assert_eq!(keys, vec![key("list", 0), key("list", 3)]);
    assert_eq!(store.max_episode("list", Some("agent")).unwrap(), Some(3));
    assert_eq!(store.max_episode("list", Some("nobody")).unwrap(), None);
    assert_eq!(store.max_episode("list-other", None).unwrap(), Some(9));
}

/// A rewind: creating a run may supersede another in the same atomic step;
/// the superseded run keeps its events and head but its status is
/// `superseded` and its epoch one higher, so its old writers are fenced. A
/// refused creation supersedes nothing.
fn a_creation_supersedes_the_run_it_names_in_the_same_step(store: &dyn Store) {
    let original = store
        .create_runs(&[new_run(&key("rewind", 0))])
        .unwrap()
        .unwrap()
        .remove(0);
    assert_eq!(store.append(&[batch(&original, 1, 0, 2)]).unwrap(), vec![Ok(())]);
    let before = store.run(original.id).unwrap().unwrap();
    // A refused creation (its key exists) leaves the original as it was.
    let refused = NewRun {
        supersedes: Some(original.id),
        ..new_run(&key("rewind", 0))
    };
    assert_eq!(store.create_runs(&[refused]).unwrap(), Err(KeyExists(key("rewind", 0))));
    assert_eq!(store.run(original.id).unwrap().unwrap(), before);
    let branch = NewRun {
        supersedes: Some(original.id),
        ..new_run(&key("rewind", 1))
    };
    let created = store.create_runs(&[branch]).unwrap().unwrap();
    assert_eq!(created[0].status, RunStatus::Running);
    let after = store.run(original.id).unwrap().unwrap();
    assert_eq!(after.status, RunStatus::Superseded);
    assert_eq!(after.head.epoch, before.head.epoch + 1);
    assert_eq!(after.head.next_seq, before.head.next_seq);
    assert_eq!(after.head.hash, before.head.hash);
    assert_eq!(seqs(store, &after), vec![0, 1, 2]);
    assert_eq!(store.find(&key("rewind", 0)).unwrap().unwrap(), after);
    assert_eq!(
        store.append(&[batch(&before, 3, 0, 1)]).unwrap(),
        vec![Err(AppendRejection::Fenced { epoch: 0, current: 1 })],
        "the superseded run's old writer is fenced"
    );
}

fn run_all(store: &dyn Store) {
    creating_runs_is_all_or_nothing(store);
    a_creation_supersedes_the_run_it_names_in_the_same_step(store);
    appends_are_conditional_on_seq_and_epoch(store);
    batches_of_one_call_apply_in_order(store);
    listing_and_episodes(store);
}

#[test]
fn the_memory_store_keeps_the_storage_contract() {
    run_all(&MemoryStore::new());
}

#[test]
fn the_sled_store_keeps_the_storage_contract_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
        run_all(&store);
        store.sync().unwrap();
    }
    let store = SledStore::open(dir.path().join("db"), OpenMode::MustExist).unwrap();
    let record = store.find(&key("order", 0)).unwrap().unwrap();
    assert_eq!(record.head.next_seq, 5);
    assert_eq!(seqs(&store, &record), vec![0, 1, 2, 3, 4]);
    let created = store.create_runs(&[new_run(&key("after-reopen", 0))]).unwrap().unwrap();
    assert!(created[0].id > record.id, "run ids are never reused");
}

#[test]
fn a_missing_sled_database_is_not_created_by_a_read_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    let error = SledStore::open(&path, OpenMode::MustExist).err().unwrap();
    assert!(error.to_string().contains("no database at"), "{error}");
    assert!(!path.exists());
}

#[test]
fn a_sled_database_held_by_this_process_reports_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let _held = SledStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    let error = SledStore::open(&path, OpenMode::MustExist).err().unwrap();
    assert!(error.to_string().contains("is locked by another process"), "{error}");
}

#[test]
fn a_sled_database_that_is_not_a_runjournal_one_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign");
    {
        let foreign = sled::open(&path).unwrap();
        foreign.insert(b"someone else's key", b"value".to_vec()).unwrap();
        foreign.flush().unwrap();
    }
    let error = SledStore::open(&path, OpenMode::MustExist).err().unwrap();
    assert!(error.to_string().contains("not a runjournal one"), "{error}");
    let foreign = sled::open(&path).unwrap();
    assert_eq!(foreign.len(), 1, "nothing was written to it");
}

#[test]
fn a_sled_database_whose_creation_was_killed_before_any_data_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half-made");
    std::fs::create_dir_all(path.join("blobs")).unwrap();
    // sled writes `conf` before it creates `db`; a kill in between leaves a
    // truncated `conf` and no `db`.
    std::fs::write(path.join("conf"), b"segment_size: 52").unwrap();
    let error = SledStore::open(&path, OpenMode::MustExist).err().unwrap();
    assert!(error.to_string().contains("no database at"), "{error}");
    let store = SledStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    store.create_runs(&[new_run(&key("fresh", 0))]).unwrap().unwrap();
    store.sync().unwrap();
    drop(store);
    let store = SledStore::open(&path, OpenMode::MustExist).unwrap();
    assert!(store.find(&key("fresh", 0)).unwrap().is_some());
}
