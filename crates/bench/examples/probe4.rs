//! Temporary probe: replay cost breakdown.
#![allow(clippy::unwrap_used, missing_docs)]
use runjournal::{Durability, Event, Journal, Message, Options, ResumeState, Role, RunKey, RunMeta};
use std::ops::ControlFlow;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let reps: u64 = args[2].parse().unwrap();
    let dir = tempfile::tempdir_in("/tmp/probe").unwrap();
    let options = Options {
        durability: Durability::Buffered,
        snapshot_every: 0,
        ..Options::default()
    };
    let journal = Journal::open(dir.path(), options).unwrap();
    let key = RunKey::new("g", 0, "a").unwrap();
    let run = journal.begin(key.clone(), RunMeta::default()).unwrap();
    let message = Message::new(Role::Assistant, "x".repeat(256));
    for _ in 0..n / 1000 {
        run.append(
            (0..1000)
                .map(|_| Event::Step {
                    messages: vec![message.clone()],
                })
                .collect(),
        )
        .unwrap();
    }
    journal.sync().unwrap();
    for mode in ["read-only", "fold"] {
        let started = Instant::now();
        for _ in 0..reps {
            let mut state = ResumeState::new(key.clone());
            let mut count = 0u64;
            journal
                .for_each_event(&key, 0, |e| {
                    if mode == "fold" {
                        state.apply(&e);
                    }
                    count += 1;
                    ControlFlow::Continue(())
                })
                .unwrap();
            std::hint::black_box((state, count));
        }
        let e = started.elapsed();
        println!("{mode}: {:.0} events/s", (n * reps) as f64 / e.as_secs_f64());
    }
}
