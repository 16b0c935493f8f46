//! Importing runs from the JSON lines of docs/format.md (`runjournal import`).
//!
//! Invariants:
//! - The input streams: it is read line by line (each line bounded by
//!   [`line_limit`]) and parsed ahead on parser threads
//!   ([`crate::import_lines`]), and each run's chained records are staged in the store
//!   ([`Store::stage`](runjournal_core::Store::stage)) every few MiB by a
//!   stager thread while the next lines are read, through a queue of at most
//!   `STAGE_QUEUE` batches, so memory holds only a few bounded buffers and
//!   each run's head, whatever the file's size.
//! - Staged records are the bytes this import encoded and hashed; nothing
//!   reads them back except a fork's parent hash, after the stager has stored
//!   every earlier batch. Staging never syncs: the one sync after the publish
//!   makes the staged records durable with it.
//! - All or nothing: staged records are invisible (no run record or key
//!   names them) until every line is validated; then every run of the input
//!   is published in one atomic store step. The first bad line refuses the
//!   whole input, names that line, and the staged records are discarded.
//! - What is stored is exactly what a live journal would have written for the
//!   same events: the same chain hashes, epochs and times. A present `hash`
//!   must equal the chain hash computed from the line; missing `epoch`, `ts`
//!   and `hash` are computed. Export → import → export is byte-identical.
//! - A run that exists in the database is refused: import never appends to or
//!   replaces an existing run.

use std::collections::HashMap;
use std::io::BufRead;
use std::ops::ControlFlow;

use runjournal_core::rules::{self, Arrival, OrderViolation};
use runjournal_core::{
    ChainHash, ChainWriteError, ChainWriteProblem, ChainWriter, CodecError, Event, EventError, ForkBase, ForkPoint,
    KeyError, PartialEnvelope, RunId, RunKey, RunRecord, RunStatus, ScanControl, Store, StoreError,
};

use crate::error::{ReadError, WriteError};
use crate::import_lines::ParsedLines;
use crate::journal::Local;
use crate::options::Clock;

/// What an import stored.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ImportReport {
    /// The runs created, in the order their first line appeared.
    pub runs: Vec<ImportedRun>,
    /// The number of events stored, over all runs.
    pub events: u64,
    /// The number of lines read (blank lines included).
    pub lines: u64,
}

/// One run an import created.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ImportedRun {
    /// The run's key.
    pub key: RunKey,
    /// Its number of events.
    pub events: u64,
    /// Its status after its last event.
    pub status: RunStatus,
    /// Its epoch after its last event.
    pub epoch: u64,
    /// The chain hash of its last event.
    pub head: ChainHash,
}

