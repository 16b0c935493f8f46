//! Criterion benches of reading: replaying a 10,000-event run (read, decode,
//! verify the chain, fold into the resume state), and resuming a run with
//! snapshots after reopening the database, for a run of 10,000 events and one
//! of 200,000.
//!
//! The resumed runs are agent sessions: steps with a structured compaction
//! every 100 events, so the resume state stays bounded; both end 500 events
//! after their last snapshot, so a resume decodes one snapshot and folds the
//! same tail in both. `cargo bench --bench replay`.
#![allow(clippy::unwrap_used, reason = "benchmark code: a failed call fails the run")]

use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use runjournal::{CompactionSource, Durability, Event, Journal, Message, Options, ResumeState, Role, RunKey, RunMeta};

/// Events per compaction cycle of the resumed sessions.
const CYCLE: u64 = 100;
/// Events after the last snapshot (snapshots every 1,000 by default).
const TAIL: u64 = 500;

fn step() -> Event {
    Event::Step {
        messages: vec![Message::new(Role::Assistant, "a".repeat(256))],
    }
}

/// Event `seq` of an agent session: steps, a compaction closing every cycle.
fn session_event(seq: u64) -> Event {
    let id = Some(format!("c{}", seq / CYCLE));
    match seq % CYCLE {
        position if position == CYCLE - 2 => Event::CompactionStarted {
            id,
            source: CompactionSource::Structured,
            messages_before: None,
            tokens_before: None,
        },
        position if position == CYCLE - 1 => Event::CompactionDone {
            id,
            source: CompactionSource::Structured,
            summary: Some("s".repeat(256)),
            messages_after: None,
            tokens_after: None,
        },
        _ => step(),
    }
}

/// A run of `events` events (with `run_started`) built in batches of 1,000
/// whose last `TAIL` events come after its last snapshot.
fn build(path: &Path, key: &RunKey, events: u64, options: Options, event: impl Fn(u64) -> Event) {
    let journal = Journal::open(path, options).unwrap();
    let run = journal.begin(key.clone(), RunMeta::default()).unwrap();
    let body = events - 1 - TAIL;
    let mut batches = vec![body % 1_000];
    batches.extend(std::iter::repeat_n(1_000, (body / 1_000) as usize));
    batches.push(TAIL);
    let mut seq = 1;
    for size in batches.into_iter().filter(|size| *size > 0) {
        run.append((seq..seq + size).map(&event).collect()).unwrap();
        seq += size;
    }
    journal.sync().unwrap();
}

/// `Journal::for_each_event` folded into a `ResumeState`, 10,000 events.
fn replay(c: &mut Criterion) {
    let events = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let key = RunKey::new("bench-replay", 0, "agent-0").unwrap();
    let options = Options {
        durability: Durability::Buffered,
        snapshot_every: 0,
        ..Options::default()
    };
    build(dir.path(), &key, events, options.clone(), |_| step());
    let journal = Journal::open(dir.path(), options).unwrap();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(events));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("read_verify_fold_10k", |bencher| {
        bencher.iter(|| {
            let mut state = ResumeState::new(key.clone());
            journal
                .for_each_event(&key, 0, |envelope| {
                    state.apply(&envelope);
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(state.iteration, events - 1);
            state
        });
    });
    group.finish();
}

/// `Journal::resume` after reopening (the reopen is not timed), for runs of
/// 10,000 and 200,000 events.
fn resume(c: &mut Criterion) {
    let mut group = c.benchmark_group("resume");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(1));
    let options = Options::with_durability(Durability::Buffered);
    for events in [10_000, 200_000] {
        let dir = tempfile::tempdir().unwrap();
        let key = RunKey::new("bench-resume", 0, "agent-0").unwrap();
        build(dir.path(), &key, events, options.clone(), session_event);
        group.bench_with_input(BenchmarkId::new("events", events), &events, |bencher, _| {
            bencher.iter_custom(|iterations| {
                let mut resuming = Duration::ZERO;
                for _ in 0..iterations {
                    let journal = Journal::open(dir.path(), options.clone()).unwrap();
                    let started = Instant::now();
                    let resumed = journal.resume(&key).unwrap();
                    resuming += started.elapsed();
                    drop(resumed);
                }
                resuming
            });
        });
    }
    group.finish();
}

/// The group `criterion_main!` runs.
#[allow(missing_docs, reason = "criterion_group! generates an undocumented public function")]
mod group {
    use super::{replay, resume};

    criterion::criterion_group!(benches, replay, resume);
}

criterion_main!(group::benches);
