//! [`Sizes`]: how many events each workload writes at a given scale.
//!
//! At scale 1.0 the whole run takes about a minute on a 2-core machine. The
//! resume pair keeps a 100× ratio at scale ≥ 1 (10,000 and 1,000,000 events at
//! 1.0); below 1 the big run shrinks proportionally (and the ratio with it),
//! down to 10 × the small one.

use crate::error::BenchError;
use crate::BenchConfig;

/// The workload sizes of one bench run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Sizes {
    /// Events of the sequential workloads: buffered append, raw insert, raw
    /// batch, SQLite in one transaction, replay.
    pub append_events: u64,
    /// Events of the workloads that sync every event: per-event fdatasync,
    /// SQLite per-commit, durable append with one writer.
    pub synced_events: u64,
    /// Events per writer with 16 concurrent durable writers.
    pub events_per_writer_16: u64,
    /// Events per writer with 64 concurrent durable writers.
    pub events_per_writer_64: u64,
    /// Events of the small resumed run.
    pub resume_small: u64,
    /// Events of the big resumed run.
    pub resume_big: u64,
    /// Steps of the bytes-per-step comparison.
    pub footprint_steps: u64,
    /// Steps of the long durable run whose file growth is bounded.
    pub long_run_steps: u64,
    /// Repetitions of each timed workload (the median is reported).
    pub repetitions: usize,
    /// Repetitions of the durable workloads: short, and at the mercy of the
    /// disk's sync latency, so they get more (two more than `repetitions`
    /// unless the configuration fixes the count).
    pub durable_repetitions: usize,
}

impl Sizes {
    /// The sizes for `config`.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive scale times a positive base, rounded: a small positive count"
    )]
    pub fn for_config(config: &BenchConfig) -> Result<Sizes, BenchError> {
        let scale = config.scale;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(BenchError::Config(format!(
                "scale must be a positive number, not {scale}"
            )));
        }
        let scaled = |base: f64, least: u64| ((base * scale).round() as u64).max(least);
        let resume_small = if scale >= 1.0 {
            scaled(10_000.0, 1)
        } else {
            scaled(10_000.0, 2_000)
        };
        let resume_big = scaled(1_000_000.0, 10 * resume_small);
        let (repetitions, durable_repetitions) = match config.repetitions {
            Some(0) => return Err(BenchError::Config("repetitions must be at least 1".into())),
            Some(repetitions) => (repetitions, repetitions),
            None if scale < 0.05 => (1, 1),
            None => (3, 5),
        };
        Ok(Sizes {
            append_events: scaled(50_000.0, 200),
            synced_events: scaled(300.0, 10),
            events_per_writer_16: scaled(100.0, 2),
            events_per_writer_64: scaled(50.0, 2),
            resume_small,
            resume_big,
            footprint_steps: scaled(1_000.0, 50).min(1_000),
            long_run_steps: scaled(10_000.0, 100),
            repetitions,
            durable_repetitions,
        })
    }
}
