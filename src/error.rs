//! Errors: one `#[non_exhaustive]` enum per operation family, joined by the
//! flat umbrella [`Error`].
//!
//! Invariants:
//! - Every error about a run names the run and, where there is one, the seq;
//!   its message says what to do about it.
//! - A family belongs to one operation: appends ([`AppendError`]), writes
//!   that are not appends ([`WriteError`]: sync, snapshot replacement,
//!   deletes, creates), reads ([`ReadError`]), and the operations built on
//!   them ([`OpenError`], [`BeginError`], [`ResumeError`], [`FinishError`],
//!   [`RebuildError`], [`ForkError`](crate::ForkError),
//!   [`PurgeError`](crate::PurgeError),
//!   [`SubscribeError`](crate::SubscribeError),
//!   [`ImportError`](crate::ImportError),
//!   [`OperatorError`](crate::OperatorError)). No family stands in for another.
//! - The umbrella is flat: `From` maps each family variant by variant, so a
//!   caller matches one level (`Error::Fenced { .. }`, `Error::NotFound { .. }`),
//!   two at most (a store error, an integrity problem, a finish's cause, an
//!   import line).
//! - Every variant has a stable machine code (`code()`), the same in its
//!   family and in the umbrella; the served API and Python carry these codes.
//! - A typed cause is kept as a typed `source`, never flattened into a string.
//!
//! Adding a family variant means adding its umbrella mapping and its code
//! (the `codes` test checks they agree).

use runjournal_core::fold::Anomaly;
use runjournal_core::snapshot::SnapshotError;
use runjournal_core::{
    ChainWriteError, ChainWriteProblem, CodecError, ErrorInfo, EventError, IntegrityError, KeyError, OrderViolation,
    RunKey, RunStatus, StoreError,
};

use crate::hub::LagPoint;
pub use crate::remote::RemoteError;
use crate::writer::StoreFailure;

/// The remedy a resume's `NotFound` names: never a silent fresh start.
const NOTHING_TO_RESUME: &str = "; nothing to resume (begin it instead)";

/// Opening a journal failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The store could not be opened (locked, missing, corrupt, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer thread could not be started.
    #[error("could not start the journal's writer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The database is held by another process and connecting to it failed
    /// (`Options::connect_if_held`).
    #[error(transparent)]
    Connect(RemoteError),
    /// The journal was opened to be served (`Options::serve`) and the
    /// server could not start; the store was released.
    #[error(transparent)]
    Serve(crate::ServeError),
}

impl OpenError {
    /// The error's stable machine code (see [`Error::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::Store(error) => error.code(),
            OpenError::Thread(_) => "thread",
            OpenError::Connect(error) => error.code(),
            OpenError::Serve(error) => error.code(),
        }
    }
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
    /// An event breaks docs/format.md's value ranges.
    #[error("run {run} seq {seq}: {source}; nothing of the batch was written")]
    InvalidEvent {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// What is wrong.
        source: Box<EventError>,
    },
    /// The event is out of place in the run's log (docs/format.md ordering rules).
    #[error("run {run} seq {seq}: {}; nothing was written", handle_reason(.violation))]
    OutOfOrder {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// Which rule it breaks.
        #[source]
        violation: OrderViolation,
    },
    /// The batch holds no event.
    #[error("run {run} seq {seq}: an append needs at least one event; nothing was written")]
    EmptyBatch {
        /// The run.
        run: RunKey,
        /// The seq the batch would have started at.
        seq: u64,
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
        anomaly: Box<Anomaly>,
    },
    /// The run was deleted from the store (purged) while this handle was open.
    #[error("run {run} seq {seq}: the run was deleted from the store (purged) while this handle was open; nothing was written")]
    Deleted {
        /// The run.
        run: RunKey,
        /// The first seq of the append.
        seq: u64,
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
        #[source]
        reason: AbandonReason,
    },
    /// The journal's writer thread is gone (it panicked): nothing more can be
    /// written until the journal is reopened.
    #[error("the journal's writer thread has stopped; reopen the journal")]
    WriterStopped,
    /// Connected: the owner's answer has no typed counterpart here, or the
    /// connection failed (when after the request was sent, the outcome is
    /// unknown: [`RemoteError::OutcomeUnknown`]).
    #[error(transparent)]
    Remote(RemoteError),
}

