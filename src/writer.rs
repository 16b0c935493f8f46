//! The writer: the one place that writes to the store.
//!
//! Invariants:
//! - One group at a time: a group is applied only under the lock of the
//!   group-commit state ([`WriterLoop`]), by the writer thread or, for a
//!   blocking durable append (or a durable create, a purge, a sync: a
//!   command that ends in a sync) when nothing is queued, no hold is open and the
//!   last group was of one command, by the append's own thread
//!   ([`Writer::commit_here`]), as a group of one. A command is counted in
//!   [`Health`]'s `queued` from before it is sent until its group is
//!   answered, and so is the right to commit on one's own thread, so such a
//!   commit never overtakes a command sent before it and two never race.
//! - Group commit: the thread takes every command waiting on its channel (up
//!   to [`MAX_GROUP`]), applies them in arrival order (consecutive appends in
//!   one store call, each batch still atomic and conditional), makes them
//!   durable with one `sync` when any caller asked for durability (every
//!   `Durable` append, and in any mode a run boundary: a create, an `attached`,
//!   an `agent_died`, an outcome), and only then answers every caller of the group.
//! - Fail-stop: the first store failure (apply or sync) poisons the journal.
//!   Every caller of that group and every later write gets the failure; none is
//!   told its events are durable when they may not be. Live subscribers are
//!   dropped then, and learn that the journal is poisoned.
//! - A panic of the writer thread is recorded (its callers learn that the
//!   writer stopped, not that the journal closed).
//! - In `Buffered` mode, applied data is synced at least every flush interval
//!   and when the journal closes, and a buffered append that returned to its
//!   caller is synced within the flush interval of its return (plus the time
//!   the writer takes to apply and sync what is queued before it): the writer
//!   syncs as soon as the oldest returned, unsynced append is that old, even
//!   while commands keep arriving, and producers wait when it is older than
//!   half the interval (`run::Run::may_detach`).
//! - Subscriptions register and barriers are answered only after everything
//!   queued before them is applied (and answered, and published).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use runjournal_core::{
    AppendBatch, AppendRejection, Envelope, KeyExists, NewRun, RunId, RunRecord, SnapshotRecord, Store, StoreError,
};

use crate::hub::{Ended, Hub, Scope, Slot};
use crate::metrics::Metrics;
use crate::options::Durability;
use crate::published::Published;
use crate::spent::Spent;

/// The most commands applied and synced as one group.
pub(crate) const MAX_GROUP: usize = 4096;

/// A store failure shared by every caller it affects.
pub type StoreFailure = Arc<StoreError>;

/// The result of a conditional append.
pub(crate) type AppendOutcome = Result<Result<(), AppendRejection>, StoreFailure>;
/// The result of creating runs.
pub(crate) type CreateOutcome = Result<Result<Vec<RunRecord>, KeyExists>, StoreFailure>;
/// The result of a maintenance write.
pub(crate) type WriteOutcome<T> = Result<T, StoreFailure>;
/// The result of a subscription's registration: the run's next seq, unless
/// reading its head failed (a read error: it does not poison the journal).
pub(crate) type SubscribeOutcome = WriteOutcome<Result<Option<u64>, StoreError>>;

/// Where the writer sends an answer.
pub(crate) enum Reply<T> {
    /// A blocking caller waiting on a channel.
    Blocking(crate::oneshot::Sender<T>),
    /// An async caller awaiting a oneshot.
    Async(tokio::sync::oneshot::Sender<T>),
    /// Nobody waits (a buffered append that already returned): the answer is
    /// handed to its handle's sink, which records it where the caller will
    /// look.
    Detached(Detached, DetachedSink<T>),
}

/// A detached append, as its answer is recorded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Detached {
    /// Its first seq.
    pub(crate) first_seq: u64,
    /// Its records' bytes, counted in flight until it is answered.
    pub(crate) bytes: u64,
}

/// Records the answers of one handle's detached appends. Shared by all of
/// them (an `Arc` clone per append), so queuing one allocates nothing that
/// the writer thread would free.
pub(crate) type DetachedSink<T> = Arc<dyn Fn(Detached, T) + Send + Sync>;

