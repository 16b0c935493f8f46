//! A process killed while sled creates a new database leaves files that
//! never held acknowledged data: the next open with `CreateIfMissing` starts
//! the creation over instead of reporting corruption. Each state a kill can
//! leave (`conf` empty or whole, `db` absent, empty or holding part of its
//! first segment) is built from a real creation's files.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::path::Path;

use runjournal_core::Store;
use runjournal_sled::{files, OpenMode, SledStore};

/// A state a killed creation can leave: its name, `conf` and `db` (`None`: absent).
type State = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// The `conf` and `db` of a freshly created, never written database.
fn fresh_files() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let store = SledStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    store.sync().unwrap();
    drop(store);
    (
        std::fs::read(path.join(files::CONFIG)).unwrap(),
        std::fs::read(path.join(files::LOG)).unwrap(),
    )
}

fn open_state(conf: Option<&[u8]>, db: Option<&[u8]>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("interrupted.db");
    std::fs::create_dir_all(&path).unwrap();
    if let Some(conf) = conf {
        std::fs::write(path.join(files::CONFIG), conf).unwrap();
    }
    if let Some(db) = db {
        std::fs::write(path.join(files::LOG), db).unwrap();
    }
    let opened = SledStore::open(&path, OpenMode::CreateIfMissing).map_err(|error| error.to_string())?;
    drop(opened);
    // And again: the database it made is a database.
    SledStore::open(Path::new(&path), OpenMode::MustExist).map_err(|error| error.to_string())?;
    Ok(())
}

#[test]
fn a_creation_killed_at_any_step_opens_as_a_new_empty_database() {
    let (conf, db) = fresh_files();
    let mut states: Vec<State> = vec![
        ("empty conf, no db".into(), Some(Vec::new()), None),
        ("half a conf, no db".into(), Some(conf[..conf.len() / 2].to_vec()), None),
        ("conf, empty db".into(), Some(conf.clone()), Some(Vec::new())),
        ("empty conf, empty db".into(), Some(Vec::new()), Some(Vec::new())),
    ];
    let last_nonzero = db.iter().rposition(|b| *b != 0).unwrap_or(0);
    for cut in [1, 16, 32, last_nonzero / 2, last_nonzero] {
        states.push((
            format!("conf, db cut at {cut}"),
            Some(conf.clone()),
            Some(db[..cut].to_vec()),
        ));
    }
    let mut failures = Vec::new();
    for (name, conf, db) in &states {
        if let Err(error) = open_state(conf.as_deref(), db.as_deref()) {
            failures.push(format!("{name}: {error}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
