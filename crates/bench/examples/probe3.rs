//! Temporary probe: sled apply_batch cost without flushes.
#![allow(clippy::unwrap_used, missing_docs)]
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let per: u64 = args[2].parse().unwrap();
    let dir = tempfile::tempdir_in("/tmp/probe").unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()
        .unwrap();
    let value = vec![7u8; 311];
    let started = Instant::now();
    let mut seq = 0u64;
    if per == 0 {
        for s in 0..n {
            db.insert(s.to_be_bytes(), value.as_slice()).unwrap();
        }
    } else {
        while seq < n {
            let mut b = sled::Batch::default();
            for _ in 0..per {
                b.insert(&seq.to_be_bytes()[..], value.as_slice());
                seq += 1;
            }
            b.insert(&b"run"[..], &value[..100]);
            db.apply_batch(b).unwrap();
        }
    }
    let e = started.elapsed();
    println!(
        "events per batch {per} (0 = insert): {:.0} events/s",
        n as f64 / e.as_secs_f64()
    );
}
