//! [`Run`]: the handle a runtime appends through.
//!
//! Invariants:
//! - A handle writes with one epoch. Once a newer handle of its run exists in
//!   this process it is fenced before it queues anything; the store fences it
//!   against newer epochs from anywhere.
//! - Appends are prepared (validated, encoded, chained, folded) and queued to
//!   the writer under the handle's lock, so the writer receives them in seq
//!   order. A durable append then waits for the writer's answer without the
//!   lock; a buffered one returns at once while the writer keeps up: it waits
//!   when those in flight hold more than the writer applies in a quarter flush
//!   interval, and for a sync when the oldest unsynced one returned half an
//!   interval ago (the loss window is bounded by time, docs/library.md).
//! - A run's boundaries (`run_started`, `attached`, `agent_died`, the terminal
//!   events) return only once durable in every mode: a batch holding one is
//!   never detached and asks the writer for a sync (shared by its group).
//! - The handle's head and resume state already include queued appends. If a
//!   queued append then fails (fenced, rejected, storage failure), even after
//!   it returned, the handle is broken: every later append fails with that
//!   cause, and its view (state, next seq) is read back from the store before
//!   it is next shown, so it never includes what was not stored.
//! - A handle dropped while its thread panics, without `finish`, records
//!   `run_failed` with kind `panic`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use runjournal_core::fold::ResumeState;
use runjournal_core::rules::{self, Arrival, OrderViolation};
use runjournal_core::snapshot::encode_snapshot;
use runjournal_core::{
    AppendBatch, AppendRejection, ChainWriter, CompactionSource, ErrorInfo, Event, InterruptCause, Message, RunId,
    RunKey, RunStatus, SnapshotRecord, TaskResult,
};
use runjournal_core::{Envelope, RunRecord};

use crate::error::{AbandonReason, AppendError, FinishError, ReadError};
use crate::history::fold_state;
use crate::journal::{Inner, Local};
use crate::published::{scratch_envelope, Published, Stamped};
use crate::remote::RemoteRun;
use crate::writer::{AppendOutcome, Command, CommitHere, Detached, DetachedSink, Health, Reply};

/// How a run ended, for [`Run::finish`].
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The run succeeded: `run_completed`.
    Success {
        /// Its final output.
        output: Option<String>,
    },
    /// The process is shutting down: `run_interrupted`, left for recovery.
    Shutdown,
    /// The run failed: `run_failed`, with cleanup failures kept apart.
    Failure {
        /// The primary failure.
        error: ErrorInfo,
        /// Failures of cleanup after it.
        cleanup_errors: Vec<ErrorInfo>,
    },
}

impl Outcome {
    /// A failure with no cleanup errors.
    pub fn failure(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome::Failure {
            error: ErrorInfo::new(kind, message),
            cleanup_errors: Vec::new(),
        }
    }

    pub(crate) fn failure_parts(&self) -> (Option<ErrorInfo>, Vec<ErrorInfo>) {
        match self {
            Outcome::Failure { error, cleanup_errors } => (Some(error.clone()), cleanup_errors.clone()),
            _ => (None, Vec::new()),
        }
    }

    pub(crate) fn into_event(self) -> Event {
        match self {
            Outcome::Success { output } => Event::RunCompleted { output },
            Outcome::Shutdown => Event::RunInterrupted {
                cause: InterruptCause::Shutdown,
            },
            Outcome::Failure { error, cleanup_errors } => Event::RunFailed { error, cleanup_errors },
        }
    }
}

/// What a `compaction_started` or `compaction_done` says besides its source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionInfo {
    /// An id shared by the start and the done.
    pub id: Option<String>,
    /// The summary opening the new segment (done only).
    pub summary: Option<String>,
    /// Messages in context (before for a start, after for a done).
    pub messages: Option<u64>,
    /// Tokens in context (before for a start, after for a done).
    pub tokens: Option<u64>,
}

/// A handoff to send, for [`Run::handoff_sent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handoff {
    /// The handoff's id.
    pub id: String,
    /// The sender.
    pub from: String,
    /// The receiver: the only agent that may ack or reject.
    pub to: String,
    /// The generation.
    pub generation: u64,
    /// The payload version, `M.m.p`.
    pub version: String,
    /// Hex digest of the payload.
    pub content_hash: String,
    /// How long the sender waits.
    pub timeout_ms: u64,
}

/// A handle on one run, writing with one epoch: the embedded journal's, or a
/// connection's to the journal's owner ([`Journal::connect`](crate::Journal::connect)).
pub struct Run {
    backend: RunBackend,
}

#[expect(
    clippy::large_enum_variant,
    reason = "the embedded handle stays inline: boxing it would add an allocation and an indirection to every embedded append"
)]
enum RunBackend {
    Local(LocalRun),
    Remote(RemoteRun),
}

/// The embedded backend of a [`Run`].
pub(crate) struct LocalRun {
    inner: Arc<Inner>,
    id: RunId,
    key: RunKey,
    /// The key again, shared with the events this handle publishes.
    shared_key: Arc<RunKey>,
    epoch: u64,
    /// The newest epoch any handle of this run was opened with in this process.
    latest_epoch: Arc<AtomicU64>,
    cursor: Mutex<Cursor>,
    /// Why this handle may no longer write, set by a failed append (also one
    /// answered after it returned, in `Buffered` mode).
    broken: Arc<Mutex<Option<Broken>>>,
    /// Set when a queued append failed: the cursor holds what was not stored
    /// and is refolded from the store before it is next used.
    stale_view: Arc<AtomicBool>,
    /// Records the answers of this handle's detached appends.
    detached_sink: DetachedSink<AppendOutcome>,
    finished: AtomicBool,
    /// This handle's registration at its epoch (see [`Inner::claim`]).
    _claim: Arc<()>,
    /// The server of a journal opened with `Options::serve`, kept running
    /// while this handle lives (`None` for the server's own handles).
    _serving: Option<Arc<crate::serve::Serving>>,
}

