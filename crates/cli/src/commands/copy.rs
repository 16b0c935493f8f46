//! `copy --from A --to B [RUN]`: moves runs between any two journals (sled
//! or PostgreSQL, either way), streaming.
//!
//! Invariants:
//! - Runs go in lineage order (every run after its parent), so a fork's
//!   parent is in the target before the fork; with a run named, its
//!   ancestors come first, whole.
//! - Each run is copied all or nothing: its events stream from the source
//!   (each verified as it is read) into the target's import, which stages
//!   them, checks every chain hash, and publishes the run in one step; a
//!   damaged source event fails the import, so no prefix is ever published.
//! - What was written is verified again: the target's chain is walked from
//!   the store, and its event count and head hash must equal the source's.
//! - A run already in the target is skipped when it is the same run (same
//!   event count and head hash) and refused otherwise; a copy run again
//!   after a failure goes on where it stopped.

use std::io::{self, BufReader, Read, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use clap::Args;
use runjournal::location::redacted;
use runjournal::{ChainHash, Journal, ReadError, RunKey};
use serde::Serialize;

use crate::context::Context;
use crate::failure::{coded, Code};
use crate::output::plural;
use crate::progress;
use crate::select::{self, RunArg};

/// Bytes of JSON lines handed from the reading thread to the import at a time.
const CHUNK: usize = 1 << 20;

/// Chunks in flight between the two: bounds the memory a copy holds.
const CHUNKS_IN_FLIGHT: usize = 4;

/// The arguments of `copy`.
#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The journal to copy from: a sled directory or a postgres:// URL (never changed).
    #[arg(long, value_name = "DB")]
    from: PathBuf,
    /// The journal to copy into (created when missing).
    #[arg(long, value_name = "DB")]
    to: PathBuf,
    /// Copy only this run (with its ancestors, whole); every run when none is named.
    #[command(flatten)]
    run: RunArg,
}

/// What happened to one run.
#[derive(Serialize)]
struct CopiedJson {
    id: String,
    run: RunKey,
    events: u64,
    head: String,
    /// `copied`, or `skipped` (the target held the same run already).
    outcome: &'static str,
}

/// `copy --json`.
#[derive(Serialize)]
struct CopyJson {
    from: String,
    to: String,
    runs: Vec<CopiedJson>,
    copied: usize,
    skipped: usize,
    events: u64,
}

