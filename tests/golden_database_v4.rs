//! A sled database written by store format version 4 (snapshots in their own
//! tree) is committed under `tests/fixtures/golden_db_v4/`: the same session
//! as format 3's (every event type, commits and multi-key batches, a resumed,
//! a failed, an interrupted and a forked run) with its snapshots in the
//! snapshot tree. Every later build must open it, verify every run, read from
//! any seq, fold it to the committed states and append to it (the checks and
//! the variables that rewrite it are in tests/common/golden.rs).
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::path::Path;

use common::golden::{write_batched_session, GoldenDatabase, FINISHED_AND_RUNNING};
use common::key;
use runjournal::*;

const GOLDEN: GoldenDatabase = GoldenDatabase {
    name: "golden_db_v4",
    write: write_golden_database,
    format: 4,
    chunks: 10..=usize::MAX,
    commits: 10..=usize::MAX,
    event_types: 20,
    statuses: FINISHED_AND_RUNNING,
    writable_run: || key("golden", 1, "orchestrator-0"),
    writable_steps: 3,
};

fn write_golden_database(path: &Path) -> Journal {
    write_batched_session(path, "golden v4", 4)
}

#[test]
fn the_format_v4_golden_database_opens_verifies_and_folds() {
    GOLDEN.check();
}