/// Why a buffered append that already returned was not stored.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AbandonReason {
    /// Another writer took the seq in the store.
    #[error("the store expected seq {actual}, not {expected}")]
    Conflict {
        /// The seq the append was written at.
        expected: u64,
        /// The run's next seq in the store.
        actual: u64,
    },
    /// The run was deleted from the store.
    #[error("the run is no longer in the store")]
    Deleted,
    /// Storage failed.
    #[error("storage failed: {source}")]
    Storage {
        /// The store's failure.
        source: StoreFailure,
    },
}

impl AppendError {
    /// The error's stable machine code (see [`Error::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            AppendError::Fenced { .. } => "fenced",
            AppendError::Conflict { .. } => "conflict",
            AppendError::EventTooLarge { .. } => "too_large",
            AppendError::Unencodable { .. } => "unencodable",
            AppendError::InvalidEvent { .. } => "invalid_event",
            AppendError::OutOfOrder { .. } => "out_of_order",
            AppendError::EmptyBatch { .. } => "empty_batch",
            AppendError::Refused { .. } => "refused",
            AppendError::Deleted { .. } => "deleted",
            AppendError::Storage { .. } => "storage",
            AppendError::Poisoned { .. } => "poisoned",
            AppendError::Abandoned { .. } => "abandoned",
            AppendError::WriterStopped => "writer_stopped",
            AppendError::Remote(error) => error.code(),
        }
    }
}

/// A broken ordering rule in the handle's words: the handle appends after
/// its head, so the rules it can break are about its status and `run_started`.
fn handle_reason(violation: &OrderViolation) -> String {
    match violation {
        OrderViolation::AfterOutcome { status, .. } => {
            format!(
                "the run is {status} in this epoch and nothing but teardown may follow (docs/format.md#ordering-rules)"
            )
        }
        OrderViolation::RunStartedAfterFirst => "run_started is only ever seq 0 (begin writes it)".into(),
        other => other.to_string(),
    }
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

/// A write that is not an append (a create, a sync, a snapshot replacement,
/// a delete) failed; the journal refuses writes until reopened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Storage failed while the writer carried out this write.
    #[error("storage failed while writing; the journal refuses writes until reopened: {source}")]
    Storage {
        /// The store's failure.
        source: StoreFailure,
    },
    /// An earlier storage failure poisoned the journal.
    #[error("the journal is poisoned by an earlier storage failure and refuses writes until reopened: {source}")]
    Poisoned {
        /// The failure that poisoned it.
        source: StoreFailure,
    },
    /// The journal's writer thread is gone (it panicked).
    #[error("the journal's writer thread has stopped; reopen the journal")]
    WriterStopped,
    /// Connected: the owner's answer has no typed counterpart here, or the
    /// connection failed (when after the request was sent, the outcome is
    /// unknown: [`RemoteError::OutcomeUnknown`]).
    #[error(transparent)]
    Remote(RemoteError),
}

impl WriteError {
    /// The error's stable machine code (see [`Error::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            WriteError::Storage { .. } => "storage",
            WriteError::Poisoned { .. } => "poisoned",
            WriteError::WriterStopped => "writer_stopped",
            WriteError::Remote(error) => error.code(),
        }
    }
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
    #[error("run {run}: snapshot at seq {seq} is corrupt: {source}; rebuild it with `runjournal rebuild-snapshots --goal … --episode … --agent …` (Journal::rebuild_snapshots), which replays the verified log")]
    SnapshotCorrupt {
        /// The run.
        run: RunKey,
        /// The snapshot's seq.
        seq: u64,
        /// What is wrong.
        source: SnapshotError,
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
    /// Connected: the owner's answer has no typed counterpart here, or the
    /// connection failed.
    #[error(transparent)]
    Remote(RemoteError),
}