struct Cursor {
    /// The chain after the last queued append: the run's head as this handle sees it.
    writer: ChainWriter,
    state: ResumeState,
    since_snapshot: u64,
    /// The envelope queued events are folded through ([`Stamped::fold_taking`]).
    scratch: Envelope,
}

#[derive(Clone, Debug)]
enum Broken {
    Fenced {
        current: u64,
    },
    Rejected {
        seq: u64,
        reason: AbandonReason,
    },
    /// The run was purged: nothing from `seq` on is stored.
    Deleted {
        seq: u64,
    },
    /// The writer thread is gone.
    WriterStopped,
}

/// How the caller of an append learns its outcome.
pub(crate) enum Delivery {
    /// It waits on a channel; `true`: until it is synced, whatever the mode.
    Blocking(crate::oneshot::Sender<AppendOutcome>, bool),
    /// It awaits a oneshot; `true`: until it is synced, whatever the mode.
    Async(tokio::sync::oneshot::Sender<AppendOutcome>, bool),
    /// It returned already (`Buffered`); a failure breaks the handle.
    Detached,
}

/// Whether a buffered append returns before it is applied.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detach {
    /// It returns once queued.
    Yes,
    /// It waits until it is applied (and, when the mode or the events ask
    /// for it, synced).
    No,
    /// It waits until it is synced: earlier appends that returned wait too long.
    WaitForSync,
}

/// An append queued to the writer, waiting for its answer.
pub(crate) struct Queued {
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
    /// The envelopes queued, when the caller asked to keep them.
    pub(crate) envelopes: Option<Vec<Envelope>>,
}

/// A served append handed to the writer, its answer still to come.
pub(crate) struct ClientAppend {
    span: tracing::Span,
    queued: Queued,
    /// `None`: it returned once queued (`Buffered`).
    receiver: Option<tokio::sync::oneshot::Receiver<AppendOutcome>>,
}

impl ClientAppend {
    /// The envelopes written, once the journal's durability mode is
    /// satisfied; `run` is the handle that queued it.
    async fn wait(mut self, run: &LocalRun) -> Result<Vec<Envelope>, AppendError> {
        let envelopes = self.queued.envelopes.take().unwrap_or_default();
        let Some(receiver) = self.receiver else {
            return Ok(envelopes);
        };
        // The writer drops a reply unanswered only when it panics.
        let outcome = receiver.await.map_err(|_| AppendError::WriterStopped)?;
        self.span.in_scope(|| run.settle(self.queued, outcome))?;
        Ok(envelopes)
    }
}

/// Which checks an append gets beyond docs/format.md's ordering rules.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checks {
    /// Raw appends and imports: the fold records anomalies.
    Raw,
    /// Typed methods: refuse what the fold would ignore.
    Typed,
    /// `resume`'s `attached`, which opens the handle's epoch.
    Attach,
}

/// A served append's `checks` (the wire offers no `Attach`: only a resume opens an epoch).
impl From<crate::wire::ChecksMode> for Checks {
    fn from(mode: crate::wire::ChecksMode) -> Checks {
        match mode {
            crate::wire::ChecksMode::Raw => Checks::Raw,
            crate::wire::ChecksMode::Typed => Checks::Typed,
        }
    }
}

impl Run {
    /// An embedded handle (see [`LocalRun::new`]).
    pub(crate) fn new(journal: &Local, record: &RunRecord, epoch: u64, state: ResumeState, since_snapshot: u64) -> Run {
        Run::local(LocalRun::new(journal, record, epoch, state, since_snapshot))
    }

    /// [`Run::new`] with a registration already made (see `Inner::claim`).
    pub(crate) fn with_claim(
        journal: &Local,
        record: &RunRecord,
        epoch: u64,
        state: ResumeState,
        since_snapshot: u64,
        claim: Arc<()>,
    ) -> Run {
        Run::local(LocalRun::with_claim(
            journal,
            record,
            epoch,
            state,
            since_snapshot,
            claim,
        ))
    }

    pub(crate) fn local(run: LocalRun) -> Run {
        Run {
            backend: RunBackend::Local(run),
        }
    }

    pub(crate) fn remote(run: RemoteRun) -> Run {
        Run {
            backend: RunBackend::Remote(run),
        }
    }

    /// The run's key.
    pub fn key(&self) -> &RunKey {
        match &self.backend {
            RunBackend::Local(run) => run.key(),
            RunBackend::Remote(run) => run.key(),
        }
    }

    /// The epoch this handle writes with.
    pub fn epoch(&self) -> u64 {
        match &self.backend {
            RunBackend::Local(run) => run.epoch(),
            RunBackend::Remote(run) => run.epoch(),
        }
    }

    /// The seq the next append gets. After a failed append: the run's next
    /// seq as stored.
    pub fn next_seq(&self) -> u64 {
        match &self.backend {
            RunBackend::Local(run) => run.next_seq(),
            RunBackend::Remote(run) => run.next_seq(),
        }
    }

    /// The run's resume state including every append made through this handle.
    /// After a failed append (a conflict, a fence, a storage failure, also one
    /// reported after a `Buffered` append returned): the state as stored,
    /// without what was not stored.
    pub fn state(&self) -> ResumeState {
        match &self.backend {
            RunBackend::Local(run) => run.state(),
            RunBackend::Remote(run) => run.state(),
        }
    }

