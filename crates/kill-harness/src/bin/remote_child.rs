//! The processes of the served-journal tests (`tests/remote_processes.rs`):
//! an owner that holds and serves a database, and clients that use it only
//! through its socket (`Journal::connect`). Every line it prints is flushed
//! at once; the test reads them as they come.
//!
//! Usage:
//! - `remote-child owner <db>`: opens `<db>`, serves it, prints `ready`, and
//!   serves until its stdin closes (or it is killed).
//! - `remote-child append <db> <agent> <count>`: begins run
//!   `(remote, 0, <agent>)` (resumes it when it exists) and appends `<count>`
//!   durable steps with text `<agent>:<i>`, printing `ack <seq> <agent>:<i>`
//!   after each. On a failed append it prints `error <code> <agent>:<i>`,
//!   then retries `run_info` until the owner answers again (up to 30 s) and
//!   prints `reconnected <next_seq>`, and exits.
//! - `remote-child shared <db> <id> <rounds>`: `<rounds>` times: resumes run
//!   `(remote, 0, shared)`, appends two steps `p<id>-<round>-<n>` with the
//!   handle's next seq, then one with a seq one too old. Prints `ack <seq>
//!   <text>` for every acknowledged append and `error <code> <text>` for every
//!   failed one (the too-old ones are `stale` in the text).
//! - `remote-child subscribe <db> <agent> <count>`: subscribes to run
//!   `(remote, 0, <agent>)` from seq 0 and prints `seq <seq>` for the first
//!   `<count>` events, then exits.
#![forbid(unsafe_code)]
#![expect(
    clippy::unwrap_used,
    reason = "a test child: any failure is a panic the test reports with the child's stderr"
)]

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use runjournal::{ConnectOptions, Event, Journal, Message, Options, Role, RunKey, RunMeta, ServeOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |index: usize| args.get(index).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "owner" => owner(&arg(1)),
        "append" => append(&arg(1), &arg(2), arg(3).parse().unwrap()),
        "shared" => shared(&arg(1), &arg(2), arg(3).parse().unwrap()),
        "subscribe" => subscribe(&arg(1), &arg(2), arg(3).parse().unwrap()),
        _ => {
            eprintln!("usage: remote-child owner|append|shared|subscribe <db> …");
            std::process::exit(2);
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn key(agent: &str) -> RunKey {
    RunKey::new("remote", 0, agent).unwrap()
}

fn step(text: &str) -> Vec<Message> {
    vec![Message::new(Role::Assistant, text)]
}

fn owner(db: &str) {
    let journal = Journal::open(db, Options::default()).unwrap();
    let serving = journal.serve(ServeOptions::default()).unwrap();
    say("ready");
    // Serve until the parent closes stdin.
    let mut sink = String::new();
    while std::io::stdin().lock().read_line(&mut sink).unwrap_or(0) > 0 {
        sink.clear();
    }
    drop(serving);
    journal.close().unwrap();
}

fn connect(db: &str) -> Journal {
    Journal::connect(db, ConnectOptions::default()).unwrap()
}

fn append(db: &str, agent: &str, count: u64) {
    let journal = connect(db);
    let run = match journal.begin(key(agent), RunMeta::default()) {
        Ok(run) => run,
        Err(_) => journal.resume(&key(agent)).unwrap().0,
    };
    say("started");
    for index in 0..count {
        let text = format!("{agent}:{index}");
        match run.step(step(&text)) {
            Ok(seq) => say(&format!("ack {seq} {text}")),
            Err(error) => {
                say(&format!("error {} {text}", error.code()));
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    if let Ok(record) = journal.run_info(&key(agent)) {
                        say(&format!("reconnected {}", record.head.next_seq));
                        return;
                    }
                    // Polling the restarted owner, with a deadline.
                    std::thread::sleep(Duration::from_millis(50));
                }
                say("gave-up");
                return;
            }
        }
    }
    say("done");
}

fn shared(db: &str, id: &str, rounds: u64) {
    let journal = connect(db);
    for round in 0..rounds {
        let run = match journal.resume(&key("shared")) {
            Ok((run, _)) => run,
            Err(error) => {
                say(&format!("resume-error {}", error.code()));
                continue;
            }
        };
        for n in 0..3 {
            let stale = n == 2;
            let text = format!("p{id}-{round}-{n}{}", if stale { "-stale" } else { "" });
            let expected = if stale {
                run.next_seq().saturating_sub(1)
            } else {
                run.next_seq()
            };
            match run.append_at(expected, vec![Event::Step { messages: step(&text) }]) {
                Ok(seq) => say(&format!("ack {seq} {text}")),
                Err(error) => say(&format!("error {} {text}", error.code())),
            }
        }
    }
    say("done");
}

fn subscribe(db: &str, agent: &str, count: u64) {
    let journal = connect(db);
    let mut subscription = journal.subscribe(&key(agent), 0, 1024).unwrap();
    say("subscribed");
    for _ in 0..count {
        let envelope = subscription.recv().unwrap();
        say(&format!("seq {}", envelope.seq));
    }
    say("done");
}
