//! The sled store keeps the storage contract (every rule of
//! `runjournal_core::testing::conformance`, one test each, on a fresh
//! database), also across a reopen; and how it opens: missing, locked,
//! foreign and half-created databases.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use runjournal_core::testing::conformance::{self, key, new_run, seqs, Fixture};
use runjournal_core::Store;
use runjournal_sled::{OpenMode, SledStore};

/// A sled database in a temporary directory, removed after the store closes.
struct SledFixture {
    store: SledStore,
    _dir: tempfile::TempDir,
}

impl Fixture for SledFixture {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

fn fresh_sled() -> SledFixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
    SledFixture { store, _dir: dir }
}

runjournal_core::conformance_tests!(fresh_sled);

#[test]
fn the_sled_store_keeps_the_storage_contract_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
        conformance::run_all(&store);
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
    // sled's background threads release its lock shortly after the refused
    // open's handle drops: poll for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let foreign = loop {
        match sled::open(&path) {
            Ok(foreign) => break foreign,
            Err(error) if std::time::Instant::now() < deadline => {
                assert!(error.to_string().contains("lock"), "{error}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => panic!("{error}"),
        }
    };
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