/// An import was refused or failed; nothing was stored.
///
/// The variants about a line name it (1-based) and say what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The input could not be read at this line (I/O, or not UTF-8).
    #[error("line {line}: could not read the input: {source}")]
    Read {
        /// The 1-based line number.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The line is not a JSON envelope of docs/format.md: bad JSON, an unknown event
    /// type or field, a missing field, a malformed hash.
    #[error("line {line}: not a valid event envelope: {}", describe_json_error(.source))]
    Parse {
        /// The 1-based line number.
        line: u64,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// The line is not JSON text an envelope can be: not UTF-8, a byte order
    /// mark, a field `turn_completed` does not have.
    #[error("line {line}: not a valid event envelope: {reason}")]
    Malformed {
        /// The 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The line is longer than the import's line limit; it was refused
    /// before it was read whole.
    #[error("line {line}: the line is longer than {limit} bytes, more than any event within the size limit can take as JSON; refused before reading it whole")]
    LineTooLong {
        /// The 1-based line number.
        line: u64,
        /// The longest line accepted, in bytes.
        limit: usize,
    },
    /// The line's run key breaks docs/format.md#the-run-key.
    #[error("line {line}: {source}")]
    InvalidKey {
        /// The 1-based line number.
        line: u64,
        /// What is wrong with the key.
        source: KeyError,
    },
    /// An event field breaks docs/format.md's value ranges.
    #[error("line {line}: run {run} seq {seq}: {source}")]
    InvalidEvent {
        /// The 1-based line number.
        line: u64,
        /// The run.
        run: Box<RunKey>,
        /// The line's seq.
        seq: u64,
        /// What is wrong with the event.
        source: EventError,
    },
    /// The line's seq is not the run's next seq (seqs are gapless from 0).
    #[error("line {line}: run {run}: seq {seq} where seq {expected} was expected (seqs are gapless and start at 0)")]
    SeqGap {
        /// The 1-based line number.
        line: u64,
        /// The run.
        run: Box<RunKey>,
        /// The line's seq.
        seq: u64,
        /// The seq the run needs next.
        expected: u64,
    },
    /// The event is out of place: docs/format.md's ordering and epoch rules.
    #[error("line {line}: run {run} seq {seq}: {violation}")]
    OutOfOrder {
        /// The 1-based line number.
        line: u64,
        /// The run.
        run: Box<RunKey>,
        /// The line's seq.
        seq: u64,
        /// Which rule it breaks.
        #[source]
        violation: OrderViolation,
    },
    /// The line's `hash` is not the chain hash of the envelope.
    #[error("line {line}: run {run} seq {seq}: hash mismatch: the line says {given}, the chain gives {computed}")]
    HashMismatch {
        /// The 1-based line number.
        line: u64,
        /// The run.
        run: Box<RunKey>,
        /// The line's seq.
        seq: u64,
        /// The hash on the line.
        given: Box<ChainHash>,
        /// The hash the chain computes.
        computed: Box<ChainHash>,
    },
    /// The encoded event is larger than the journal's maximum.
    #[error("line {line}: run {run} seq {seq}: event is {size} bytes encoded, more than the maximum of {max} bytes")]
    TooLarge {
        /// The 1-based line number.
        line: u64,
        /// The run.
        run: Box<RunKey>,
        /// The line's seq.
        seq: u64,
        /// The encoded size.
        size: usize,
        /// The journal's maximum.
        max: usize,
    },
    /// The event does not encode (no event type is refused; kept typed rather
    /// than a panic).
    #[error("line {line}: run {run} seq {seq}: event does not encode: {source}")]
    Unencodable {
        /// The 1-based line number.
        line: u64,
        /// The run.
        run: Box<RunKey>,
        /// The line's seq.
        seq: u64,
        /// The encoder's refusal.
        source: CodecError,
    },
    /// The run is a fork whose parent, up to the fork seq, is neither earlier
    /// in the input nor in the database.
    #[error("line {line}: run {run} is forked from run {parent} at seq {fork_seq}, but that parent (up to seq {fork_seq}) is neither earlier in the input nor in the database; export the child with its ancestors (`runjournal export RUN` does)")]
    ForkParentMissing {
        /// The 1-based line number.
        line: u64,
        /// The forked run.
        run: Box<RunKey>,
        /// The run it was forked from.
        parent: Box<RunKey>,
        /// The parent seq it was forked at.
        fork_seq: u64,
    },
    /// The run exists in the database already.
    #[error("line {line}: run {run} already exists in the database (import never appends to an existing run)")]
    AlreadyExists {
        /// The 1-based line of the run's first event.
        line: u64,
        /// The run.
        run: Box<RunKey>,
    },
    /// Reading the database failed while checking for existing runs.
    #[error(transparent)]
    Database(Box<ReadError>),
    /// Staging or publishing the runs failed in the store; nothing was
    /// published (staged records are invisible and discarded).
    #[error("storing the imported runs failed, nothing was published: {0}")]
    Staging(Box<StoreError>),
    /// The journal refused the write (poisoned, writer stopped) or its sync
    /// failed; nothing was published, or the publication may not be durable.
    #[error(transparent)]
    Write(Box<WriteError>),
}

impl ImportError {
    /// The 1-based line the error is about, if it is about a line.
    pub fn line(&self) -> Option<u64> {
        match self {
            ImportError::Read { line, .. }
            | ImportError::Parse { line, .. }
            | ImportError::Malformed { line, .. }
            | ImportError::LineTooLong { line, .. }
            | ImportError::InvalidKey { line, .. }
            | ImportError::InvalidEvent { line, .. }
            | ImportError::SeqGap { line, .. }
            | ImportError::OutOfOrder { line, .. }
            | ImportError::HashMismatch { line, .. }
            | ImportError::TooLarge { line, .. }
            | ImportError::Unencodable { line, .. }
            | ImportError::ForkParentMissing { line, .. }
            | ImportError::AlreadyExists { line, .. } => Some(*line),
            ImportError::Database(_) | ImportError::Write(_) | ImportError::Staging(_) => None,
        }
    }

    /// The error's stable machine code (see [`Error::code`](crate::Error::code)).
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Read { .. } => "io",
            ImportError::Parse { .. } | ImportError::Malformed { .. } => "parse",
            ImportError::LineTooLong { .. } | ImportError::TooLarge { .. } => "too_large",
            ImportError::InvalidKey { .. } => "invalid_key",
            ImportError::InvalidEvent { .. } => "invalid_event",
            ImportError::SeqGap { .. } => "seq_gap",
            ImportError::OutOfOrder { .. } => "out_of_order",
            ImportError::HashMismatch { .. } => "hash_mismatch",
            ImportError::Unencodable { .. } => "unencodable",
            ImportError::ForkParentMissing { .. } => "parent_missing",
            ImportError::AlreadyExists { .. } => "already_exists",
            ImportError::Database(error) => error.code(),
            ImportError::Staging(error) => error.code(),
            ImportError::Write(error) => error.code(),
        }
    }
}

