//! sled 0.34 takes damage in the recent part of its log for a torn write and
//! silently drops everything after it, acknowledged data included. The loss
//! guard turns that into a loud error at open (naming the salvage), while
//! crashes, which lose nothing durable, never trip it.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, step, temp_db};
use runjournal::*;

fn write_runs(path: &std::path::Path) -> u64 {
    let journal = Journal::open(path, Options::default()).unwrap();
    for episode in 0..4 {
        let run = journal.begin(key("guarded", episode, "a"), RunMeta::default()).unwrap();
        for index in 0..60 {
            run.step(step(&format!("step {index} of a run worth keeping"))).unwrap();
        }
    }
    4 * 61
}

#[test]
fn events_sled_silently_dropped_are_a_loud_error_at_open() {
    let (_dir, path) = temp_db();
    let written = write_runs(&path);
    let mut log = std::fs::read(path.join("db")).unwrap();
    log[..64].fill(0xaa);
    std::fs::write(path.join("db"), log).unwrap();

    let error = Journal::open(&path, Options::default()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("sled lost events that were durable"), "{message}");
    assert!(
        message.contains(&format!("but {written} were on stable storage")),
        "{message}"
    );
    assert!(message.contains("export --salvage"), "{message}");
    let error = Journal::open_existing(&path, Options::default()).unwrap_err();
    assert!(error.to_string().contains("sled lost events"), "{error}");

    // `runjournal export --salvage` reads a copy without the guard
    // (crates/cli/tests/cli.rs shows what it recovers).
}

#[test]
fn clean_closes_and_reopens_never_trip_the_guard() {
    let (_dir, path) = temp_db();
    write_runs(&path);
    for round in 0..3 {
        let journal = Journal::open(&path, Options::with_durability(Durability::Buffered)).unwrap();
        let run = journal.begin(key("more", round, "a"), RunMeta::default()).unwrap();
        run.step(step("more")).unwrap();
    }
    let journal = Journal::open_existing(&path, Options::default()).unwrap();
    assert_eq!(journal.runs(&RunFilter::default()).unwrap().len(), 7);
    let guard = runjournal_sled::guard::read_guard(&path)
        .unwrap()
        .map(|guarded| guarded.events);
    assert_eq!(guard, Some(4 * 61 + 3 * 2), "the guard holds every event made durable");
}

#[test]
fn a_damaged_guard_is_reported_not_ignored() {
    let (_dir, path) = temp_db();
    write_runs(&path);
    let guard = runjournal_sled::guard::guard_path(&path);
    let mut bytes = std::fs::read(&guard).unwrap();
    bytes[5] ^= 0xff;
    std::fs::write(&guard, bytes).unwrap();
    let error = Journal::open(&path, Options::default()).unwrap_err();
    assert!(error.to_string().contains("loss guard"), "{error}");
    assert!(error.to_string().contains("fails its checksum"), "{error}");
}