impl ReadError {
    /// The error's stable machine code (see [`Error::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::NotFound { .. } => "not_found",
            ReadError::Integrity(_) => "integrity",
            ReadError::SnapshotCorrupt { .. } => "snapshot_corrupt",
            ReadError::SeqOutOfRange { .. } => "seq_out_of_range",
            ReadError::ParentMissing { .. } => "parent_missing",
            ReadError::EpisodesExhausted { .. } => "exhausted",
            ReadError::Store(error) => error.code(),
            ReadError::Remote(error) => error.code(),
        }
    }
}

impl From<IntegrityError> for ReadError {
    fn from(error: IntegrityError) -> Self {
        ReadError::Integrity(Box::new(error))
    }
}

/// Creating a run failed; nothing was created.
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
    /// The `run_started` (its meta) is larger than the configured maximum.
    #[error("run {run} seq {seq}: event is {size} bytes encoded, more than the maximum of {max} bytes; nothing of the batch was written")]
    EventTooLarge {
        /// The run.
        run: RunKey,
        /// The seq of `run_started` (0).
        seq: u64,
        /// Its encoded size.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// The `run_started` does not encode.
    #[error("run {run} seq {seq}: event does not encode: {source}; nothing of the batch was written")]
    Unencodable {
        /// The run.
        run: RunKey,
        /// The seq of `run_started` (0).
        seq: u64,
        /// The encoder's refusal.
        source: CodecError,
    },
    /// Reading the store failed (for a fork: its parent's prefix).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Storing the new run failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl BeginError {
    /// The error's stable machine code (see [`Error::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            BeginError::InvalidKey(_) => "invalid_key",
            BeginError::AlreadyExists { .. } => "already_exists",
            BeginError::EventTooLarge { .. } => "too_large",
            BeginError::Unencodable { .. } => "unencodable",
            BeginError::Read(error) => error.code(),
            BeginError::Write(error) => error.code(),
        }
    }
}

impl From<ChainWriteError> for BeginError {
    fn from(error: ChainWriteError) -> Self {
        let ChainWriteError { run, seq, problem } = error;
        match problem {
            ChainWriteProblem::TooLarge { size, max } => BeginError::EventTooLarge { run, seq, size, max },
            ChainWriteProblem::Unencodable(source) => BeginError::Unencodable { run, seq, source },
        }
    }
}

/// Resuming a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// No run has the key: never a silent fresh start.
    #[error("run {run} not found{NOTHING_TO_RESUME}")]
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
    /// The run was superseded by a rewind (`Journal::rewind`); the branch
    /// that goes on is another run.
    #[error("run {run} is superseded (a rewind forked it into the run that goes on) and cannot be resumed; nothing was appended")]
    Superseded {
        /// The run.
        run: RunKey,
    },
    /// The run's `meta` differs from what the caller expects; nothing was appended.
    #[error("run {run}: meta.{field} is {} but {expected:?} was expected; the run was not resumed and nothing was appended", describe_stored(.stored.as_deref()))]
    Mismatch {
        /// The run.
        run: RunKey,
        /// The `meta` field that differs (`backend`, `model`, `agent_name`).
        field: &'static str,
        /// Its stored value (`None`: not set).
        stored: Option<String>,
        /// The value the caller expects.
        expected: String,
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
    /// Appending `attached` failed.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// Replacing a snapshot of another fold version failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ResumeError {
    /// The error's stable machine code (see [`Error::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            ResumeError::NotFound { .. } => "not_found",
            ResumeError::Finished { .. } => "finished",
            ResumeError::Superseded { .. } => "superseded",
            ResumeError::Mismatch { .. } => "mismatch",
            ResumeError::EpochExhausted { .. } => "exhausted",
            ResumeError::Read(error) => error.code(),
            ResumeError::Append(error) => error.code(),
            ResumeError::Write(error) => error.code(),
        }
    }
}