/// A run being assembled from the input.
struct Pending {
    /// The id reserved for it in the store, under which its records are staged.
    id: RunId,
    first_line: u64,
    created_ts: u64,
    /// Records not staged yet, for seqs `buffered_from..`.
    buffer: Vec<Vec<u8>>,
    buffered_from: u64,
    /// The chain so far: the run's key and head.
    writer: ChainWriter,
    /// The status after the events so far, by the ordering rules.
    status: RunStatus,
    /// The parent prefix, for a fork.
    fork: Option<ForkBase>,
}

/// Records buffered over all runs before they are handed to the stager.
const STAGE_BYTES: usize = 8 << 20;

/// Batches of [`STAGE_BYTES`] queued for the stager at most: the importing
/// thread reads ahead by this many while the stager writes, so memory stays
/// bounded by `(STAGE_QUEUE + 2) × STAGE_BYTES` of records.
const STAGE_QUEUE: usize = 2;

/// What the importing thread hands to the stager.
enum StageJob {
    /// Store these records: for each run, its id, the seq of its first
    /// record, and the records.
    Records(Vec<(RunId, u64, Vec<Vec<u8>>)>),
    /// Answer once every job before this one is stored.
    Barrier(crossbeam_channel::Sender<()>),
}

/// The runs of one import, staged as they are read.
struct Staging<'a> {
    journal: &'a Local,
    runs: Vec<Pending>,
    index: HashMap<RunKey, usize>,
    buffered: usize,
    /// The stager's queue (see [`stage_jobs`]).
    jobs: crossbeam_channel::Sender<StageJob>,
}

