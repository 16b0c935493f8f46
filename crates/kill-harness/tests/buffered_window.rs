//! A `Buffered` journal loses at most its flush interval: SIGKILL a
//! saturated `Buffered` producer at a random moment, reopen, and the loss
//! window — the kill time minus the newest surviving event's `ts` — is at
//! most the flush interval plus [`MARGIN`], in every trial.
//!
//! The child is `kill-child <db> <seed> saturated` (`src/bin/kill_child.rs`):
//! [`THREADS`](runjournal_kill_harness::THREADS) threads append one small
//! event after another, `Buffered`, with the default flush interval (200 ms),
//! and print `producing` once each has appended. The parent kills it at a
//! random moment 50–1500 ms later and reads the newest `ts` of every run.
//!
//! The bound (docs/library.md, durability): the writer syncs as soon as the
//! oldest append that returned unsynced is one interval old, and a producer
//! waits for a sync once that append is half an interval old, so what returned
//! is synced within the interval plus the writer's time to apply and sync
//! what was queued. [`MARGIN`] covers that time and the scheduling of a
//! loaded two-core machine; the figures of every trial are printed (run with
//! `--nocapture`). The contract is a time, so the test compares times: an
//! observable event such as the sync counter of `Journal::metrics()` tells
//! that a sync covered an append, not how long after its return it came.
//!
//! `RUNJOURNAL_WINDOW_TRIALS=N` sets the number of trials (default 12),
//! `RUNJOURNAL_KILL_SEED=S` replays a seed.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use runjournal::{Journal, Options, RunFilter};
use runjournal_kill_harness::{Rng, THREADS};

/// The default flush interval, the documented bound of a `Buffered` loss.
const FLUSH_INTERVAL_MS: u64 = 200;
/// What the bound allows beyond the interval: the writer's apply and sync of
/// what is queued, and scheduling delays (docs/library.md, durability).
const MARGIN_MS: u64 = 300;

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

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// One trial: spawn, wait for `producing`, kill after `delay`; returns the
/// kill time (unix ms).
fn kill_saturated(path: &std::path::Path, delay: Duration, stderr: std::fs::File) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kill-child"))
        .arg(path)
        .arg("0")
        .arg("saturated")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while line.trim_end() != "producing" {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the child ended before it produced"
        );
        assert!(Instant::now() < deadline, "the child did not start producing");
    }
    // Where the kill lands, not a synchronisation: a random moment of production.
    std::thread::sleep(delay);
    let killed_at = now_ms();
    child.kill().unwrap();
    child.wait().unwrap();
    killed_at
}

#[test]
fn buffered_loss_window_is_bounded_by_the_flush_interval() {
    let seed = seed();
    println!("buffered window seed: {seed} (replay with RUNJOURNAL_KILL_SEED={seed})");
    let trials: usize = std::env::var("RUNJOURNAL_WINDOW_TRIALS").map_or(12, |trials| trials.parse().unwrap());
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut windows = Vec::new();
    let mut survived = 0u64;
    for trial in 0..trials {
        let path = dir.path().join(format!("db-{trial}"));
        let stderr = std::fs::File::create(dir.path().join(format!("child-{trial}.stderr"))).unwrap();
        let delay = Duration::from_millis(50 + rng.below(1451));
        let killed_at = kill_saturated(&path, delay, stderr);
        let journal = Journal::open(&path, Options::default()).unwrap();
        let runs = journal.runs(&RunFilter::default()).unwrap();
        assert_eq!(runs.len(), THREADS, "trial {trial}: every run began durably");
        let newest = runs.iter().map(|record| record.head.last_ts).max().unwrap();
        for record in &runs {
            let report = journal.verify(&record.key).unwrap();
            survived += report.events;
        }
        let window = killed_at.saturating_sub(newest);
        println!(
            "trial {trial}: killed {} ms into production, newest surviving ts {window} ms before the kill",
            delay.as_millis()
        );
        windows.push(window);
    }
    let worst = windows.iter().copied().max().unwrap();
    let line = format!(
        "buffered window: {trials} kills of a saturated Buffered producer, {survived} events survived, loss window \
         worst {worst} ms, median {} ms (bound {FLUSH_INTERVAL_MS} ms interval + {MARGIN_MS} ms margin)",
        {
            let mut sorted = windows.clone();
            sorted.sort_unstable();
            sorted[sorted.len() / 2]
        }
    );
    println!("{line}");
    eprintln!("{line}");
    for (trial, window) in windows.iter().enumerate() {
        let stderr = std::fs::read_to_string(dir.path().join(format!("child-{trial}.stderr"))).unwrap();
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        assert!(
            *window <= FLUSH_INTERVAL_MS + MARGIN_MS,
            "trial {trial}: the newest surviving event is {window} ms older than the kill (seed {seed}); the child's \
             last figures, newest first:\n{}",
            tail.join("\n")
        );
    }
}
