//! runjournal: an embedded, event-sourced, hash-chained journal for AI-agent runs.
//!
//! Every fact of a run — step, phase boundary, compaction, handoff, death,
//! outcome — is appended to an immutable per-run log in sled, each event
//! chained to the previous one with blake3. The log is folded into the state a
//! runtime resumes from ([`ResumeState`]): the current context segment's
//! transcript, completed phases, the compaction flag, handoffs, tasks and the
//! failure. Nothing stored can change without the journal saying so: every
//! read verifies the chain, and every problem is a typed error naming the run
//! and the seq.
//!
//! A run is identified by a stable [`RunKey`] `(goal, episode, agent)`, so a
//! new process finds the run a crashed one left. A [`Journal`] is the
//! embedded handle: one writer thread applies appends from every thread and
//! task, shares one fsync among all of them (group commit), and fails stop on
//! a storage error. A [`Run`] appends with one epoch; resuming opens a newer
//! epoch and fences older handles.
//!
//! ```
//! use runjournal::{Journal, Message, Options, Outcome, Role, RunKey, RunMeta};
//!
//! # fn main() -> Result<(), runjournal::Error> {
//! # let dir = tempfile::tempdir().map_err(|source| runjournal::StoreError::Io { operation: "tempdir", source })?;
//! # let path = dir.path().join("journal.db");
//! let key = RunKey::new("fix-login-bug", 0, "orchestrator-0")?;
//! {
//!     // First process: a phase completes, the next one starts, then a crash.
//!     let journal = Journal::open(&path, Options::default())?;
//!     let run = journal.begin(key.clone(), RunMeta::default())?;
//!     run.phase_started(0, "investigate")?;
//!     run.step(vec![Message::new(Role::Assistant, "reading auth.rs")])?;
//!     run.phase_completed(0, "investigate", "expiry is off by one")?;
//!     run.phase_started(1, "patch")?;
//! } // dropped without finishing: the run stays recoverable
//!
//! // A new process finds it by its stable key and resumes where it stopped.
//! let journal = Journal::open(&path, Options::default())?;
//! assert_eq!(journal.recoverable()?.len(), 1);
//! let (run, state) = journal.resume(&key)?;
//! assert_eq!(state.completed_phase_indices(), vec![0]); // skip phase 0
//! assert_eq!(state.phases.active.as_ref().map(|phase| phase.index), Some(1)); // re-run phase 1
//! assert_eq!(state.transcript.len(), 1);
//! run.phase_started(1, "patch")?;
//! run.phase_completed(1, "patch", "fixed")?;
//! run.finish(Outcome::Success { output: Some("done".into()) })?;
//! assert!(journal.recoverable()?.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! Modules of the workspace: `runjournal-core` (keys, events, stored format,
//! chain, fold, storage trait; no I/O), `runjournal-sled` (the sled store),
//! this crate (the handle: writer thread, durability, sync and async API,
//! subscriptions, lineage, import), `runjournal-cli` (the `runjournal` binary).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod asynchronous;
mod backend;
mod close;
mod error;
mod follow;
mod history;
mod hub;
mod import;
mod import_lines;
mod journal;
mod lineage;
pub mod location;
mod metrics;
mod oneshot;
mod operator;
mod options;
mod published;
mod remote;
mod run;
mod scoped;
mod serve;
mod spent;
mod subscription;
pub mod wire;
mod writer;

pub use backend::Journal;
pub use error::{
    AbandonReason, AppendError, BeginError, Error, FinishError, OpenError, ReadError, RebuildError, ResumeError,
    WriteError,
};
pub use hub::LagPoint;
pub use import::{line_limit as import_line_limit, ImportError, ImportReport, ImportedRun};
pub use journal::{Expect, VerifyReport};
pub use lineage::{ExportItem, ForkError, PurgeError, PurgePolicy, PurgeReport, RunDiff};
pub use metrics::MetricsSnapshot;
pub use operator::{OperatorError, OperatorReport, OPERATOR_FAILURE_KIND};
pub use options::{Clock, Durability, Options};
pub use remote::{ConnectOptions, Refusal, RemoteError};
pub use run::{CompactionInfo, Handoff, Outcome, Run};
pub use scoped::{ErrorOutcome, RunOutput, ScopedError};
#[doc(hidden)]
pub use serve::serve_bytes;
pub use serve::{Endpoint, Route, ServeError, ServeHandle, ServeOptions, ROUTES};
pub use subscription::{AsyncSubscription, SubscribeError, Subscription};
pub use writer::StoreFailure;

pub use runjournal_core as core;
pub use runjournal_core::fold::{self, ResumeState};
pub use runjournal_core::{
    ChainHash, CompactionSource, ConflictStrategy, Envelope, ErrorInfo, Event, ForkPoint, IntegrityError,
    IntegrityProblem, InterruptCause, KeyError, Message, OrderViolation, Role, RotationReason, RunFilter, RunKey,
    RunMeta, RunRecord, RunStatus, StoreError, TaskResult,
};