impl Staging<'_> {
    /// Hands every buffered record to the stager.
    fn flush(&mut self) -> Result<(), ImportError> {
        let mut batch = Vec::new();
        for run in &mut self.runs {
            if run.buffer.is_empty() {
                continue;
            }
            let records = std::mem::take(&mut run.buffer);
            let first_seq = run.buffered_from;
            run.buffered_from += records.len() as u64;
            batch.push((run.id, first_seq, records));
        }
        self.buffered = 0;
        if batch.is_empty() {
            return Ok(());
        }
        self.jobs.send(StageJob::Records(batch)).map_err(|_| stager_stopped())
    }

    /// Waits until the stager has stored everything handed to it.
    fn settle(&self) -> Result<(), ImportError> {
        let (done, answer) = crossbeam_channel::bounded(1);
        self.jobs.send(StageJob::Barrier(done)).map_err(|_| stager_stopped())?;
        answer.recv().map_err(|_| stager_stopped())
    }

    /// The chain hash of the staged or buffered event `seq` of run `position`.
    fn hash_at(&self, position: usize, seq: u64) -> Result<Option<ChainHash>, ImportError> {
        let run = &self.runs[position];
        if seq >= run.writer.head().next_seq {
            return Ok(None);
        }
        let record = if seq >= run.buffered_from {
            usize::try_from(seq - run.buffered_from)
                .ok()
                .and_then(|offset| run.buffer.get(offset))
                .cloned()
        } else {
            self.settle()?;
            let mut found = None;
            self.journal
                .store()
                .scan(run.id, seq, seq + 1, &mut |_, bytes| {
                    found = Some(bytes.to_vec());
                    ScanControl::Stop
                })
                .map_err(store_failed)?;
            found
        };
        Ok(record.and_then(|record| {
            runjournal_core::codec::split_event_record(&record)
                .ok()
                .map(|(hash, _)| hash)
        }))
    }
}

/// A store failure while staging: nothing was published.
fn store_failed(error: StoreError) -> ImportError {
    ImportError::Staging(Box::new(error))
}

/// The stager's queue closed: it stopped at a store failure, which
/// [`Local::import`] reports instead of this.
fn stager_stopped() -> ImportError {
    store_failed(StoreError::Backend {
        operation: "stage events",
        detail: "the import's staging thread stopped".into(),
    })
}

/// The stager: stores every job's records in `store`, in the order they were
/// queued, until the queue closes or a write fails (then it stops, and the
/// importing thread's next hand-off fails).
fn stage_jobs(store: &dyn Store, jobs: &crossbeam_channel::Receiver<StageJob>) -> Result<(), StoreError> {
    for job in jobs {
        match job {
            StageJob::Records(batch) => {
                for (id, first_seq, records) in &batch {
                    store.stage(*id, *first_seq, records)?;
                }
            }
            StageJob::Barrier(done) => drop(done.send(())),
        }
    }
    Ok(())
}

/// Removes what was staged for `runs` (a refused or failed import).
fn discard(store: &dyn Store, runs: &[Pending]) {
    let ids: Vec<RunId> = runs.iter().map(|run| run.id).collect();
    if !ids.is_empty() {
        // A failure leaves invisible records behind, never a visible run.
        drop(store.discard_staged(&ids));
    }
}