impl<T> Reply<T> {
    fn send(self, value: T) {
        // A caller that stopped waiting (dropped its receiver) needs no answer.
        match self {
            Reply::Blocking(sender) => sender.send(value),
            Reply::Async(sender) => drop(sender.send(value)),
            Reply::Detached(append, sink) => sink(append, value),
        }
    }

    /// Whether a thread blocks for the answer.
    fn is_blocking(&self) -> bool {
        matches!(self, Reply::Blocking(_))
    }

    /// Whether the caller already returned (a detached buffered append).
    fn is_detached(&self) -> bool {
        matches!(self, Reply::Detached(..))
    }
}

/// A request to the writer.
pub(crate) enum Command {
    /// A conditional append; consecutive appends are applied in one store call.
    Append {
        batch: AppendBatch,
        /// The batch's events, published to subscribers once durable.
        envelopes: Published,
        durable: bool,
        reply: Reply<AppendOutcome>,
    },
    /// Registers a subscriber once its group is answered; answers the run's
    /// next seq at that moment.
    Subscribe {
        slot: Slot,
        run: Option<RunId>,
        reply: Reply<SubscribeOutcome>,
    },
    /// Any other request, applied in arrival order between the appends.
    Apply(Operation),
    /// Nothing to apply: the last [`Hold`] of a hand-over ended, and a
    /// writer waiting for it goes on.
    Wake,
}

impl Command {
    /// Whether it may be committed on its caller's thread: its caller blocks
    /// for the answer, and applying it ends in a sync whatever the
    /// durability mode (a durable append or create, a purge, a sync), so it
    /// leaves nothing unsynced for the writer thread's deadline.
    fn may_commit_here(&self) -> bool {
        match self {
            Command::Append { durable, reply, .. } => *durable && reply.is_blocking(),
            Command::Apply(Operation::Create { durable, reply, .. }) => *durable && reply.is_blocking(),
            Command::Apply(Operation::Delete { reply, .. }) => reply.is_blocking(),
            Command::Apply(Operation::Sync { reply }) => reply.is_blocking(),
            _ => false,
        }
    }
}

/// A request the writer applies on its own, between runs of appends.
pub(crate) enum Operation {
    Create {
        runs: Vec<NewRun>,
        /// The runs' first events, published to subscribers once durable.
        envelopes: Vec<Envelope>,
        durable: bool,
        reply: Reply<CreateOutcome>,
    },
    Delete {
        runs: Vec<RunId>,
        reply: Reply<WriteOutcome<u64>>,
    },
    ReplaceSnapshots {
        run: RunId,
        snapshot: Option<SnapshotRecord>,
        reply: Reply<WriteOutcome<()>>,
    },
    Sync {
        reply: Reply<WriteOutcome<()>>,
    },
    /// Answered once every command queued before it is applied (not synced):
    /// reads wait on it to see buffered appends that already returned.
    Barrier {
        reply: Reply<WriteOutcome<()>>,
    },
}

/// Whether the journal still accepts writes, and its write-path counters.
pub(crate) struct Health {
    failure: OnceLock<StoreFailure>,
    /// Set when the writer thread panicked.
    stopped: AtomicBool,
    pub(crate) metrics: Metrics,
    /// Bytes of buffered appends that returned to their caller but are not
    /// applied yet (zero when none is in flight).
    pub(crate) in_flight: std::sync::atomic::AtomicU64,
    /// When each detached buffered append that is not synced yet returned to
    /// its caller, in the order they were queued (the channel's order): the
    /// front is the oldest returned, unsynced append.
    returned: Mutex<VecDeque<Instant>>,
    /// `returned`'s front as nanoseconds after `origin`, plus one (0: empty),
    /// written under `returned`'s lock whenever the front changes, so an
    /// append deciding whether it may return reads it without that lock.
    oldest_returned: std::sync::atomic::AtomicU64,
    /// The instant `oldest_returned` counts from.
    origin: Instant,
    /// The most bytes of detached appends that may wait unapplied: what the
    /// writer applies and syncs in a quarter of the flush interval at the rate
    /// it last measured (between [`MIN_IN_FLIGHT_BYTES`] and
    /// [`MAX_IN_FLIGHT_BYTES`]), so a backlog never takes it longer than that.
    pub(crate) in_flight_limit: std::sync::atomic::AtomicU64,
    /// Open [`Hold`]s: callers handing over several commands that belong in
    /// one group.
    holds: std::sync::atomic::AtomicUsize,
    /// Commands sent and not yet answered (in the channel, or taken by the
    /// writer thread into a group it has not finished), and a caller's right
    /// to commit on its own thread ([`Writer::commit_here`]) until answered.
    queued: std::sync::atomic::AtomicUsize,
    /// Whether the last group applied was of at most one command: appends
    /// come one at a time, and one may commit on its own thread.
    solo: AtomicBool,
    /// Applied appends waiting for a caller's thread to free them.
    pub(crate) spent: Spent,
}