/// A stored meta value in a message: quoted, or "not set".
fn describe_stored(stored: Option<&str>) -> String {
    stored.map_or_else(|| "not set".to_string(), |value| format!("{value:?}"))
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

impl FinishError {
    /// The code of why the outcome could not be stored (see [`Error::code`]).
    pub fn code(&self) -> &'static str {
        self.source.code()
    }
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

/// Rebuilding a run's snapshot failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// Reading the run (the full verified replay) failed; nothing was written.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Storing the rebuilt snapshot failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl RebuildError {
    /// The error's stable machine code (see [`Error::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            RebuildError::Read(error) => error.code(),
            RebuildError::Write(error) => error.code(),
        }
    }
}

/// Any runjournal error, flat: every family converts into it variant by
/// variant, so one `match` tells the cases apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A run key breaks docs/format.md#the-run-key ([`KeyError`]).
    #[error(transparent)]
    InvalidKey(KeyError),
    /// An event breaks docs/format.md's value ranges; nothing of its batch was written.
    #[error("run {run} seq {seq}: {source}; nothing of the batch was written")]
    InvalidEvent {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// What is wrong.
        source: Box<EventError>,
    },
    /// An event is larger than the configured maximum; nothing of its batch was written.
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
    /// An event does not encode; nothing of its batch was written.
    #[error("run {run} seq {seq}: event does not encode: {source}; nothing of the batch was written")]
    Unencodable {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// The encoder's refusal.
        source: CodecError,
    },
    /// An event is out of place in the run's log; nothing was written.
    #[error("run {run} seq {seq}: {}; nothing was written", handle_reason(.violation))]
    OutOfOrder {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// Which rule it breaks.
        #[source]
        violation: OrderViolation,
    },
    /// An append held no event.
    #[error("run {run} seq {seq}: an append needs at least one event; nothing was written")]
    EmptyBatch {
        /// The run.
        run: RunKey,
        /// The seq the batch would have started at.
        seq: u64,
    },
    /// A typed method refused an event the fold would ignore; nothing was written.
    #[error("run {run} seq {seq}: refused {event_type}: {} ({}); nothing was written", .anomaly.detail, .anomaly.kind)]
    Refused {
        /// The run.
        run: RunKey,
        /// The seq the event would have had.
        seq: u64,
        /// The refused event's type.
        event_type: &'static str,
        /// The anomaly the fold would record.
        anomaly: Box<Anomaly>,
    },
    /// A run with the key exists (begin, fork).
    #[error("run {run} already exists; resume it, or begin a new episode (next_episode)")]
    AlreadyExists {
        /// The key.
        run: RunKey,
    },
    /// No run has the key.
    #[error("run {run} not found{remedy}")]
    NotFound {
        /// The key looked for.
        run: RunKey,
        /// What to do instead, as the failed operation says it (empty for a
        /// read; a resume says to begin the run).
        remedy: &'static str,
    },
    /// The run is completed or failed and cannot be resumed.
    #[error("run {run} is {status} and cannot be resumed")]
    Finished {
        /// The run.
        run: RunKey,
        /// Its status.
        status: RunStatus,
    },
    /// `next_episode` of a goal that has episode `u32::MAX`.
    #[error("goal {goal:?} has episode 4294967295 (u32::MAX), the last there is; there is no next episode")]
    EpisodesExhausted {
        /// The goal.
        goal: String,
    },
    /// The run is at the last epoch a resume can open.
    #[error("run {run} is in epoch {epoch}, the last a resume can open; it cannot be resumed again (fork it instead)")]
    EpochExhausted {
        /// The run.
        run: RunKey,
        /// Its current epoch.
        epoch: u64,
    },
    /// The run was superseded by a rewind and cannot be resumed.
    #[error("run {run} is superseded (a rewind forked it into the run that goes on) and cannot be resumed; nothing was appended")]
    Superseded {
        /// The run.
        run: RunKey,
    },
    /// The run's `meta` differs from what the caller expects; nothing was appended.
    #[error("run {run}: meta.{field} is {} but {expected:?} was expected; the run was not resumed and nothing was appended", describe_stored(.stored.as_deref()))]
    Mismatch {
        /// The run.
        run: RunKey,
        /// The `meta` field that differs.
        field: &'static str,
        /// Its stored value (`None`: not set).
        stored: Option<String>,
        /// The value the caller expects.
        expected: String,
    },
    /// The run was deleted (purged) while a handle was appending to it.
    #[error("run {run} seq {seq}: the run was deleted from the store (purged) while this handle was open; nothing was written")]
    Deleted {
        /// The run.
        run: RunKey,
        /// The first seq of the append.
        seq: u64,
    },
    /// The subscribed run was purged: nothing more comes from it.
    #[error("run {run} was purged while subscribed: nothing more comes from it")]
    Purged {
        /// The run.
        run: RunKey,
    },
    /// A seq past the run's end (`state_at`, a fork point).
    #[error("run {run} has no seq {seq} (its last seq is {last})")]
    SeqOutOfRange {
        /// The run.
        run: RunKey,
        /// The seq asked for.
        seq: u64,
        /// The run's last seq.
        last: u64,
    },
    /// A run named for purging is still read by a fork that is not purged.
    #[error(
        "run {run} is the fork parent of {child}, which is not being purged; purge the child too or keep the parent"
    )]
    HasLiveFork {
        /// The run that may not go.
        run: RunKey,
        /// A child that reads from it.
        child: RunKey,
    },
    /// The run has a newer epoch than the handle; nothing was written.
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
    /// The run's next seq is not the one the append expected; nothing was written.
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
    /// A buffered append that returned was not stored; its handle writes nothing more.
    #[error("run {run}: the buffered append at seq {seq} was not stored ({reason}); this handle writes nothing more (resume the run)")]
    Abandoned {
        /// The run.
        run: RunKey,
        /// The first seq of the append that was not stored.
        seq: u64,
        /// Why.
        #[source]
        reason: AbandonReason,
    },
    /// A subscriber fell behind its buffer; subscribe again from the point.
    #[error("subscriber lagged: it missed run {} from seq {}; subscribe again from there", .0.run, .0.seq)]
    Lagged(LagPoint),
    /// The journal closed while subscribed.
    #[error("the journal closed")]
    Closed,
    /// A stored event is corrupt ([`IntegrityError`] names the run, the seq
    /// and the problem).
    #[error(transparent)]
    Integrity(Box<IntegrityError>),
    /// A stored snapshot is corrupt.
    #[error("run {run}: snapshot at seq {seq} is corrupt: {source}; rebuild it with `runjournal rebuild-snapshots --goal … --episode … --agent …` (Journal::rebuild_snapshots), which replays the verified log")]
    SnapshotCorrupt {
        /// The run.
        run: RunKey,
        /// The snapshot's seq.
        seq: u64,
        /// What is wrong.
        source: SnapshotError,
    },
    /// A forked run's parent is gone.
    #[error("run {run}: its fork parent {parent} is missing from the database")]
    ParentMissing {
        /// The forked run.
        run: RunKey,
        /// The parent's key.
        parent: Box<RunKey>,
    },
    /// Storage failed in the write path: an append (`run` and `seq` set) may
    /// or may not be stored, another write (a create, sync, snapshot
    /// replacement, delete) may or may not be; the journal is now poisoned.
    #[error("{}", describe_storage(.run.as_ref(), *.seq, .source))]
    Storage {
        /// The run of the append, when the write was one.
        run: Option<RunKey>,
        /// The append's first seq, when the write was one.
        seq: Option<u64>,
        /// The store's failure.
        source: StoreFailure,
    },
    /// An earlier storage failure poisoned the journal: reopen it.
    #[error("the journal is poisoned by an earlier storage failure and refuses writes until reopened: {source}")]
    Poisoned {
        /// The failure that poisoned it.
        source: StoreFailure,
    },
    /// The journal's writer thread is gone (it panicked): reopen the journal.
    #[error("the journal's writer thread has stopped; reopen the journal")]
    WriterStopped,
    /// A thread of the journal could not be started.
    #[error("could not start the {thread} thread: {source}")]
    Thread {
        /// Which thread: the journal's writer, a subscription's forwarding one.
        thread: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store failed outside the write path: opening (locked, missing,
    /// another format, corrupt) or reading. [`StoreError`] tells which.
    #[error(transparent)]
    Store(StoreError),
    /// Serving a journal could not start ([`crate::ServeError`]).
    #[error(transparent)]
    Serve(crate::ServeError),
    /// An import line was refused; nothing of the input was stored.
    #[error(transparent)]
    Import(Box<crate::ImportError>),
    /// A run's outcome could not be recorded; the error keeps the run's own
    /// failure, and its `source` says why.
    #[error(transparent)]
    Finish(Box<FinishError>),
    /// Connected to the journal's owner: an answer with no typed counterpart,
    /// or a failed connection (a write's outcome may be unknown).
    #[error(transparent)]
    Remote(RemoteError),
    /// An operator action (interrupt, fail, resume) the run's status
    /// refuses; `rule` names the rule. Nothing was written.
    #[error("cannot {action} run {run}: {rule}; nothing was written")]
    ActionRefused {
        /// The run.
        run: RunKey,
        /// The action refused (`interrupt`, `fail`, `resume`).
        action: &'static str,
        /// The run's status.
        status: RunStatus,
        /// The rule, in words, with where it is documented.
        rule: String,
    },
}

fn describe_storage(run: Option<&RunKey>, seq: Option<u64>, source: &StoreFailure) -> String {
    match (run, seq) {
        (Some(run), Some(seq)) => format!(
            "run {run} seq {seq}: storage failed, the append may not be durable and the journal refuses writes until reopened: {source}"
        ),
        _ => format!("storage failed while writing; the journal refuses writes until reopened: {source}"),
    }
}

impl Error {
    /// A stable machine code for the error: the same for a family's variant
    /// and the umbrella variant it converts to, and the code the served API
    /// and the Python exceptions carry. Codes are never renamed.
    ///
    /// A store error, an import line and a finish carry their cause's code
    /// (`Error::Store` → [`StoreError::code`], `Error::Finish` → the code of
    /// why the outcome was not stored).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidKey(_) => "invalid_key",
            Error::InvalidEvent { .. } => "invalid_event",
            Error::EventTooLarge { .. } => "too_large",
            Error::Unencodable { .. } => "unencodable",
            Error::OutOfOrder { .. } => "out_of_order",
            Error::EmptyBatch { .. } => "empty_batch",
            Error::Refused { .. } => "refused",
            Error::AlreadyExists { .. } => "already_exists",
            Error::NotFound { .. } => "not_found",
            Error::Finished { .. } => "finished",
            Error::Superseded { .. } => "superseded",
            Error::EpisodesExhausted { .. } | Error::EpochExhausted { .. } => "exhausted",
            Error::Mismatch { .. } => "mismatch",
            Error::Deleted { .. } => "deleted",
            Error::Purged { .. } => "purged",
            Error::SeqOutOfRange { .. } => "seq_out_of_range",
            Error::HasLiveFork { .. } => "has_live_fork",
            Error::Fenced { .. } => "fenced",
            Error::Conflict { .. } => "conflict",
            Error::Abandoned { .. } => "abandoned",
            Error::Lagged(_) => "lagged",
            Error::Closed => "closed",
            Error::Integrity(_) => "integrity",
            Error::SnapshotCorrupt { .. } => "snapshot_corrupt",
            Error::ParentMissing { .. } => "parent_missing",
            Error::Storage { .. } => "storage",
            Error::Poisoned { .. } => "poisoned",
            Error::WriterStopped => "writer_stopped",
            Error::Thread { .. } => "thread",
            Error::Store(error) => error.code(),
            Error::Serve(error) => error.code(),
            Error::Import(error) => error.code(),
            Error::Finish(error) => error.code(),
            Error::Remote(error) => error.code(),
            Error::ActionRefused { .. } => "not_allowed",
        }
    }
}

