//! A sled database written by store format version 2 (event chunks) is
//! committed under `tests/fixtures/golden_db_v2/`: every event type, most of
//! them appended in batches (so stored as chunks), a resumed, a failed, an
//! interrupted and a forked run (forked from inside a chunk), and snapshots. Every later build
//! must open it, verify every run, read from any seq, fold it to the
//! committed states and append to it (the checks and the variables that
//! rewrite it are in tests/common/golden.rs).
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::path::Path;

use common::golden::{write_batched_session, GoldenDatabase, FINISHED_AND_RUNNING};
use common::key;
use runjournal::*;

const GOLDEN: GoldenDatabase = GoldenDatabase {
    name: "golden_db_v2",
    write: write_golden_database,
    format: 2,
    chunks: 5..=usize::MAX,
    commits: 0..=0,
    event_types: 20,
    statuses: FINISHED_AND_RUNNING,
    writable_run: || key("golden", 1, "orchestrator-0"),
    writable_steps: 3,
};

fn write_golden_database(path: &Path) -> Journal {
    write_batched_session(path, "golden v2", 0)
}

#[test]
fn the_format_v2_golden_database_opens_verifies_and_folds() {
    GOLDEN.check();
}
