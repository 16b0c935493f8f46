//! Replay: the journal's verified read folded into a resume state, against a
//! raw sled scan of the same records stored one key per event (format 1's
//! layout, the raw engine's best case) and a SQLite `SELECT` of them in key
//! order.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Instant;

use runjournal::{Durability, Options, ResumeState, RunMeta};

use super::{journal_bytes, open_journal, Bench};
use super::{open_raw_sled, sqlite};
use crate::error::{journal_error, sled_error, BenchError};
use crate::measure::Measurement;
use crate::payload::{bench_key, event_key};

/// Events appended per batch while building the run.
const BUILD_BATCH: u64 = 1_000;

/// The two sides of the replay comparison.
pub(crate) struct Replayed {
    /// `Journal::for_each_event` + `ResumeState::apply`.
    pub(crate) journal: Measurement,
    /// A sled range scan of one key per event, touching every value.
    pub(crate) raw: Measurement,
    /// A SQLite `SELECT` of every row in key order, touching every value.
    pub(crate) sqlite: Measurement,
    /// `Journal::import` of the run's JSON lines into a fresh database
    /// (parse, re-encode, re-chain, check, stage, publish, sync).
    pub(crate) import: Measurement,
}

/// Builds a run of `events` steps (plus its `run_started`), then replays it
/// both ways, alternating, `repetitions` times.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
#[expect(
    clippy::too_many_lines,
    reason = "one workload: build the run and its raw and SQLite copies, then four timed sides per round"
)]
pub(crate) fn measure(bench: &Bench, events: u64) -> Result<Replayed, BenchError> {
    let dir = bench.fresh_dir("replay")?;
    let options = Options {
        durability: Durability::Buffered,
        snapshot_every: 0,
        ..Options::default()
    };
    let (journal, store) = open_journal(dir.path(), options)?;
    let key = bench_key("replay", 0);
    let run = journal
        .begin(key.clone(), RunMeta::default())
        .map_err(journal_error("begin"))?;
    let mut written = 0;
    while written < events {
        let batch = BUILD_BATCH.min(events - written);
        run.append((0..batch).map(|_| bench.payload.step()).collect())
            .map_err(journal_error("build the replayed run"))?;
        written += batch;
    }
    drop(run);
    journal.sync().map_err(journal_error("sync the replayed run"))?;
    let record = journal.run_info(&key).map_err(journal_error("read the run"))?;
    let stored = record.head.next_seq;
    let bytes_per_event = journal_bytes(&store, &record, 0, 0)? as f64 / stored as f64;
    let mut records = Vec::with_capacity(usize::try_from(stored).unwrap_or(0));
    runjournal_core::Store::scan(&*store, record.id, 0, stored, &mut |_, bytes| {
        records.push(bytes.to_vec());
        runjournal_core::ScanControl::Continue
    })
    .map_err(journal_error("read the stored records"))?;
    let raw_dir = bench.fresh_dir("replay-raw")?;
    let db = open_raw_sled(raw_dir.path())?;
    for (seq, bytes) in (0u64..).zip(&records) {
        db.insert(event_key(record.id, seq), bytes.as_slice())
            .map_err(sled_error("copy the records one key per event"))?;
    }
    db.flush().map_err(sled_error("flush the raw copy"))?;
    let lines: String = journal
        .history(&key)
        .map_err(journal_error("export the replayed run"))?
        .iter()
        .map(|envelope| envelope.to_json_line() + "\n")
        .collect();
    let sqlite_dir = bench.fresh_dir("replay-sqlite")?;
    let connection = sqlite::filled(&sqlite_dir.path().join("bench.sqlite"), &records)?;
    drop(records);

    let mut journal_samples = Vec::with_capacity(bench.repetitions);
    let mut raw_samples = Vec::with_capacity(bench.repetitions);
    let mut sqlite_samples = Vec::with_capacity(bench.repetitions);
    let mut import_samples = Vec::with_capacity(bench.repetitions);
    for _ in 0..bench.repetitions {
        let started = Instant::now();
        let mut state = ResumeState::new(key.clone());
        journal
            .for_each_event(&key, 0, |envelope| {
                state.apply_owned(envelope);
                ControlFlow::Continue(())
            })
            .map_err(journal_error("replay"))?;
        journal_samples.push(started.elapsed());
        if state.iteration != events {
            return Err(BenchError::Check {
                workload: "journal replay",
                detail: format!("the fold counted {} steps, {events} were written", state.iteration),
            });
        }
        drop(black_box(state));

        let started = Instant::now();
        let mut touched = 0u64;
        let mut count = 0u64;
        for entry in db.range(event_key(record.id, 0)..event_key(record.id, stored)) {
            let (_, value) = entry.map_err(sled_error("raw scan"))?;
            touched = touched.wrapping_add(value.len() as u64 + u64::from(value.last().copied().unwrap_or(0)));
            count += 1;
        }
        raw_samples.push(started.elapsed());
        black_box(touched);
        if count != stored {
            return Err(BenchError::Check {
                workload: "raw sled scan",
                detail: format!("the scan saw {count} values, {stored} are stored"),
            });
        }
        let import_dir = bench.fresh_dir("import")?;
        let (imported, _) = open_journal(import_dir.path(), Options::default())?;
        let started = Instant::now();
        let report = imported
            .import(lines.as_bytes())
            .map_err(journal_error("import the exported run"))?;
        import_samples.push(started.elapsed());
        if report.events != stored {
            return Err(BenchError::Check {
                workload: "journal import",
                detail: format!("the import stored {} events, {stored} were exported", report.events),
            });
        }
        drop(imported);
        let (elapsed, rows) = sqlite::scan(&connection)?;
        sqlite_samples.push(elapsed);
        if rows != stored {
            return Err(BenchError::Check {
                workload: "SQLite scan",
                detail: format!("the SELECT saw {rows} rows, {stored} are stored"),
            });
        }
    }
    Ok(Replayed {
        journal: Measurement::new(stored, journal_samples, bytes_per_event),
        raw: Measurement::new(stored, raw_samples, bytes_per_event),
        sqlite: Measurement::new(stored, sqlite_samples, bytes_per_event),
        import: Measurement::new(stored, import_samples, bytes_per_event),
    })
}