/// `copy`.
pub fn run(cx: &mut Context, args: &CopyArgs) -> anyhow::Result<ExitCode> {
    let source = select::open_existing(&args.from)?;
    let target = select::open_or_create(&args.to)?;
    let from = redacted(&args.from);
    let to = redacted(&args.to);
    let keys = if args.run.given() {
        let key = select::resolve(&source, &args.from, &args.run)?.key;
        source.export_order(Some(&key))
    } else {
        source.export_order(None)
    }
    .map_err(|error| select::read_error(&args.from, error))?;
    let mut rows = Vec::with_capacity(keys.len());
    let mut events = 0u64;
    for item in &keys {
        // Whole runs: an ancestor is copied up to its end, not its fork point.
        let record = source
            .run_info(&item.key)
            .map_err(|error| select::read_error(&args.from, error))?;
        let end = record.head.next_seq;
        let outcome = match existing(&target, &item.key, &args.to)? {
            Some(held) if held == (end, record.head.hash) => "skipped",
            Some((held_events, _)) => {
                return Err(coded(
                    Code::Conflict,
                    format!(
                        "run {} exists in {to} and differs from the one in {from} ({} there, {} here); \
                         nothing of it was copied",
                        item.key,
                        plural(held_events, "event"),
                        plural(end, "event"),
                    ),
                ))
            }
            None => {
                copy_run(&source, &target, &item.key, end, &from)?;
                events += end;
                "copied"
            }
        };
        check_copy(&target, &item.key, end, record.head.hash, &to)?;
        rows.push(CopiedJson {
            id: item.key.short_id(),
            run: item.key.clone(),
            events: end,
            head: record.head.hash.to_string(),
            outcome,
        });
    }
    drop(target);
    let copied = rows.iter().filter(|row| row.outcome == "copied").count();
    let skipped = rows.len() - copied;
    if cx.json {
        cx.print_json(&CopyJson {
            from,
            to,
            runs: rows,
            copied,
            skipped,
            events,
        })?;
    } else {
        writeln!(
            cx.out,
            "copied {} ({}) from {from} to {to}{}",
            plural(copied as u64, "run"),
            plural(events, "event"),
            if skipped > 0 {
                format!("; {} already there", plural(skipped as u64, "run"))
            } else {
                String::new()
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The target's copy of `key`, verified: its event count and head hash.
fn existing(target: &Journal, key: &RunKey, db: &std::path::Path) -> anyhow::Result<Option<(u64, ChainHash)>> {
    match target.verify(key) {
        Ok(report) => Ok(Some((report.events, report.head))),
        Err(ReadError::NotFound { .. }) => Ok(None),
        Err(error) => Err(select::read_error(db, error)),
    }
}

/// Verifies the target's copy of `key` from its store: `events` events
/// ending in `head`.
fn check_copy(target: &Journal, key: &RunKey, events: u64, head: ChainHash, to: &str) -> anyhow::Result<()> {
    let report = target.verify(key).map_err(|error| {
        coded(
            Code::Integrity,
            format!("run {key} does not verify in {to} after the copy: {error}"),
        )
    })?;
    if report.events != events || report.head != head {
        return Err(coded(
            Code::Integrity,
            format!(
                "run {key} in {to} after the copy has {} ending in {}, not {events} ending in {head}",
                plural(report.events, "event"),
                report.head
            ),
        ));
    }
    Ok(())
}

/// Streams the events `0..end` of `key` from `source` into an import into
/// `target`: all of them, or nothing.
fn copy_run(source: &Journal, target: &Journal, key: &RunKey, end: u64, from: &str) -> anyhow::Result<()> {
    let bar = progress::events(end, "copying");
    let (sender, receiver) = sync_channel(CHUNKS_IN_FLIGHT);
    let imported = std::thread::scope(|scope| {
        let reader = scope.spawn(|| send_events(source, key, end, sender, &bar));
        let imported = target.import(BufReader::with_capacity(CHUNK, Chunks::new(receiver)));
        // The reader ends once the import stops taking chunks.
        let read = reader.join();
        (imported, read)
    });
    bar.finish_and_clear();
    match imported {
        (Ok(_), Ok(Ok(()))) => Ok(()),
        (_, Ok(Err(error))) => Err(select::read_error(std::path::Path::new(from), error)),
        (Err(error), _) => {
            Err(anyhow::Error::new(error).context(format!("copying run {key}: nothing of it was stored")))
        }
        (Ok(_), Err(panic)) => std::panic::resume_unwind(panic),
    }
}

/// Writes the run's events as JSON lines into chunks for the import; a read
/// error is sent as the last chunk (so the import fails, storing nothing)
/// and returned.
fn send_events(
    source: &Journal,
    key: &RunKey,
    end: u64,
    sender: SyncSender<io::Result<Vec<u8>>>,
    bar: &indicatif::ProgressBar,
) -> Result<(), ReadError> {
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut receiver_gone = false;
    let walk = source.for_each_event(key, 0, |envelope| {
        if envelope.seq >= end {
            return ControlFlow::Break(());
        }
        chunk.extend_from_slice(envelope.to_json_line().as_bytes());
        chunk.push(b'\n');
        bar.inc(1);
        if chunk.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if sender.send(Ok(full)).is_err() {
                receiver_gone = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    let outcome = match walk {
        Ok(()) if !receiver_gone => {
            drop(sender.send(Ok(chunk)));
            Ok(())
        }
        Ok(()) => Ok(()),
        Err(error) => {
            drop(sender.send(Err(io::Error::other(format!("reading the source failed: {error}")))));
            Err(error)
        }
    };
    // Dropping the sender ends the stream the import reads.
    drop(sender);
    outcome
}

/// The chunks the reading thread sends, as one byte stream; a failure sent
/// is an I/O error of the stream (never its end).
struct Chunks {
    receiver: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    offset: usize,
}

impl Chunks {
    fn new(receiver: Receiver<io::Result<Vec<u8>>>) -> Self {
        Chunks {
            receiver,
            current: Vec::new(),
            offset: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.current.len() {
            match self.receiver.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.offset = 0;
                }
                Ok(Err(error)) => return Err(error),
                // The sender is gone: the stream ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.offset);
        buf[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}
