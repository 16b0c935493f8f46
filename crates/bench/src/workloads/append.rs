//! Appending: raw sled (insert, batch, insert + fdatasync per event) and the
//! journal (buffered, durable with concurrent writers). Each function runs
//! one repetition on a fresh database and times only the writes.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runjournal::{ConnectOptions, Durability, Journal, OpenError, Options, RunKey, RunMeta, ServeOptions};
use runjournal_core::codec::{encode_record, RecordKind};
use runjournal_core::{ChainHash, Head, MemoryStore, RunRecord, RunStatus};
use runjournal_sled::layout;

use super::{journal_bytes, open_journal, open_raw_sled, Bench};
use crate::error::{io_error, journal_error, sled_error, BenchError};
use crate::measure::{flushes_between, timed_writers_counting, Sample};
use crate::payload::{bench_key, event_key, KEY_BYTES};

/// Logical bytes of one raw event: key + record.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
fn raw_bytes_per_event(records: &[Vec<u8>]) -> f64 {
    let total: usize = records.iter().map(|record| KEY_BYTES + record.len()).sum();
    total as f64 / records.len().max(1) as f64
}

/// The records inserted one by one, no flush.
pub(crate) fn raw_sled_insert(bench: &Bench, records: &[Vec<u8>]) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("raw-insert")?;
    let db = open_raw_sled(dir.path())?;
    let started = Instant::now();
    for (seq, record) in (1u64..).zip(records) {
        db.insert(event_key(0, seq), record.as_slice())
            .map_err(sled_error("raw insert"))?;
    }
    let elapsed = started.elapsed();
    check_count(&db, records.len(), "raw sled insert")?;
    Ok(Sample::new(elapsed, raw_bytes_per_event(records)))
}

/// Every record in one `apply_batch`, then one `flush`.
pub(crate) fn raw_sled_batch(bench: &Bench, records: &[Vec<u8>]) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("raw-batch")?;
    let db = open_raw_sled(dir.path())?;
    let started = Instant::now();
    let mut batch = sled::Batch::default();
    for (seq, record) in (1u64..).zip(records) {
        batch.insert(&event_key(0, seq)[..], record.as_slice());
    }
    db.apply_batch(batch).map_err(sled_error("raw batch"))?;
    db.flush().map_err(sled_error("raw batch flush"))?;
    let elapsed = started.elapsed();
    check_count(&db, records.len(), "raw sled batch")?;
    Ok(Sample::new(elapsed, raw_bytes_per_event(records)))
}

/// Each record inserted, then `flush`, then `fdatasync` of sled's log: what
/// making every event durable on its own costs.
pub(crate) fn raw_sled_fsync_each(bench: &Bench, records: &[Vec<u8>]) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("raw-fsync")?;
    let db = open_raw_sled(dir.path())?;
    let log = dir.path().join("db");
    let flushes = bench.device_flushes();
    let started = Instant::now();
    for (seq, record) in (1u64..).zip(records) {
        db.insert(event_key(0, seq), record.as_slice())
            .map_err(sled_error("raw insert"))?;
        db.flush().map_err(sled_error("raw flush"))?;
        File::open(&log)
            .and_then(|file| file.sync_data())
            .map_err(io_error("fdatasync sled's log"))?;
    }
    let elapsed = started.elapsed();
    let flushes = flushes_between(flushes, bench.device_flushes());
    check_count(&db, records.len(), "raw sled insert + fdatasync")?;
    Ok(Sample::new(elapsed, raw_bytes_per_event(records)).with_device_flushes(flushes))
}

