//! `Options::serve`: a journal opened to be served serves its socket while
//! the caller holds a handle, and stops (socket removed, store released)
//! when the caller's last handle is dropped or the journal is closed.
#![allow(clippy::unwrap_used, reason = "a failed call fails the test")]

mod common;

use std::path::PathBuf;

use common::temp_db;
use runjournal::{ConnectOptions, Journal, Options, Run, RunKey, RunMeta, ServeOptions};

fn key() -> RunKey {
    RunKey::new("g", 0, "a").unwrap()
}

fn serving() -> Options {
    Options::default().with_serve(ServeOptions::default())
}

/// A fresh database opened to be served, with the run `key()` begun.
struct Owner {
    _dir: tempfile::TempDir,
    db: PathBuf,
    socket: PathBuf,
    journal: Journal,
    run: Run,
}

fn owner() -> Owner {
    let (dir, db) = temp_db();
    let journal = Journal::open(&db, serving()).unwrap();
    let run = journal.begin(key(), RunMeta::default()).unwrap();
    Owner {
        _dir: dir,
        socket: db.join(runjournal::wire::SOCKET_NAME),
        db,
        journal,
        run,
    }
}

#[test]
fn open_with_serve_serves_the_socket_to_connected_clients() {
    let owner = owner();
    assert_eq!(owner.journal.served_socket(), Some(owner.socket.as_path()));
    owner.run.custom("note", "from the owner").unwrap();
    let client = std::thread::spawn({
        let db = owner.db.clone();
        move || {
            let connected = Journal::connect(db, ConnectOptions::default()).unwrap();
            assert!(connected.is_remote());
            connected.history(&key()).unwrap().len()
        }
    })
    .join()
    .unwrap();
    assert_eq!(client, 2);
}

#[test]
fn dropping_the_last_handle_stops_the_server_and_releases_the_store() {
    let owner = owner();
    let (db, socket) = (&owner.db, &owner.socket);
    let clone = owner.journal.clone();
    drop(owner.journal);
    // A clone and a run are the caller's handles: still served.
    assert!(socket.exists());
    Journal::connect(db, ConnectOptions::default())
        .unwrap()
        .state(&key())
        .unwrap();
    drop(clone);
    assert!(socket.exists(), "the caller's run keeps the server running");
    owner.run.custom("note", "still writing").unwrap();
    drop(owner.run);
    assert!(!socket.exists(), "the socket outlived the last handle");
    let reopened = Journal::open(db, serving()).unwrap();
    assert_eq!(reopened.history(&key()).unwrap().len(), 2);
    assert!(socket.exists());
}

#[test]
fn close_stops_the_server_while_runs_are_alive() {
    let owner = owner();
    let (db, socket) = (&owner.db, &owner.socket);
    owner.journal.close().unwrap();
    assert!(!socket.exists());
    drop(owner.run);
    let reopened = Journal::open(db, Options::default()).unwrap();
    assert_eq!(reopened.history(&key()).unwrap().len(), 1);
}

#[test]
fn open_with_serve_fails_when_another_owner_serves_the_socket() {
    let (_dir, db) = temp_db();
    let journal = Journal::open(&db, Options::default()).unwrap();
    let server = journal.serve(ServeOptions::default()).unwrap();
    // The store is held by this process: a second embedded open is refused
    // by the store itself; a store without a directory and the owner's
    // socket named shows the serve refusal.
    let store = std::sync::Arc::new(runjournal::core::MemoryStore::new());
    let options = Options::default().with_serve(ServeOptions {
        socket: server.socket_path().map(std::path::Path::to_path_buf),
        ..ServeOptions::default()
    });
    let error = Journal::with_store(store, options).unwrap_err();
    assert_eq!(error.code(), "already_served", "{error}");
    server.close();
}

#[test]
fn open_with_serve_of_a_store_without_a_directory_needs_a_socket() {
    let store = std::sync::Arc::new(runjournal::core::MemoryStore::new());
    let error = Journal::with_store(store, serving()).unwrap_err();
    assert_eq!(error.code(), "no_socket_path", "{error}");
}
