//! Errors: one `#[non_exhaustive]` enum per operation family, joined by the
//! umbrella [`Error`]. Every error about a run names the run and, where there
//! is one, the seq.

use runjournal_core::{
    ChainWriteError, ChainWriteProblem, CodecError, ErrorInfo, EventError, IntegrityError, KeyError, RunKey, RunStatus,
    StoreError,
};

use crate::writer::StoreFailure;

/// Opening a journal failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The store could not be opened (locked, missing, corrupt, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer thread could not be started.
    #[error("could not start the journal's writer thread: {0}")]
    Thread(std::io::Error),
}

/// An append wrote nothing, or its outcome is unknown because storage failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The run was resumed by a newer handle; this one may not write.
    #[error("run {run} seq {seq}: fenced: this handle's epoch {epoch} is older than the run's epoch {current} (the run was resumed elsewhere); nothing was written")]
    Fenced {
        /// The run.
        run: RunKey,
        /// The seq the append would have written.
        seq: u64,
        /// The handle's epoch.
        epoch: u64,
        /// The run's epoch.
        current: u64,
    },
    /// The run's next seq is not the one the append expected.
    #[error(
        "run {run}: conflict: expected to write seq {expected} but the run's next seq is {actual}; nothing was written"
    )]
    Conflict {
        /// The run.
        run: RunKey,
        /// The seq the caller expected to write.
        expected: u64,
        /// The run's next seq.
        actual: u64,
    },
    /// An event of the batch is larger than the configured maximum.
    #[error("run {run} seq {seq}: event is {size} bytes encoded, more than the maximum of {max} bytes; nothing of the batch was written")]
    EventTooLarge {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// Its encoded size.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// An event of the batch does not encode (no event type is refused; kept
    /// typed rather than a panic).
    #[error("run {run} seq {seq}: event does not encode: {source}; nothing of the batch was written")]
    Unencodable {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// The encoder's refusal.
        source: CodecError,
    },
    /// An event breaks SPEC §2's value ranges.
    #[error("run {run} seq {seq}: {source}; nothing of the batch was written")]
    InvalidEvent {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// What is wrong.
        source: Box<EventError>,
    },
    /// The event is out of place in the run's log (SPEC §2 ordering rules).
    #[error("run {run} seq {seq}: {reason}; nothing was written")]
    OutOfOrder {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// Which rule it breaks.
        reason: String,
    },
    /// A typed method refused an event the fold would ignore.
    #[error("run {run} seq {seq}: refused {event_type}: {} ({}); nothing was written", .anomaly.detail, .anomaly.kind)]
    Refused {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// The refused event's type.
        event_type: &'static str,
        /// The anomaly the fold would record (its `kind` and `detail`).
        anomaly: Box<runjournal_core::fold::Anomaly>,
    },
    /// Storage failed while this append was being written or synced: it may
    /// or may not be stored, and the journal is poisoned.
    #[error("run {run} seq {seq}: storage failed, the append may not be durable and the journal refuses writes until reopened: {source}")]
    Storage {
        /// The run.
        run: RunKey,
        /// The first seq of the append.
        seq: u64,
        /// The store's failure.
        source: StoreFailure,
    },
    /// Storage failed while the writer carried out this request (a create, a
    /// sync, a delete); the journal refuses writes until reopened.
    #[error("storage failed while writing; the journal refuses writes until reopened: {source}")]
    WriteFailed {
        /// The store's failure.
        source: StoreFailure,
    },
    /// An earlier storage failure poisoned the journal.
    #[error("the journal is poisoned by an earlier storage failure and refuses writes until reopened: {source}")]
    Poisoned {
        /// The failure that poisoned it.
        source: StoreFailure,
    },
    /// An earlier append of this handle, which returned before it was applied
    /// (`Buffered`), was not stored; the handle writes nothing more.
    #[error("run {run}: the buffered append at seq {seq} was not stored ({reason}); this handle writes nothing more (resume the run)")]
    Abandoned {
        /// The run.
        run: RunKey,
        /// The first seq of the append that was not stored.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The journal's writer thread is gone.
    #[error("the journal's writer thread has stopped; reopen the journal")]
    Closed,
}

/// Reading, verifying or folding a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No run has the key.
    #[error("run {run} not found")]
    NotFound {
        /// The key looked for.
        run: RunKey,
    },
    /// `next_episode` of a goal that has episode `u32::MAX`: there is no next one.
    #[error("goal {goal:?} has episode 4294967295 (u32::MAX), the last there is; there is no next episode")]
    EpisodesExhausted {
        /// The goal.
        goal: String,
    },
    /// A stored event is corrupt (does not decode, breaks the chain, is missing).
    #[error(transparent)]
    Integrity(Box<IntegrityError>),
    /// A stored snapshot does not decode or fails its checksum.
    #[error("run {run}: snapshot at seq {seq} is corrupt: {detail}; rebuild it with `runjournal rebuild-snapshots --goal … --episode … --agent …` (Journal::rebuild_snapshots), which replays the verified log")]
    SnapshotCorrupt {
        /// The run.
        run: RunKey,
        /// The snapshot's seq.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// The seq asked for is past the run's end.
    #[error("run {run} has no seq {seq} (its last seq is {last})")]
    SeqOutOfRange {
        /// The run.
        run: RunKey,
        /// The seq asked for.
        seq: u64,
        /// The run's last seq.
        last: u64,
    },
    /// A forked run's parent is gone.
    #[error("run {run}: its fork parent {parent} is missing from the database")]
    ParentMissing {
        /// The forked run.
        run: RunKey,
        /// The parent's key.
        parent: Box<RunKey>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IntegrityError> for ReadError {
    fn from(error: IntegrityError) -> Self {
        ReadError::Integrity(Box::new(error))
    }
}

/// Creating a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BeginError {
    /// The key is malformed.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// A run with the key exists.
    #[error("run {run} already exists; resume it, or begin a new episode (next_episode)")]
    AlreadyExists {
        /// The key.
        run: RunKey,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing `run_started` failed.
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// Resuming a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// No run has the key: never a silent fresh start.
    #[error("run {run} not found; nothing to resume (begin it instead)")]
    NotFound {
        /// The key looked for.
        run: RunKey,
    },
    /// The run is completed or failed.
    #[error("run {run} is {status} and cannot be resumed")]
    Finished {
        /// The run.
        run: RunKey,
        /// Its status.
        status: RunStatus,
    },
    /// The run is at the last epoch a resume can open (an imported run whose
    /// epoch reached `u64::MAX - 1` or more): a resume would wrap the epoch.
    #[error("run {run} is in epoch {epoch}, the last a resume can open; it cannot be resumed again (fork it instead)")]
    EpochExhausted {
        /// The run.
        run: RunKey,
        /// Its current epoch.
        epoch: u64,
    },
    /// Reading or folding the run failed (corruption is never skipped).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing `attached` failed.
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// Recording a run's outcome failed.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe_finish_error(.primary.as_ref(), .cleanup_errors, .source))]
pub struct FinishError {
    /// The run's own failure, when the outcome was a failure: never lost.
    pub primary: Option<ErrorInfo>,
    /// Cleanup failures that came with it.
    pub cleanup_errors: Vec<ErrorInfo>,
    /// Why the outcome could not be stored.
    pub source: AppendError,
}

fn describe_finish_error(primary: Option<&ErrorInfo>, cleanup: &[ErrorInfo], source: &AppendError) -> String {
    match primary {
        Some(primary) => format!(
            "the run failed ({}: {}{}) and recording that failure also failed: {source}",
            primary.kind,
            primary.message,
            if cleanup.is_empty() {
                String::new()
            } else {
                format!(", with {} cleanup error(s)", cleanup.len())
            }
        ),
        None => format!("could not record the run's outcome: {source}"),
    }
}

/// Any runjournal error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`KeyError`].
    #[error(transparent)]
    Key(#[from] KeyError),
    /// See [`BeginError`].
    #[error(transparent)]
    Begin(#[from] BeginError),
    /// See [`ResumeError`].
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// See [`AppendError`].
    #[error(transparent)]
    Append(#[from] AppendError),
    /// See [`ReadError`].
    #[error(transparent)]
    Read(#[from] ReadError),
    /// See [`FinishError`].
    #[error(transparent)]
    Finish(#[from] Box<FinishError>),
    /// See [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// See [`SubscribeError`](crate::SubscribeError).
    #[error(transparent)]
    Subscribe(#[from] crate::SubscribeError),
    /// See [`ForkError`](crate::ForkError).
    #[error(transparent)]
    Fork(#[from] crate::ForkError),
    /// See [`PurgeError`](crate::PurgeError).
    #[error(transparent)]
    Purge(#[from] crate::PurgeError),
}

impl From<ChainWriteError> for AppendError {
    fn from(error: ChainWriteError) -> Self {
        let ChainWriteError { run, seq, problem } = error;
        match problem {
            ChainWriteProblem::TooLarge { size, max } => AppendError::EventTooLarge { run, seq, size, max },
            ChainWriteProblem::Unencodable(source) => AppendError::Unencodable { run, seq, source },
        }
    }
}
