//! The embedded [`Journal`](crate::Journal): opening a store, creating and
//! resuming runs, verified reads.
//!
//! Invariants:
//! - Every write goes through the writer (group commit, fail-stop): its
//!   thread, or a lone blocking durable append committing on its own thread
//!   under the writer's group lock.
//! - Every read verifies what it returns; nothing corrupt is skipped.
//! - `resume` never starts a run that does not exist and never resumes a
//!   finished or superseded one; when it refuses (also for a `Mismatch` of
//!   what the caller expects of the run's meta) it appends nothing.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use runjournal_core::fold::ResumeState;
use runjournal_core::snapshot::encode_snapshot;
use runjournal_core::{
    ChainHash, ChainWriter, Envelope, Event, NewRun, RunFilter, RunId, RunKey, RunMeta, RunRecord, RunStatus,
    SnapshotRecord, Store,
};

use crate::error::{BeginError, OpenError, ReadError, RebuildError, ResumeError, WriteError};
use crate::history::{fold_state, walk_history, walk_own};
use crate::hub::Hub;
use crate::options::Options;
use crate::run::{Checks, LocalRun, Run};
use crate::writer::{Command, Operation, Reply, StoreFailure, Writer};
use runjournal_sled::OpenMode;

/// How many times a resume reads the head again when another handle or
/// process appended between its read and its `attached`.
const RESUME_ATTEMPTS: u32 = 16;

/// The epoch cell of a purged run: no handle is ever opened with it (an
/// epoch is below `u64::MAX`: resume and import refuse to raise it there), so
/// it fences every handle of the run, which then reports the deletion.
pub(crate) const PURGED_EPOCH: u64 = u64::MAX;

/// The embedded backend of a [`Journal`](crate::Journal): this process holds
/// the store. Cheap to clone; the store closes when the last clone and the
/// last [`Run`] are dropped (after a final sync).
///
/// Invariant: `serving` (the server of a journal opened with
/// `Options::serve`) is held only by the caller's handles (this type's
/// clones and the runs they make), never by the server, whose journal is an
/// [`Local::unserved`] clone: so dropping the caller's last handle stops the
/// server, and the server's handles then release the store.
#[derive(Clone)]
pub(crate) struct Local {
    pub(crate) inner: Arc<Inner>,
    pub(crate) serving: Option<Arc<crate::serve::Serving>>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) options: Options,
    pub(crate) writer: Writer,
    /// The database directory, for a journal opened from a path (where its
    /// served socket goes).
    pub(crate) path: Option<std::path::PathBuf>,
    /// The newest epoch a handle of each run was opened with in this process,
    /// shared by all its handles: an older handle is fenced before it queues.
    epochs: Mutex<HashMap<RunId, Weak<AtomicU64>>>,
    /// The live handles per run and epoch: a handle built for an epoch that
    /// is already open ([`Journal::handle_at`]) must be the only one, or two
    /// cursors would chain the same seqs.
    claims: Mutex<HashMap<(RunId, u64), Weak<()>>>,
}

impl Inner {
    /// The epoch cell of `run`, raised to at least `epoch`.
    pub(crate) fn epoch_cell(&self, run: RunId, epoch: u64) -> Arc<AtomicU64> {
        let mut epochs = self.epochs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let cell = if let Some(cell) = epochs.get(&run).and_then(Weak::upgrade) {
            cell
        } else {
            if epochs.len() >= 1024 && epochs.len().is_power_of_two() {
                epochs.retain(|_, cell| cell.strong_count() > 0);
            }
            let cell = Arc::new(AtomicU64::new(epoch));
            epochs.insert(run, Arc::downgrade(&cell));
            cell
        };
        cell.fetch_max(epoch, Ordering::AcqRel);
        cell
    }

