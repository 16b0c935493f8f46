//! Temporary probe.
#![allow(clippy::unwrap_used, missing_docs)]
use runjournal::{Durability, Journal, Message, Options, Role, RunKey, RunMeta};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let every: u64 = args[2].parse().unwrap();
    let interval: u64 = args[3].parse().unwrap();
    let dir = tempfile::tempdir_in("/tmp/probe").unwrap();
    let options = Options {
        durability: Durability::Buffered,
        snapshot_every: every,
        flush_interval: Duration::from_millis(interval),
        ..Options::default()
    };
    let journal = if args.len() > 4 {
        Journal::with_store(std::sync::Arc::new(runjournal_core::MemoryStore::default()), options).unwrap()
    } else {
        Journal::open(dir.path(), options).unwrap()
    };
    let run = journal
        .begin(RunKey::new("g", 0, "a").unwrap(), RunMeta::default())
        .unwrap();
    let message = Message::new(Role::Assistant, "x".repeat(256));
    let started = Instant::now();
    let mut slow = Duration::ZERO;
    let mut slow_count = 0;
    let mut fast = Duration::ZERO;
    for i in 0..n {
        let t = Instant::now();
        if let Err(e) = run.step(vec![message.clone()]) {
            println!("error at {i}: {e}");
            break;
        }
        let d = t.elapsed();
        if d > Duration::from_millis(1) {
            slow += d;
            slow_count += 1;
        } else {
            fast += d;
        }
    }
    let elapsed = started.elapsed();
    println!("{n} steps snapshot_every {every} interval {interval}ms: {:?} = {:.0}/s; {} appends >1ms took {:?}; the rest {:?} = {:.1}us each",
        elapsed, n as f64 / elapsed.as_secs_f64(), slow_count, slow, fast, fast.as_secs_f64() * 1e6 / (n - slow_count) as f64);
    let t = Instant::now();
    drop(run);
    drop(journal);
    println!("close {:?}", t.elapsed());
}