impl From<KeyError> for Error {
    fn from(error: KeyError) -> Self {
        Error::InvalidKey(error)
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Error::Store(error)
    }
}

impl From<IntegrityError> for Error {
    fn from(error: IntegrityError) -> Self {
        Error::Integrity(Box::new(error))
    }
}

impl From<ChainWriteError> for Error {
    fn from(error: ChainWriteError) -> Self {
        AppendError::from(error).into()
    }
}

impl From<OpenError> for Error {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Store(error) => Error::Store(error),
            OpenError::Thread(source) => Error::Thread {
                thread: "journal's writer",
                source,
            },
            OpenError::Connect(error) => Error::Remote(error),
            OpenError::Serve(error) => Error::Serve(error),
        }
    }
}

impl From<crate::ServeError> for Error {
    fn from(error: crate::ServeError) -> Self {
        Error::Serve(error)
    }
}

impl From<AppendError> for Error {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Fenced {
                run,
                seq,
                epoch,
                current,
            } => Error::Fenced {
                run,
                seq,
                epoch,
                current,
            },
            AppendError::Conflict { run, expected, actual } => Error::Conflict { run, expected, actual },
            AppendError::EventTooLarge { run, seq, size, max } => Error::EventTooLarge { run, seq, size, max },
            AppendError::Unencodable { run, seq, source } => Error::Unencodable { run, seq, source },
            AppendError::InvalidEvent { run, seq, source } => Error::InvalidEvent { run, seq, source },
            AppendError::OutOfOrder { run, seq, violation } => Error::OutOfOrder { run, seq, violation },
            AppendError::EmptyBatch { run, seq } => Error::EmptyBatch { run, seq },
            AppendError::Refused {
                run,
                seq,
                event_type,
                anomaly,
            } => Error::Refused {
                run,
                seq,
                event_type,
                anomaly,
            },
            AppendError::Deleted { run, seq } => Error::Deleted { run, seq },
            AppendError::Storage { run, seq, source } => Error::Storage {
                run: Some(run),
                seq: Some(seq),
                source,
            },
            AppendError::Poisoned { source } => Error::Poisoned { source },
            AppendError::Abandoned { run, seq, reason } => Error::Abandoned { run, seq, reason },
            AppendError::WriterStopped => Error::WriterStopped,
            AppendError::Remote(error) => Error::Remote(error),
        }
    }
}

