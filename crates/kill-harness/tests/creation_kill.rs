//! A kill while a process creates a new database never leaves one that does
//! not open: SIGKILL the `kill-child` at random moments of its start on a
//! fresh path (during sled's creation of `conf`, `blobs/` and `db`, the
//! format record, the first runs), then open the path with `Journal::open`:
//! it opens (a creation killed before anything was acknowledged starts over)
//! and every run in it verifies.
//!
//! `RUNJOURNAL_CREATION_KILLS=N` sets the number of kills (default 40);
//! `RUNJOURNAL_KILL_SEED=S` replays the delays of a seed.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runjournal::{Journal, Options, RunFilter};
use runjournal_kill_harness::Rng;

#[expect(
    clippy::cast_possible_truncation,
    reason = "nanoseconds since the epoch, truncated to a seed"
)]
fn seed() -> u64 {
    std::env::var("RUNJOURNAL_KILL_SEED").map_or_else(
        |_| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64,
        |seed| seed.parse().unwrap(),
    )
}

#[test]
fn a_kill_during_the_creation_of_a_database_leaves_one_that_opens() {
    let seed = seed();
    println!("creation kill seed: {seed} (replay with RUNJOURNAL_KILL_SEED={seed})");
    let kills: usize = std::env::var("RUNJOURNAL_CREATION_KILLS").map_or(40, |kills| kills.parse().unwrap());
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut opened_with_runs = 0;
    for trial in 0..kills {
        let path = dir.path().join(format!("db-{trial}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_kill-child"))
            .arg(&path)
            .arg(rng.next_u64().to_string())
            .arg("durable")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Where the kill lands, not a synchronisation: a random moment of the start.
        std::thread::sleep(Duration::from_micros(rng.below(250_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        let journal = Journal::open(&path, Options::default()).unwrap_or_else(|error| {
            let files: Vec<String> = std::fs::read_dir(&path)
                .map(|entries| {
                    entries
                        .map(|entry| {
                            let entry = entry.unwrap();
                            let len = entry.metadata().map_or(0, |meta| meta.len());
                            format!("{} ({len} bytes)", entry.file_name().to_string_lossy())
                        })
                        .collect()
                })
                .unwrap_or_default();
            panic!("kill {trial} (seed {seed}): the database does not open: {error}; its files: {files:?}")
        });
        let runs = journal.runs(&RunFilter::default()).unwrap();
        for record in &runs {
            journal.verify(&record.key).unwrap();
        }
        if !runs.is_empty() {
            opened_with_runs += 1;
        }
    }
    println!("creation kills: {kills} kills, {opened_with_runs} reopened with runs, every one opened");
}
