//! [`BenchReport`]: rows, targets, and the machine they were measured on, as
//! an aligned table or JSON.

use serde_json::{json, Value};
use std::fmt::Write as _;

use crate::machine::Machine;
use crate::measure::Measurement;
use crate::sizes::Sizes;

/// What a row's ratio compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatioOf {
    /// events/s of the row ÷ events/s of the baseline: higher is better.
    Throughput,
    /// seconds of the row ÷ seconds of the baseline: lower is better.
    Time,
    /// bytes per event of the row ÷ those of the baseline: lower is better.
    Bytes,
}

impl RatioOf {
    fn as_str(self) -> &'static str {
        match self {
            RatioOf::Throughput => "events_per_s",
            RatioOf::Time => "seconds",
            RatioOf::Bytes => "bytes_per_event",
        }
    }
}

/// One measured workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Events per repetition (steps for the bytes rows, the run's length for
    /// open and resume rows).
    pub events: u64,
    /// Median seconds of one repetition.
    pub seconds: f64,
    /// Repetitions the median is taken over.
    pub repetitions: usize,
    /// Events per second (for open and resume rows: events of the run per
    /// second of the operation).
    pub events_per_s: f64,
    /// Megabytes (10^6) per second: event payload, or bytes written for the
    /// bytes-per-step rows.
    pub mb_per_s: f64,
    /// Bytes written per event (logical: key + value, including run-record
    /// rewrites and snapshots; sled's file growth for that row).
    pub bytes_per_event: f64,
    /// The row this one is compared with.
    pub baseline: Option<String>,
    /// The ratio to the baseline, in [`Row::ratio_of`] terms.
    pub ratio: Option<f64>,
    /// What the ratio compares.
    pub ratio_of: RatioOf,
    /// Device cache flushes per event (median over repetitions), for the
    /// rows that count them on a device that reports them.
    pub device_flushes_per_event: Option<f64>,
}

impl Row {
    /// A throughput row: `events_per_s` compared with the baseline's.
    #[expect(
        clippy::cast_precision_loss,
        reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
    )]
    pub(crate) fn throughput(name: &str, measured: &Measurement, event_bytes: usize, baseline: Option<&Row>) -> Row {
        let mut row = Row::base(name, measured, RatioOf::Throughput);
        row.mb_per_s = row.events_per_s * event_bytes as f64 / 1e6;
        row.compare(baseline)
    }

    /// A timed operation over a run (open, resume): seconds compared.
    #[expect(
        clippy::cast_precision_loss,
        reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
    )]
    pub(crate) fn operation(name: &str, measured: &Measurement, event_bytes: usize, baseline: Option<&Row>) -> Row {
        let mut row = Row::base(name, measured, RatioOf::Time);
        row.mb_per_s = row.events_per_s * event_bytes as f64 / 1e6;
        row.compare(baseline)
    }

    /// A bytes-per-step row: bytes per event compared.
    pub(crate) fn footprint(name: &str, measured: &Measurement, baseline: Option<&Row>) -> Row {
        let mut row = Row::base(name, measured, RatioOf::Bytes);
        row.mb_per_s = row.events_per_s * row.bytes_per_event / 1e6;
        row.compare(baseline)
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
    )]
    fn base(name: &str, measured: &Measurement, ratio_of: RatioOf) -> Row {
        let seconds = measured.seconds();
        Row {
            name: name.into(),
            events: measured.events,
            seconds,
            repetitions: measured.samples.len(),
            events_per_s: if seconds > 0.0 {
                measured.events as f64 / seconds
            } else {
                0.0
            },
            mb_per_s: 0.0,
            bytes_per_event: measured.bytes_per_event,
            baseline: None,
            ratio: None,
            ratio_of,
            device_flushes_per_event: measured.device_flushes_per_event,
        }
    }

    fn compare(mut self, baseline: Option<&Row>) -> Row {
        if let Some(baseline) = baseline {
            let (value, reference) = match self.ratio_of {
                RatioOf::Throughput => (self.events_per_s, baseline.events_per_s),
                RatioOf::Time => (self.seconds, baseline.seconds),
                RatioOf::Bytes => (self.bytes_per_event, baseline.bytes_per_event),
            };
            self.baseline = Some(baseline.name.clone());
            self.ratio = (reference > 0.0).then(|| value / reference);
        }
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "events": self.events,
            "seconds": self.seconds,
            "repetitions": self.repetitions,
            "events_per_s": self.events_per_s,
            "mb_per_s": self.mb_per_s,
            "bytes_per_event": self.bytes_per_event,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "ratio_of": self.ratio_of.as_str(),
            "device_flushes_per_event": self.device_flushes_per_event,
        })
    }
}

