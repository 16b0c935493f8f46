//! Criterion benches of appending one `step` (one 256-byte assistant
//! message): sequential appends in `Durability::Buffered`, and appends in
//! `Durability::Durable` from 1, 16 and 64 concurrent writers, each on its own
//! run, sharing syncs through the writer's group commit.
//!
//! `cargo bench --bench append`. The harness `cargo run --release -p
//! runjournal-bench --example table` measures the same workloads side by side
//! with raw sled and SQLite.
#![allow(clippy::unwrap_used, reason = "benchmark code: a failed call fails the run")]

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use runjournal::{Durability, Journal, Message, Options, Role, Run, RunKey, RunMeta};

/// One assistant message of 256 bytes.
fn message() -> Message {
    Message::new(Role::Assistant, "a".repeat(256))
}

fn key(index: usize) -> RunKey {
    RunKey::new("bench-append", 0, format!("agent-{index}")).unwrap()
}

/// Sequential steps on one run, buffered, snapshots off (the run never
/// compacts, so snapshots would hold an ever-growing transcript).
fn buffered(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        durability: Durability::Buffered,
        snapshot_every: 0,
        ..Options::default()
    };
    let journal = Journal::open(dir.path(), options).unwrap();
    let run = journal.begin(key(0), RunMeta::default()).unwrap();
    let message = message();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("buffered", |bencher| {
        bencher.iter(|| run.step(vec![message.clone()]).unwrap());
    });
    group.finish();
}

/// `writers` threads append `iterations` steps between them (at least one
/// each) to their own runs; returns the time per `iterations` steps.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
fn durable_round(runs: &[Run], message: &Message, iterations: u64) -> Duration {
    let per_writer = iterations.div_ceil(runs.len() as u64).max(1);
    let barrier = Barrier::new(runs.len() + 1);
    let elapsed = std::thread::scope(|scope| {
        for run in runs {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for _ in 0..per_writer {
                    run.step(vec![message.clone()]).unwrap();
                }
            });
        }
        barrier.wait();
        Instant::now()
    })
    .elapsed();
    elapsed.mul_f64(iterations as f64 / (per_writer * runs.len() as u64) as f64)
}

/// Durable steps from 1, 16 and 64 concurrent writers.
fn durable(c: &mut Criterion) {
    let message = message();
    let mut group = c.benchmark_group("append_durable");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for writers in [1, 16, 64] {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), Options::with_durability(Durability::Durable)).unwrap();
        let runs: Vec<Run> = (0..writers)
            .map(|index| journal.begin(key(index), RunMeta::default()).unwrap())
            .collect();
        group.bench_with_input(BenchmarkId::new("writers", writers), &runs, |bencher, runs| {
            bencher.iter_custom(|iterations| durable_round(runs, &message, iterations));
        });
    }
    group.finish();
}

/// The group `criterion_main!` runs.
#[allow(missing_docs, reason = "criterion_group! generates an undocumented public function")]
mod group {
    use super::{buffered, durable};

    criterion::criterion_group!(benches, buffered, durable);
}

criterion_main!(group::benches);