/// The journal's write pattern on raw sled: per event, one `apply_batch` of
/// the event and the run's record rewritten with its new head, as
/// `SledStore::append` does for a single-event append. Diagnoses how much of
/// the buffered append's cost is sled's per-batch cost.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
pub(crate) fn raw_sled_batch_per_event(bench: &Bench, records: &[Vec<u8>]) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("raw-batch-each")?;
    let db = open_raw_sled(dir.path())?;
    let mut record = run_record();
    let mut run_bytes = 0;
    let started = Instant::now();
    for (seq, bytes) in (1u64..).zip(records) {
        record.head.next_seq = seq + 1;
        let run = encode_record(RecordKind::Run, &record);
        run_bytes = layout::run_key(0).len() + run.len();
        let mut batch = sled::Batch::default();
        batch.insert(&event_key(0, seq)[..], bytes.as_slice());
        batch.insert(&layout::run_key(0)[..], run);
        db.apply_batch(batch).map_err(sled_error("raw batch per event"))?;
    }
    let elapsed = started.elapsed();
    check_count(&db, records.len() + 1, "raw sled batch per event")?;
    Ok(Sample::new(elapsed, raw_bytes_per_event(records) + run_bytes as f64))
}

/// A run record like the journal's for the bench run.
fn run_record() -> RunRecord {
    RunRecord {
        id: 0,
        key: bench_key("raw", 0),
        created_ts: 1_763_800_000_000,
        head: Head {
            next_seq: 1,
            hash: ChainHash([7; 32]),
            epoch: 0,
            last_ts: 1_763_800_000_000,
        },
        status: RunStatus::Running,
        fork: None,
    }
}

fn check_count(db: &sled::Db, expected: usize, workload: &'static str) -> Result<(), BenchError> {
    if db.len() == expected {
        Ok(())
    } else {
        Err(BenchError::Check {
            workload,
            detail: format!("sled holds {} keys, {expected} were written", db.len()),
        })
    }
}

/// Buffered options with snapshots off.
fn buffered_without_snapshots() -> Options {
    Options {
        durability: Durability::Buffered,
        snapshot_every: 0,
        ..Options::default()
    }
}

/// Sequential `Run::step` calls on one run in `Durability::Buffered`, with
/// snapshots off: the append path alone, writing exactly the bytes the raw
/// rows write (plus the run record). The run never compacts its context, so
/// with snapshots on every snapshot would hold the whole transcript and their
/// cost, quadratic in the run's length, would swamp the append path; the
/// resume workload measures appends with snapshots on a compacting session.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
pub(crate) fn journal_buffered(bench: &Bench, events: u64) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("journal-buffered")?;
    let (journal, store) = open_journal(dir.path(), buffered_without_snapshots())?;
    let (elapsed, record) = time_sequential_steps(bench, &journal, &bench_key("buffered", 0), events)?;
    Ok(Sample::new(
        elapsed,
        journal_bytes(&store, &record, 1, events)? as f64 / events as f64,
    ))
}

/// Sequential `Run::step` calls as in [`journal_buffered`], over the
/// in-memory store: the journal's own cost (validate, encode, hash, fold,
/// hand over to the writer thread, which applies them) without sled.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
pub(crate) fn journal_buffered_in_memory(bench: &Bench, events: u64) -> Result<Sample, BenchError> {
    let journal = Journal::with_store(Arc::new(MemoryStore::new()), buffered_without_snapshots())
        .map_err(journal_error("open"))?;
    let (elapsed, _) = time_sequential_steps(bench, &journal, &bench_key("in-memory", 0), events)?;
    Ok(Sample::new(elapsed, (KEY_BYTES + bench.payload.record_len()) as f64))
}

/// Begins `key` and times `events` sequential steps until the writer has
/// applied all of them (buffered appends return once queued; reads wait for
/// them, as raw inserts are applied before they return).
fn time_sequential_steps(
    bench: &Bench,
    journal: &Journal,
    key: &RunKey,
    events: u64,
) -> Result<(Duration, RunRecord), BenchError> {
    let run = journal
        .begin(key.clone(), RunMeta::default())
        .map_err(journal_error("begin"))?;
    let started = Instant::now();
    for _ in 0..events {
        run.step(vec![bench.payload.message()])
            .map_err(journal_error("buffered append"))?;
    }
    let record = journal.run_info(key).map_err(journal_error("read the run"))?;
    let elapsed = started.elapsed();
    check_next_seq(record.head.next_seq, events + 1, "journal buffered append")?;
    Ok((elapsed, record))
}

