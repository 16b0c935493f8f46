//! A fresh database served on its socket, and the requests the served API's
//! tests share. A test file that includes it includes `common/http.rs` as
//! its sibling module `http`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared test helpers, each file uses a part; a failed call fails the test"
)]

use std::path::PathBuf;

use std::sync::Arc;

use runjournal::core::Store;
use runjournal::wire::run_path;
use runjournal::{Journal, Options, RunFilter, RunKey, RunRecord, ServeHandle, ServeOptions};
use serde_json::{json, Value};

use super::http::{self, post};

/// A journal at `db` in a temporary directory, served on its socket.
pub struct Served {
    /// The temporary directory; the database is its `db`.
    pub dir: tempfile::TempDir,
    /// The owner's handle on the served journal.
    pub journal: Journal,
    /// The running server.
    pub server: ServeHandle,
    /// The socket the server answers on.
    pub socket: PathBuf,
}

impl Served {
    /// Every stored run, as the owner lists it (not through the server).
    pub fn stored_runs(&self) -> Vec<RunRecord> {
        self.journal.runs(&RunFilter::default()).unwrap()
    }
}

/// A fresh database served with `options`.
pub fn serve_with(options: ServeOptions) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path().join("db"), Options::default()).unwrap();
    let server = journal.serve(options).unwrap();
    let socket = server.socket_path().unwrap().to_path_buf();
    Served {
        dir,
        journal,
        server,
        socket,
    }
}

/// A journal over `store` opened with `options`, served on a socket in a
/// temporary directory.
pub fn serve_store(store: Arc<dyn Store>, options: Options) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::with_store(store, options).unwrap();
    let server = journal
        .serve(ServeOptions {
            socket: Some(dir.path().join("journal.sock")),
            ..ServeOptions::default()
        })
        .unwrap();
    let socket = server.socket_path().unwrap().to_path_buf();
    Served {
        dir,
        journal,
        server,
        socket,
    }
}

/// A fresh database served with the default options.
pub fn serve() -> Served {
    serve_with(ServeOptions::default())
}

/// A one-message step event as the served API's JSON.
pub fn step(text: &str) -> Value {
    json!({"type": "step", "messages": [{"role": "assistant", "content": text}]})
}

/// The key of agent `agent-0` in episode `episode` of `goal`.
pub fn key(goal: &str, episode: u32) -> RunKey {
    RunKey::new(goal, episode, "agent-0").unwrap()
}

/// A run key as the served API's JSON.
pub fn key_json(key: &RunKey) -> Value {
    serde_json::to_value(key).unwrap()
}

/// Begins `key` through the server and returns its handle.
pub fn begin(served: &Served, key: &RunKey) -> Value {
    let reply = post(
        &served.socket,
        "/v1/runs",
        &json!({"run": key_json(key), "meta": {"model": "m"}}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["handle"].clone()
}

/// `POST /v1/runs/{k}/events` of `events` at `epoch` and `expected_seq`.
pub fn append(served: &Served, key: &RunKey, epoch: u64, expected_seq: u64, events: &[Value]) -> http::Reply {
    post(
        &served.socket,
        &format!("{}/events", run_path(key)),
        &json!({"epoch": epoch, "expected_seq": expected_seq, "events": events}),
    )
}

/// The run's next seq as stored (read from the journal, not the server).
pub fn stored_next_seq(served: &Served, key: &RunKey) -> u64 {
    served.journal.run_info(key).unwrap().head.next_seq
}