/// The least [`Health::in_flight_limit`]: a slow disk still takes batches.
const MIN_IN_FLIGHT_BYTES: u64 = 64 * 1024;
/// The most [`Health::in_flight_limit`], whatever the writer's rate, and its
/// value before the writer measured one.
const MAX_IN_FLIGHT_BYTES: u64 = 32 * 1024 * 1024;
/// The in-flight limit before the writer measured its rate.
const FIRST_IN_FLIGHT_BYTES: u64 = 256 * 1024;

impl Default for Health {
    fn default() -> Self {
        Health {
            failure: OnceLock::new(),
            stopped: AtomicBool::new(false),
            metrics: Metrics::default(),
            in_flight: std::sync::atomic::AtomicU64::new(0),
            returned: Mutex::new(VecDeque::new()),
            oldest_returned: std::sync::atomic::AtomicU64::new(0),
            origin: Instant::now(),
            in_flight_limit: std::sync::atomic::AtomicU64::new(FIRST_IN_FLIGHT_BYTES),
            holds: std::sync::atomic::AtomicUsize::new(0),
            queued: std::sync::atomic::AtomicUsize::new(0),
            solo: AtomicBool::new(true),
            spent: Spent::default(),
        }
    }
}

impl Health {
    /// The failure that poisoned the journal, if any.
    pub(crate) fn failure(&self) -> Option<StoreFailure> {
        self.failure.get().cloned()
    }

    /// Commands sent to the writer and not answered yet.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Whether the writer thread panicked.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// When the oldest detached append that is not synced yet returned.
    pub(crate) fn oldest_unsynced(&self) -> Option<Instant> {
        let since_origin = self.oldest_returned.load(Ordering::Acquire).checked_sub(1)?;
        Some(self.origin + Duration::from_nanos(since_origin))
    }

    /// `count` detached appends, the oldest ones, are synced.
    fn synced(&self, count: usize) {
        let mut returned = self.lock_returned();
        let count = count.min(returned.len());
        returned.drain(..count);
        self.publish_oldest(returned.front().copied());
    }

    /// Queues a detached append that returned at `now` in `returned` (the
    /// caller holds its lock), publishing it when it is the new front.
    fn push_returned(&self, returned: &mut VecDeque<Instant>, now: Instant) {
        if returned.is_empty() {
            self.publish_oldest(Some(now));
        }
        returned.push_back(now);
    }

    /// Records `front`, `returned`'s front (the caller holds its lock), in
    /// `oldest_returned`.
    fn publish_oldest(&self, front: Option<Instant>) {
        let encoded = front.map_or(0, |instant| {
            let since_origin = instant.saturating_duration_since(self.origin).as_nanos();
            u64::try_from(since_origin).unwrap_or(u64::MAX - 1) + 1
        });
        self.oldest_returned.store(encoded, Ordering::Release);
    }

    fn lock_returned(&self) -> MutexGuard<'_, VecDeque<Instant>> {
        self.returned.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn poison(&self, failure: StoreFailure) -> StoreFailure {
        let first = self.failure.get_or_init(|| failure);
        first.clone()
    }
}

/// Records, when the writer thread unwinds, that it stopped.
struct StopGuard(Arc<Health>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stopped.store(true, Ordering::Release);
        }
    }
}

/// The handle on the writer thread.
pub(crate) struct Writer {
    sender: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    pub(crate) health: Arc<Health>,
    /// The group-commit state; whoever holds it applies a group: the writer
    /// thread, or a caller committing its own durable append
    /// ([`Writer::commit_here`]).
    core: Arc<Mutex<WriterLoop>>,
}