    /// Registers a handle of `run` at `epoch`; `exclusive` refuses (`None`)
    /// while another handle at that epoch is alive.
    pub(crate) fn claim(&self, run: RunId, epoch: u64, exclusive: bool) -> Option<Arc<()>> {
        let mut claims = self.claims.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if exclusive && claims.get(&(run, epoch)).is_some_and(|claim| claim.strong_count() > 0) {
            return None;
        }
        if claims.len() >= 1024 && claims.len().is_power_of_two() {
            claims.retain(|_, claim| claim.strong_count() > 0);
        }
        let claim = Arc::new(());
        claims.insert((run, epoch), Arc::downgrade(&claim));
        Some(claim)
    }

    /// Waits until the writer applied everything queued before this call
    /// (durable appends still waiting for their group included).
    pub(crate) fn barrier(&self) {
        let (sender, receiver) = crate::oneshot::channel();
        if self.writer.send(Command::Apply(Operation::Barrier {
            reply: Reply::Blocking(sender),
        })) {
            // A failed writer answers with its failure: the caller reads what the store holds.
            drop(receiver.recv());
        }
    }

    /// Marks the live handles of the purged `runs`: their next append fails
    /// with `AppendError::Deleted` before it is queued.
    pub(crate) fn mark_purged(&self, runs: &[RunId]) {
        let epochs = self.epochs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for run in runs {
            if let Some(cell) = epochs.get(run).and_then(Weak::upgrade) {
                cell.store(PURGED_EPOCH, Ordering::Release);
            }
        }
    }

    /// The store, once every buffered append that already returned to its
    /// caller is applied: reads see every append that returned.
    pub(crate) fn read_store(&self) -> &Arc<dyn Store> {
        if self.writer.health.in_flight.load(Ordering::Acquire) > 0 {
            let (sender, receiver) = crate::oneshot::channel();
            if self.writer.send(Command::Apply(Operation::Barrier {
                reply: Reply::Blocking(sender),
            })) {
                // A failed writer answers with its failure: the read goes on
                // against what the store holds.
                drop(receiver.recv());
            }
        }
        &self.store
    }
}

/// What [`Journal::handle_at`] found.
pub(crate) enum HandleAt {
    /// A handle at the epoch, the only one alive.
    Built(Box<Run>),
    /// The epoch was never opened.
    NeverOpened,
    /// Another handle at the epoch is alive in this process.
    Held,
}

/// What `verify` found for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The run.
    pub run: RunKey,
    /// Events verified (its own log).
    pub events: u64,
    /// The run's head hash.
    pub head: ChainHash,
}

impl Local {
    /// Opens the journal at `path` (see [`Journal::open`](crate::Journal::open)):
    /// the sled database in that directory, or the PostgreSQL database a
    /// `postgres://` URL names.
    pub(crate) fn open(path: &Path, mode: OpenMode, options: Options) -> Result<Local, OpenError> {
        let store = crate::location::open_store(path, matches!(mode, OpenMode::CreateIfMissing))?;
        let dir = crate::location::postgres_url(path)
            .is_none()
            .then(|| path.to_path_buf());
        Local::start(store, options, dir)
    }

    /// The embedded journal over `store` (see [`Journal::with_store`](crate::Journal::with_store)).
    pub(crate) fn with_store(store: Arc<dyn Store>, options: Options) -> Result<Local, OpenError> {
        Local::start(store, options, None)
    }

