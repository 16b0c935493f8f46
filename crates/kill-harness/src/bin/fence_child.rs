//! A writer of the fencing test: opens the journal at `<db>` (a
//! `postgres://` URL: several processes share it), resumes the run of agent
//! `<agent>` in a new epoch and appends framed 3-event batches tagged `<tag>`
//! until the parent closes its stdin, or until it is fenced; once fenced it
//! keeps trying a few more appends (each must be fenced too) and exits.
//!
//! It prints `attached <seq> <epoch>` after its resume, `ack <last_seq> <id>`
//! after every acknowledged batch, `fenced <epoch> <current>` for every
//! refused one, and `done` when it stops. Any other failure is a panic.
//!
//! Usage: `fence-child <db> <agent> <tag>`.
#![forbid(unsafe_code)]
#![expect(
    clippy::unwrap_used,
    reason = "a test child: any failure is a panic the test reports with the child's stderr"
)]

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runjournal::{AppendError, Event, Journal, Options, RunKey};

/// Appends tried after the first refusal: each must be refused too.
const TRIES_AFTER_FENCED: u32 = 5;

/// The child gives up on its own after this long (if the parent is gone).
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(agent), Some(tag)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: fence-child <db> <agent> <tag>");
        std::process::exit(2);
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        drop(std::io::stdin().read_to_end(&mut sink));
        stopping.store(true, Ordering::Release);
    });
    let journal = Journal::open(&db, Options::default()).unwrap();
    let key = RunKey::new(runjournal_kill_harness::FENCE_GOAL, 0, agent).unwrap();
    let (run, _) = journal.resume(&key).unwrap();
    say(&format!("attached {} {}", run.next_seq() - 1, run.epoch()));
    let started = Instant::now();
    let mut refused = 0u32;
    let mut counter = 0u64;
    while !stop.load(Ordering::Acquire) && started.elapsed() < CHILD_LIFETIME && refused <= TRIES_AFTER_FENCED {
        counter += 1;
        let id = format!("{tag}.{counter}");
        match run.append(batch(&id)) {
            Ok(last) => {
                assert_eq!(refused, 0, "{id} was acknowledged after this writer was fenced");
                say(&format!("ack {last} {id}"));
            }
            Err(AppendError::Fenced { epoch, current, .. }) => {
                refused += 1;
                say(&format!("fenced {epoch} {current}"));
            }
            Err(error) => panic!("{id}: {error}"),
        }
    }
    say("done");
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
        std::process::exit(0);
    }
}

/// `batch-begin`, a step, `batch-end`, each naming the batch.
fn batch(id: &str) -> Vec<Event> {
    let frame = format!("n=3 id={id}");
    vec![
        Event::Custom {
            kind: "batch-begin".into(),
            data: frame.clone(),
        },
        Event::Custom {
            kind: "payload".into(),
            data: id.to_owned(),
        },
        Event::Custom {
            kind: "batch-end".into(),
            data: frame,
        },
    ]
}