    /// Appends `events` as one atomic batch at the run's next seq; returns the
    /// last seq written. The fold records anomalies for events it ignores.
    pub fn append(&self, events: Vec<Event>) -> Result<u64, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => run.append(events),
            RunBackend::Remote(run) => run.append(None, events, Checks::Raw),
        }
    }

    /// Appends `events` as one atomic batch that must start at `expected_seq`;
    /// a mismatch is [`AppendError::Conflict`] and writes nothing.
    pub fn append_at(&self, expected_seq: u64, events: Vec<Event>) -> Result<u64, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => run.append_at(expected_seq, events),
            RunBackend::Remote(run) => run.append(Some(expected_seq), events, Checks::Raw),
        }
    }

    /// Records the run's outcome: `run_completed`, `run_interrupted` or
    /// `run_failed`. When storing a failure fails, the error carries both the
    /// run's failure and the storage failure.
    pub fn finish(self, outcome: Outcome) -> Result<u64, Box<FinishError>> {
        match self.backend {
            RunBackend::Local(run) => run.finish(outcome),
            RunBackend::Remote(run) => run.finish(&outcome),
        }
    }

    /// Records the run's outcome like [`Run::finish`] but keeps the handle, so
    /// that `teardown` may follow: resources are released after the outcome
    /// (docs/format.md). Every other event after it is `OutOfOrder`.
    pub fn conclude(&self, outcome: Outcome) -> Result<u64, Box<FinishError>> {
        match &self.backend {
            RunBackend::Local(run) => run.conclude(outcome),
            RunBackend::Remote(run) => run.finish(&outcome),
        }
    }

    /// [`Run::append`], resolving once the journal's durability mode is satisfied.
    pub async fn append_async(&self, events: Vec<Event>) -> Result<u64, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => run.append_async(events).await,
            RunBackend::Remote(run) => run.append_async(None, events, Checks::Raw).await,
        }
    }

    /// [`Run::append_at`], resolving once the journal's durability mode is satisfied.
    pub async fn append_at_async(&self, expected_seq: u64, events: Vec<Event>) -> Result<u64, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => run.append_at_async(expected_seq, events).await,
            RunBackend::Remote(run) => run.append_async(Some(expected_seq), events, Checks::Raw).await,
        }
    }

    /// [`Run::finish`], resolving once the outcome is stored.
    pub async fn finish_async(self, outcome: Outcome) -> Result<u64, Box<FinishError>> {
        match self.backend {
            RunBackend::Local(run) => run.finish_async(outcome).await,
            RunBackend::Remote(run) => run.finish_async(&outcome).await,
        }
    }

    /// The served API's append (see `LocalRun::append_for_client`); a
    /// connected handle is never served.
    pub(crate) async fn append_for_client(
        &self,
        expected_seq: u64,
        events: Vec<Event>,
        checks: Checks,
    ) -> Result<Vec<Envelope>, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => run.append_for_client(expected_seq, events, checks).await,
            RunBackend::Remote(_) => Err(AppendError::WriterStopped),
        }
    }

    /// The served API's append handed to the writer without waiting (see
    /// `LocalRun::queue_for_client`); a connected handle is never served.
    pub(crate) fn queue_for_client(
        &self,
        expected_seq: u64,
        events: Vec<Event>,
        checks: Checks,
    ) -> Result<ClientAppend, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => run.queue_for_client(expected_seq, events, checks),
            RunBackend::Remote(_) => Err(AppendError::WriterStopped),
        }
    }

    /// The answer of an append [`Run::queue_for_client`] queued on this handle.
    pub(crate) async fn wait_for_client(&self, append: ClientAppend) -> Result<Vec<Envelope>, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => append.wait(run).await,
            RunBackend::Remote(_) => Err(AppendError::WriterStopped),
        }
    }

    /// The chain hash of the run's last event as an embedded handle sees it
    /// (connected: the genesis hash; the owner checks the chain).
    pub(crate) fn head_hash(&self) -> runjournal_core::ChainHash {
        match &self.backend {
            RunBackend::Local(run) => run.head_hash(),
            RunBackend::Remote(_) => runjournal_core::ChainHash::GENESIS,
        }
    }

    /// Whether a failed append broke the embedded handle.
    pub(crate) fn is_broken(&self) -> bool {
        match &self.backend {
            RunBackend::Local(run) => run.is_broken(),
            RunBackend::Remote(_) => true,
        }
    }

    fn typed(&self, event: Event) -> Result<u64, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => run.typed(event),
            RunBackend::Remote(run) => run.append(None, vec![event], Checks::Typed),
        }
    }

    async fn typed_async(&self, event: Event) -> Result<u64, AppendError> {
        match &self.backend {
            RunBackend::Local(run) => run.typed_async(event).await,
            RunBackend::Remote(run) => run.append_async(None, vec![event], Checks::Typed).await,
        }
    }
}

impl LocalRun {
    pub(crate) fn new(
        journal: &Local,
        record: &RunRecord,
        epoch: u64,
        state: ResumeState,
        since_snapshot: u64,
    ) -> LocalRun {
        let claim = journal.inner.claim(record.id, epoch, false).unwrap_or_default();
        LocalRun::with_claim(journal, record, epoch, state, since_snapshot, claim)
    }

