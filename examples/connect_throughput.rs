//! Durable appends embedded and through the owner's socket, side by side:
//! 1 and 64 writers (threads, each on its own run) appending single steps
//! for a few seconds each, first on the embedded journal, then from a
//! connected journal (`Journal::connect`) while the owner serves it.
//!
//! Run with `cargo run --release --example connect_throughput [SECONDS]`
//! (default 3 seconds per row).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use runjournal::{ConnectOptions, Journal, Message, Options, Role, RunKey, RunMeta, ServeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args().nth(1).map_or(Ok(3.0), |text| text.parse())?;
    let dir = std::env::temp_dir().join(format!("runjournal-connect-throughput-{}", std::process::id()));
    let owner = Journal::open(&dir, Options::default())?;
    let rows = [("embedded", 1, &owner), ("embedded", 64, &owner)];
    let mut results = Vec::new();
    for (name, writers, journal) in rows {
        results.push((name, writers, measure(journal, name, writers, seconds)?));
    }
    let serving = owner.serve(ServeOptions::default())?;
    let client = Journal::connect(
        &dir,
        ConnectOptions {
            max_connections: 64,
            ..ConnectOptions::default()
        },
    )?;
    for writers in [1, 64] {
        results.push(("socket", writers, measure(&client, "socket", writers, seconds)?));
    }
    println!("{:<10} {:>8} {:>14}", "path", "writers", "appends/s");
    for (name, writers, rate) in &results {
        println!("{name:<10} {writers:>8} {rate:>14.0}");
    }
    drop(client);
    drop(serving);
    owner.close()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Durable single-step appends per second with `writers` threads.
fn measure(journal: &Journal, name: &str, writers: u32, seconds: f64) -> Result<f64, runjournal::Error> {
    let barrier = Arc::new(Barrier::new(writers as usize + 1));
    let deadline = Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..writers)
        .map(|writer| {
            let journal = journal.clone();
            let barrier = barrier.clone();
            let goal = format!("{name}-{writers}");
            std::thread::spawn(move || -> Result<u64, runjournal::Error> {
                let run = journal.begin(RunKey::new(goal, writer, "writer")?, RunMeta::default())?;
                barrier.wait();
                let start = Instant::now();
                let mut appended = 0;
                while start.elapsed() < deadline {
                    run.step(vec![Message::new(
                        Role::Assistant,
                        "a step of about sixty bytes of text, typical",
                    )])?;
                    appended += 1;
                }
                Ok(appended)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut total = 0;
    for thread in threads {
        total += thread
            .join()
            .map_err(|_| std::io::Error::other("a writer panicked"))
            .map_err(|source| runjournal::StoreError::Io {
                operation: "join a writer",
                source,
            })??;
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "a count of appends in a few seconds, far below 2^52"
    )]
    let total = total as f64;
    Ok(total / start.elapsed().as_secs_f64())
}