impl Local {
    /// The embedded [`Journal::import`].
    ///
    /// This thread reads, validates and chains the lines, which parser
    /// threads parse ahead of it ([`ParsedLines`]); a stager thread stores
    /// the chained records as they come ([`stage_jobs`]). The
    /// publish waits for the stager to have stored every record.
    pub(crate) fn import(&self, input: impl BufRead) -> Result<ImportReport, ImportError> {
        let store: &dyn Store = self.store().as_ref();
        let (read, stored, runs, index) = std::thread::scope(|scope| {
            let (jobs, queue) = crossbeam_channel::bounded(STAGE_QUEUE);
            let stager = std::thread::Builder::new()
                .name("runjournal-import".into())
                .spawn_scoped(scope, move || stage_jobs(store, &queue));
            let stager = match stager {
                Ok(stager) => stager,
                Err(error) => {
                    let failed = store_failed(StoreError::Backend {
                        operation: "stage events",
                        detail: format!("cannot start the import's staging thread: {error}"),
                    });
                    return (Err(failed), Ok(()), Vec::new(), HashMap::new());
                }
            };
            let mut staging = Staging {
                journal: self,
                runs: Vec::new(),
                index: HashMap::new(),
                buffered: 0,
                jobs,
            };
            let limit = line_limit(self.options().max_event_size);
            let read = ParsedLines::start(scope, input, limit)
                .and_then(|mut lines| self.stage_input(&mut lines, &mut staging))
                .and_then(|counts| {
                    staging.flush()?;
                    Ok(counts)
                });
            let Staging { runs, index, jobs, .. } = staging;
            drop(jobs);
            let stored = stager.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (read, stored, runs, index)
        });
        // A store failure came first: the records it failed on were read
        // before any line the importing thread refused after it.
        let result = stored
            .map_err(store_failed)
            .and(read)
            .and_then(|counts| self.publish(&runs, &index).map(|()| counts));
        let (lines, events) = match result {
            Ok(counts) => counts,
            Err(error) => {
                discard(store, &runs);
                return Err(error);
            }
        };
        Ok(ImportReport {
            runs: runs
                .into_iter()
                .map(|pending| {
                    let head = pending.writer.head();
                    ImportedRun {
                        events: head.next_seq,
                        status: pending.status,
                        epoch: head.epoch,
                        head: head.hash,
                        key: pending.writer.key().clone(),
                    }
                })
                .collect(),
            events,
            lines,
        })
    }

    /// Validates and stages every line; returns the lines and events read.
    fn stage_input(
        &self,
        lines: &mut ParsedLines<'_, impl BufRead>,
        staging: &mut Staging<'_>,
    ) -> Result<(u64, u64), ImportError> {
        let mut events = 0u64;
        while let Some(parsed) = lines.next_envelope() {
            let (number, partial) = parsed?;
            let position = if let Some(&position) = staging.index.get(&partial.run) {
                position
            } else {
                let pending = self.start_run(number, &partial, staging)?;
                staging.index.insert(partial.run.clone(), staging.runs.len());
                staging.runs.push(pending);
                staging.runs.len() - 1
            };
            staging.buffered += add_line(&mut staging.runs[position], number, &partial, &self.options().clock)?;
            lines.give_back(partial);
            events += 1;
            if staging.buffered >= STAGE_BYTES {
                staging.flush()?;
            }
        }
        Ok((lines.lines_read(), events))
    }

    /// Publishes every staged run in one atomic step, then syncs.
    fn publish(&self, runs: &[Pending], index: &HashMap<RunKey, usize>) -> Result<(), ImportError> {
        if runs.is_empty() {
            return Ok(());
        }
        if let Some(source) = self.inner.writer.health.failure() {
            return Err(ImportError::Write(Box::new(WriteError::Poisoned { source })));
        }
        let records: Vec<RunRecord> = runs
            .iter()
            .map(|pending| RunRecord {
                id: pending.id,
                key: pending.writer.key().clone(),
                created_ts: pending.created_ts,
                head: pending.writer.head(),
                status: pending.status,
                fork: pending.fork.clone(),
            })
            .collect();
        if let Err(exists) = self.store().publish_staged(&records).map_err(store_failed)? {
            let line = index.get(&exists.0).map_or(0, |&position| runs[position].first_line);
            return Err(ImportError::AlreadyExists {
                line,
                run: Box::new(exists.0),
            });
        }
        self.sync().map_err(|error| ImportError::Write(Box::new(error)))
    }

