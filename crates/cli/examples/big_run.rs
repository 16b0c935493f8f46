//! Writes one long run for measuring the CLI on big runs (memory of `show`,
//! `state`, `verify`): `cargo run --release -p runjournal-cli --example big_run -- DB EVENTS`.
//!
//! The run is `big-run`/0/`agent`: `run_started`, then EVENTS - 1 steps of one
//! assistant message of about 90 bytes each, buffered appends, one sync at
//! the end. No snapshots: a snapshot holds the whole transcript, so one
//! every 1000 events of a run that never compacts grows quadratically (14 GB
//! for 500,000 events), which is not what this measures.

use std::process::ExitCode;

use runjournal::{Durability, Journal, Message, Options, Role, RunKey, RunMeta};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(events)) = (args.next(), args.next().and_then(|text| text.parse::<u64>().ok())) else {
        eprintln!("usage: big_run DB EVENTS");
        return ExitCode::from(2);
    };
    match write(&db, events) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("big_run: {error}");
            ExitCode::FAILURE
        }
    }
}

fn write(db: &str, events: u64) -> Result<(), runjournal::Error> {
    let options = Options {
        snapshot_every: 0,
        ..Options::with_durability(Durability::Buffered)
    };
    let journal = Journal::open(db, options)?;
    let run = journal.begin(RunKey::new("big-run", 0, "agent")?, RunMeta::default())?;
    for index in 1..events {
        let text = format!("step {index}: read the file, patched the handler, re-ran the tests; all green so far.");
        run.step(vec![Message::new(Role::Assistant, text)])?;
    }
    journal.sync()?;
    Ok(())
}
