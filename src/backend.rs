//! [`Journal`]: the one public handle, over either backend.
//!
//! Invariants:
//! - Every public method has the same meaning on both backends: the embedded
//!   one (this process holds the store, [`crate::journal`]) and the remote one
//!   (another process holds it and serves it, [`crate::remote`]).
//! - The embedded path is the embedded code, reached through one `match`.
//! - The remote backend never reports success for a write whose outcome it
//!   does not know, and rebuilds the same typed errors from the wire codes.

use std::io::BufRead;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use runjournal_core::fold::ResumeState;
use runjournal_core::{Envelope, RunFilter, RunKey, RunMeta, RunRecord, Store, StoreError};
use runjournal_sled::OpenMode;

use crate::error::{BeginError, OpenError, ReadError, RebuildError, ResumeError, WriteError};
use crate::import::{ImportError, ImportReport};
use crate::journal::{Expect, Local, VerifyReport};
use crate::lineage::{ExportItem, ForkError, PurgeError, PurgePolicy, PurgeReport, RunDiff};
use crate::operator::{OperatorError, OperatorReport};
use crate::options::Options;
use crate::remote::{Client, ConnectOptions};
use crate::run::Run;
use crate::subscription::{AsyncSubscription, SubscribeError, Subscription};

/// An open journal: embedded (this process holds the store: [`Journal::open`])
/// or connected to the process that holds it ([`Journal::connect`]). Cheap to
/// clone; an embedded store closes when the last clone and the last [`Run`]
/// are dropped (after a final sync).
#[derive(Clone)]
pub struct Journal {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Embedded(Local),
    Remote(Arc<Client>),
}

impl Journal {
    /// Opens the sled database at `path`, creating it when missing.
    ///
    /// With [`Options::connect_if_held`], a database held by another process
    /// that serves it is connected to instead ([`Journal::connect`]).
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Journal, OpenError> {
        Journal::open_mode(path.as_ref(), OpenMode::CreateIfMissing, options)
    }

    /// Opens the sled database at `path`; fails when there is none (for tools
    /// that only read and must not create a database). Falls back to
    /// connecting like [`Journal::open`].
    pub fn open_existing(path: impl AsRef<Path>, options: Options) -> Result<Journal, OpenError> {
        Journal::open_mode(path.as_ref(), OpenMode::MustExist, options)
    }

    /// Opens the store; with `connect_if_held`, connects first when the
    /// owner's socket answers (a stale socket of a killed owner does not, and
    /// the store is opened), and once more when the store is held and the
    /// socket is there (an owner that serves nothing stays `Locked`).
    fn open_mode(path: &Path, mode: OpenMode, options: Options) -> Result<Journal, OpenError> {
        let Some(connect) = options.connect_if_held.then(|| ConnectOptions::from_options(&options)) else {
            return Local::open(path, mode, options).and_then(Journal::serving);
        };
        let socket = path.join(crate::wire::SOCKET_NAME);
        if socket.exists() {
            if let Ok(journal) = Journal::connect(path, connect.clone()) {
                return Ok(journal);
            }
        }
        match Local::open(path, mode, options) {
            Ok(local) => Journal::serving(local),
            Err(OpenError::Store(StoreError::Locked { .. })) if socket.exists() => {
                Journal::connect(path, connect).map_err(OpenError::Connect)
            }
            Err(error) => Err(error),
        }
    }

    /// A journal over any store (the in-memory one, a fault-injecting wrapper…).
    ///
    /// The journal must be the store's only writer: its writer thread is what
    /// keeps group commit, fencing before queuing and fail-stop. A caller that
    /// keeps its own handle on `store` (a test inspecting what was stored) must
    /// only read through it.
    pub fn with_store(store: Arc<dyn Store>, options: Options) -> Result<Journal, OpenError> {
        Local::with_store(store, options).and_then(Journal::serving)
    }

    /// The embedded journal over `local`, serving it when its options say so
    /// ([`Options::serve`]); a server that cannot start fails the open (and
    /// releases the store).
    fn serving(mut local: Local) -> Result<Journal, OpenError> {
        if let Some(serve) = local.options().serve.clone() {
            let handle = Journal::embedded(local.unserved())
                .serve(serve)
                .map_err(OpenError::Serve)?;
            local.serving = Some(Arc::new(crate::serve::Serving::new(handle)));
        }
        Ok(Journal::embedded(local))
    }