impl Writer {
    /// Starts the writer thread over `store`.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        durability: Durability,
        flush_interval: Duration,
    ) -> std::io::Result<Writer> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let health = Arc::new(Health::default());
        let core = Arc::new(Mutex::new(WriterLoop {
            hub,
            store,
            health: health.clone(),
            durability,
            flush_interval,
            unsynced_since: None,
            detached_unsynced: 0,
            cycle_bytes: 0,
            cycle_busy: Duration::ZERO,
        }));
        let loop_health = health.clone();
        let loop_core = core.clone();
        let thread = std::thread::Builder::new()
            .name("runjournal-writer".into())
            .spawn(move || {
                let _guard = StopGuard(loop_health.clone());
                run(&loop_core, &loop_health, &receiver);
            })?;
        Ok(Writer {
            sender: Some(sender),
            thread: Some(thread),
            health,
            core,
        })
    }

    /// Queues a command; `false` when the writer is gone.
    pub(crate) fn send(&self, command: Command) -> bool {
        let Some(sender) = &self.sender else {
            return false;
        };
        // Counted before it is sent: a caller that sees no command queued
        // knows none is in the channel or in the writer thread's hands.
        self.health.queued.fetch_add(1, Ordering::AcqRel);
        let sent = sender.send(command).is_ok();
        if !sent {
            self.health.queued.fetch_sub(1, Ordering::AcqRel);
        }
        sent
    }

    /// The right to commit `command` on the calling thread: granted only for
    /// a blocking command that ends in a sync, when nothing is queued and no
    /// hold is open, so the command is applied exactly where the channel
    /// would have placed it, without two thread hand-offs, and only while
    /// appends come one at a time (the last group was of one command), so
    /// concurrent appenders keep sharing groups. `None`: send it.
    ///
    /// The right counts as a queued command until the commit is answered, so
    /// one caller at a time has it and everyone else queues (their appends go
    /// in one group after it). It waits for the group lock, which is held
    /// then only to finish a group already answered (or a periodic sync).
    /// The caller decides under the lock that orders its run's appends and
    /// may release that lock before [`CommitHere::commit`]: an append of the
    /// run queued meanwhile waits for this one.
    pub(crate) fn commit_here(&self, command: &Command) -> Option<CommitHere<'_>> {
        // A panic while unwinding aborts the process: a thread that is
        // unwinding (a run dropped during a panic records its failure) leaves
        // the work to the writer thread.
        if !command.may_commit_here()
            || std::thread::panicking()
            || self.health.holds.load(Ordering::Acquire) > 0
            || !self.health.solo.load(Ordering::Acquire)
        {
            return None;
        }
        self.health
            .queued
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let Ok(core) = self.core.lock() else {
            // A commit panicked: the writer stopped, and a sent command learns it.
            self.health.queued.fetch_sub(1, Ordering::AcqRel);
            return None;
        };
        Some(CommitHere { core })
    }

    /// Keeps the writer from starting a group until the hold ends: the
    /// commands sent meanwhile (one caller's many appends) go in one group
    /// with whatever else arrives. A hold must end without waiting for the
    /// writer (it only sends), or the writer waits for it forever.
    pub(crate) fn hold(&self) -> Hold<'_> {
        self.health.holds.fetch_add(1, Ordering::AcqRel);
        Hold { writer: self }
    }

    /// Queues a detached append (its caller returns now) and records when it
    /// returned. Queuing and recording happen under one lock, so the record's
    /// order is the channel's and the writer retires exactly what it synced.
    pub(crate) fn send_detached(&self, command: Command) -> bool {
        let mut returned = self.health.lock_returned();
        let sent = self.send(command);
        if sent {
            self.health.push_returned(&mut returned, Instant::now());
        }
        sent
    }
}

/// A durable command's commit on its caller's thread ([`Writer::commit_here`]).
pub(crate) struct CommitHere<'a> {
    core: MutexGuard<'a, WriterLoop>,
}

