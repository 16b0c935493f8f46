//! The commands of docs/cli.md, one module each; `main` parses the arguments and
//! hands each command its [`Context`](crate::context::Context).
//!
//! Invariants: a command writes its results to the context's output and
//! returns its errors as one line each; commands that only read open the
//! database with `open_existing`, so they never create one.

pub mod bench;
pub mod completions;
pub mod copy;
pub mod demo;
pub mod diff;
pub mod export;
pub mod fork;
pub mod import;
pub mod operator;
pub mod purge;
pub mod rebuild_snapshots;
pub mod recover;
pub mod rewind;
pub mod runs;
mod salvage;
pub mod serve;
pub mod show;
pub mod state;
pub mod ui;
pub mod verify;

use runjournal::RunKey;
use serde::Serialize;

/// A run's key and short id in `--json` output.
#[derive(Serialize)]
struct KeyJson<'a> {
    id: String,
    goal: &'a str,
    episode: u32,
    agent: &'a str,
}

impl<'a> KeyJson<'a> {
    fn of(key: &'a RunKey) -> KeyJson<'a> {
        KeyJson {
            id: key.short_id(),
            goal: &key.goal,
            episode: key.episode,
            agent: &key.agent,
        }
    }
}