    /// The Unix socket this journal serves while it is open
    /// ([`Options::serve`]); `None` when it serves nothing so.
    pub fn served_socket(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Embedded(local) => local.serving.as_deref().and_then(crate::serve::Serving::socket_path),
            Backend::Remote(_) => None,
        }
    }

    /// The TCP address this journal serves while it is open
    /// ([`Options::serve`] with `listen`).
    pub fn served_tcp_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.backend {
            Backend::Embedded(local) => local.serving.as_deref().and_then(crate::serve::Serving::tcp_addr),
            Backend::Remote(_) => None,
        }
    }

    /// This journal without the guard of its [`Options::serve`] server: what
    /// a server holds, so that it never keeps itself running.
    pub(crate) fn unserved(&self) -> Journal {
        match &self.backend {
            Backend::Embedded(local) => Journal::embedded(local.unserved()),
            Backend::Remote(remote) => Journal {
                backend: Backend::Remote(remote.clone()),
            },
        }
    }

    /// Connects to the process that serves a journal: `target` is a database
    /// path (its socket `<path>/runjournal.sock`) or an `http://host:port`
    /// address (with [`ConnectOptions::token`]). The handle has the same API
    /// as an embedded one (docs/library.md says what differs). Nothing is sent
    /// until the first call, except a health check that the server answers.
    pub fn connect(target: impl AsRef<Path>, options: ConnectOptions) -> Result<Journal, crate::RemoteError> {
        let client = Client::connect(target.as_ref(), options)?;
        Ok(Journal {
            backend: Backend::Remote(Arc::new(client)),
        })
    }

    /// The embedded journal's shared state (`None` when connected).
    pub(crate) fn embedded_inner(&self) -> Option<&Arc<crate::journal::Inner>> {
        match &self.backend {
            Backend::Embedded(local) => Some(&local.inner),
            Backend::Remote(_) => None,
        }
    }

    /// A handle writing `key` with `epoch` (the served API's appends; see
    /// `Local::handle_at`). A connected journal serves nothing.
    pub(crate) fn handle_at(&self, key: &RunKey, epoch: u64) -> Result<crate::journal::HandleAt, crate::Error> {
        match &self.backend {
            Backend::Embedded(local) => local.handle_at(key, epoch),
            Backend::Remote(remote) => Err(crate::Error::Remote(not_served(remote))),
        }
    }

    /// The database directory of a journal opened from a path (`None`
    /// connected: the owner has it).
    pub(crate) fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Embedded(local) => local.path(),
            Backend::Remote(_) => None,
        }
    }

    /// [`Journal::resume_expecting`] writing `opening` (the served resume).
    pub(crate) fn resume_checked(
        &self,
        key: &RunKey,
        expect: &Expect,
        opening: Vec<runjournal_core::Event>,
    ) -> Result<(Run, ResumeState), ResumeError> {
        match &self.backend {
            Backend::Embedded(local) => local.resume_checked(key, expect, opening),
            Backend::Remote(remote) => Err(ResumeError::Write(WriteError::Remote(not_served(remote)))),
        }
    }

    /// The embedded journal (tests of its internals).
    #[cfg(test)]
    pub(crate) fn local(&self) -> Option<&Local> {
        match &self.backend {
            Backend::Embedded(local) => Some(local),
            Backend::Remote(_) => None,
        }
    }

    fn embedded(local: Local) -> Journal {
        Journal {
            backend: Backend::Embedded(local),
        }
    }

    /// Whether this handle is connected to another process (not embedded).
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Remote(_))
    }

    /// Connected: the appends submitted through this handle that wait for
    /// an append request in flight to finish (they go in the next); embedded:
    /// the writes handed to the writer and not applied yet. For tests that
    /// need appends to coalesce.
    #[doc(hidden)]
    pub fn queued_appends(&self) -> usize {
        match &self.backend {
            Backend::Embedded(local) => local.writer_queued(),
            Backend::Remote(remote) => remote.shared.coalescer.queued(),
        }
    }

    /// The options the journal was opened with (connected: the options the
    /// connection was made with; the owner's are its own).
    pub fn options(&self) -> &Options {
        match &self.backend {
            Backend::Embedded(local) => local.options(),
            Backend::Remote(remote) => remote.options(),
        }
    }

    /// The write path's counters: batches, events and bytes applied, groups
    /// committed, syncs and their latency. Connected: this process has no
    /// write path, and every counter is zero (the owner's are served at
    /// `GET /metrics`).
    pub fn metrics(&self) -> crate::MetricsSnapshot {
        match &self.backend {
            Backend::Embedded(local) => local.metrics(),
            Backend::Remote(_) => crate::MetricsSnapshot::default(),
        }
    }

    /// Creates the run `key` with `run_started` at seq 0, epoch 0.
    pub fn begin(&self, key: RunKey, meta: RunMeta) -> Result<Run, BeginError> {
        match &self.backend {
            Backend::Embedded(local) => local.begin(key, meta),
            Backend::Remote(remote) => remote.begin(&key, &meta),
        }
    }

    /// Resumes `key` in a new epoch: appends `attached` and returns the handle
    /// and the resume state (completed phases to skip, the phase to re-run, the
    /// current segment's transcript, the iteration). Older handles are fenced.
    pub fn resume(&self, key: &RunKey) -> Result<(Run, ResumeState), ResumeError> {
        match &self.backend {
            Backend::Embedded(local) => local.resume(key),
            Backend::Remote(remote) => remote.resume(key),
        }
    }

    /// [`Journal::resume`], refused with [`ResumeError::Mismatch`] (naming the
    /// field, the stored and the expected value) when the run's `meta`
    /// differs from what `expect` names; a refusal appends nothing.
    pub fn resume_expecting(&self, key: &RunKey, expect: &Expect) -> Result<(Run, ResumeState), ResumeError> {
        match &self.backend {
            Backend::Embedded(local) => local.resume_expecting(key, expect),
            Backend::Remote(remote) => remote.resume_expecting(key, expect),
        }
    }

    /// Resumes the newest *recoverable* episode (running or interrupted) of
    /// `(goal, agent)`, whatever newer ones are finished. When none is
    /// recoverable: [`ResumeError::NotFound`] naming the episode to begin (one
    /// more than the newest, 0 when the agent has none).
    pub fn resume_latest(&self, goal: &str, agent: &str) -> Result<(Run, ResumeState), ResumeError> {
        match &self.backend {
            Backend::Embedded(local) => local.resume_latest(goal, agent),
            Backend::Remote(remote) => remote.resume_latest(goal, agent),
        }
    }

    /// The run's stored record (key, head, status, lineage).
    pub fn run_info(&self, key: &RunKey) -> Result<RunRecord, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.run_info(key),
            Backend::Remote(remote) => remote.run_info(key),
        }
    }

    /// The run's own events from `from_seq`, verified from seq 0.
    pub fn read(&self, key: &RunKey, from_seq: u64) -> Result<Vec<Envelope>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.read(key, from_seq),
            Backend::Remote(remote) => remote.read(key, from_seq),
        }
    }

    /// Visits the run's own events from `from_seq`, verified, without holding them all.
    pub fn for_each_event(
        &self,
        key: &RunKey,
        from_seq: u64,
        visit: impl FnMut(Envelope) -> ControlFlow<()>,
    ) -> Result<(), ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.for_each_event(key, from_seq, visit),
            Backend::Remote(remote) => remote.for_each_event(key, from_seq, visit),
        }
    }

    /// The run's whole history: a fork's ancestor prefixes, then its own events.
    pub fn history(&self, key: &RunKey) -> Result<Vec<Envelope>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.history(key),
            Backend::Remote(remote) => remote.history(key),
        }
    }

    /// Verifies the run's chain: every seq present, decodable and chained, the
    /// chain ending at the head (and a fork's parent prefix ending at the fork
    /// hash). The error names the first bad seq.
    pub fn verify(&self, key: &RunKey) -> Result<VerifyReport, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.verify(key),
            Backend::Remote(remote) => remote.verify(key),
        }
    }

    /// The run's resume state as of its last event. A run a rewind superseded
    /// has status `superseded` (from its run record: no event says so).
    pub fn state(&self, key: &RunKey) -> Result<ResumeState, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.state(key),
            Backend::Remote(remote) => remote.state(key),
        }
    }

    /// The run's resume state as of its own seq `seq` (time travel).
    pub fn state_at(&self, key: &RunKey, seq: u64) -> Result<ResumeState, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.state_at(key, seq),
            Backend::Remote(remote) => remote.state_at(key, seq),
        }
    }

    /// The runs passing `filter`, ordered by key.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.runs(filter),
            Backend::Remote(remote) => remote.runs(filter),
        }
    }

    /// Exactly the runs whose status is running or interrupted, each with its
    /// resume state, ordered by key.
    pub fn recoverable(&self) -> Result<Vec<ResumeState>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.recoverable(),
            Backend::Remote(remote) => remote.recoverable(),
        }
    }

    /// The highest episode of `(goal, agent)`: the attempt to resume after a crash.
    pub fn latest_episode(&self, goal: &str, agent: &str) -> Result<Option<u32>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.latest_episode(goal, agent),
            Backend::Remote(remote) => remote.latest_episode(goal, agent),
        }
    }

    /// One more than the highest episode of `goal` (0 for a new goal): a fresh
    /// attempt for best-of-N. Two callers racing get the same number; the
    /// loser's `begin` fails with `AlreadyExists`.
    /// After episode `u32::MAX` there is none: `ReadError::EpisodesExhausted`.
    pub fn next_episode(&self, goal: &str) -> Result<u32, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.next_episode(goal),
            Backend::Remote(remote) => remote.next_episode(goal),
        }
    }

    /// Syncs everything applied so far to stable storage.
    pub fn sync(&self) -> Result<(), WriteError> {
        match &self.backend {
            Backend::Embedded(local) => local.sync(),
            Backend::Remote(remote) => remote.sync(),
        }
    }

    /// Replaces the run's snapshots with one rebuilt from a full verified replay.
    pub fn rebuild_snapshots(&self, key: &RunKey) -> Result<(), RebuildError> {
        match &self.backend {
            Backend::Embedded(local) => local.rebuild_snapshots(key),
            Backend::Remote(remote) => remote.rebuild_snapshots(key),
        }
    }

    /// Closes the journal: waits for every queued write, makes everything
    /// durable and stops the store. After a storage failure (a poisoned
    /// journal) it returns promptly with what was not made durable: for the
    /// sled store, [`StoreError::NotDurable`] (how many write batches and
    /// events were applied after the last completed sync, and the failure).
    ///
    /// The store is closed for every clone of this journal and every run
    /// handle: their later writes fail (`Poisoned`, naming the close). A
    /// server of [`Options::serve`] stops first (its socket removed).
    pub fn close(self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Embedded(local) => {
                if let Some(serving) = &local.serving {
                    serving.stop();
                }
                local.close()
            }
            Backend::Remote(remote) => remote.close(),
        }
    }

    /// Visits the run's whole history (a fork's ancestors' prefixes, then its
    /// own events), verified as it goes, without holding it: memory stays
    /// bounded whatever the run's length. `visit` may stop the walk; the
    /// events it saw were verified, the rest are not read.
    pub fn for_each_in_history(
        &self,
        key: &RunKey,
        visit: impl FnMut(Envelope) -> ControlFlow<()>,
    ) -> Result<(), ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.for_each_in_history(key, visit),
            Backend::Remote(remote) => remote.for_each_in_history(key, visit),
        }
    }

    /// Imports the JSON lines of docs/format.md (as `export` writes them) into new runs.
    ///
    /// Each line parses as an envelope (unknown event types and fields are
    /// errors), keys and event fields are valid, each run's seqs are gapless
    /// from 0 starting with `run_started`, nothing follows a terminal event in
    /// its epoch (except an `attached` with a higher epoch after
    /// `run_interrupted`), and epochs start at 0 and only rise at an
    /// `attached`. A missing `epoch` is the run's current epoch (one more at
    /// an `attached`), a missing `ts` is now, a missing `hash` is computed; a
    /// present `hash` must equal the chain hash. Lines may interleave runs;
    /// blank lines are skipped. Runs that exist in the database are refused; a
    /// fork's parent must be earlier in the input or in the database.
    ///
    /// The input streams (memory stays bounded whatever its size); its runs
    /// are staged invisibly and published in one atomic step once every line
    /// passed. The first bad line refuses the whole input, and nothing is stored.
    pub fn import(&self, input: impl BufRead) -> Result<ImportReport, ImportError> {
        match &self.backend {
            Backend::Embedded(local) => local.import(input),
            Backend::Remote(remote) => remote.import(input),
        }
    }

    /// Forks `parent` after its own seq `at_seq` into the new run `child`. The
    /// child's history is the parent's up to `at_seq` followed by its own; the
    /// parent is not changed, and both stay live ([`Journal::rewind`] also
    /// supersedes the parent).
    pub fn fork(&self, parent: &RunKey, at_seq: u64, child: RunKey) -> Result<Run, ForkError> {
        match &self.backend {
            Backend::Embedded(local) => local.fork(parent, at_seq, child),
            Backend::Remote(remote) => remote.fork(parent, at_seq, &child),
        }
    }

    /// Forks `parent` at `at_seq` into `n` children in fresh episodes of the
    /// same goal (same agent), for best-of-N, created in one atomic step.
    pub fn fanout(&self, parent: &RunKey, at_seq: u64, n: u32) -> Result<Vec<Run>, ForkError> {
        match &self.backend {
            Backend::Embedded(local) => local.fanout(parent, at_seq, n),
            Backend::Remote(remote) => remote.fanout(parent, at_seq, n),
        }
    }

    /// Rewinds `run` to its own seq `at_seq`: forks it into a fresh episode of
    /// the same goal and agent (`next_episode(goal)`) and, in the same atomic
    /// step, marks the original `superseded`: it is no longer recoverable,
    /// `resume` refuses it, and its open handles are fenced. Returns the
    /// handle of the branch that goes on.
    pub fn rewind(&self, run: &RunKey, at_seq: u64) -> Result<Run, ForkError> {
        match &self.backend {
            Backend::Embedded(local) => local.rewind(run, at_seq),
            Backend::Remote(remote) => remote.rewind(run, at_seq),
        }
    }

    /// The run a run was forked from, if any.
    pub fn parent(&self, key: &RunKey) -> Result<Option<RunKey>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.parent(key),
            Backend::Remote(remote) => remote.parent(key),
        }
    }

    /// The runs forked from `key`, ordered by key.
    pub fn children(&self, key: &RunKey) -> Result<Vec<RunKey>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.children(key),
            Backend::Remote(remote) => remote.children(key),
        }
    }

    /// Compares two runs' whole histories (fork prefixes included): the first
    /// position where they diverge, both events there, and which state fields differ.
    pub fn diff(&self, a: &RunKey, b: &RunKey) -> Result<RunDiff, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.diff(a, b),
            Backend::Remote(remote) => remote.diff(a, b),
        }
    }

    /// Removes runs by `policy`; with `dry_run`, only reports what would go.
    pub fn purge(&self, policy: &PurgePolicy, dry_run: bool) -> Result<PurgeReport, PurgeError> {
        match &self.backend {
            Backend::Embedded(local) => local.purge(policy, dry_run),
            Backend::Remote(remote) => remote.purge(policy, dry_run),
        }
    }

    /// Every run whose history includes `key`'s events: its fork descendants.
    pub fn descendants(&self, key: &RunKey) -> Result<Vec<RunKey>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.descendants(key),
            Backend::Remote(remote) => remote.descendants(key),
        }
    }

    /// What an export must write so that an import elsewhere recreates the
    /// runs with their lineage, parents before children. For one run: its
    /// ancestors' prefixes up to their fork points, then the run. For all:
    /// every run whole, each after its parent.
    pub fn export_order(&self, run: Option<&RunKey>) -> Result<Vec<ExportItem>, ReadError> {
        match &self.backend {
            Backend::Embedded(local) => local.export_order(run),
            Backend::Remote(remote) => remote.export_order(run),
        }
    }

    /// Interrupts `key` for `operator` (`user@host`): one atomic batch of
    /// `attached` (a new epoch, fencing the agent's handle) and
    /// `run_interrupted` (cause `shutdown`), leaving the run for recovery.
    /// Refused for a run that is completed, failed, superseded or already
    /// interrupted.
    pub fn interrupt(&self, key: &RunKey, operator: &str) -> Result<OperatorReport, OperatorError> {
        match &self.backend {
            Backend::Embedded(local) => local.interrupt(key, operator),
            Backend::Remote(remote) => remote.interrupt(key, operator),
        }
    }

    /// Fails `key` for `operator` with `reason`: one atomic batch of
    /// `attached` (fencing the agent's handle) and `run_failed` with error
    /// kind [`OPERATOR_FAILURE_KIND`](crate::OPERATOR_FAILURE_KIND) and a message naming the operator.
    /// Refused for a run that is completed, failed or superseded.
    pub fn fail_run(&self, key: &RunKey, operator: &str, reason: &str) -> Result<OperatorReport, OperatorError> {
        match &self.backend {
            Backend::Embedded(local) => local.fail_run(key, operator, reason),
            Backend::Remote(remote) => remote.fail_run(key, operator, reason),
        }
    }

    /// Resumes `key` for `operator`: `attached` in a new epoch, naming the
    /// operator (the agent's handle is fenced). Returns the handle, to write
    /// with, and the resume state. Refused for a run that is completed,
    /// failed or superseded.
    pub fn resume_as_operator(
        &self,
        key: &RunKey,
        operator: &str,
    ) -> Result<(OperatorReport, Run, ResumeState), OperatorError> {
        match &self.backend {
            Backend::Embedded(local) => local.resume_as_operator(key, operator),
            Backend::Remote(remote) => remote.resume_as_operator(key, operator),
        }
    }

    /// Subscribes to `key` from `from_seq`: its stored events first (verified),
    /// then live ones. `buffer` bounds the live events held for a slow subscriber.
    pub fn subscribe(&self, key: &RunKey, from_seq: u64, buffer: usize) -> Result<Subscription, SubscribeError> {
        match &self.backend {
            Backend::Embedded(local) => local.subscribe(key, from_seq, buffer),
            Backend::Remote(remote) => remote.subscribe(key, from_seq, buffer),
        }
    }

    /// Subscribes to the live events of every run, from now on.
    pub fn subscribe_all(&self, buffer: usize) -> Result<Subscription, SubscribeError> {
        match &self.backend {
            Backend::Embedded(local) => local.subscribe_all(buffer),
            Backend::Remote(remote) => remote.subscribe_all(buffer),
        }
    }

    /// Subscribes to a run like [`Journal::subscribe`], as an async `Stream`.
    pub fn subscribe_async(
        &self,
        key: &RunKey,
        from_seq: u64,
        buffer: usize,
    ) -> Result<AsyncSubscription, SubscribeError> {
        match &self.backend {
            Backend::Embedded(local) => local.subscribe_async(key, from_seq, buffer),
            Backend::Remote(remote) => remote.subscribe_async(key, from_seq, buffer),
        }
    }

    /// Subscribes to every run's live events, as an async `Stream`.
    pub fn subscribe_all_async(&self, buffer: usize) -> Result<AsyncSubscription, SubscribeError> {
        match &self.backend {
            Backend::Embedded(local) => local.subscribe_all_async(buffer),
            Backend::Remote(remote) => remote.subscribe_all_async(buffer),
        }
    }
}

/// What a connected journal answers to what only an owner does (serving).
fn not_served(remote: &Client) -> crate::RemoteError {
    crate::RemoteError::Protocol {
        endpoint: remote.endpoint(),
        detail: "a journal connected to its owner cannot serve it; serve from the owner".into(),
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Embedded(local) => f
                .debug_struct("Journal")
                .field("options", local.options())
                .finish_non_exhaustive(),
            Backend::Remote(remote) => f
                .debug_struct("Journal")
                .field("remote", &remote.endpoint())
                .finish_non_exhaustive(),
        }
    }
}
