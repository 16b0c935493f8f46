//! The child of the kill harness: opens the journal at `<db path>`, begins
//! or resumes the harness's runs from several threads and appends framed
//! batches (phases, steps, compactions, custom payloads; 3 to 12 events
//! each), now and then interrupting and resuming a run or recording an
//! `agent_died`, printing every acknowledged batch and every run boundary that
//! returned, until it is killed (the harness sends SIGKILL) or its lifetime
//! ends.
//!
//! In `reconnect` mode (durable, for a database server restarted under it)
//! a failed call is not a panic: the thread prints `error <code>` and stops;
//! once every thread stopped, the child reopens the journal (polling until
//! the server accepts it again), prints `ready` again and resumes its runs.
//!
//! In `saturated` mode it instead opens the journal `Buffered` (default flush
//! interval), begins [`THREADS`] fresh runs and appends one small event after
//! another from each as fast as it can, printing `producing` once the first
//! append of every thread returned: the buffered loss window test
//! (`tests/buffered_window.rs`) kills it and compares the newest surviving
//! `ts` with the kill time.
//!
#![forbid(unsafe_code)]
#![expect(
    clippy::unwrap_used,
    reason = "a test child: any failure is a panic the harness reports with the child's stderr"
)]

use std::io::Write;
use std::time::{Duration, Instant};

use runjournal::{
    CompactionSource, Durability, Event, Journal, Message, Options, Outcome, ReadError, Role, RunKey, RunMeta,
    RunStatus, StoreError,
};

/// A failed call of a child thread.
type Failure = runjournal::Error;
use runjournal_kill_harness::{key, Rng, RUNS, THREADS};

/// The child gives up on its own after this long (if the parent is gone).
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(seed), Some(mode)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: kill-child <db path> <seed> durable|buffered|saturated");
        std::process::exit(2);
    };
    let seed: u64 = seed.parse().unwrap();
    if mode == "saturated" {
        saturate(&path);
        return;
    }
    let durability = match mode.as_str() {
        "buffered" => Durability::Buffered,
        _ => Durability::Durable,
    };
    let reconnect = mode == "reconnect";
    let started = Instant::now();
    for round in 0u64.. {
        let journal = open(&path, durability, reconnect);
        say("ready");
        let threads: Vec<_> = (0..THREADS)
            .map(|thread| {
                let journal = journal.clone();
                let seed = seed ^ round.wrapping_mul(0x2545_f491_4f6c_dd1d);
                std::thread::spawn(move || child_thread(&journal, thread, seed, started))
            })
            .collect();
        for thread in threads {
            match thread.join().unwrap() {
                Ok(()) => {}
                Err(error) if reconnect => say(&format!("error {} {}", error.code(), store_code(&error))),
                Err(error) => panic!("{error}"),
            }
        }
        if !reconnect || started.elapsed() >= CHILD_LIFETIME {
            break;
        }
    }
}

/// The code of the storage failure underneath `error`, `-` when none is.
fn store_code(error: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(store) = current.downcast_ref::<StoreError>() {
            return store.code();
        }
        if let Some(store) = current.downcast_ref::<std::sync::Arc<StoreError>>() {
            return store.code();
        }
        cause = current.source();
    }
    "-"
}

/// Opens the journal; in reconnect mode polls (bounded) while the database
/// does not accept it yet (a server restarting).
fn open(path: &str, durability: Durability, reconnect: bool) -> Journal {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Journal::open(path, Options::with_durability(durability)) {
            Ok(journal) => return journal,
            Err(error) if reconnect && Instant::now() < deadline => {
                say(&format!("error {} {}", error.code(), store_code(&error)));
                // Polling another process (the server) with a deadline.
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("{error}"),
        }
    }
}

/// Appends single events from [`THREADS`] threads as fast as the journal
/// takes them, `Buffered`, until killed.
fn saturate(path: &str) {
    let journal = Journal::open(path, Options::with_durability(Durability::Buffered)).unwrap();
    let started = std::sync::Arc::new(std::sync::Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let journal = journal.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                let run = journal.begin(key(thread), RunMeta::default()).unwrap();
                let tick = |count: u64| Event::Custom {
                    kind: "tick".into(),
                    data: format!("{count:08} {}", "t".repeat(200)),
                };
                run.append(vec![tick(0)]).unwrap();
                started.wait();
                let begun = Instant::now();
                let mut count = 1;
                while begun.elapsed() < CHILD_LIFETIME {
                    run.append(vec![tick(count)]).unwrap();
                    count += 1;
                }
            })
        })
        .collect();
    started.wait();
    say("producing");
    // The writer's figures on stderr, for the test's report of a failed trial.
    let begun = Instant::now();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(50));
        let metrics = journal.metrics();
        eprintln!(
            "{} ms: {} events applied, {} groups, {} syncs, longest sync {} us",
            begun.elapsed().as_millis(),
            metrics.events,
            metrics.groups,
            metrics.flushes,
            metrics.flush_micros_max
        );
    });
    for thread in threads {
        thread.join().unwrap();
    }
}

