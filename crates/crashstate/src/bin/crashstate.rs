//! The two processes of the power-loss test.
//!
//! `crashstate workload ROOT SEED` runs under the recorder: it opens a
//! `Durable` journal at `ROOT/db`, begins runs from several threads, appends
//! framed batches, interrupts and resumes now and then, and after every
//! acknowledged write appends `ack <agent> <last seq> <batch len>\n` to
//! `ROOT/acks` in one `write`. The ack file is under the recorded root, so
//! each ack is a record in the op log: an event is acknowledged durable
//! before a point of the log iff its ack's write record comes before it.
//!
//! `crashstate check` is the checker's child: for every `ID PATH` line on
//! stdin it prints `begin ID`, opens the crash state at `PATH` with
//! `Journal::open`, verifies and reads every run, and prints one JSON object
//! on a line (see [`check_state`]). A panic is caught and reported; if the
//! process dies anyway, the parent knows the state from the `begin` line.
//!
//! Every batch is framed by two `custom` events, `batch-begin` and
//! `batch-end`, whose data is `n=<batch len> id=<unique id>` (as in the kill
//! harness), so a whole batch is recognisable whether or not it was
//! acknowledged. The only unframed events are the single-event writes
//! `run_started`, `attached` and `run_interrupted`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use runjournal::{
    CompactionSource, Durability, Envelope, Event, Journal, Message, OpenError, Options, Outcome, Role, RunFilter,
    RunKey, RunMeta, StoreError,
};
use serde_json::{json, Value};

/// The goal of every run of the workload.
const GOAL: &str = "power-loss";
/// Writer threads; each owns [`RUNS_PER_THREAD`] runs.
const THREADS: usize = 3;
const RUNS_PER_THREAD: usize = 2;
/// Appends per thread.
const BATCHES_PER_THREAD: usize = 24;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["workload", root, seed] => match seed.parse() {
            Ok(seed) => workload(Path::new(root), seed),
            Err(error) => Err(format!("bad seed {seed:?}: {error}")),
        },
        ["check"] => check_loop(),
        _ => Err("usage: crashstate workload ROOT SEED | crashstate check".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crashstate: {error}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// The workload.
// ---------------------------------------------------------------------------

/// xorshift64: deterministic payloads for a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run_key(index: usize) -> Result<RunKey, String> {
    RunKey::new(GOAL, 0, format!("agent-{index}")).map_err(|error| error.to_string())
}

/// The ack file: one `write` per ack, in the order the acks happen.
struct Acks(Mutex<File>);

impl Acks {
    fn record(&self, key: &RunKey, last_seq: u64, len: u64) -> Result<(), String> {
        let line = format!("ack {} {last_seq} {len}\n", key.agent);
        let mut file = self.0.lock().map_err(|_| "ack file lock poisoned".to_string())?;
        file.write_all(line.as_bytes())
            .map_err(|error| format!("write ack: {error}"))
    }
}