    /// [`LocalRun::new`] with a registration already made.
    pub(crate) fn with_claim(
        journal: &Local,
        record: &RunRecord,
        epoch: u64,
        state: ResumeState,
        since_snapshot: u64,
        claim: Arc<()>,
    ) -> LocalRun {
        let inner = &journal.inner;
        let broken = Arc::new(Mutex::new(None));
        let stale_view = Arc::new(AtomicBool::new(false));
        let detached_sink = detached_sink(inner.writer.health.clone(), broken.clone(), stale_view.clone());
        LocalRun {
            inner: inner.clone(),
            _serving: journal.serving.clone(),
            id: record.id,
            key: record.key.clone(),
            shared_key: Arc::new(record.key.clone()),
            epoch,
            latest_epoch: inner.epoch_cell(record.id, epoch),
            cursor: Mutex::new(Cursor {
                writer: ChainWriter::new(record.key.clone(), record.head, inner.options.max_event_size),
                state,
                since_snapshot,
                scratch: scratch_envelope(record.key.clone()),
            }),
            broken,
            stale_view,
            detached_sink,
            finished: AtomicBool::new(false),
            _claim: claim,
        }
    }

    /// The run's key.
    pub fn key(&self) -> &RunKey {
        &self.key
    }

    /// The epoch this handle writes with.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The seq the next append gets. After a failed append: the run's next
    /// seq as stored.
    pub fn next_seq(&self) -> u64 {
        self.view().writer.head().next_seq
    }

    /// The run's resume state including every append made through this handle.
    /// After a failed append (a conflict, a fence, a storage failure, also one
    /// reported after a `Buffered` append returned): the state as stored,
    /// without what was not stored.
    pub fn state(&self) -> ResumeState {
        self.view().state.clone()
    }

    /// Appends `events` as one atomic batch at the run's next seq; returns the
    /// last seq written. The fold records anomalies for events it ignores.
    pub fn append(&self, events: Vec<Event>) -> Result<u64, AppendError> {
        self.append_checked(None, events, Checks::Raw)
    }

    /// Appends `events` as one atomic batch that must start at `expected_seq`;
    /// a mismatch is [`AppendError::Conflict`] and writes nothing.
    pub fn append_at(&self, expected_seq: u64, events: Vec<Event>) -> Result<u64, AppendError> {
        self.append_checked(Some(expected_seq), events, Checks::Raw)
    }

    /// Records the run's outcome: `run_completed`, `run_interrupted` or
    /// `run_failed`. When storing a failure fails, the error carries both the
    /// run's failure and the storage failure.
    pub fn finish(self, outcome: Outcome) -> Result<u64, Box<FinishError>> {
        self.finished.store(true, Ordering::SeqCst);
        self.record_outcome(outcome)
    }

    /// Records the run's outcome like [`Run::finish`] but keeps the handle, so
    /// that `teardown` may follow: resources are released after the outcome
    /// (docs/format.md). Every other event after it is `OutOfOrder`.
    pub fn conclude(&self, outcome: Outcome) -> Result<u64, Box<FinishError>> {
        self.finished.store(true, Ordering::SeqCst);
        self.record_outcome(outcome)
    }

    fn record_outcome(&self, outcome: Outcome) -> Result<u64, Box<FinishError>> {
        let (primary, cleanup_errors) = outcome.failure_parts();
        self.append_checked(None, vec![outcome.into_event()], Checks::Raw)
            .map_err(|source| {
                Box::new(FinishError {
                    primary,
                    cleanup_errors,
                    source,
                })
            })
    }

    fn typed(&self, event: Event) -> Result<u64, AppendError> {
        self.append_checked(None, vec![event], Checks::Typed)
    }

    async fn typed_async(&self, event: Event) -> Result<u64, AppendError> {
        self.append_checked_async(None, vec![event], Checks::Typed).await
    }

