//! The loss guard covers every kind of durable write, not only appended
//! events (issue 11, item 4): a purge, a snapshot replacement or a run
//! creation that sled silently drops with a damaged log tail is a loud error
//! at open, never a purged run quietly back with every chain intact.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::path::Path;

use common::{key, step, temp_db};
use runjournal::*;

fn write_runs(path: &Path) {
    let journal = Journal::open(path, Options::default()).unwrap();
    for episode in 0..3 {
        let run = journal.begin(key("kept", episode, "a"), RunMeta::default()).unwrap();
        for index in 0..20 {
            run.step(step(&format!("step {index}"))).unwrap();
        }
        run.finish(Outcome::Success { output: None }).unwrap();
    }
}

/// Runs `write` in a process of its own (a journal opened and closed) and
/// then damages the first bytes of sled's log that this process wrote, the
/// way a bad sector or a lost write would: sled takes them for a torn write.
fn write_then_damage_what_it_wrote(path: &Path, write: impl FnOnce(&Journal)) {
    let before = std::fs::read(path.join("db")).unwrap();
    {
        let journal = Journal::open(path, Options::default()).unwrap();
        write(&journal);
    }
    let mut after = std::fs::read(path.join("db")).unwrap();
    let first_written = before
        .iter()
        .zip(&after)
        .position(|(old, new)| old != new)
        .unwrap_or(before.len());
    assert!(first_written < after.len(), "the process wrote nothing to sled's log");
    let end = (first_written + 64).min(after.len());
    after[first_written..end].fill(0xaa);
    std::fs::write(path.join("db"), after).unwrap();
}

fn expect_loss_reported(path: &Path) -> String {
    let error = match Journal::open(path, Options::default()) {
        Ok(journal) => {
            let runs: Vec<String> = journal
                .runs(&RunFilter::default())
                .unwrap()
                .iter()
                .map(|record| record.key.to_string())
                .collect();
            panic!("the damaged database opened silently, holding {runs:?}");
        }
        Err(error) => error.to_string(),
    };
    assert!(error.contains("sled lost writes that were durable"), "{error}");
    assert!(error.contains("export --salvage"), "{error}");
    error
}

#[test]
fn a_durable_purge_sled_silently_dropped_is_a_loud_error_at_open() {
    let (_dir, path) = temp_db();
    write_runs(&path);
    write_then_damage_what_it_wrote(&path, |journal| {
        let report = journal
            .purge(
                &PurgePolicy {
                    explicit: vec![key("kept", 1, "a")],
                    ..PurgePolicy::default()
                },
                false,
            )
            .unwrap();
        assert_eq!(report.purged.len(), 1);
    });
    expect_loss_reported(&path);
}

#[test]
fn a_durable_snapshot_rebuild_sled_silently_dropped_is_a_loud_error_at_open() {
    let (_dir, path) = temp_db();
    write_runs(&path);
    write_then_damage_what_it_wrote(&path, |journal| {
        journal.rebuild_snapshots(&key("kept", 2, "a")).unwrap();
    });
    expect_loss_reported(&path);
}

#[test]
fn undamaged_purges_and_reopens_never_trip_the_guard() {
    let (_dir, path) = temp_db();
    write_runs(&path);
    for episode in 0..3 {
        let journal = Journal::open(&path, Options::default()).unwrap();
        journal
            .purge(
                &PurgePolicy {
                    explicit: vec![key("kept", episode, "a")],
                    ..PurgePolicy::default()
                },
                false,
            )
            .unwrap();
    }
    let journal = Journal::open_existing(&path, Options::default()).unwrap();
    assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
}
