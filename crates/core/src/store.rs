//! The storage trait every backend implements (sled now, PostgreSQL next).
//!
//! The trait is conditional, not lock-based: every append names the seq it
//! expects to write and the writer's epoch, and the store applies it only if
//! both still hold, in one atomic step (a sled batch, a SQL transaction with
//! `WHERE next_seq = $expected AND epoch <= $epoch`). Nothing here relies on
//! one process holding a lock.
//!
//! Invariants every implementation keeps (checked by `testing::conformance`,
//! feature `testing`):
//! - a run's seqs are gapless from 0; its head (`next_seq`, hash, epoch) is
//!   stored with it and known without scanning;
//! - a batch is stored all or nothing, and a rejected batch writes nothing;
//! - an append whose epoch is older than the run's is `Fenced`; one whose
//!   expected seq is not the run's next seq is a `Conflict` (fencing is checked
//!   first);
//! - a key exists at most once; creating a set of runs is all or nothing,
//!   and so is marking the runs they supersede (a rewind);
//! - a reader that sees a head sees every event before it;
//! - staged events are invisible until their runs are published, and a set
//!   of staged runs is published all or nothing.

use crate::hash::ChainHash;
use crate::key::RunKey;
pub use crate::rules::RunStatus;

/// A store's internal id of a run; not stable across databases (use the key).
pub type RunId = u64;

/// The end of a run's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, serde::Serialize, serde::Deserialize)]
pub struct Head {
    /// The seq the next event gets (the number of events in the run's own log).
    pub next_seq: u64,
    /// The chain hash of the last event (`hash(-1)` when empty).
    pub hash: ChainHash,
    /// The run's current writer epoch.
    pub epoch: u64,
    /// Unix milliseconds of the last event.
    pub last_ts: u64,
}

/// The parent prefix a forked run's history starts with.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, serde::Serialize, serde::Deserialize)]
pub struct ForkBase {
    /// The parent's id in this store.
    pub parent: RunId,
    /// The parent's key.
    pub parent_key: RunKey,
    /// The last parent seq included in the child's history.
    pub seq: u64,
    /// The parent's chain hash at `seq`: the child's `hash(-1)`.
    pub hash: ChainHash,
}

/// What a store keeps about a run besides its events.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// The store's id of the run.
    pub id: RunId,
    /// The run's key.
    pub key: RunKey,
    /// Unix milliseconds when the run was created.
    pub created_ts: u64,
    /// The end of its own log.
    pub head: Head,
    /// Its status after its last event.
    pub status: RunStatus,
    /// The parent prefix, for a forked run.
    pub fork: Option<ForkBase>,
}

/// A run to create, with its first event already encoded at seq 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRun {
    /// The run's key.
    pub key: RunKey,
    /// Unix milliseconds of creation.
    pub created_ts: u64,
    /// The encoded events to store from seq 0 (the first is `run_started`).
    pub records: Vec<Vec<u8>>,
    /// The head after those events.
    pub head: Head,
    /// The status after those events.
    pub status: RunStatus,
    /// The parent prefix, for a fork.
    pub fork: Option<ForkBase>,
    /// An existing run this creation supersedes (a rewind): in the same
    /// atomic step as the creation, that run's status becomes
    /// [`RunStatus::Superseded`] and its head's epoch rises by one, so that
    /// every writer it had is fenced. Its events and head otherwise stay. A
    /// run that no longer exists is left alone. `None` for every other creation.
    pub supersedes: Option<RunId>,
}

/// A persisted projection of a run as of a seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The last seq (in the run's own numbering) folded into it.
    pub seq: u64,
    /// The encoded snapshot.
    pub bytes: Vec<u8>,
}

/// An atomic, conditional append of encoded events to one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendBatch {
    /// The run.
    pub run: RunId,
    /// The seq of the first record; must equal the run's `next_seq`.
    pub expected_seq: u64,
    /// The writer's epoch; must be at least the run's epoch.
    pub epoch: u64,
    /// The encoded events, for seqs `expected_seq..`.
    pub records: Vec<Vec<u8>>,
    /// The head after the batch.
    pub head_after: Head,
    /// The status after the batch.
    pub status_after: RunStatus,
    /// A snapshot stored with the batch; it replaces the run's older
    /// snapshots (a run keeps only its newest). It is never visible before
    /// the batch's events; being derived data, a crash may keep the events
    /// without it (or an older snapshot beside it: the newest is read).
    pub snapshot: Option<SnapshotRecord>,
}