    fn start(store: Arc<dyn Store>, options: Options, path: Option<std::path::PathBuf>) -> Result<Local, OpenError> {
        let hub = Arc::new(Hub::default());
        let writer =
            Writer::start(store.clone(), hub, options.durability, options.flush_interval).map_err(OpenError::Thread)?;
        Ok(Local {
            serving: None,
            inner: Arc::new(Inner {
                store,
                options,
                writer,
                path,
                epochs: Mutex::new(HashMap::new()),
                claims: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// This journal without its server guard: the handle a server holds.
    pub(crate) fn unserved(&self) -> Local {
        Local {
            inner: self.inner.clone(),
            serving: None,
        }
    }

    /// The options the journal was opened with.
    pub(crate) fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The store underneath, for reading, once every buffered append that
    /// already returned is applied (so what it reads includes them). Not
    /// public: every write goes through the writer.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        self.inner.read_store()
    }

    /// The embedded [`Journal::begin`].
    pub(crate) fn begin(&self, key: RunKey, meta: RunMeta) -> Result<Run, BeginError> {
        key.validate()?;
        let (record, state) = self.create_one(key, Event::RunStarted { meta }, None)?;
        Ok(Run::new(self, &record, 0, state, 1))
    }

    /// Creates one run (see [`Journal::create`]).
    pub(crate) fn create_one(
        &self,
        key: RunKey,
        event: Event,
        fork: Option<runjournal_core::ForkBase>,
    ) -> Result<(RunRecord, ResumeState), BeginError> {
        let mut created = self.create(vec![(key, event, fork)], None)?;
        created.pop().ok_or_else(|| broken_create_contract(0, 1).into())
    }

    /// Creates runs in one atomic step; each starts with its `run_started`
    /// (and, for forks, the parent prefix it continues). With `supersedes`,
    /// the same step marks that run superseded (a rewind).
    pub(crate) fn create(
        &self,
        runs: Vec<(RunKey, Event, Option<runjournal_core::ForkBase>)>,
        supersedes: Option<RunId>,
    ) -> Result<Vec<(RunRecord, ResumeState)>, BeginError> {
        let ts = self.inner.options.clock.now_millis();
        let mut new_runs = Vec::with_capacity(runs.len());
        let mut states = Vec::with_capacity(runs.len());
        let mut envelopes = Vec::with_capacity(runs.len());
        for (key, event, fork) in runs {
            let genesis = fork.as_ref().map_or(ChainHash::GENESIS, |fork| fork.hash);
            let mut state = match &fork {
                Some(fork) => self.fork_prefix_state(&key, fork)?,
                None => ResumeState::new(key.clone()),
            };
            let mut writer = ChainWriter::starting(key.clone(), genesis, self.inner.options.max_event_size);
            let written = writer.append(0, ts, event)?;
            state.apply(&written.envelope);
            new_runs.push(NewRun {
                key,
                created_ts: ts,
                records: vec![written.record],
                head: written.head,
                status: state.status,
                fork,
                supersedes: supersedes.filter(|_| new_runs.is_empty()),
            });
            envelopes.push(written.envelope);
            states.push(state);
        }
        let (sender, receiver) = crate::oneshot::channel();
        // `run_started` is a boundary: durable in every mode.
        let command = Command::Apply(Operation::Create {
            runs: new_runs,
            envelopes,
            durable: true,
            reply: Reply::Blocking(sender),
        });
        let outcome = self.call(command, receiver)?;
        match outcome {
            Ok(records) if records.len() == states.len() => Ok(records.into_iter().zip(states).collect()),
            Ok(records) => Err(broken_create_contract(records.len(), states.len()).into()),
            Err(exists) => Err(BeginError::AlreadyExists { run: exists.0 }),
        }
    }

    fn fork_prefix_state(&self, key: &RunKey, fork: &runjournal_core::ForkBase) -> Result<ResumeState, ReadError> {
        let parent = self.record_by_id(fork.parent, &fork.parent_key)?;
        let mut state = ResumeState::new(key.clone());
        walk_history(self.store().as_ref(), &parent, fork.seq + 1, &mut |envelope| {
            state.apply_owned(envelope);
            ControlFlow::Continue(())
        })?;
        Ok(state)
    }

    /// The embedded [`Journal::resume`].
    pub(crate) fn resume(&self, key: &RunKey) -> Result<(Run, ResumeState), ResumeError> {
        self.resume_with(key, vec![Event::Attached { owner: owner() }])
    }

    /// The embedded [`Journal::resume_expecting`].
    pub(crate) fn resume_expecting(&self, key: &RunKey, expect: &Expect) -> Result<(Run, ResumeState), ResumeError> {
        self.resume_checked(key, expect, vec![Event::Attached { owner: owner() }])
    }

    /// The embedded [`Journal::resume_latest`].
    pub(crate) fn resume_latest(&self, goal: &str, agent: &str) -> Result<(Run, ResumeState), ResumeError> {
        let filter = RunFilter {
            goal: Some(goal.to_string()),
            agent: Some(agent.to_string()),
            status: None,
        };
        let mut records = self.store().list(&filter).map_err(ReadError::from)?;
        records.sort_by_key(|record| record.key.episode);
        match records.iter().rev().find(|record| record.status.is_recoverable()) {
            Some(record) => self.resume(&record.key),
            None => Err(ResumeError::NotFound {
                run: RunKey {
                    goal: goal.to_string(),
                    episode: records.last().map_or(0, |record| record.key.episode.saturating_add(1)),
                    agent: agent.to_string(),
                },
            }),
        }
    }

    /// [`Journal::resume`], writing `opening` (an `attached`, then anything
    /// the new epoch starts with) as one atomic batch: an operator's action
    /// is a resume whose batch may also end the run.
    pub(crate) fn resume_with(&self, key: &RunKey, opening: Vec<Event>) -> Result<(Run, ResumeState), ResumeError> {
        self.resume_checked(key, &Expect::default(), opening)
    }

    pub(crate) fn resume_checked(
        &self,
        key: &RunKey,
        expect: &Expect,
        mut opening: Vec<Event>,
    ) -> Result<(Run, ResumeState), ResumeError> {
        let found = self
            .store()
            .find(key)
            .map_err(ReadError::from)?
            .ok_or_else(|| ResumeError::NotFound { run: key.clone() })?;
        refuse_unresumable(&found)?;
        if !expect.is_empty() {
            expect.check(key, &self.stored_meta(&found)?)?;
        }
        // Fence this process's older handles first, then read the head once
        // every append they queued before the fence is applied.
        let epoch = match found.head.epoch.checked_add(1) {
            Some(epoch) if epoch < u64::MAX => epoch,
            _ => {
                return Err(ResumeError::EpochExhausted {
                    run: key.clone(),
                    epoch: found.head.epoch,
                })
            }
        };
        self.inner.epoch_cell(found.id, epoch);
        // On a store several processes write, the epoch is raised in the
        // store first: a writer elsewhere is fenced from here on, so the
        // head read next stays put. (Not through the writer thread: it
        // changes only the epoch, which no queued append can lower.)
        let claimed = self.inner.store.claim_epoch(found.id, epoch).map_err(ReadError::from)?;
        // An older handle that passed its fence check just before the fence
        // may still queue one append after the barrier, and a writer in
        // another process (sharing a database server) may append between the
        // read of the head and the `attached`: the `attached` then meets a
        // conflict in the store (nothing written) and is tried again on the
        // new head (bounded); the fence stops any further one.
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.inner.barrier();
            let record = self.record_by_id(found.id, key)?;
            refuse_unresumable(&record)?;
            let folded = fold_state(self.store().as_ref(), &record, record.head.next_seq)?;
            if folded.stale_snapshot {
                self.replace_snapshots(&record, Some(&folded.state))?;
            }
            let run_epoch = if claimed && record.head.epoch == epoch {
                epoch
            } else {
                epoch.max(record.head.epoch.saturating_add(1))
            };
            let run = LocalRun::new(self, &record, run_epoch, folded.state, folded.tail_len);
            let events = if attempts < RESUME_ATTEMPTS {
                opening.clone()
            } else {
                std::mem::take(&mut opening)
            };
            match run.append_checked(None, events, Checks::Attach) {
                Ok(_) => {
                    let state = run.state();
                    return Ok((Run::local(run), state));
                }
                Err(crate::AppendError::Conflict { .. }) if attempts < RESUME_ATTEMPTS => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// A handle writing `key` with `epoch` without appending anything (the
    /// served API's appends): `epoch` must be the run's current one. An older
    /// epoch is [`AppendError::Fenced`](crate::AppendError::Fenced); a newer
    /// one was never opened; and while another handle at `epoch` is alive in
    /// this process (it may have appends queued that the store does not show
    /// yet) none is built.
    pub(crate) fn handle_at(&self, key: &RunKey, epoch: u64) -> Result<HandleAt, crate::Error> {
        let record = self.run_info(key)?;
        let current = self
            .inner
            .epoch_cell(record.id, record.head.epoch)
            .load(Ordering::Acquire)
            .max(record.head.epoch);
        if epoch < current {
            return Err(crate::Error::Fenced {
                run: key.clone(),
                seq: record.head.next_seq,
                epoch,
                current,
            });
        }
        if epoch > current {
            return Ok(HandleAt::NeverOpened);
        }
        let Some(claim) = self.inner.claim(record.id, epoch, true) else {
            return Ok(HandleAt::Held);
        };
        // Read again once what the last handle at this epoch queued is applied.
        self.inner.barrier();
        let record = self.record_by_id(record.id, key)?;
        if record.head.epoch > epoch {
            return Err(crate::Error::Fenced {
                run: key.clone(),
                seq: record.head.next_seq,
                epoch,
                current: record.head.epoch,
            });
        }
        let folded = fold_state(self.store().as_ref(), &record, record.head.next_seq)?;
        let mut state = folded.state;
        if record.status == RunStatus::Superseded {
            state.status = RunStatus::Superseded;
        }
        Ok(HandleAt::Built(Box::new(Run::with_claim(
            self,
            &record,
            epoch,
            state,
            folded.tail_len,
            claim,
        ))))
    }

    /// The database directory, for a journal opened from a path.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The embedded [`Journal::run_info`].
    pub(crate) fn run_info(&self, key: &RunKey) -> Result<RunRecord, ReadError> {
        self.store()
            .find(key)?
            .ok_or_else(|| ReadError::NotFound { run: key.clone() })
    }

    /// The embedded [`Journal::read`].
    pub(crate) fn read(&self, key: &RunKey, from_seq: u64) -> Result<Vec<Envelope>, ReadError> {
        let mut envelopes = Vec::new();
        self.for_each_event(key, from_seq, |envelope| {
            envelopes.push(envelope);
            ControlFlow::Continue(())
        })?;
        Ok(envelopes)
    }

    /// The embedded [`Journal::for_each_event`].
    pub(crate) fn for_each_event(
        &self,
        key: &RunKey,
        from_seq: u64,
        mut visit: impl FnMut(Envelope) -> ControlFlow<()>,
    ) -> Result<(), ReadError> {
        let record = self.run_info(key)?;
        walk_own(
            self.store().as_ref(),
            &record,
            from_seq,
            record.head.next_seq,
            &mut visit,
        )
        .map(|_| ())
    }

    /// The embedded [`Journal::history`].
    pub(crate) fn history(&self, key: &RunKey) -> Result<Vec<Envelope>, ReadError> {
        let record = self.run_info(key)?;
        let mut envelopes = Vec::new();
        walk_history(self.store().as_ref(), &record, record.head.next_seq, &mut |envelope| {
            envelopes.push(envelope);
            ControlFlow::Continue(())
        })?;
        Ok(envelopes)
    }

    /// The embedded [`Journal::verify`].
    pub(crate) fn verify(&self, key: &RunKey) -> Result<VerifyReport, ReadError> {
        let record = self.run_info(key)?;
        walk_history(self.store().as_ref(), &record, record.head.next_seq, &mut |_| {
            ControlFlow::Continue(())
        })?;
        Ok(VerifyReport {
            run: record.key,
            events: record.head.next_seq,
            head: record.head.hash,
        })
    }

    /// The embedded [`Journal::state`].
    pub(crate) fn state(&self, key: &RunKey) -> Result<ResumeState, ReadError> {
        let record = self.run_info(key)?;
        let mut state = fold_state(self.store().as_ref(), &record, record.head.next_seq)?.state;
        if record.status == RunStatus::Superseded {
            state.status = RunStatus::Superseded;
            state.recoverable = false;
        }
        Ok(state)
    }

    /// The `meta` of the run's own `run_started` (seq 0), verified.
    pub(crate) fn stored_meta(&self, record: &RunRecord) -> Result<RunMeta, ReadError> {
        let mut meta = RunMeta::default();
        walk_own(self.store().as_ref(), record, 0, 1, &mut |envelope| {
            if let Event::RunStarted { meta: started } = envelope.event {
                meta = started;
            }
            ControlFlow::Break(())
        })?;
        Ok(meta)
    }

    /// The embedded [`Journal::state_at`].
    pub(crate) fn state_at(&self, key: &RunKey, seq: u64) -> Result<ResumeState, ReadError> {
        let record = self.run_info(key)?;
        if seq >= record.head.next_seq {
            return Err(ReadError::SeqOutOfRange {
                run: key.clone(),
                seq,
                last: record.head.next_seq.saturating_sub(1),
            });
        }
        Ok(fold_state(self.store().as_ref(), &record, seq + 1)?.state)
    }

    /// The embedded [`Journal::runs`].
    pub(crate) fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, ReadError> {
        Ok(self.store().list(filter)?)
    }

    /// The embedded [`Journal::recoverable`].
    pub(crate) fn recoverable(&self) -> Result<Vec<ResumeState>, ReadError> {
        let mut states = Vec::new();
        for record in self.store().list(&RunFilter::default())? {
            if record.status.is_recoverable() {
                states.push(fold_state(self.store().as_ref(), &record, record.head.next_seq)?.state);
            }
        }
        Ok(states)
    }

    /// The embedded [`Journal::latest_episode`].
    pub(crate) fn latest_episode(&self, goal: &str, agent: &str) -> Result<Option<u32>, ReadError> {
        Ok(self.store().max_episode(goal, Some(agent))?)
    }

    /// The embedded [`Journal::next_episode`].
    pub(crate) fn next_episode(&self, goal: &str) -> Result<u32, ReadError> {
        match self.store().max_episode(goal, None)? {
            None => Ok(0),
            Some(max) => max
                .checked_add(1)
                .ok_or_else(|| ReadError::EpisodesExhausted { goal: goal.to_owned() }),
        }
    }

    /// Commands handed to the writer and not applied yet.
    pub(crate) fn writer_queued(&self) -> usize {
        self.inner.writer.health.queued()
    }

    /// What the writer keeps for a caller to free ([`crate::spent::Spent`]).
    #[cfg(test)]
    pub(crate) fn spent(&self) -> &crate::spent::Spent {
        &self.inner.writer.health.spent
    }

    /// The write path's counters: batches, events and bytes applied, groups
    /// committed, syncs and their latency.
    pub(crate) fn metrics(&self) -> crate::MetricsSnapshot {
        self.inner.writer.health.metrics.snapshot()
    }

    /// The embedded [`Journal::sync`].
    pub(crate) fn sync(&self) -> Result<(), WriteError> {
        let (sender, receiver) = crate::oneshot::channel();
        self.call(
            Command::Apply(Operation::Sync {
                reply: Reply::Blocking(sender),
            }),
            receiver,
        )
    }

    /// The embedded [`Journal::rebuild_snapshots`].
    pub(crate) fn rebuild_snapshots(&self, key: &RunKey) -> Result<(), RebuildError> {
        let record = self.run_info(key)?;
        let mut state = ResumeState::new(key.clone());
        walk_history(self.store().as_ref(), &record, record.head.next_seq, &mut |envelope| {
            state.apply_owned(envelope);
            ControlFlow::Continue(())
        })?;
        self.replace_snapshots(&record, Some(&state))?;
        Ok(())
    }

    fn replace_snapshots(&self, record: &RunRecord, state: Option<&ResumeState>) -> Result<(), WriteError> {
        let snapshot = state.map(|state| SnapshotRecord {
            seq: record.head.next_seq.saturating_sub(1),
            bytes: encode_snapshot(state),
        });
        let (sender, receiver) = crate::oneshot::channel();
        let command = Command::Apply(Operation::ReplaceSnapshots {
            run: record.id,
            snapshot,
            reply: Reply::Blocking(sender),
        });
        self.call(command, receiver)
    }

    pub(crate) fn record_by_id(&self, id: runjournal_core::RunId, key: &RunKey) -> Result<RunRecord, ReadError> {
        self.store()
            .run(id)?
            .ok_or_else(|| ReadError::NotFound { run: key.clone() })
    }

    /// Sends a command to the writer and waits for its answer; a command
    /// that ends in a sync (a durable create, a purge, a sync) commits on
    /// this thread instead when the writer grants it (`Writer::commit_here`).
    pub(crate) fn call<T>(
        &self,
        command: Command,
        receiver: crate::oneshot::Receiver<Result<T, StoreFailure>>,
    ) -> Result<T, WriteError> {
        if let Some(source) = self.inner.writer.health.failure() {
            return Err(WriteError::Poisoned { source });
        }
        match self.inner.writer.commit_here(&command) {
            Some(here) => here.commit(command),
            None => {
                if !self.inner.writer.send(command) {
                    return Err(WriteError::WriterStopped);
                }
            }
        }
        match receiver.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(WriteError::Storage { source }),
            // The writer drops a reply unanswered only when it panics.
            Err(_) => Err(WriteError::WriterStopped),
        }
    }
}

/// A store that answered a create with another number of runs than asked:
/// it broke [`Store::create_runs`]'s contract, so what it stored is unknown.
pub(crate) fn broken_create_contract(created: usize, asked: usize) -> WriteError {
    WriteError::Storage {
        source: Arc::new(runjournal_core::StoreError::Backend {
            operation: "create runs",
            detail: format!("the store answered {created} created runs for {asked} asked"),
        }),
    }
}

/// Refuses to resume a completed, failed or superseded run.
fn refuse_unresumable(record: &RunRecord) -> Result<(), ResumeError> {
    match record.status {
        RunStatus::Completed | RunStatus::Failed => Err(ResumeError::Finished {
            run: record.key.clone(),
            status: record.status,
        }),
        RunStatus::Superseded => Err(ResumeError::Superseded {
            run: record.key.clone(),
        }),
        RunStatus::Running | RunStatus::Interrupted => Ok(()),
    }
}

/// What a caller expects of a run's `meta` when it resumes it
/// ([`Journal::resume_expecting`](crate::Journal::resume_expecting)): every field that is set must equal the
/// stored one (a stored value that is absent differs from any expected one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// The expected `meta.backend`.
    pub backend: Option<String>,
    /// The expected `meta.model`.
    pub model: Option<String>,
    /// The expected `meta.agent_name`.
    pub agent_name: Option<String>,
}

impl Expect {
    /// Expects nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also expects `meta.backend` to be `backend`.
    #[must_use]
    pub fn backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = Some(backend.into());
        self
    }

    /// Also expects `meta.model` to be `model`.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Also expects `meta.agent_name` to be `agent_name`.
    #[must_use]
    pub fn agent_name(mut self, agent_name: impl Into<String>) -> Self {
        self.agent_name = Some(agent_name.into());
        self
    }

    /// Expects the `backend` and `model` that `meta` sets (what
    /// [`Journal::scoped`](crate::Journal::scoped) checks on a resume). `agent_name` is left out: it
    /// may name the process (`orchestrator-0-18030`) and change at every resume.
    pub fn from_meta(meta: &RunMeta) -> Self {
        Expect {
            backend: meta.backend.clone(),
            model: meta.model.clone(),
            agent_name: None,
        }
    }

    fn is_empty(&self) -> bool {
        *self == Expect::default()
    }

    /// The first field whose stored value differs from the expected one.
    fn check(&self, run: &RunKey, stored: &RunMeta) -> Result<(), ResumeError> {
        let fields = [
            ("backend", &self.backend, &stored.backend),
            ("model", &self.model, &stored.model),
            ("agent_name", &self.agent_name, &stored.agent_name),
        ];
        for (field, expected, stored) in fields {
            if let Some(expected) = expected {
                if stored.as_ref() != Some(expected) {
                    return Err(ResumeError::Mismatch {
                        run: run.clone(),
                        field,
                        stored: stored.clone(),
                        expected: expected.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// `host/pid` of this process, for `attached`.
pub(crate) fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|host| host.trim().to_string())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}/{}", std::process::id())
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}
