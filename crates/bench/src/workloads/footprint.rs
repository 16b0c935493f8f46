//! Bytes written per step: the journal appends one event per step, while
//! snapshot-per-step checkpointing (one JSON file per run, rewritten whole at
//! every step, as LangGraph-style checkpointers do) writes the whole
//! transcript again each time. Both sync every step. Bytes are deterministic,
//! so this runs once; its times are for reference.

use std::fs::File;
use std::io::Write;
use std::time::Instant;

use runjournal::{Durability, Options, PurgePolicy, RunMeta};

use super::{journal_bytes, open_journal, Bench};
use crate::error::{io_error, journal_error, BenchError};
use crate::measure::{directory_size, Measurement};
use crate::payload::bench_key;

/// The journal's bytes per step, two ways.
pub(crate) struct JournalFootprint {
    /// Key + value bytes stored (events, run-record rewrites, snapshots).
    pub(crate) logical: Measurement,
    /// Growth of sled's files between a sync before and one after.
    pub(crate) on_disk: Measurement,
}

/// `steps` durable steps on one run.
pub(crate) fn journal(bench: &Bench, steps: u64) -> Result<JournalFootprint, BenchError> {
    grown(bench, steps, false)
}

/// Space after a purge: `steps` durable steps on one run, the run purged,
/// then `steps` on a second run. The growth is over the whole sequence, and
/// `logical` is the second run's stored bytes: what is live at the end. With
/// the purged run's space reused, the growth per live byte is what one run
/// alone grows; with none reused, about twice that.
pub(crate) fn after_purge(bench: &Bench, steps: u64) -> Result<JournalFootprint, BenchError> {
    grown(bench, steps, true)
}

/// `steps` durable steps on a run, after as many on a run purged before it
/// when `purged_first`; the growth from before the first step to after the
/// last, and the stored bytes of the run that is left.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
fn grown(bench: &Bench, steps: u64, purged_first: bool) -> Result<JournalFootprint, BenchError> {
    let dir = bench.fresh_dir(if purged_first {
        "footprint-purge"
    } else {
        "footprint-journal"
    })?;
    let (journal, store) = open_journal(dir.path(), Options::with_durability(Durability::Durable))?;
    let first = bench_key(if purged_first { "purged" } else { "footprint" }, 0);
    let mut key = first.clone();
    let mut run = journal
        .begin(first.clone(), RunMeta::default())
        .map_err(journal_error("begin"))?;
    journal.sync().map_err(journal_error("sync"))?;
    let before = directory_size(dir.path())?;
    let started = Instant::now();
    if purged_first {
        append_steps(bench, &run, steps)?;
        drop(run);
        let policy = PurgePolicy {
            explicit: vec![first],
            ..PurgePolicy::default()
        };
        let report = journal.purge(&policy, false).map_err(journal_error("purge"))?;
        if report.purged.len() != 1 {
            return Err(BenchError::Check {
                workload: "sled file growth after a purge",
                detail: format!("the purge removed {} runs, not 1", report.purged.len()),
            });
        }
        key = bench_key("live", 0);
        run = journal
            .begin(key.clone(), RunMeta::default())
            .map_err(journal_error("begin"))?;
    }
    append_steps(bench, &run, steps)?;
    let elapsed = started.elapsed();
    journal.sync().map_err(journal_error("sync"))?;
    let after = directory_size(dir.path())?;
    drop(run);
    let record = journal.run_info(&key).map_err(journal_error("read the run"))?;
    let logical = journal_bytes(&store, &record, 1, steps)?;
    Ok(JournalFootprint {
        logical: Measurement::new(steps, vec![elapsed], logical as f64 / steps as f64),
        on_disk: Measurement::new(steps, vec![elapsed], after.saturating_sub(before) as f64 / steps as f64),
    })
}

/// `steps` durable steps on `run`.
fn append_steps(bench: &Bench, run: &runjournal::Run, steps: u64) -> Result<(), BenchError> {
    for _ in 0..steps {
        run.step(vec![bench.payload.message()])
            .map_err(journal_error("durable append"))?;
    }
    Ok(())
}

/// `steps` steps, each rewriting `checkpoint.json` with the whole transcript
/// and syncing it.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a workload event count, small; 64-bit targets"
)]
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
pub(crate) fn checkpoint(bench: &Bench, steps: u64) -> Result<Measurement, BenchError> {
    let dir = bench.fresh_dir("footprint-checkpoint")?;
    let path = dir.path().join("checkpoint.json");
    let mut transcript = Vec::with_capacity(steps as usize);
    let mut written = 0u64;
    let started = Instant::now();
    for _ in 0..steps {
        transcript.push(bench.payload.message());
        let bytes = serde_json::to_vec(&transcript).map_err(|error| BenchError::Check {
            workload: "checkpoint",
            detail: format!("the transcript does not serialize: {error}"),
        })?;
        let mut file = File::create(&path).map_err(io_error("create the checkpoint"))?;
        file.write_all(&bytes).map_err(io_error("write the checkpoint"))?;
        file.sync_data().map_err(io_error("fdatasync the checkpoint"))?;
        written += bytes.len() as u64;
    }
    let elapsed = started.elapsed();
    Ok(Measurement::new(steps, vec![elapsed], written as f64 / steps as f64))
}