fn workload(root: &Path, seed: u64) -> Result<(), String> {
    let options = Options {
        // Snapshot records inside append batches, often.
        snapshot_every: 8,
        ..Options::with_durability(Durability::Durable)
    };
    let journal = Journal::open(root.join("db"), options).map_err(|error| format!("open: {error}"))?;
    let acks = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("acks"))
        .map_err(|error| format!("create the ack file: {error}"))?;
    let acks = Arc::new(Acks(Mutex::new(acks)));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let journal = journal.clone();
            let acks = Arc::clone(&acks);
            std::thread::spawn(move || workload_thread(&journal, &acks, thread, seed))
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a workload thread panicked".to_string())??;
    }
    drop(journal);
    Ok(())
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn workload_thread(journal: &Journal, acks: &Acks, thread: usize, seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed ^ (thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut runs = Vec::new();
    for index in (0..RUNS_PER_THREAD).map(|slot| thread * RUNS_PER_THREAD + slot) {
        let key = run_key(index)?;
        let run = journal
            .begin(key.clone(), RunMeta::default())
            .map_err(|error| format!("begin {key}: {error}"))?;
        acks.record(&key, 0, 1)?;
        runs.push(run);
    }
    for counter in 0..BATCHES_PER_THREAD {
        let index = rng.below(runs.len() as u64) as usize;
        if rng.below(12) == 0 {
            let run = runs.remove(index);
            let key = run.key().clone();
            let seq = run
                .finish(Outcome::Shutdown)
                .map_err(|error| format!("interrupt {key}: {error}"))?;
            acks.record(&key, seq, 1)?;
            let (run, _) = journal.resume(&key).map_err(|error| format!("resume {key}: {error}"))?;
            acks.record(&key, run.next_seq() - 1, 1)?;
            runs.insert(index, run);
            continue;
        }
        let id = format!("{thread}.{counter}");
        let events = batch(&mut rng, &id);
        let len = events.len() as u64;
        let run = &runs[index];
        let last = run
            .append(events)
            .map_err(|error| format!("append to {}: {error}", run.key()))?;
        acks.record(run.key(), last, len)?;
    }
    Ok(())
}

/// A framed batch of 3–12 events; one in sixteen carries a value large
/// enough for sled to store it as a blob file.
#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn batch(rng: &mut Rng, id: &str) -> Vec<Event> {
    let mut content = Vec::new();
    match rng.below(16) {
        0 => content.push(Event::Custom {
            kind: "blob".into(),
            data: "b".repeat(140_000 + rng.below(20_000) as usize),
        }),
        1..=4 => {
            for i in 0..=rng.below(4) {
                content.push(Event::Step {
                    messages: vec![
                        Message::new(Role::User, format!("question {i}")),
                        Message::new(Role::Assistant, "x".repeat(rng.below(600) as usize)),
                    ],
                });
            }
        }
        5..=8 => {
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
        9..=11 => {
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

// ---------------------------------------------------------------------------
// The checker's child.
// ---------------------------------------------------------------------------

fn check_loop() -> Result<(), String> {
    // Panics are reported in the result line; the default hook's message
    // would only repeat it on stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.map_err(|error| format!("read stdin: {error}"))?;
        let Some((id, path)) = line.split_once(' ') else {
            return Err(format!("bad request line {line:?}"));
        };
        writeln!(stdout, "begin {id}")
            .and_then(|()| stdout.flush())
            .map_err(|error| error.to_string())?;
        let path = PathBuf::from(path);
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| check_state(&path))) {
            Ok(result) => result,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|message| (*message).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic with a non-string payload".into());
                json!({"outcome": "panic", "message": message})
            }
        };
        let mut line = json!({"id": id});
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), result) {
            line.extend(fields);
        }
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Opens and reads one crash state. The result is one of:
/// - `{"outcome": "opened", "runs": [{"agent", "events", "batches": [[last, len], …], "problem"?}]}`:
///   `problem` is a verify or read error, or a batch that is not whole;
/// - `{"outcome": "open_failed", "variant", "error", "salvage": {…}}`: the
///   typed error (its variant path, such as `Store(Corrupt)`) and what a
///   salvage-style read (`export --salvage`'s first step: a copy without
///   sled's snapshot and the loss guard) gets back;
/// - `{"outcome": "panic", "message"}` (from [`check_loop`]).
fn check_state(path: &Path) -> Value {
    match Journal::open_existing(path, Options::default()) {
        Ok(journal) => json!({"outcome": "opened", "runs": read_runs(&journal)}),
        Err(error) => json!({
            "outcome": "open_failed",
            "variant": open_error_variant(&error),
            "error": error.to_string(),
            "salvage": salvage(path),
        }),
    }
}

fn open_error_variant(error: &OpenError) -> String {
    match error {
        OpenError::Store(store) => format!(
            "Store({})",
            match store {
                StoreError::Io { .. } => "Io",
                StoreError::Locked { .. } => "Locked",
                StoreError::Missing { .. } => "Missing",
                StoreError::UnsupportedFormat { .. } => "UnsupportedFormat",
                StoreError::Corrupt { .. } => "Corrupt",
                StoreError::Backend { .. } => "Backend",
                _ => "other",
            }
        ),
        OpenError::Thread(_) => "Thread".into(),
        _ => "other".into(),
    }
}