impl CommitHere<'_> {
    /// Applies `command` as a group of its own, syncs, and answers it (its
    /// reply is waiting in the caller's channel when this returns).
    ///
    /// A panic while applying is what it is on the writer thread: recorded as
    /// the writer stopping (the lock is poisoned, so the writer thread stops
    /// too), the command's reply dropped unanswered, and not passed on to the
    /// caller, who learns that the writer stopped.
    pub(crate) fn commit(self, command: Command) {
        let CommitHere { mut core } = self;
        let health = core.health.clone();
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            core.commit_group(vec![command]);
            core.health.queued.fetch_sub(1, Ordering::AcqRel);
            // Allocated on this thread: freed here, not kept for the next append.
            core.health.spent.free();
        }));
        // The panic hook reported it; it is recorded as the writer stopping
        // (and the right stays counted: nothing commits here again).
        if applied.is_err() {
            health.stopped.store(true, Ordering::Release);
        }
    }
}

/// An open [`Writer::hold`]; it ends when dropped.
pub(crate) struct Hold<'a> {
    writer: &'a Writer,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if self.writer.health.holds.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A writer that saw this hold may be waiting for a command.
            self.writer.send(Command::Wake);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            // A panicked writer has nothing left to report at close.
            drop(thread.join());
        }
    }
}

/// An append waiting in a group: the batch, its events, its caller.
type QueuedAppend = (AppendBatch, Published, Reply<AppendOutcome>);
/// What an applied append still owes: its events to publish, its caller's answer.
type AppendAnswer = (Published, Reply<AppendOutcome>);

struct WriterLoop {
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    health: Arc<Health>,
    durability: Durability,
    flush_interval: Duration,
    /// When data was first applied since the last sync.
    unsynced_since: Option<Instant>,
    /// Detached appends applied since the last sync.
    detached_unsynced: usize,
    /// Bytes applied since the last sync, and the time spent applying them.
    cycle_bytes: u64,
    cycle_busy: Duration,
}

/// Answers owed to the callers of one group once it is applied and synced.
enum Pending {
    /// An append: its caller, its outcome, and its events to publish from
    /// its batch's records.
    Append(
        Reply<AppendOutcome>,
        Result<(), AppendRejection>,
        Published,
        AppendBatch,
    ),
    Create(Reply<CreateOutcome>, Result<Vec<RunRecord>, KeyExists>, Vec<Envelope>),
    /// A purge: its caller, the bytes freed, the runs deleted.
    Delete(Reply<WriteOutcome<u64>>, u64, Vec<RunId>),
    Unit(Reply<WriteOutcome<()>>),
}

impl Pending {
    /// Publishes and answers; an append's batch goes to `spent`, for a
    /// caller's thread to free.
    fn succeed(self, hub: &Hub, spent: &mut Vec<AppendBatch>) {
        match self {
            Pending::Append(reply, outcome, published, batch) => {
                if outcome.is_ok() {
                    hub.publish(published.envelopes(&batch.records));
                }
                spent.push(batch);
                reply.send(Ok(outcome));
            }
            Pending::Create(reply, outcome, envelopes) => {
                if outcome.is_ok() {
                    hub.publish(envelopes.into_iter().map(Ok));
                }
                reply.send(Ok(outcome));
            }
            Pending::Delete(reply, freed, runs) => {
                hub.purged(&runs);
                reply.send(Ok(freed));
            }
            Pending::Unit(reply) => reply.send(Ok(())),
        }
    }

    fn fail(self, failure: &StoreFailure) {
        match self {
            Pending::Append(reply, ..) => reply.send(Err(failure.clone())),
            Pending::Create(reply, _, _) => reply.send(Err(failure.clone())),
            Pending::Delete(reply, _, _) => reply.send(Err(failure.clone())),
            Pending::Unit(reply) => reply.send(Err(failure.clone())),
        }
    }
}