    /// Checks that the run of the line at `line` (its first in the input) may be
    /// created, reserves its id, and starts assembling it. A fork chains from
    /// its parent's hash at the fork seq: the parent must be earlier in the
    /// input (at least up to that seq) or in the database.
    fn start_run(&self, line: u64, partial: &PartialEnvelope, staging: &Staging<'_>) -> Result<Pending, ImportError> {
        let run = || Box::new(partial.run.clone());
        let existing = self
            .store()
            .find(&partial.run)
            .map_err(|error| ImportError::Database(Box::new(ReadError::from(error))))?;
        if existing.is_some() {
            return Err(ImportError::AlreadyExists { line, run: run() });
        }
        let fork = match &partial.event {
            Event::RunStarted { meta } => match &meta.forked_from {
                Some(point) => Some(self.fork_base(line, &partial.run, point, staging)?),
                None => None,
            },
            _ => None,
        };
        let genesis = fork.as_ref().map_or(ChainHash::GENESIS, |fork| fork.hash);
        let id = self.store().reserve_run_id().map_err(store_failed)?;
        Ok(Pending {
            id,
            first_line: line,
            created_ts: 0,
            buffer: Vec::new(),
            buffered_from: 0,
            writer: ChainWriter::starting(partial.run.clone(), genesis, self.options().max_event_size),
            status: RunStatus::Running,
            fork,
        })
    }

    /// Where a fork imported at `line` attaches: its parent's hash at the fork seq.
    fn fork_base(
        &self,
        line: u64,
        run: &RunKey,
        point: &ForkPoint,
        staging: &Staging<'_>,
    ) -> Result<ForkBase, ImportError> {
        let missing = || ImportError::ForkParentMissing {
            line,
            run: Box::new(run.clone()),
            parent: Box::new(point.run.clone()),
            fork_seq: point.seq,
        };
        if let Some(&position) = staging.index.get(&point.run) {
            let hash = staging.hash_at(position, point.seq)?.ok_or_else(missing)?;
            return Ok(ForkBase {
                parent: staging.runs[position].id,
                parent_key: point.run.clone(),
                seq: point.seq,
                hash,
            });
        }
        let parent = match self.run_info(&point.run) {
            Ok(parent) => parent,
            Err(ReadError::NotFound { .. }) => return Err(missing()),
            Err(error) => return Err(ImportError::Database(Box::new(error))),
        };
        let mut hash = None;
        self.for_each_event(&point.run, point.seq, |envelope| {
            hash = Some(envelope.hash);
            ControlFlow::Break(())
        })
        .map_err(|error| ImportError::Database(Box::new(error)))?;
        Ok(ForkBase {
            parent: parent.id,
            parent_key: point.run.clone(),
            seq: point.seq,
            hash: hash.ok_or_else(missing)?,
        })
    }
}

/// Validates one line of `run` against docs/format.md's rules ([`rules`]) and
/// buffers its chained record; returns the record's length.
fn add_line(run: &mut Pending, line: u64, partial: &PartialEnvelope, clock: &Clock) -> Result<usize, ImportError> {
    let seq = partial.seq;
    let head = run.writer.head();
    let key = || Box::new(run.writer.key().clone());
    let out_of_order = |violation: OrderViolation| ImportError::OutOfOrder {
        line,
        run: key(),
        seq,
        violation,
    };
    rules::check_seq(seq, head.next_seq).map_err(|violation| match violation {
        OrderViolation::SeqGap { seq, expected } => ImportError::SeqGap {
            line,
            run: key(),
            seq,
            expected,
        },
        other => out_of_order(other),
    })?;
    let event = &partial.event;
    event.validate().map_err(|source| ImportError::InvalidEvent {
        line,
        run: key(),
        seq,
        source,
    })?;
    // Its epoch, checked below, is what makes an `attached` a resume.
    let arrival = if matches!(event, Event::Attached { .. }) {
        Arrival::NewEpoch
    } else {
        Arrival::SameEpoch
    };
    rules::check_position(seq, event).map_err(out_of_order)?;
    rules::check_follows(run.status, event, arrival).map_err(out_of_order)?;
    let epoch = rules::epoch_of(event, partial.epoch, head.epoch).map_err(out_of_order)?;
    let ts = partial.ts.unwrap_or_else(|| clock.now_millis().max(head.last_ts));
    let status = rules::status_after(run.status, event);
    // On a refusal below the import stops, so the advanced writer is never used.
    let (record, written) = run
        .writer
        .append_record(epoch, ts, event)
        .map_err(|error| unchainable(line, error))?;
    if let Some(given) = partial.hash {
        if given != written.hash {
            return Err(ImportError::HashMismatch {
                line,
                run: Box::new(run.writer.key().clone()),
                seq,
                given: Box::new(given),
                computed: Box::new(written.hash),
            });
        }
    }
    if seq == 0 {
        run.created_ts = ts;
    }
    run.status = status;
    let length = record.len();
    run.buffer.push(record);
    Ok(length)
}