impl RunRecord {
    /// The record as a rewind leaves it: superseded, its writers fenced.
    #[must_use]
    pub fn superseded(&self) -> RunRecord {
        RunRecord {
            status: RunStatus::Superseded,
            head: Head {
                epoch: self.head.epoch.saturating_add(1),
                ..self.head
            },
            ..self.clone()
        }
    }
}

impl NewRun {
    /// The run's fork base with its parent resolved: a run created earlier in
    /// the same call (by key, in `created`) or the id the fork names.
    pub fn resolved_fork(&self, created: &std::collections::HashMap<RunKey, RunId>) -> Option<ForkBase> {
        self.fork.clone().map(|mut fork| {
            if let Some(id) = created.get(&fork.parent_key) {
                fork.parent = *id;
            }
            fork
        })
    }
}

impl AppendBatch {
    /// The condition of a conditional append against the run's current record:
    /// fencing first, then the expected seq.
    pub fn check_against(&self, record: &RunRecord) -> Result<(), AppendRejection> {
        if self.epoch < record.head.epoch {
            return Err(AppendRejection::Fenced {
                epoch: self.epoch,
                current: record.head.epoch,
            });
        }
        if self.expected_seq != record.head.next_seq {
            return Err(AppendRejection::Conflict {
                expected: self.expected_seq,
                actual: record.head.next_seq,
            });
        }
        Ok(())
    }
}

/// Why a conditional append wrote nothing. Exhaustive on purpose: the handle
/// maps each rejection to an error of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendRejection {
    /// The run has a newer epoch than the writer.
    Fenced {
        /// The writer's epoch.
        epoch: u64,
        /// The run's epoch.
        current: u64,
    },
    /// The run's next seq is not the one the writer expected.
    Conflict {
        /// The seq the writer expected to write.
        expected: u64,
        /// The run's actual next seq.
        actual: u64,
    },
    /// No run has that id.
    UnknownRun,
}

/// Which runs `list` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this goal.
    pub goal: Option<String>,
    /// Only runs of this agent.
    pub agent: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
}

impl RunFilter {
    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &RunRecord) -> bool {
        self.goal.as_ref().is_none_or(|goal| *goal == record.key.goal)
            && self.agent.as_ref().is_none_or(|agent| *agent == record.key.agent)
            && self.status.is_none_or(|status| status == record.status)
    }
}

/// Whether a scan goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanControl {
    /// Visit the next record.
    Continue,
    /// Stop here.
    Stop,
}

/// A failure of the store itself (I/O, its own corruption); the caller cannot
/// know what was written and must treat the store as failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O operation failed.
    #[error("storage I/O failed during {operation}: {source}")]
    Io {
        /// What the store was doing.
        operation: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process holds the database.
    #[error("database {path} is locked by another process; stop that process (or open a copy) and try again")]
    Locked {
        /// The database path.
        path: String,
    },
    /// No database exists at the path (read-only opens never create one).
    #[error("no database at {path}")]
    Missing {
        /// The path that was looked at.
        path: String,
    },
    /// The database was written in a format version this build does not read.
    #[error("database {path} has format version {found}; this build reads version {supported} (use a runjournal that reads it)")]
    UnsupportedFormat {
        /// The database path.
        path: String,
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The store's own data structures are damaged.
    #[error("database corrupt: {detail}")]
    Corrupt {
        /// What is damaged.
        detail: String,
    },
    /// A database server's schema is of a version this build does not know.
    #[error("database {database} has schema version {found}; this build knows versions up to {supported} (use a runjournal that reads it)")]
    UnsupportedSchema {
        /// The database (without credentials).
        database: String,
        /// The newest version applied to it.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The connection to the database server failed or was lost before the
    /// operation committed: nothing of it was applied.
    #[error("lost the connection to the database during {operation} (nothing of it was applied): {detail}")]
    Disconnected {
        /// What the store was doing.
        operation: &'static str,
        /// The driver's message.
        detail: String,
    },
    /// The connection was lost while the server committed: the operation may
    /// or may not be applied. Reopen and read the runs' heads to learn which.
    #[error("the outcome of {operation} is unknown: the connection was lost during its commit ({detail}); reopen and read the runs' heads before going on")]
    CommitOutcomeUnknown {
        /// What the store was doing.
        operation: &'static str,
        /// The driver's message.
        detail: String,
    },
    /// Concurrent transactions kept failing the operation (serialization
    /// failures, deadlocks) after every retry: nothing of it was applied, and
    /// it may be tried again.
    #[error("{operation} was rolled back by concurrent transactions {attempts} times (SQLSTATE {code}); nothing was applied, it may be retried")]
    Contended {
        /// What the store was doing.
        operation: &'static str,
        /// The SQLSTATE of the last failure (40001 or 40P01).
        code: String,
        /// How many times it was tried.
        attempts: u32,
    },
    /// The backend failed in another way.
    #[error("storage backend failed during {operation}: {detail}")]
    Backend {
        /// What the store was doing.
        operation: &'static str,
        /// The backend's message.
        detail: String,
    },
    /// An I/O operation on a named file or directory failed.
    #[error("storage I/O failed during {operation} on {path}: {}", describe_io(source))]
    File {
        /// What the store was doing.
        operation: &'static str,
        /// The file or directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The backend panicked on what it read: its files are damaged.
    #[error("database corrupt: sled panicked during {operation}{}: {message}", run_phrase(run.as_ref()))]
    BackendPanicked {
        /// What the store was doing.
        operation: &'static str,
        /// The run being read, when known.
        run: Option<RunKey>,
        /// The panic's message.
        message: String,
    },
    /// An earlier write failed (or the store was closed): the store refuses
    /// every write until the database is reopened (fail-stop).
    #[error("database {path} refuses writes after an earlier failure and must be reopened: {cause}")]
    Poisoned {
        /// The database path.
        path: String,
        /// The first failure.
        cause: String,
    },
    /// A close after a failure: what was applied but may not be durable.
    #[error(
        "database {path} closed without making everything durable: {writes} write batch(es) holding {events} \
         event(s) applied since the last completed sync may not be durable ({cause})"
    )]
    NotDurable {
        /// The database path.
        path: String,
        /// Write batches applied after the last completed sync.
        writes: u64,
        /// Events those batches appended.
        events: u64,
        /// The failure that stopped the store.
        cause: String,
    },
}

/// An OS error as the rest of a sentence: "no space left on device (os error 28)".
fn describe_io(error: &std::io::Error) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text,
    }
}