    pub(crate) async fn append_checked_async(
        &self,
        expected_seq: Option<u64>,
        events: Vec<Event>,
        checks: Checks,
    ) -> Result<u64, AppendError> {
        let span = self.append_span(events.len());
        let detach = self.may_detach(&events, checks);
        if detach == Detach::Yes {
            let queued = span.in_scope(|| self.queue(expected_seq, events, checks, Delivery::Detached, false))?;
            span.record("seq", queued.first_seq);
            return Ok(queued.last_seq);
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let delivery = Delivery::Async(sender, detach == Detach::WaitForSync);
        let queued = span.in_scope(|| self.queue(expected_seq, events, checks, delivery, false))?;
        span.record("seq", queued.first_seq);
        // The writer drops a reply unanswered only when it panics.
        let outcome = receiver.await.map_err(|_| AppendError::WriterStopped)?;
        span.in_scope(|| self.settle(queued, outcome))
    }

    /// [`Run::append_at`] for a client of the served API: returns the
    /// envelopes written, once the journal's durability mode is satisfied.
    pub(crate) async fn append_for_client(
        &self,
        expected_seq: u64,
        events: Vec<Event>,
        checks: Checks,
    ) -> Result<Vec<Envelope>, AppendError> {
        self.queue_for_client(expected_seq, events, checks)?.wait(self).await
    }

    /// The first half of [`LocalRun::append_for_client`]: the append is
    /// checked and handed to the writer now (appends queued one after
    /// another share its commits); [`ClientAppend::wait`] gives its answer.
    pub(crate) fn queue_for_client(
        &self,
        expected_seq: u64,
        events: Vec<Event>,
        checks: Checks,
    ) -> Result<ClientAppend, AppendError> {
        let span = self.append_span(events.len());
        let detach = self.may_detach(&events, checks);
        if detach == Detach::Yes {
            let queued = span.in_scope(|| self.queue(Some(expected_seq), events, checks, Delivery::Detached, true))?;
            return Ok(ClientAppend {
                span,
                queued,
                receiver: None,
            });
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let delivery = Delivery::Async(sender, detach == Detach::WaitForSync);
        let queued = span.in_scope(|| self.queue(Some(expected_seq), events, checks, delivery, true))?;
        Ok(ClientAppend {
            span,
            queued,
            receiver: Some(receiver),
        })
    }

    /// The chain hash of the run's last event as this handle sees it.
    pub(crate) fn head_hash(&self) -> runjournal_core::ChainHash {
        self.view().writer.head().hash
    }

    /// Whether a failed append broke the handle (it writes nothing more).
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
            || self.latest_epoch.load(Ordering::Acquire) > self.epoch
    }

    /// The `append` span: the run, the batch size and (once queued) its first seq.
    fn append_span(&self, events: usize) -> tracing::Span {
        tracing::debug_span!("append", run = %self.key, events, seq = tracing::field::Empty)
    }

    /// [`Run::append`], resolving once the journal's durability mode is satisfied.
    pub async fn append_async(&self, events: Vec<Event>) -> Result<u64, AppendError> {
        self.append_checked_async(None, events, Checks::Raw).await
    }

    /// [`Run::append_at`], resolving once the journal's durability mode is satisfied.
    pub async fn append_at_async(&self, expected_seq: u64, events: Vec<Event>) -> Result<u64, AppendError> {
        self.append_checked_async(Some(expected_seq), events, Checks::Raw).await
    }

    /// [`Run::finish`], resolving once the outcome is stored.
    pub async fn finish_async(self, outcome: Outcome) -> Result<u64, Box<FinishError>> {
        self.finished.store(true, Ordering::SeqCst);
        let (primary, cleanup_errors) = outcome.failure_parts();
        self.append_checked_async(None, vec![outcome.into_event()], Checks::Raw)
            .await
            .map_err(|source| {
                Box::new(FinishError {
                    primary,
                    cleanup_errors,
                    source,
                })
            })
    }

    pub(crate) fn append_checked(
        &self,
        expected_seq: Option<u64>,
        events: Vec<Event>,
        checks: Checks,
    ) -> Result<u64, AppendError> {
        let span = self.append_span(events.len());
        let _entered = span.enter();
        let detach = self.may_detach(&events, checks);
        if detach == Detach::Yes {
            let queued = self.queue(expected_seq, events, checks, Delivery::Detached, false)?;
            span.record("seq", queued.first_seq);
            return Ok(queued.last_seq);
        }
        let (sender, receiver) = crate::oneshot::channel();
        let delivery = Delivery::Blocking(sender, detach == Detach::WaitForSync);
        let queued = self.queue(expected_seq, events, checks, delivery, false)?;
        span.record("seq", queued.first_seq);
        // The writer drops a reply unanswered only when it panics.
        let outcome = receiver.recv().map_err(|_| AppendError::WriterStopped)?;
        self.settle(queued, outcome)
    }

    /// Whether the append may return before it is applied: in `Buffered` mode,
    /// while the writer is not too far behind, for anything but a run boundary
    /// (which returns only once durable, in every mode). The writer is too far
    /// behind when the buffered appends that returned and are not applied
    /// hold more than it applies and syncs in a quarter of the flush interval
    /// (at most 32 MiB; the append then waits until it is applied), or when the oldest that returned and is not synced returned
    /// half a flush interval ago or earlier (the append then waits until it
    /// is synced, and with it everything queued before it): what returned is
    /// synced within the flush interval plus the writer's time to apply and
    /// sync that much, however fast the producer.
    fn may_detach(&self, events: &[Event], checks: Checks) -> Detach {
        let health = &self.inner.writer.health;
        if self.inner.options.durability != crate::Durability::Buffered
            || checks == Checks::Attach
            || events.iter().any(rules::is_boundary)
        {
            return Detach::No;
        }
        let half_interval = self.inner.options.flush_interval / 2;
        if health
            .oldest_unsynced()
            .is_some_and(|returned| returned.elapsed() >= half_interval)
        {
            return Detach::WaitForSync;
        }
        if health.in_flight.load(Ordering::Relaxed) >= health.in_flight_limit.load(Ordering::Relaxed) {
            return Detach::No;
        }
        Detach::Yes
    }

    /// Prepares the append and hands it to the writer: queued under the
    /// handle's lock, or, for a blocking durable append when the writer is
    /// idle, committed on this thread once that lock is released.
    pub(crate) fn queue(
        &self,
        expected_seq: Option<u64>,
        events: Vec<Event>,
        checks: Checks,
        delivery: Delivery,
        keep: bool,
    ) -> Result<Queued, AppendError> {
        let (queued, here) = self.dispatch(expected_seq, events, checks, delivery, keep)?;
        if let Some((here, command)) = here {
            here.commit(command);
        }
        Ok(queued)
    }

    /// [`LocalRun::queue`] up to the hand-over: the append is queued, or the
    /// right to commit it here is taken (under the handle's lock, so the
    /// run's later appends queue behind it) and returned with it.
    fn dispatch(
        &self,
        expected_seq: Option<u64>,
        events: Vec<Event>,
        checks: Checks,
        delivery: Delivery,
        keep: bool,
    ) -> Result<(Queued, Option<(CommitHere<'_>, Command)>), AppendError> {
        // What the writer is done with is freed here, on the thread that
        // allocated it (see `crate::spent`).
        self.inner.writer.health.spent.free_some();
        let mut cursor = self.view();
        self.check_usable(&cursor)?;
        let first_seq = cursor.writer.head().next_seq;
        if let Some(expected) = expected_seq {
            if expected != first_seq {
                return Err(AppendError::Conflict {
                    run: self.key.clone(),
                    expected,
                    actual: first_seq,
                });
            }
        }
        let mut prepared = self.prepare(&mut cursor, events, checks)?;
        let last_seq = first_seq + prepared.events.len() as u64 - 1;
        let boundary = prepared.events.iter().any(|stamped| rules::is_boundary(&stamped.event));
        let kept: Option<Vec<Envelope>> = keep.then(|| {
            prepared
                .events
                .iter()
                .map(|stamped| stamped.envelope(&self.key))
                .collect()
        });
        // The fold takes the events' messages: the records carry the events
        // from here (subscribers get them decoded from the records).
        let Cursor { state, scratch, .. } = &mut *cursor;
        for stamped in &mut prepared.events {
            stamped.fold_taking(state, scratch);
        }
        drop(prepared.events);
        let every = self.inner.options.snapshot_every;
        cursor.since_snapshot += last_seq + 1 - first_seq;
        let snapshot = (every > 0 && cursor.since_snapshot >= every).then(|| {
            cursor.since_snapshot = 0;
            SnapshotRecord {
                seq: last_seq,
                bytes: encode_snapshot(&cursor.state),
            }
        });
        let batch = AppendBatch {
            run: self.id,
            expected_seq: first_seq,
            epoch: self.epoch,
            records: prepared.records,
            head_after: cursor.writer.head(),
            status_after: cursor.state.status,
            snapshot,
        };
        let wait_for_sync = matches!(delivery, Delivery::Blocking(_, true) | Delivery::Async(_, true));
        let durable = self.inner.options.durability == crate::Durability::Durable || wait_for_sync || boundary;
        let detached = matches!(delivery, Delivery::Detached);
        let reply = match delivery {
            Delivery::Blocking(sender, _) => Reply::Blocking(sender),
            Delivery::Async(sender, _) => Reply::Async(sender),
            Delivery::Detached => {
                let bytes = batch.records.iter().map(|record| record.len() as u64).sum();
                self.detached_reply(first_seq, bytes)
            }
        };
        let command = Command::Append {
            batch,
            envelopes: Published {
                run: self.shared_key.clone(),
                first_seq,
            },
            durable,
            reply,
        };
        let queued = Queued {
            first_seq,
            last_seq,
            envelopes: kept,
        };
        if let Some(here) = self.inner.writer.commit_here(&command) {
            return Ok((queued, Some((here, command))));
        }
        let sent = if detached {
            self.inner.writer.send_detached(command)
        } else {
            self.inner.writer.send(command)
        };
        if !sent {
            self.break_with(Broken::WriterStopped);
            self.stale_view.store(true, Ordering::Release);
            return Err(AppendError::WriterStopped);
        }
        Ok((queued, None))
    }

    /// The answer for an append that returned before it was applied: counted
    /// in flight (reads wait for it) until the handle's sink records it.
    fn detached_reply(&self, first_seq: u64, bytes: u64) -> Reply<AppendOutcome> {
        self.inner.writer.health.in_flight.fetch_add(bytes, Ordering::AcqRel);
        Reply::Detached(Detached { first_seq, bytes }, self.detached_sink.clone())
    }

    fn break_with(&self, reason: Broken) {
        let mut broken = self.broken.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        broken.get_or_insert(reason);
    }

    /// Turns the writer's answer into the append's result.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "the queued append is settled once; taking it keeps it from being settled twice"
    )]
    pub(crate) fn settle(&self, queued: Queued, outcome: AppendOutcome) -> Result<u64, AppendError> {
        if let Some(reason) = breakage(&outcome, queued.first_seq) {
            self.break_with(reason);
            self.stale_view.store(true, Ordering::Release);
        }
        match outcome {
            Ok(Ok(())) => Ok(queued.last_seq),
            Ok(Err(AppendRejection::Fenced { epoch, current })) => Err(AppendError::Fenced {
                run: self.key.clone(),
                seq: queued.first_seq,
                epoch,
                current,
            }),
            Ok(Err(AppendRejection::Conflict { expected, actual })) => Err(AppendError::Conflict {
                run: self.key.clone(),
                expected,
                actual,
            }),
            Ok(Err(AppendRejection::UnknownRun)) => Err(AppendError::Deleted {
                run: self.key.clone(),
                seq: queued.first_seq,
            }),
            Err(source) => Err(AppendError::Storage {
                run: self.key.clone(),
                seq: queued.first_seq,
                source,
            }),
        }
    }