impl From<WriteError> for Error {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Storage { source } => Error::Storage {
                run: None,
                seq: None,
                source,
            },
            WriteError::Poisoned { source } => Error::Poisoned { source },
            WriteError::WriterStopped => Error::WriterStopped,
            WriteError::Remote(error) => Error::Remote(error),
        }
    }
}

impl From<ReadError> for Error {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::NotFound { run } => Error::NotFound { run, remedy: "" },
            ReadError::Integrity(error) => Error::Integrity(error),
            ReadError::SnapshotCorrupt { run, seq, source } => Error::SnapshotCorrupt { run, seq, source },
            ReadError::SeqOutOfRange { run, seq, last } => Error::SeqOutOfRange { run, seq, last },
            ReadError::ParentMissing { run, parent } => Error::ParentMissing { run, parent },
            ReadError::EpisodesExhausted { goal } => Error::EpisodesExhausted { goal },
            ReadError::Store(error) => Error::Store(error),
            ReadError::Remote(error) => Error::Remote(error),
        }
    }
}

impl From<BeginError> for Error {
    fn from(error: BeginError) -> Self {
        match error {
            BeginError::InvalidKey(error) => Error::InvalidKey(error),
            BeginError::AlreadyExists { run } => Error::AlreadyExists { run },
            BeginError::EventTooLarge { run, seq, size, max } => Error::EventTooLarge { run, seq, size, max },
            BeginError::Unencodable { run, seq, source } => Error::Unencodable { run, seq, source },
            BeginError::Read(error) => error.into(),
            BeginError::Write(error) => error.into(),
        }
    }
}