fn run_phrase(run: Option<&RunKey>) -> String {
    run.map(|key| format!(" of run {key}")).unwrap_or_default()
}

impl StoreError {
    /// A stable machine code for the error, the same in the journal's
    /// umbrella error, the served API and the Python exceptions.
    #[expect(
        clippy::match_same_arms,
        reason = "one arm per variant keeps the code table readable"
    )]
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Io { .. } => "io",
            StoreError::Locked { .. } => "locked",
            StoreError::Missing { .. } => "missing",
            StoreError::UnsupportedFormat { .. } => "unsupported_format",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::Backend { .. } => "backend",
            StoreError::UnsupportedSchema { .. } => "unsupported_format",
            StoreError::Disconnected { .. } => "disconnected",
            StoreError::CommitOutcomeUnknown { .. } => "outcome_unknown",
            StoreError::Contended { .. } => "contended",
            StoreError::File { .. } => "io",
            StoreError::BackendPanicked { .. } => "corrupt",
            StoreError::Poisoned { .. } => "poisoned",
            StoreError::NotDurable { .. } => "not_durable",
        }
    }
}

/// Notifications of changes to a store that other processes write too: a
/// journal's subscriptions use them to deliver events it did not write.
///
/// A notification only says where to look: it may come late, twice, or
/// (a lost connection) not at all. A subscriber reads the runs' heads and
/// catches up by seq from what it delivered last, so nothing is missed or
/// delivered twice, and treats a `wait` that timed out as its cue to look
/// anyway.
pub trait Watch: Send {
    /// Waits at most `timeout` for a change committed by any process. `Some`
    /// names the runs whose heads moved; `None` means the timeout passed, or
    /// runs of unknown ids changed (created, published): look at every run.
    fn wait(&mut self, timeout: std::time::Duration) -> Result<Option<Vec<RunId>>, StoreError>;
}

/// A key that exists already, refusing a create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyExists(pub RunKey);