    fn check_usable(&self, cursor: &Cursor) -> Result<(), AppendError> {
        if let Some(source) = self.inner.writer.health.failure() {
            return Err(AppendError::Poisoned { source });
        }
        let current = self.latest_epoch.load(Ordering::Acquire);
        if current == crate::journal::PURGED_EPOCH {
            self.break_with(Broken::Deleted {
                seq: cursor.writer.head().next_seq,
            });
        } else if current > self.epoch {
            self.break_with(Broken::Fenced { current });
        }
        let broken = self
            .broken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match broken {
            None => Ok(()),
            Some(Broken::Fenced { current }) => Err(AppendError::Fenced {
                run: self.key.clone(),
                seq: cursor.writer.head().next_seq,
                epoch: self.epoch,
                current,
            }),
            Some(Broken::Rejected { seq, reason }) => Err(AppendError::Abandoned {
                run: self.key.clone(),
                seq,
                reason,
            }),
            Some(Broken::Deleted { seq }) => Err(AppendError::Deleted {
                run: self.key.clone(),
                seq,
            }),
            Some(Broken::WriterStopped) => Err(AppendError::WriterStopped),
        }
    }

    /// Checks and chains the batch on a copy of the handle's chain writer, so
    /// a refused batch leaves the handle as it was.
    /// Encodes and chains `events` on the cursor's writer. A refused batch
    /// leaves the writer where it was (it is rebuilt at the head it had), so
    /// nothing of it is kept; a batch that passes advances it, without the
    /// copy of the writer (its key) that every append would otherwise pay.
    fn prepare(&self, cursor: &mut Cursor, events: Vec<Event>, checks: Checks) -> Result<Prepared, AppendError> {
        let before = cursor.writer.head();
        let prepared = self.chain_batch(cursor, events, checks);
        if prepared.is_err() && cursor.writer.head() != before {
            cursor.writer = ChainWriter::new(self.key.clone(), before, self.inner.options.max_event_size);
        }
        prepared
    }

