//! A process killed while sled writes its own snapshot leaves
//! `snap.<lsn>.generating`, which sled 0.34's recovery would pick and report
//! as corruption. The store removes such a file (never a finished snapshot)
//! and opens with everything written before it.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use runjournal_core::testing::conformance::{batch, create, key, new_run, records};
use runjournal_core::{RunFilter, Store};
use runjournal_sled::{OpenMode, SledStore};

/// Whether the directory holds a file named `snap.*.generating`.
fn has_unfinished_snapshot(path: &std::path::Path) -> bool {
    std::fs::read_dir(path).unwrap().any(|entry| {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        name.starts_with("snap.") && name.ends_with(".generating")
    })
}

#[test]
fn an_unfinished_sled_snapshot_left_by_a_killed_process_is_removed_and_the_database_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (runs_before, records_before, run) = {
        let store = SledStore::open(&path, OpenMode::CreateIfMissing).unwrap();
        let record = create(&store, &new_run(&key("killed-mid-snapshot", 0)));
        assert_eq!(store.append(&[batch(&record, 1, 0, 20)]).unwrap(), vec![Ok(())]);
        store.sync().unwrap();
        (
            store.list(&RunFilter::default()).unwrap(),
            records(&store, record.id),
            record.id,
        )
    };
    assert_eq!((runs_before.len(), records_before.len()), (1, 21));
    // A torn snapshot whose name sorts after every finished one: sled's
    // recovery reads the newest name.
    std::fs::write(path.join("snap.FFFFFFFFFFFFFFFF.generating"), b"torn snapshot bytes").unwrap();
    let store = SledStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(store.list(&RunFilter::default()).unwrap(), runs_before);
    assert_eq!(records(&store, run), records_before);
    assert!(!has_unfinished_snapshot(&path), "the unfinished snapshot is gone");
}

#[test]
fn a_damaged_finished_sled_snapshot_is_still_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(SledStore::open(&path, OpenMode::CreateIfMissing).unwrap());
    std::fs::write(path.join("snap.FFFFFFFFFFFFFFFF"), b"damaged snapshot bytes").unwrap();
    let Err(error) = SledStore::open(&path, OpenMode::MustExist) else {
        panic!("a damaged finished snapshot opened");
    };
    assert_eq!(error.code(), "corrupt", "{error}");
    assert!(
        path.join("snap.FFFFFFFFFFFFFFFF").exists(),
        "a finished snapshot is never removed"
    );
}