/// `writers` threads, each appending `per_writer` steps to its own run in
/// `Durability::Durable`; timed from a common start to the last writer's end.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
pub(crate) fn journal_durable(bench: &Bench, writers: usize, per_writer: u64) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("journal-durable")?;
    let (journal, store) = open_journal(dir.path(), Options::with_durability(Durability::Durable))?;
    let keys: Vec<_> = (0..writers).map(|index| bench_key("durable", index)).collect();
    let runs = keys
        .iter()
        .map(|key| {
            journal
                .begin(key.clone(), RunMeta::default())
                .map_err(journal_error("begin"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (elapsed, flushes) = timed_writers_counting(writers, "durable append", bench.flush_counter(), |index| {
        let run = &runs[index];
        Ok(move || -> Result<(), BenchError> {
            for _ in 0..per_writer {
                run.step(vec![bench.payload.message()])
                    .map_err(journal_error("durable append"))?;
            }
            Ok(())
        })
    })?;
    drop(runs);
    let mut bytes = 0;
    for key in &keys {
        let record = journal.run_info(key).map_err(journal_error("read a run"))?;
        check_next_seq(record.head.next_seq, per_writer + 1, "journal durable append")?;
        bytes += journal_bytes(&store, &record, 1, per_writer)?;
    }
    Ok(Sample::new(elapsed, bytes as f64 / (writers as u64 * per_writer) as f64).with_device_flushes(flushes))
}

fn check_next_seq(next_seq: u64, expected: u64, workload: &'static str) -> Result<(), BenchError> {
    if next_seq == expected {
        Ok(())
    } else {
        Err(BenchError::Check {
            workload,
            detail: format!("the run's next seq is {next_seq}, expected {expected}"),
        })
    }
}

/// `clients` threads, each appending `per_client` steps to its own run
/// through the owner's Unix socket: the bench's journal serves itself
/// (`Journal::serve`) and the threads share one connected journal
/// (`Journal::connect`, its default options), as a separate process's agents
/// would. Durable, one step per append call, like [`journal_durable`]; timed
/// from a common start to the last client's end.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
pub(crate) fn socket_durable(bench: &Bench, clients: usize, per_client: u64) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("socket-durable")?;
    let (journal, store) = open_journal(dir.path(), Options::with_durability(Durability::Durable))?;
    let socket = dir.path().join(runjournal::wire::SOCKET_NAME);
    let server = journal
        .serve(ServeOptions {
            socket: Some(socket.clone()),
            ..ServeOptions::default()
        })
        .map_err(|source| BenchError::Serve {
            operation: "serve the bench journal",
            source,
        })?;
    let connected = Journal::connect(&socket, ConnectOptions::default())
        .map_err(|error| journal_error("connect to the served journal")(OpenError::Connect(error)))?;
    let keys: Vec<_> = (0..clients).map(|index| bench_key("socket", index)).collect();
    let client = &connected;
    let (elapsed, flushes) = timed_writers_counting(
        clients,
        "durable append through the socket",
        bench.flush_counter(),
        |index| {
            // Begun concurrently, outside the clock, as long-running agents are.
            let run = client
                .begin(keys[index].clone(), RunMeta::default())
                .map_err(journal_error("begin through the socket"))?;
            Ok(move || -> Result<(), BenchError> {
                for _ in 0..per_client {
                    run.step(vec![bench.payload.message()])
                        .map_err(journal_error("durable append through the socket"))?;
                }
                Ok(())
            })
        },
    )?;
    drop(connected);
    server.close();
    let mut bytes = 0;
    for key in &keys {
        let record = journal.run_info(key).map_err(journal_error("read a run"))?;
        check_next_seq(
            record.head.next_seq,
            per_client + 1,
            "durable append through the socket",
        )?;
        bytes += journal_bytes(&store, &record, 1, per_client)?;
    }
    Ok(Sample::new(elapsed, bytes as f64 / (clients as u64 * per_client) as f64).with_device_flushes(flushes))
}