/// Which way a target's ratio must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// The ratio must be at least the goal.
    AtLeast,
    /// The ratio must be at most the goal.
    AtMost,
}

/// A goal of issue 5 and whether this run met it.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The goal, in words.
    pub name: String,
    /// The measured ratio.
    pub ratio: f64,
    /// The ratio the goal asks for.
    pub goal: f64,
    /// Which side of the goal meets it.
    pub comparison: Comparison,
    /// Whether the measured ratio meets the goal.
    pub met: bool,
}

impl Target {
    pub(crate) fn at_least(name: &str, ratio: f64, goal: f64) -> Target {
        Target {
            name: name.into(),
            ratio,
            goal,
            comparison: Comparison::AtLeast,
            met: ratio >= goal,
        }
    }

    pub(crate) fn at_most(name: &str, ratio: f64, goal: f64) -> Target {
        Target {
            name: name.into(),
            ratio,
            goal,
            comparison: Comparison::AtMost,
            met: ratio.is_finite() && ratio <= goal,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "ratio": self.ratio,
            "goal": self.goal,
            "comparison": match self.comparison {
                Comparison::AtLeast => ">=",
                Comparison::AtMost => "<=",
            },
            "met": self.met,
        })
    }
}

/// Everything one bench run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// The scale it ran at.
    pub scale: f64,
    /// The workload sizes that scale gave.
    pub sizes: Sizes,
    /// The machine.
    pub machine: Machine,
    /// Bytes of one encoded step record (the value stored per event).
    pub event_bytes: usize,
    /// Bytes of one event key in sled.
    pub key_bytes: usize,
    /// Bytes of message content in each step.
    pub content_bytes: usize,
    /// The measured workloads, in report order.
    pub rows: Vec<Row>,
    /// The goals and whether they were met.
    pub targets: Vec<Target>,
    /// Where device flushes were counted (a block device's `stat` file);
    /// `None`: the device does not report them.
    pub flushes_from: Option<String>,
}

const BUFFERED: &str = "an append returns once queued to the writer, which applies queued appends in groups; synced every 200 ms and at close";
const DURABLE: &str = "an append returns after sled flush + fdatasync of sled's log, one sync per group \
    of concurrent appends (group commit)";
const SQLITE: &str = "bundled SQLite, journal_mode=WAL, synchronous as each row names (FULL beside durable rows, NORMAL beside buffered ones), table (run, seq, bytes) with \
    primary key (run, seq)";