/// Every run: verified, read whole, cut into batches.
fn read_runs(journal: &Journal) -> Value {
    let records = match journal.runs(&RunFilter::default()) {
        Ok(records) => records,
        Err(error) => return json!([{"agent": "*", "events": 0, "batches": [], "problem": error.to_string()}]),
    };
    let runs: Vec<Value> = records
        .iter()
        .map(|record| {
            let key = &record.key;
            let problem = journal.verify(key).err().map(|error| format!("verify: {error}"));
            match journal.read(key, 0) {
                Ok(events) => {
                    let (batches, framing) = batches(&events);
                    json!({
                        "agent": key.agent,
                        "events": events.len(),
                        "batches": batches,
                        "problem": problem.or(framing),
                    })
                }
                Err(error) => json!({
                    "agent": key.agent, "events": 0, "batches": [],
                    "problem": problem.unwrap_or_else(|| format!("read: {error}")),
                }),
            }
        })
        .collect();
    Value::Array(runs)
}

fn custom<'a>(event: &'a Event, wanted: &str) -> Option<&'a str> {
    match event {
        Event::Custom { kind, data } if kind == wanted => Some(data),
        _ => None,
    }
}

fn frame_len(frame: &str) -> Option<usize> {
    frame.strip_prefix("n=")?.split(' ').next()?.parse().ok()
}

/// The log's writes as `[last seq, len]`, and the first framing problem (a
/// partial or interleaved batch, an unframed event).
fn batches(events: &[Envelope]) -> (Vec<[u64; 2]>, Option<String>) {
    let mut found = Vec::new();
    let mut seq = 0usize;
    while seq < events.len() {
        let event = &events[seq].event;
        if let Some(frame) = custom(event, "batch-begin") {
            let Some(len) = frame_len(frame) else {
                return (found, Some(format!("seq {seq}: bad frame {frame:?}")));
            };
            let last = seq + len - 1;
            if last >= events.len() {
                return (found, Some(format!("partial batch {frame:?} at seq {seq}")));
            }
            let inner_ok = events[seq + 1..last].iter().all(|inner| {
                custom(&inner.event, "batch-begin").is_none() && custom(&inner.event, "batch-end").is_none()
            });
            if !inner_ok || custom(&events[last].event, "batch-end") != Some(frame) {
                return (found, Some(format!("batch {frame:?} at seq {seq} is not whole")));
            }
            found.push([last as u64, len as u64]);
            seq = last + 1;
        } else {
            match event {
                Event::RunStarted { .. } if seq == 0 => {}
                Event::Attached { .. } | Event::RunInterrupted { .. } => {}
                other => {
                    return (
                        found,
                        Some(format!("seq {seq}: {} outside any batch", other.type_name())),
                    )
                }
            }
            found.push([seq as u64, 1]);
            seq += 1;
        }
    }
    (found, None)
}

/// `export --salvage`'s first step, through the library: a copy without
/// sled's snapshot files and the loss guard, opened, each run read up to its
/// first event that fails verification. (The CLI then also cuts the log back
/// segment by segment; that is not repeated here.)
fn salvage(path: &Path) -> Value {
    let copy = path.with_extension("salvage");
    if let Err(error) = copy_without_snapshot_and_guard(path, &copy) {
        return json!({"opened": false, "error": format!("copy: {error}")});
    }
    let result = match Journal::open_existing(&copy, Options::default()) {
        Ok(journal) => {
            let runs: Vec<Value> = match journal.runs(&RunFilter::default()) {
                Ok(records) => records
                    .iter()
                    .map(|record| {
                        let mut readable = 0u64;
                        let outcome = journal.for_each_event(&record.key, 0, |_| {
                            readable += 1;
                            ControlFlow::Continue(())
                        });
                        json!({"agent": record.key.agent, "events": readable, "damage": outcome.err().map(|e| e.to_string())})
                    })
                    .collect(),
                Err(error) => vec![json!({"agent": "*", "events": 0, "damage": error.to_string()})],
            };
            json!({"opened": true, "runs": runs})
        }
        Err(error) => json!({"opened": false, "error": error.to_string()}),
    };
    drop(fs::remove_dir_all(&copy));
    result
}

fn copy_without_snapshot_and_guard(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with("snap.") || text.starts_with("runjournal.guard") {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_without_snapshot_and_guard(&entry.path(), &to.join(&name))?;
        } else {
            fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}