    fn chain_batch(&self, cursor: &mut Cursor, events: Vec<Event>, checks: Checks) -> Result<Prepared, AppendError> {
        let mut status = cursor.state.status;
        let mut records = Vec::with_capacity(events.len());
        let mut stamped = Vec::with_capacity(events.len());
        let now = self.inner.options.clock.now_millis().max(cursor.writer.head().last_ts);
        if events.is_empty() {
            return Err(AppendError::EmptyBatch {
                run: self.key.clone(),
                seq: cursor.writer.head().next_seq,
            });
        }
        if checks == Checks::Typed {
            self.refuse_ignored(cursor, &events)?;
        }
        let writer = &mut cursor.writer;
        for event in events {
            let seq = writer.head().next_seq;
            event.validate().map_err(|source| AppendError::InvalidEvent {
                run: self.key.clone(),
                seq,
                source: Box::new(source),
            })?;
            self.check_order(&event, seq, status, checks)?;
            status = rules::status_after(status, &event);
            let (record, head) = writer.append_record(self.epoch, now, &event)?;
            records.push(record);
            stamped.push(Stamped {
                seq,
                epoch: self.epoch,
                ts: now,
                hash: head.hash,
                event,
            });
        }
        Ok(Prepared {
            records,
            events: stamped,
        })
    }

    /// Typed methods write one event; it is refused when the fold would ignore it.
    fn refuse_ignored(&self, cursor: &Cursor, events: &[Event]) -> Result<(), AppendError> {
        for event in events {
            if let Some(anomaly) = cursor.state.rejection(event) {
                return Err(AppendError::Refused {
                    run: self.key.clone(),
                    seq: cursor.writer.head().next_seq,
                    event_type: event.type_name(),
                    anomaly: Box::new(anomaly),
                });
            }
        }
        Ok(())
    }

    /// docs/format.md's ordering rules ([`rules`]), then the handle's own: only
    /// `resume` writes `attached`.
    fn check_order(&self, event: &Event, seq: u64, status: RunStatus, checks: Checks) -> Result<(), AppendError> {
        let out_of_order = |violation: OrderViolation| AppendError::OutOfOrder {
            run: self.key.clone(),
            seq,
            violation,
        };
        let arrival = if checks == Checks::Attach {
            Arrival::NewEpoch
        } else {
            Arrival::SameEpoch
        };
        rules::check_follows(status, event, arrival)
            .and_then(|()| rules::check_position(seq, event))
            .map_err(out_of_order)?;
        if matches!(event, Event::Attached { .. }) && checks != Checks::Attach {
            return Err(out_of_order(OrderViolation::AttachedOutsideResume));
        }
        Ok(())
    }