impl BenchReport {
    /// The report as an aligned text table: the machine, the event size and
    /// durability modes, every row, then every target with met or missed.
    pub fn to_table(&self) -> String {
        let machine = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "runjournal bench, scale {}", self.scale);
        let _ = writeln!(
            out,
            "machine: {} ({} cores), {:.1} GiB memory, {}, kernel {}",
            machine.cpu,
            machine.cores,
            machine.memory_gib(),
            machine.os,
            machine.kernel
        );
        let _ = writeln!(out, "storage: {}", machine.storage);
        let _ = writeln!(
            out,
            "event: step with one {}-byte assistant message = {} bytes encoded + {}-byte key",
            self.content_bytes, self.event_bytes, self.key_bytes
        );
        for (mode, meaning) in [("buffered", BUFFERED), ("durable", DURABLE), ("SQLite", SQLITE)] {
            let _ = writeln!(out, "durability: {mode} = {meaning}");
        }
        out.push_str(
            "median of `reps` repetitions, interleaved across the rows compared, the disk synced before each; \
             B/event = key + value bytes written per event (sled file growth rows: allocated disk blocks)\n",
        );
        match &self.flushes_from {
            Some(stat) => {
                let _ = writeln!(
                    out,
                    "flushes/event = device cache flushes inside the clock per event, from {stat} (every writer on \
                     the device counts)\n"
                );
            }
            None => out.push_str("flushes/event: not counted (the device does not report flushes)\n\n"),
        }
        out.push_str(&self.rows_table());
        out.push_str("\ntargets\n");
        out.push_str(&self.targets_table());
        out
    }

    fn rows_table(&self) -> String {
        let header: [&str; 9] = [
            "workload",
            "events",
            "reps",
            "median s",
            "events/s",
            "MB/s",
            "B/event",
            "flushes/event",
            "vs baseline",
        ];
        let cells: Vec<[String; 9]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.name.clone(),
                    row.events.to_string(),
                    row.repetitions.to_string(),
                    format!("{:.4}", row.seconds),
                    group_digits(row.events_per_s),
                    format!("{:.2}", row.mb_per_s),
                    format!("{:.0}", row.bytes_per_event),
                    row.device_flushes_per_event
                        .map_or_else(String::new, |flushes| format!("{flushes:.3}")),
                    describe_ratio(row),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: &[String]| {
            let mut line = String::new();
            for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let pad = width - cell.chars().count();
                match index {
                    0 | 8 => {
                        let _ = write!(line, "{cell}{}", " ".repeat(pad));
                    }
                    _ => {
                        let _ = write!(line, "{}{cell}", " ".repeat(pad));
                    }
                }
                line.push_str("  ");
            }
            line.trim_end().to_string() + "\n"
        };
        out.push_str(&line(&header.map(String::from)));
        out.push_str(&line(&widths.map(|width| "-".repeat(width))));
        for row in &cells {
            out.push_str(&line(row));
        }
        out
    }

    fn targets_table(&self) -> String {
        let width = self
            .targets
            .iter()
            .map(|target| target.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for target in &self.targets {
            let pad = " ".repeat(width - target.name.chars().count());
            let sign = match target.comparison {
                Comparison::AtLeast => "≥",
                Comparison::AtMost => "≤",
            };
            let _ = writeln!(
                out,
                "  {}{pad}  measured {:>9}  goal {sign} {:<6}  {}",
                target.name,
                format!("{:.3}", target.ratio),
                target.goal,
                if target.met { "met" } else { "MISSED" }
            );
        }
        out
    }

    /// The report as one JSON object: `machine`, `event_bytes`, `durability`,
    /// `rows` and `targets` (plus the scale and workload sizes).
    pub fn to_json(&self) -> Value {
        json!({
            "scale": self.scale,
            "sizes": self.sizes,
            "machine": {
                "cpu": self.machine.cpu,
                "cores": self.machine.cores,
                "memory_bytes": self.machine.memory_bytes,
                "os": self.machine.os,
                "kernel": self.machine.kernel,
                "storage": self.machine.storage,
                "flushes_from": self.flushes_from,
            },
            "event": {
                "type": "step",
                "content_bytes": self.content_bytes,
                "key_bytes": self.key_bytes,
            },
            "event_bytes": self.event_bytes,
            "durability": {
                "buffered": BUFFERED,
                "durable": DURABLE,
                "sqlite": SQLITE,
                "per_event_fsync": "raw sled insert, then db.flush(), then fdatasync of sled's log file, per event",
            },
            "rows": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            "targets": self.targets.iter().map(Target::to_json).collect::<Vec<_>>(),
        })
    }
}

fn describe_ratio(row: &Row) -> String {
    match (&row.baseline, row.ratio) {
        (Some(baseline), Some(ratio)) => {
            let unit = match row.ratio_of {
                RatioOf::Throughput => "events/s",
                RatioOf::Time => "time",
                RatioOf::Bytes => "bytes",
            };
            format!("{ratio:.3}× {unit} of {baseline}")
        }
        _ => String::new(),
    }
}

/// `1234567.8` → `1,234,568`; values under 100 keep two decimals.
fn group_digits(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.2}");
    }
    let digits = format!("{value:.0}");
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(1_234_567.8), "1,234,568");
        assert_eq!(group_digits(999.0), "999");
        assert_eq!(group_digits(12.345), "12.35");
    }

    #[test]
    fn targets_meet_in_their_direction() {
        assert!(Target::at_least("t", 1.0, 0.85).met);
        assert!(!Target::at_least("t", 0.5, 0.85).met);
        assert!(Target::at_most("t", 1.5, 2.0).met);
        assert!(!Target::at_most("t", f64::NAN, 2.0).met);
    }
}
