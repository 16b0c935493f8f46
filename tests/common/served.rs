//! A fresh database served on its socket, for the served API's tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared test helpers, each file uses a part; a failed call fails the test"
)]

use std::path::PathBuf;

use runjournal::{Journal, Options, RunFilter, RunRecord, ServeHandle, ServeOptions};
use serde_json::{json, Value};

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

/// A fresh database served with the default options.
pub fn serve() -> Served {
    serve_with(ServeOptions::default())
}

/// A one-message step event as the served API's JSON.
pub fn step(text: &str) -> Value {
    json!({"type": "step", "messages": [{"role": "assistant", "content": text}]})
}