/// One line on stdout, written and flushed at once; exits when the parent is gone.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
        std::process::exit(0);
    }
}

fn ack(key: &RunKey, last_seq: u64, len: u64) {
    say(&format!(
        "ack {} {} {} {last_seq} {len}",
        key.goal, key.episode, key.agent
    ));
}

/// A run boundary returned: it is durable, in every mode.
fn boundary(key: &RunKey, seq: u64, event_type: &str) {
    say(&format!(
        "boundary {} {} {} {seq} {event_type}",
        key.goal, key.episode, key.agent
    ));
}

/// Begins the run, or resumes it (in a new epoch) when a killed child left it.
fn open_run(journal: &Journal, key: &RunKey) -> Result<runjournal::Run, Failure> {
    match journal.run_info(key) {
        Err(ReadError::NotFound { .. }) => {
            let run = journal.begin(key.clone(), RunMeta::default())?;
            boundary(key, 0, "run_started");
            Ok(run)
        }
        Ok(_) => {
            let (run, _) = journal.resume(key)?;
            boundary(key, run.next_seq() - 1, "attached");
            Ok(run)
        }
        Err(error) => Err(error.into()),
    }
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn child_thread(journal: &Journal, thread: usize, seed: u64, started: Instant) -> Result<(), Failure> {
    let mut rng = Rng::new(seed ^ (thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let keys: Vec<RunKey> = (thread..RUNS).step_by(THREADS).map(key).collect();
    let mut runs: Vec<runjournal::Run> = keys
        .iter()
        .map(|key| open_run(journal, key))
        .collect::<Result<_, _>>()?;
    let mut counter = 0u64;
    while started.elapsed() < CHILD_LIFETIME {
        let index = rng.below(runs.len() as u64) as usize;
        if rng.below(40) == 0 {
            // Interrupt and resume: two single-event writes.
            let run = runs.remove(index);
            let key = run.key().clone();
            let seq = run.finish(Outcome::Shutdown)?;
            boundary(&key, seq, "run_interrupted");
            let (run, state) = journal.resume(&key)?;
            assert_eq!(state.status, RunStatus::Running);
            boundary(&key, run.next_seq() - 1, "attached");
            runs.insert(index, run);
            continue;
        }
        if rng.below(40) == 0 {
            let run = &runs[index];
            let seq = run.agent_died("harness", Some(137))?;
            boundary(run.key(), seq, "agent_died");
            continue;
        }
        counter += 1;
        let id = format!("{}.{thread}.{counter}", std::process::id());
        let batch = batch(&mut rng, &id);
        let len = batch.len() as u64;
        let run = &runs[index];
        let last = run.append(batch)?;
        ack(run.key(), last, len);
    }
    Ok(())
}

/// A framed batch of 3–12 events.
#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn batch(rng: &mut Rng, id: &str) -> Vec<Event> {
    let mut content = Vec::new();
    match rng.below(4) {
        0 => {
            for i in 0..=rng.below(4) {
                content.push(Event::Step {
                    messages: vec![
                        Message::new(Role::User, format!("question {i}")),
                        Message::new(Role::Assistant, "x".repeat(rng.below(600) as usize)),
                    ],
                });
            }
        }
        1 => {
            let index = rng.below(1000) as u32;
            content.push(Event::PhaseStarted {
                index,
                name: format!("phase-{index}"),
            });
            content.push(Event::Step {
                messages: vec![Message::new(Role::Assistant, "working")],
            });
            content.push(Event::PhaseCompleted {
                index,
                name: format!("phase-{index}"),
                output: "y".repeat(rng.below(300) as usize),
            });
        }
        2 => {
            let compaction = format!("c-{id}");
            content.push(Event::CompactionStarted {
                id: Some(compaction.clone()),
                source: CompactionSource::Structured,
                messages_before: Some(rng.below(100)),
                tokens_before: Some(rng.below(100_000)),
            });
            content.push(Event::CompactionDone {
                id: Some(compaction),
                source: CompactionSource::Structured,
                summary: Some(format!("summary of {id}")),
                messages_after: Some(1),
                tokens_after: Some(rng.below(1000)),
            });
        }
        _ => {
            for _ in 0..=rng.below(10) {
                content.push(Event::Custom {
                    kind: "payload".into(),
                    data: "z".repeat(rng.below(4000) as usize),
                });
            }
        }
    }
    let frame = format!("n={} id={id}", content.len() + 2);
    let mut events = Vec::with_capacity(content.len() + 2);
    events.push(Event::Custom {
        kind: "batch-begin".into(),
        data: frame.clone(),
    });
    events.extend(content);
    events.push(Event::Custom {
        kind: "batch-end".into(),
        data: frame,
    });
    events
}