/// The storage a journal runs on.
pub trait Store: Send + Sync + 'static {
    /// Creates all `runs` in one atomic step, or none when any key exists.
    /// A fork whose `parent_key` names a run created earlier in the same call
    /// gets that run's new id as its parent (its given `parent` id is ignored),
    /// so a parent and its forks can be created together. A run's
    /// [`NewRun::supersedes`] is marked ([`RunRecord::superseded`]) in the
    /// same atomic step.
    fn create_runs(&self, runs: &[NewRun]) -> Result<Result<Vec<RunRecord>, KeyExists>, StoreError>;

    /// Applies each batch conditionally and atomically; the batches of one
    /// call are applied in order. Returns one outcome per batch.
    fn append(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError>;

    /// [`Store::append`] for batches that are **independent**: no caller
    /// relies on the call's batches of different runs being stored together.
    /// Each batch is still conditional and atomic, and each run's accepted
    /// batches of the call are stored all or nothing; a crash before the next
    /// [`Store::sync`] may keep the call's parts of some runs and not of
    /// others. The group-commit writer uses it for the appends it coalesces
    /// (nothing of them is acknowledged before the sync); anything written to
    /// several runs on purpose goes through [`Store::append`] or the other
    /// methods, which stay atomic as a whole. The default is
    /// [`Store::append`].
    fn append_independent(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.append(batches)
    }

    /// Makes everything applied so far durable on stable storage.
    fn sync(&self) -> Result<(), StoreError>;

    /// The run with `id`.
    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError>;

    /// The run with `key`.
    fn find(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError>;

    /// Every run passing `filter`, ordered by key.
    fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// The highest episode of `goal` (of `agent` when given).
    fn max_episode(&self, goal: &str, agent: Option<&str>) -> Result<Option<u32>, StoreError>;

    /// Visits the run's own stored records from `from_seq` in seq order, up to
    /// (excluding) `end_seq`.
    fn scan(
        &self,
        run: RunId,
        from_seq: u64,
        end_seq: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ScanControl,
    ) -> Result<(), StoreError>;

    /// The newest snapshot of the run at or before `at_most_seq`.
    fn latest_snapshot(&self, run: RunId, at_most_seq: u64) -> Result<Option<SnapshotRecord>, StoreError>;

    /// The ids of runs forked from `run`.
    fn children(&self, run: RunId) -> Result<Vec<RunId>, StoreError>;

    /// Deletes the runs with their events and snapshots; returns the bytes freed.
    fn delete_runs(&self, runs: &[RunId]) -> Result<u64, StoreError>;

    /// Removes every snapshot of the run, then stores `snapshot` if given.
    fn replace_snapshots(&self, run: RunId, snapshot: Option<SnapshotRecord>) -> Result<(), StoreError>;

    /// Makes everything applied durable and stops accepting writes. After a
    /// failure it returns at once, saying what may not be durable, instead of
    /// waiting on storage that failed. The default is a [`Store::sync`].
    fn close(&self) -> Result<(), StoreError> {
        self.sync()
    }

    /// Reserves a fresh id for a run being staged (an import streaming a
    /// large file); the id is never handed out again.
    fn reserve_run_id(&self) -> Result<RunId, StoreError>;

    /// Stores encoded events of a reserved, unpublished run, for seqs
    /// `first_seq..`. They are invisible (no run record or key names them;
    /// `scan` of the reserved id reads them) until [`Store::publish_staged`].
    fn stage(&self, run: RunId, first_seq: u64, records: &[Vec<u8>]) -> Result<(), StoreError>;

    /// Publishes staged runs in one atomic step: their run records (with the
    /// reserved ids, heads covering the staged events), key index and lineage
    /// entries; or nothing, when a key exists.
    fn publish_staged(&self, runs: &[RunRecord]) -> Result<Result<(), KeyExists>, StoreError>;

    /// Removes the staged events of unpublished runs.
    fn discard_staged(&self, runs: &[RunId]) -> Result<(), StoreError>;

    /// Raises the run's epoch to `epoch` in one atomic step, unless it is
    /// already `epoch` or newer; returns whether this call raised it. A
    /// resume claims its epoch this way before it reads the head, so that a
    /// writer of an older epoch in another process is fenced at its next
    /// append and the head the resume reads stays put. Nothing else of the
    /// run changes.
    ///
    /// Only a store several processes write at once (PostgreSQL) needs it:
    /// in a store one journal writes, the journal fences its own older
    /// handles before they queue. The default changes nothing and returns
    /// `false` (the resume then takes the epoch after the head's).
    fn claim_epoch(&self, run: RunId, epoch: u64) -> Result<bool, StoreError> {
        let _ = (run, epoch);
        Ok(false)
    }

    /// A [`Watch`] on changes any process commits, for a store other
    /// processes write too (PostgreSQL). `None` (the default): only this
    /// process writes the store, and its journal delivers its own appends
    /// to its subscribers directly.
    fn watch(&self) -> Result<Option<Box<dyn Watch>>, StoreError> {
        Ok(None)
    }
}
