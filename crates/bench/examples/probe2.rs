//! Temporary probe: where the per-event durable cost goes.
#![allow(clippy::unwrap_used, missing_docs)]
use std::fs::File;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let mode = args[2].as_str();
    let dir = tempfile::tempdir_in("/tmp/probe").unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()
        .unwrap();
    let value = vec![7u8; 311];
    let log = File::open(dir.path().join("db")).unwrap();
    let (mut write, mut flush, mut sync) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let started = Instant::now();
    for seq in 0..n {
        let t = Instant::now();
        let key = seq.to_be_bytes();
        match mode {
            "insert" => {
                db.insert(key, value.as_slice()).unwrap();
            }
            _ => {
                let mut b = sled::Batch::default();
                b.insert(&key[..], value.as_slice());
                b.insert(&b"run"[..], &value[..100]);
                db.apply_batch(b).unwrap();
            }
        }
        let t2 = Instant::now();
        write += t2 - t;
        db.flush().unwrap();
        let t3 = Instant::now();
        flush += t3 - t2;
        if args.len() > 3 {
            File::open(dir.path().join("db")).unwrap().sync_data().unwrap();
        } else {
            log.sync_data().unwrap();
        }
        sync += t3.elapsed();
    }
    let e = started.elapsed();
    println!(
        "{mode} n={n}: {:.0}/s; per event: write {:.0}us flush {:.0}us fdatasync {:.0}us; file len {}",
        n as f64 / e.as_secs_f64(),
        write.as_secs_f64() * 1e6 / n as f64,
        flush.as_secs_f64() * 1e6 / n as f64,
        sync.as_secs_f64() * 1e6 / n as f64,
        std::fs::metadata(dir.path().join("db")).unwrap().len()
    );
}