/// The import error of an event that cannot be chained.
fn unchainable(line: u64, error: ChainWriteError) -> ImportError {
    let ChainWriteError { run, seq, problem } = error;
    match problem {
        ChainWriteProblem::TooLarge { size, max } => ImportError::TooLarge {
            line,
            run: Box::new(run),
            seq,
            size,
            max,
        },
        ChainWriteProblem::Unencodable(source) => ImportError::Unencodable {
            line,
            run: Box::new(run),
            seq,
            source,
        },
    }
}

/// The longest import line accepted for events of at most `max_event_size`
/// encoded bytes: JSON escapes can make a string up to 6 times longer than its
/// bytes (`\u0001`), so 8 times the size limit refuses no event the limit
/// accepts, and keeps a hostile line from being buffered whole.
pub fn line_limit(max_event_size: usize) -> usize {
    max_event_size.saturating_mul(8).max(64 * 1024)
}

/// `serde_json`'s message without its position suffix (the input is one line,
/// so "line 1" would only confuse), with the column kept.
fn describe_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) if error.column() > 0 => format!("{} (column {})", &text[..cut], error.column()),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

    use std::sync::Arc;

    use runjournal_core::{Envelope, MemoryStore};

    use super::*;
    use crate::options::Options;
    use crate::Journal;

    fn memory_journal() -> Journal {
        Journal::with_store(Arc::new(MemoryStore::new()), Options::default()).unwrap()
    }

    const RUN: &str = r#""run":{"goal":"g","episode":0,"agent":"a""#;

    fn line(seq: u64, event: &str) -> String {
        format!(r#"{{{RUN}}},"seq":{seq},"event":{event}}}"#)
    }

    fn session() -> Vec<String> {
        vec![
            line(0, r#"{"type":"run_started","meta":{}}"#),
            line(1, r#"{"type":"step","messages":[{"role":"user","content":"hi"}]}"#),
            line(2, r#"{"type":"run_interrupted","cause":"shutdown"}"#),
            line(3, r#"{"type":"attached","owner":"h/1"}"#),
            line(4, r#"{"type":"run_completed","output":"done"}"#),
        ]
    }

    fn import(journal: &Journal, lines: &[String]) -> Result<ImportReport, ImportError> {
        journal.import(lines.join("\n").as_bytes())
    }

    #[test]
    fn computes_missing_epochs_and_hashes_and_round_trips() {
        let journal = memory_journal();
        let report = import(&journal, &session()).unwrap();
        assert_eq!(report.events, 5);
        assert_eq!(report.runs[0].status, RunStatus::Completed);
        assert_eq!(report.runs[0].epoch, 1);
        let key = RunKey::new("g", 0, "a").unwrap();
        let exported: Vec<String> = journal
            .read(&key, 0)
            .unwrap()
            .iter()
            .map(Envelope::to_json_line)
            .collect();
        assert_eq!(journal.verify(&key).unwrap().events, 5);
        assert_eq!(journal.read(&key, 3).unwrap()[0].epoch, 1);
        let again = memory_journal();
        import(&again, &exported).unwrap();
        let re_exported: Vec<String> = again
            .read(&key, 0)
            .unwrap()
            .iter()
            .map(Envelope::to_json_line)
            .collect();
        assert_eq!(exported, re_exported);
    }

    #[test]
    fn refusals_name_the_line_and_store_nothing() {
        let cases: Vec<(Vec<String>, u64, &str)> = vec![
            (
                vec![session()[0].clone(), session()[2].clone()],
                2,
                "seq 2 where seq 1 was expected",
            ),
            (vec![line(0, r#"{"type":"teleported"}"#)], 1, "teleported"),
            (vec![session()[1].clone()], 1, "seq 1 where seq 0"),
            (
                vec![
                    session()[0].clone(),
                    line(1, r#"{"type":"run_completed"}"#),
                    line(2, r#"{"type":"turn_completed"}"#),
                ],
                3,
                "follows run_completed",
            ),
            (
                vec![
                    session()[0].clone(),
                    line(1, r#"{"type":"run_completed"}"#),
                    line(2, r#"{"type":"attached","owner":"x"}"#),
                ],
                3,
                "follows run_completed",
            ),
            (
                vec![
                    session()[0].clone(),
                    line(1, r#"{"type":"attached","owner":"x"}"#).replace(r#""seq":1"#, r#""seq":1,"epoch":0"#),
                ],
                2,
                "not higher",
            ),
            (
                vec![
                    session()[0].clone(),
                    line(1, r#"{"type":"turn_completed"}"#).replace(r#""seq":1"#, r#""seq":1,"epoch":3"#),
                ],
                2,
                "only rise at an attached",
            ),
            (
                vec![line(0, r#"{"type":"run_started","meta":{}}"#)
                    .replace(r#""seq":0"#, &format!(r#""seq":0,"hash":"{}""#, "ab".repeat(32)))],
                1,
                "hash mismatch",
            ),
            (
                vec![
                    session()[0].clone(),
                    line(
                        1,
                        r#"{"type":"task_claimed","task":"t","agent":"a","priority":9,"confidence":0.5}"#,
                    ),
                ],
                2,
                "priority is 9",
            ),
            (
                vec![line(
                    0,
                    r#"{"type":"run_started","meta":{"forked_from":{"run":{"goal":"p","episode":0,"agent":"a"},"seq":3}}}"#,
                )],
                1,
                "is neither earlier in the input nor in the database",
            ),
            (
                vec![
                    r#"{"run":{"goal":"","episode":0,"agent":"a"},"seq":0,"event":{"type":"turn_completed"}}"#
                        .to_string(),
                ],
                1,
                "goal is empty",
            ),
        ];
        for (lines, expected_line, needle) in cases {
            let journal = memory_journal();
            let error = import(&journal, &lines).unwrap_err();
            assert_eq!(error.line(), Some(expected_line), "{error}");
            let message = error.to_string();
            assert!(message.starts_with(&format!("line {expected_line}: ")), "{message}");
            assert!(message.contains(needle), "{needle:?} not in {message}");
            assert!(journal.runs(&runjournal_core::RunFilter::default()).unwrap().is_empty());
        }
    }

    #[test]
    fn an_existing_run_is_refused_and_other_runs_are_not_stored() {
        let journal = memory_journal();
        import(&journal, &session()[..1]).unwrap();
        let mut lines = vec![session()[0].replace(r#""goal":"g""#, r#""goal":"other""#)];
        lines.extend(session());
        let error = import(&journal, &lines).unwrap_err();
        assert!(matches!(error, ImportError::AlreadyExists { line: 2, .. }), "{error}");
        assert_eq!(journal.runs(&runjournal_core::RunFilter::default()).unwrap().len(), 1);
    }

    #[test]
    fn blank_input_imports_nothing() {
        let report = memory_journal().import("\n\n".as_bytes()).unwrap();
        assert!(report.runs.is_empty());
        assert_eq!(report.lines, 2);
    }
}