/// The writer thread: waits for a command, takes the group-commit state,
/// gathers the group and commits it.
fn run(core: &Mutex<WriterLoop>, health: &Health, receiver: &Receiver<Command>) {
    loop {
        // A poisoned lock: a caller's commit panicked, and the writer stops.
        let Ok(deadline) = core.lock().map(|core| core.next_deadline()) else {
            return;
        };
        let first = match deadline {
            None => {
                // Everything applied is synced and nothing waits: no caller
                // may come to free what the writer is done with.
                if receiver.is_empty() {
                    health.spent.free();
                }
                match receiver.recv() {
                    Ok(command) => command,
                    Err(_) => break,
                }
            }
            Some(deadline) => match receiver.recv_deadline(deadline) {
                Ok(command) => command,
                Err(RecvTimeoutError::Timeout) => {
                    let Ok(mut core) = core.lock() else { return };
                    // A caller's durable commit may have synced meanwhile.
                    if core.sync_due() {
                        core.periodic_sync();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        let Ok(mut core) = core.lock() else { return };
        let mut taken = 1;
        let mut group = Vec::new();
        join(&mut group, first);
        loop {
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(command) => {
                        taken += 1;
                        join(&mut group, command);
                    }
                    Err(_) => break,
                }
            }
            if group.len() >= MAX_GROUP || health.holds.load(Ordering::Acquire) == 0 {
                break;
            }
            // A caller is still handing over commands of this group; its
            // hold ends with a `Wake` at the latest.
            match receiver.recv() {
                Ok(command) => {
                    taken += 1;
                    join(&mut group, command);
                }
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            core.commit_group(group);
        }
        // Counted out once answered: an answered caller that appends again
        // while the writer thread still holds the lock queues behind it.
        health.queued.fetch_sub(taken, Ordering::AcqRel);
    }
    let Ok(mut core) = core.lock() else { return };
    if core.unsynced_since.is_some() && health.failure().is_none() {
        core.periodic_sync();
    }
}

impl WriterLoop {
    /// When the next sync is due: a flush interval after data was first
    /// applied unsynced, or after the oldest unsynced detached append returned
    /// (which may be earlier: it may have waited in the channel).
    fn next_deadline(&self) -> Option<Instant> {
        let applied = self.unsynced_since;
        let returned = self.health.oldest_unsynced().filter(|_| self.detached_unsynced > 0);
        let since = match (applied, returned) {
            (Some(applied), Some(returned)) => Some(applied.min(returned)),
            (since, None) | (None, since) => since,
        };
        since.map(|since| since + self.flush_interval)
    }

    /// Whether a sync is due now (checked after every group, so a producer
    /// that keeps the channel busy cannot postpone it).
    fn sync_due(&self) -> bool {
        self.next_deadline().is_some_and(|deadline| deadline <= Instant::now())
    }

    fn periodic_sync(&mut self) {
        let _span = tracing::debug_span!("flush", reason = "interval").entered();
        let started = Instant::now();
        if let Err(error) = self.timed_sync() {
            self.poison(error);
        } else {
            self.retire_synced(started.elapsed());
        }
        self.unsynced_since = None;
    }

    /// Everything applied is synced: the detached appends among it no longer
    /// count as returned and unsynced.
    fn retire_synced(&mut self, sync_took: Duration) {
        self.health.synced(self.detached_unsynced);
        self.detached_unsynced = 0;
        let busy = self.cycle_busy + sync_took;
        if self.cycle_bytes >= MIN_IN_FLIGHT_BYTES && !busy.is_zero() {
            // Bytes the writer applies and syncs in a quarter interval at the
            // rate of this cycle, averaged with the previous limit.
            let quarter = u128::from(self.cycle_bytes) * self.flush_interval.as_nanos() / (4 * busy.as_nanos());
            let quarter = u64::try_from(quarter).unwrap_or(u64::MAX);
            let previous = self.health.in_flight_limit.load(Ordering::Relaxed);
            let limit = (previous / 2 + quarter / 2).clamp(MIN_IN_FLIGHT_BYTES, MAX_IN_FLIGHT_BYTES);
            self.health.in_flight_limit.store(limit, Ordering::Relaxed);
        }
        self.cycle_bytes = 0;
        self.cycle_busy = Duration::ZERO;
    }

    fn timed_sync(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.store.sync();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.health.metrics.flushed(micros);
        tracing::debug!(flush_micros = micros, ok = result.is_ok(), "flush");
        result
    }

    /// Applies `group`, syncs it if asked, and answers it.
    fn commit_group(&mut self, group: Vec<Command>) {
        self.health.solo.store(group.len() <= 1, Ordering::Release);
        if let Some(failure) = self.health.failure() {
            for command in group {
                reply_failure(command, &failure);
            }
            return;
        }
        self.health.metrics.group();
        let mut pending = Vec::with_capacity(group.len());
        let mut appends: Vec<QueuedAppend> = Vec::new();
        let mut wants_sync = self.durability == Durability::Durable;
        let mut result: Result<(), StoreFailure> = Ok(());
        let mut subscriptions = Vec::new();
        for command in group {
            if let Err(failure) = &result {
                reply_failure(command, failure);
                continue;
            }
            match command {
                Command::Wake => {}
                Command::Subscribe { slot, run, reply } => subscriptions.push((slot, run, reply)),
                Command::Append {
                    batch,
                    envelopes,
                    durable,
                    reply,
                } => {
                    wants_sync |= durable;
                    if reply.is_detached() {
                        self.detached_unsynced += 1;
                    }
                    appends.push((batch, envelopes, reply));
                }
                Command::Apply(operation) => {
                    result = self.apply_appends(&mut appends, &mut pending);
                    match &result {
                        Ok(()) => result = self.apply_operation(operation, &mut pending, &mut wants_sync),
                        Err(failure) => operation.fail(failure),
                    }
                }
            }
        }
        if result.is_ok() {
            result = self.apply_appends(&mut appends, &mut pending);
        }
        if result.is_ok() {
            if self.unsynced_since.is_none() {
                self.unsynced_since = Some(Instant::now());
            }
            if wants_sync || self.sync_due() {
                let _span = tracing::debug_span!("flush", reason = "group", callers = pending.len()).entered();
                let started = Instant::now();
                result = self.timed_sync().map_err(|error| self.poison(error));
                if result.is_ok() {
                    self.retire_synced(started.elapsed());
                }
                self.unsynced_since = None;
            }
        }
        match result {
            Ok(()) => {
                let mut spent = Vec::with_capacity(pending.len());
                for answer in pending {
                    answer.succeed(&self.hub, &mut spent);
                }
                self.health.spent.keep_batches(spent);
                for (slot, run, reply) in subscriptions {
                    self.register(slot, run, reply);
                }
            }
            Err(failure) => {
                for answer in pending {
                    answer.fail(&failure);
                }
                for (_, _, reply) in appends {
                    reply.send(Err(failure.clone()));
                }
                for (_, _, reply) in subscriptions {
                    reply.send(Err(failure.clone()));
                }
            }
        }
    }

    /// Registers a subscriber once its group is answered and published: the
    /// head it gets is durable and every later event reaches it live.
    fn register(&self, slot: Slot, run: Option<RunId>, reply: Reply<SubscribeOutcome>) {
        let head = match run {
            Some(run) => self
                .store
                .run(run)
                .map(|record| record.map(|record| record.head.next_seq)),
            None => Ok(None),
        };
        match (&head, &slot.scope) {
            // The run was purged before the subscription registered.
            (Ok(None), Scope::Run(key)) if run.is_some() => {
                let key = key.clone();
                slot.end(Ended::Purged(key));
            }
            (Ok(_), _) => self.hub.register(slot),
            (Err(_), _) => {}
        }
        reply.send(Ok(head));
    }

    /// Poisons the journal with `error` (the first failure wins) and drops
    /// every live subscriber, which then learns the journal is poisoned.
    fn poison(&self, error: StoreError) -> StoreFailure {
        let failure = self.health.poison(Arc::new(error));
        self.hub.close_all();
        failure
    }

    fn apply_appends(
        &mut self,
        appends: &mut Vec<QueuedAppend>,
        pending: &mut Vec<Pending>,
    ) -> Result<(), StoreFailure> {
        if appends.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let (batches, answers): (Vec<AppendBatch>, Vec<AppendAnswer>) = appends
            .drain(..)
            .map(|(batch, envelopes, reply)| (batch, (envelopes, reply)))
            .unzip();
        // The group's appends were queued by different callers, each for its
        // own run: independent, and none is answered before the group's sync.
        let outcomes = match self.store.append_independent(&batches) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                let failure = self.poison(error);
                for (_, reply) in answers {
                    reply.send(Err(failure.clone()));
                }
                return Err(failure);
            }
        };
        let events: usize = batches.iter().map(|batch| batch.records.len()).sum();
        let bytes: usize = batches.iter().flat_map(|batch| &batch.records).map(Vec::len).sum();
        self.health
            .metrics
            .applied(batches.len() as u64, events as u64, bytes as u64);
        self.cycle_bytes += bytes as u64;
        self.cycle_busy += started.elapsed();
        tracing::trace!(
            batches = batches.len(),
            events,
            bytes,
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "applied"
        );
        for (((envelopes, reply), outcome), batch) in answers.into_iter().zip(outcomes).zip(batches) {
            pending.push(Pending::Append(reply, outcome, envelopes, batch));
        }
        Ok(())
    }

    /// Applies an operation; on failure its caller is answered here.
    fn apply_operation(
        &self,
        operation: Operation,
        pending: &mut Vec<Pending>,
        wants_sync: &mut bool,
    ) -> Result<(), StoreFailure> {
        match operation {
            Operation::Create {
                runs,
                envelopes,
                durable,
                reply,
            } => {
                *wants_sync |= durable;
                let records = runs.iter().flat_map(|run| &run.records);
                let (events, bytes) = records.fold((0u64, 0u64), |(events, bytes), record| {
                    (events + 1, bytes + record.len() as u64)
                });
                self.health.metrics.applied(0, events, bytes);
                match self.settle(self.store.create_runs(&runs)) {
                    Ok(outcome) => pending.push(Pending::Create(reply, outcome, envelopes)),
                    Err(failure) => return Err(answer_failure(reply, failure)),
                }
            }
            Operation::Delete { runs, reply } => {
                *wants_sync = true;
                match self.settle(self.store.delete_runs(&runs)) {
                    Ok(freed) => pending.push(Pending::Delete(reply, freed, runs)),
                    Err(failure) => return Err(answer_failure(reply, failure)),
                }
            }
            Operation::ReplaceSnapshots { run, snapshot, reply } => {
                match self.settle(self.store.replace_snapshots(run, snapshot)) {
                    Ok(()) => pending.push(Pending::Unit(reply)),
                    Err(failure) => return Err(answer_failure(reply, failure)),
                }
            }
            Operation::Sync { reply } => {
                *wants_sync = true;
                pending.push(Pending::Unit(reply));
            }
            Operation::Barrier { reply } => pending.push(Pending::Unit(reply)),
        }
        Ok(())
    }

    /// Poisons the journal on a store error.
    fn settle<T>(&self, outcome: Result<T, StoreError>) -> Result<T, StoreFailure> {
        outcome.map_err(|error| self.poison(error))
    }
}

/// Adds `command` to `group`; a `Wake` only ends a wait for a hold and
/// joins no group.
fn join(group: &mut Vec<Command>, command: Command) {
    if !matches!(command, Command::Wake) {
        group.push(command);
    }
}

fn answer_failure<T>(reply: Reply<WriteOutcome<T>>, failure: StoreFailure) -> StoreFailure {
    reply.send(Err(failure.clone()));
    failure
}

fn reply_failure(command: Command, failure: &StoreFailure) {
    match command {
        Command::Append { reply, .. } => reply.send(Err(failure.clone())),
        Command::Subscribe { reply, .. } => reply.send(Err(failure.clone())),
        Command::Apply(operation) => operation.fail(failure),
        Command::Wake => {}
    }
}

impl Operation {
    /// Answers the operation's caller with `failure`.
    #[expect(clippy::match_same_arms, reason = "the arms bind replies of different types")]
    fn fail(self, failure: &StoreFailure) {
        match self {
            Operation::Create { reply, .. } => reply.send(Err(failure.clone())),
            Operation::Delete { reply, .. } => reply.send(Err(failure.clone())),
            Operation::ReplaceSnapshots { reply, .. } => reply.send(Err(failure.clone())),
            Operation::Sync { reply } | Operation::Barrier { reply } => reply.send(Err(failure.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_unsynced_append_is_the_front_of_the_returned_ones() {
        let health = Health::default();
        assert_eq!(health.oldest_unsynced(), None);
        let first = Instant::now();
        let second = first + Duration::from_millis(5);
        {
            let mut returned = health.lock_returned();
            health.push_returned(&mut returned, first);
            health.push_returned(&mut returned, second);
        }
        assert_eq!(health.oldest_unsynced(), Some(first), "the first stays the front");
        health.synced(1);
        assert_eq!(
            health.oldest_unsynced(),
            Some(second),
            "the next one once the oldest is synced"
        );
        health.synced(5);
        assert_eq!(health.oldest_unsynced(), None, "none once all are synced");
    }
}