impl From<ResumeError> for Error {
    fn from(error: ResumeError) -> Self {
        match error {
            ResumeError::NotFound { run } => Error::NotFound {
                run,
                remedy: NOTHING_TO_RESUME,
            },
            ResumeError::Finished { run, status } => Error::Finished { run, status },
            ResumeError::Superseded { run } => Error::Superseded { run },
            ResumeError::EpochExhausted { run, epoch } => Error::EpochExhausted { run, epoch },
            ResumeError::Mismatch {
                run,
                field,
                stored,
                expected,
            } => Error::Mismatch {
                run,
                field,
                stored,
                expected,
            },
            ResumeError::Read(error) => error.into(),
            ResumeError::Append(error) => error.into(),
            ResumeError::Write(error) => error.into(),
        }
    }
}

impl From<Box<FinishError>> for Error {
    fn from(error: Box<FinishError>) -> Self {
        Error::Finish(error)
    }
}

impl From<RebuildError> for Error {
    fn from(error: RebuildError) -> Self {
        match error {
            RebuildError::Read(error) => error.into(),
            RebuildError::Write(error) => error.into(),
        }
    }
}

impl From<crate::ForkError> for Error {
    fn from(error: crate::ForkError) -> Self {
        use crate::ForkError;
        match error {
            ForkError::SeqOutOfRange { run, seq, last } => Error::SeqOutOfRange { run, seq, last },
            ForkError::InvalidKey(error) => Error::InvalidKey(error),
            ForkError::AlreadyExists { run } => Error::AlreadyExists { run },
            ForkError::EventTooLarge { run, seq, size, max } => Error::EventTooLarge { run, seq, size, max },
            ForkError::Unencodable { run, seq, source } => Error::Unencodable { run, seq, source },
            ForkError::Read(error) => error.into(),
            ForkError::Write(error) => error.into(),
        }
    }
}