    /// The cursor, refolded from the store first when a queued append failed.
    fn view(&self) -> MutexGuard<'_, Cursor> {
        let mut cursor = self.lock();
        if self.stale_view.swap(false, Ordering::AcqRel) {
            self.refold_from_store(&mut cursor);
        }
        cursor
    }

    /// Replaces the cursor's head and state with the run's as stored. A read
    /// failure leaves the cursor as it is (the handle is broken anyway) and
    /// tries again at the next use.
    fn refold_from_store(&self, cursor: &mut Cursor) {
        let store = self.inner.read_store();
        let stored = store.run(self.id).map_err(ReadError::from).and_then(|record| {
            let record = record.ok_or_else(|| ReadError::NotFound { run: self.key.clone() })?;
            let folded = fold_state(store.as_ref(), &record, record.head.next_seq)?;
            Ok((record, folded))
        });
        match stored {
            Ok((record, folded)) => {
                cursor.writer = ChainWriter::new(self.key.clone(), record.head, self.inner.options.max_event_size);
                cursor.state = folded.state;
                cursor.since_snapshot = folded.tail_len;
            }
            Err(error) => {
                tracing::error!(run = %self.key, %error, "could not read the run back after a failed append");
                self.stale_view.store(true, Ordering::Release);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cursor> {
        // A panic while holding the cursor cannot leave it half-updated: every
        // update happens after the last fallible step.
        self.cursor.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Prepared {
    records: Vec<Vec<u8>>,
    /// The events of `records`, in order.
    events: Vec<Stamped>,
}

/// Where a handle's detached appends are answered: a failure breaks the
/// handle (and marks its view stale), and the append's bytes are no longer in
/// flight.
fn detached_sink(
    health: Arc<Health>,
    broken: Arc<Mutex<Option<Broken>>>,
    stale_view: Arc<AtomicBool>,
) -> DetachedSink<AppendOutcome> {
    Arc::new(move |append: Detached, outcome: AppendOutcome| {
        if let Some(reason) = breakage(&outcome, append.first_seq) {
            let mut broken = broken.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            broken.get_or_insert(reason);
            stale_view.store(true, Ordering::Release);
        }
        health.in_flight.fetch_sub(append.bytes, Ordering::AcqRel);
    })
}

/// Why an append's outcome leaves its handle unable to write, if it does.
fn breakage(outcome: &AppendOutcome, first_seq: u64) -> Option<Broken> {
    match outcome {
        Ok(Ok(())) => None,
        Ok(Err(AppendRejection::Fenced { current, .. })) => Some(Broken::Fenced { current: *current }),
        Ok(Err(AppendRejection::Conflict { expected, actual })) => Some(Broken::Rejected {
            seq: first_seq,
            reason: AbandonReason::Conflict {
                expected: *expected,
                actual: *actual,
            },
        }),
        Ok(Err(AppendRejection::UnknownRun)) => Some(Broken::Deleted { seq: first_seq }),
        Err(source) => Some(Broken::Rejected {
            seq: first_seq,
            reason: AbandonReason::Storage { source: source.clone() },
        }),
    }
}

/// Generates each typed method twice: blocking, and `_async` resolving once
/// the journal's durability mode is satisfied. Typed methods refuse (write
/// nothing) an event the fold would ignore.
macro_rules! typed_methods {
    ($(
        $(#[$doc:meta])*
        fn $name:ident / $async_name:ident ($($arg:ident: $type:ty),*) => $event:expr;
    )*) => {
        impl Run {
            $(
                $(#[$doc])*
                pub fn $name(&self, $($arg: $type),*) -> Result<u64, AppendError> {
                    self.typed($event)
                }

                $(#[$doc])*
                ///
                /// Async: resolves once the journal's durability mode is satisfied.
                pub async fn $async_name(&self, $($arg: $type),*) -> Result<u64, AppendError> {
                    self.typed_async($event).await
                }
            )*
        }
    };
}

typed_methods! {
    /// Records a step: its messages join the transcript.
    fn step / step_async(messages: Vec<Message>) => Event::Step { messages };
    /// Records the end of a turn.
    fn turn_completed / turn_completed_async() => Event::TurnCompleted;
    /// Records the start of phase `index`.
    fn phase_started / phase_started_async(index: u32, name: impl Into<String>) =>
        Event::PhaseStarted { index, name: name.into() };
    /// Records the completion of phase `index` with its output.
    fn phase_completed / phase_completed_async(index: u32, name: impl Into<String>, output: impl Into<String>) =>
        Event::PhaseCompleted { index, name: name.into(), output: output.into() };
    /// Records the start of a context compaction.
    fn compaction_started / compaction_started_async(source: CompactionSource, info: CompactionInfo) =>
        Event::CompactionStarted {
            id: info.id,
            source,
            messages_before: info.messages,
            tokens_before: info.tokens,
        };
    /// Records the end of a context compaction; a new segment starts.
    fn compaction_done / compaction_done_async(source: CompactionSource, info: CompactionInfo) =>
        Event::CompactionDone {
            id: info.id,
            source,
            summary: info.summary,
            messages_after: info.messages,
            tokens_after: info.tokens,
        };
    /// Records a handoff sent to another agent.
    fn handoff_sent / handoff_sent_async(handoff: Handoff) => Event::HandoffSent {
        id: handoff.id,
        from: handoff.from,
        to: handoff.to,
        generation: handoff.generation,
        version: handoff.version,
        content_hash: handoff.content_hash,
        timeout_ms: handoff.timeout_ms,
    };
    /// Records the receiver's ack; refused unless `by` is the receiver and the handoff is pending.
    fn handoff_acked / handoff_acked_async(id: impl Into<String>, by: impl Into<String>) =>
        Event::HandoffAcked { id: id.into(), by: by.into() };
    /// Records the receiver's rejection; refused unless `by` is the receiver and the handoff is pending.
    fn handoff_rejected / handoff_rejected_async(id: impl Into<String>, by: impl Into<String>, reason: impl Into<String>) =>
        Event::HandoffRejected { id: id.into(), by: by.into(), reason: reason.into() };
    /// Records that a pending handoff timed out.
    fn handoff_timed_out / handoff_timed_out_async(id: impl Into<String>) => Event::HandoffTimedOut { id: id.into() };
    /// Records a claim on a task (priority 0–3, confidence 0.0–1.0).
    fn task_claimed / task_claimed_async(task: impl Into<String>, agent: impl Into<String>, priority: u8, confidence: f64) =>
        Event::TaskClaimed { task: task.into(), agent: agent.into(), priority, confidence };
    /// Records a task's completion; refused unless `agent` holds the task.
    fn task_completed / task_completed_async(
        task: impl Into<String>,
        agent: impl Into<String>,
        result: TaskResult,
        summary: Option<String>
    ) => Event::TaskCompleted { task: task.into(), agent: agent.into(), result, summary };
    /// Records that the agent's process died (the run stays recoverable).
    fn agent_died / agent_died_async(reason: impl Into<String>, exit_code: Option<i32>) =>
        Event::AgentDied { reason: reason.into(), exit_code };
    /// Records the teardown of a resource, with its error if it failed.
    fn teardown / teardown_async(resource: impl Into<String>, error: Option<String>) =>
        Event::Teardown { resource: resource.into(), error };
    /// Records an application-defined fact.
    fn custom / custom_async(kind: impl Into<String>, data: impl Into<String>) =>
        Event::Custom { kind: kind.into(), data: data.into() };
}

impl Drop for LocalRun {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.finished.swap(true, Ordering::SeqCst) {
            let outcome = Outcome::failure("panic", "the thread panicked while the run was open");
            if let Err(error) = self.record_outcome(outcome) {
                tracing::error!(run = %self.key, %error, "could not record run_failed for a panic");
            }
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("key", self.key())
            .field("epoch", &self.epoch())
            .field("remote", &matches!(self.backend, RunBackend::Remote(_)))
            .finish_non_exhaustive()
    }
}
