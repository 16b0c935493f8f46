//! Temporary probe: durable single writer, raw vs journal.
#![allow(clippy::unwrap_used, missing_docs)]
use runjournal::{Durability, Journal, Message, Options, Role, RunKey, RunMeta};
use std::fs::File;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let dir = tempfile::tempdir_in("/tmp/probe").unwrap();
    let started;
    if args[2] == "raw" {
        let db = sled::Config::new()
            .path(dir.path())
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None)
            .open()
            .unwrap();
        let value = vec![7u8; 311];
        started = Instant::now();
        for seq in 0..n {
            db.insert(seq.to_be_bytes(), value.as_slice()).unwrap();
            db.flush().unwrap();
            File::open(dir.path().join("db")).unwrap().sync_data().unwrap();
        }
    } else {
        let journal = Journal::open(dir.path(), Options::with_durability(Durability::Durable)).unwrap();
        let run = journal
            .begin(RunKey::new("g", 0, "a").unwrap(), RunMeta::default())
            .unwrap();
        let message = Message::new(Role::Assistant, "x".repeat(256));
        started = Instant::now();
        for _ in 0..n {
            run.step(vec![message.clone()]).unwrap();
        }
    }
    let e = started.elapsed();
    println!("{} n={n}: {:.0}/s", args[2], n as f64 / e.as_secs_f64());
}
