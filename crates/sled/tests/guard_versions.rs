//! A guard written by an older build (version 1, counting events only) is
//! still read and honoured at open, and the next sync replaces it with a
//! version 2 guard that also counts write batches.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use runjournal_core::{Head, NewRun, RunKey, RunStatus, Store};
use runjournal_sled::guard::{encode_guard_v1, guard_path, read_guard};
use runjournal_sled::{OpenMode, SledStore};

fn new_run(goal: &str) -> NewRun {
    NewRun {
        key: RunKey::new(goal, 0, "a").unwrap(),
        created_ts: 1,
        records: vec![vec![1, 2, 3], vec![4, 5, 6]],
        head: Head {
            next_seq: 2,
            hash: runjournal_core::ChainHash::GENESIS,
            epoch: 0,
            last_ts: 1,
        },
        status: RunStatus::Running,
        fork: None,
        supersedes: None,
    }
}

#[test]
fn a_version_1_guard_is_honoured_and_replaced_by_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open(&path, OpenMode::CreateIfMissing).unwrap();
        store.create_runs(&[new_run("one"), new_run("two")]).unwrap().unwrap();
        store.close().unwrap();
    }
    std::fs::write(guard_path(&path), encode_guard_v1(4)).unwrap();
    {
        let store = SledStore::open(&path, OpenMode::MustExist).unwrap();
        assert_eq!(read_guard(&path).unwrap().unwrap().writes, None, "read as version 1");
        store.sync().unwrap();
        let guarded = read_guard(&path).unwrap().unwrap();
        assert_eq!((guarded.events, guarded.writes), (4, Some(1)), "rewritten as version 2");
    }

    std::fs::write(guard_path(&path), encode_guard_v1(5)).unwrap();
    let error = SledStore::open(&path, OpenMode::MustExist).err().unwrap().to_string();
    assert!(error.contains("sled lost events that were durable"), "{error}");
    assert!(error.contains("holds 4 appended events, but 5"), "{error}");
}

#[test]
fn a_closed_store_refuses_writes_and_closes_again_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("db"), OpenMode::CreateIfMissing).unwrap();
    store.close().unwrap();
    store.close().unwrap();
    let error = store.create_runs(&[new_run("late")]).unwrap_err().to_string();
    assert!(error.contains("refuses writes"), "{error}");
    assert!(error.contains("was closed"), "{error}");
}