impl From<crate::PurgeError> for Error {
    fn from(error: crate::PurgeError) -> Self {
        use crate::PurgeError;
        match error {
            PurgeError::HasLiveFork { run, child } => Error::HasLiveFork { run, child },
            PurgeError::Read(error) => error.into(),
            PurgeError::Write(error) => error.into(),
        }
    }
}

impl From<crate::SubscribeError> for Error {
    fn from(error: crate::SubscribeError) -> Self {
        use crate::SubscribeError;
        match error {
            SubscribeError::Lagged(point) => Error::Lagged(point),
            SubscribeError::Closed => Error::Closed,
            SubscribeError::Purged { run } => Error::Purged { run },
            SubscribeError::Poisoned { source } => Error::Poisoned { source },
            SubscribeError::WriterStopped => Error::WriterStopped,
            SubscribeError::Thread(source) => Error::Thread {
                thread: "subscription's forwarding",
                source,
            },
            SubscribeError::Read(error) => error.into(),
        }
    }
}

impl From<crate::OperatorError> for Error {
    fn from(error: crate::OperatorError) -> Self {
        use crate::OperatorError;
        match error {
            OperatorError::NotFound { run } => Error::NotFound { run, remedy: "" },
            OperatorError::Refused {
                run,
                action,
                status,
                rule,
            } => Error::ActionRefused {
                run,
                action,
                status,
                rule,
            },
            OperatorError::Read(error) => error.into(),
            OperatorError::Append(error) => error.into(),
            OperatorError::Resume(error) => (*error).into(),
        }
    }
}

impl From<crate::ImportError> for Error {
    fn from(error: crate::ImportError) -> Self {
        use crate::ImportError;
        match error {
            ImportError::Database(error) => (*error).into(),
            ImportError::Write(error) => (*error).into(),
            line => Error::Import(Box::new(line)),
        }
    }
}

#[cfg(test)]
mod tests;
