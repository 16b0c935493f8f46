//! A run's own events as the JSON lines of docs/format.md (`show --json`, `export`,
//! `export --salvage`).
//!
//! Invariants: events are written in seq order, each only once it verified;
//! a damaged event stops the run's lines right before it, so what was written
//! is a verified prefix; an I/O error on the output ends the walk and wins
//! over any read error.

use std::io::{self, Write};
use std::ops::{ControlFlow, Range};
use std::path::Path;

use runjournal::core::rules;
use runjournal::{Envelope, Journal, ReadError, RunKey, RunStatus};

use crate::select::read_error;

/// Writes the run's events in `seqs`, calling `each` per event before it is
/// written. The outer error is an I/O error of `out`; the inner result is the
/// walk's read error (the first damaged event), after every event before it
/// was written. Returns how many were written.
fn write_lines(
    journal: &Journal,
    key: &RunKey,
    seqs: Range<u64>,
    out: &mut dyn Write,
    each: &mut dyn FnMut(&Envelope),
) -> anyhow::Result<(u64, Result<(), ReadError>)> {
    let mut written = 0u64;
    let mut failure: Option<io::Error> = None;
    let walk = journal.for_each_event(key, seqs.start, |envelope| {
        if envelope.seq >= seqs.end {
            return ControlFlow::Break(());
        }
        each(&envelope);
        match writeln!(out, "{}", envelope.to_json_line()) {
            Ok(()) => {
                written += 1;
                ControlFlow::Continue(())
            }
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    });
    match failure {
        Some(error) => Err(error.into()),
        None => Ok((written, walk)),
    }
}

/// Writes the run's events in `seqs`; a damaged event is the error.
pub fn write_run(
    journal: &Journal,
    db: &Path,
    key: &RunKey,
    seqs: Range<u64>,
    out: &mut dyn Write,
    each: &mut dyn FnMut(&Envelope),
) -> anyhow::Result<()> {
    let (_, walk) = write_lines(journal, key, seqs, out, each)?;
    walk.map_err(|error| read_error(db, error))
}

/// What a salvage wrote of one run: a verified prefix of its own log.
pub struct Recovered {
    /// How many events were written (seqs `0..written`).
    pub written: u64,
    /// Why the run stopped before its end, when it did: damage to the run, or
    /// a store I/O error reading it (such as a deleted blob file).
    pub damage: Option<ReadError>,
    /// The last event written.
    pub last: Option<Envelope>,
    /// The run's status after the events written.
    pub status: RunStatus,
}

/// Writes the run's events `0..end` up to the first one that cannot be read
/// or fails verification: a salvage names the failure and goes on with the
/// next run. Only an error writing the output is an error.
pub fn write_run_until_damage(
    journal: &Journal,
    key: &RunKey,
    end: u64,
    out: &mut dyn Write,
) -> anyhow::Result<Recovered> {
    let mut last: Option<Envelope> = None;
    let mut status = RunStatus::Running;
    let (written, walk) = write_lines(journal, key, 0..end, out, &mut |envelope| {
        status = rules::status_after(status, &envelope.event);
        last = Some(envelope.clone());
    })?;
    Ok(Recovered {
        written,
        damage: walk.err(),
        last,
        status,
    })
}
