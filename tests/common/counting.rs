//! [`CountingStore`]: a store that counts the records its scans hand out, so
//! a test can pin how much a read takes from the store; records which
//! thread appended and which created; and whose appends wait while a gate is
//! closed, so a test can hold a group in the store for as long as it needs.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared test helpers, each file uses a part; a failed call fails the test"
)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use runjournal::core::store::{
    AppendBatch, AppendRejection, KeyExists, NewRun, RunFilter, RunId, RunRecord, ScanControl, SnapshotRecord,
    StoreError, Watch,
};
use runjournal::core::{RunKey, Store};
use runjournal::Journal;

/// The visitor a scan hands each record to.
type Visit<'a> = dyn FnMut(u64, &[u8]) -> ScanControl + 'a;

/// How long a test waits for a condition another thread brings about.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Whether appends pass the gate.
#[derive(Default)]
struct Gate {
    closed: bool,
    /// Appends that may pass while it is closed.
    passes: u64,
    /// Appends that reached it.
    entered: u64,
}

/// `inner`, with a count of the records every `scan` visited, a record of
/// the threads that appended and created, and a gate on its appends.
pub struct CountingStore<S: Store> {
    inner: S,
    records_scanned: AtomicU64,
    gate: Mutex<Gate>,
    changed: Condvar,
    /// The names of the threads that appended, in order.
    appenders: Mutex<Vec<Option<String>>>,
    /// The names of the threads that called `create_runs`, in order.
    creators: Mutex<Vec<Option<String>>>,
    /// The names of the threads that called `sync`, in order.
    syncers: Mutex<Vec<Option<String>>>,
    /// Set: the next append panics (and clears it).
    panic_next: AtomicBool,
}

impl<S: Store> CountingStore<S> {
    /// `inner` with a count of zero, behind an open gate.
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            records_scanned: AtomicU64::new(0),
            gate: Mutex::new(Gate::default()),
            changed: Condvar::new(),
            appenders: Mutex::new(Vec::new()),
            creators: Mutex::new(Vec::new()),
            syncers: Mutex::new(Vec::new()),
            panic_next: AtomicBool::new(false),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The records all scans so far handed to their visitors.
    pub fn records_scanned(&self) -> u64 {
        self.records_scanned.load(Ordering::SeqCst)
    }

    /// The names of the threads that appended (`append` or
    /// `append_independent`), in order.
    pub fn appenders(&self) -> Vec<Option<String>> {
        self.appenders.lock().unwrap().clone()
    }

    /// The names of the threads that called `create_runs`, in order.
    pub fn creators(&self) -> Vec<Option<String>> {
        self.creators.lock().unwrap().clone()
    }

    /// The names of the threads that called `sync`, in order.
    pub fn syncers(&self) -> Vec<Option<String>> {
        self.syncers.lock().unwrap().clone()
    }

    /// Makes the next append panic.
    pub fn panic_on_next_append(&self) {
        self.panic_next.store(true, Ordering::SeqCst);
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap()
    }

    /// Appends wait at the gate from now on.
    pub fn close(&self) {
        self.gate().closed = true;
    }

    /// Every append passes again.
    pub fn open(&self) {
        self.gate().closed = false;
        self.changed.notify_all();
    }

    /// Lets `count` more appends through the closed gate.
    pub fn pass(&self, count: u64) {
        self.gate().passes += count;
        self.changed.notify_all();
    }

    /// The appends that reached the gate so far.
    pub fn entered(&self) -> u64 {
        self.gate().entered
    }

    /// Waits until `count` appends reached the gate in all.
    pub fn wait_entered(&self, count: u64) {
        let deadline = Instant::now() + DEADLINE;
        let mut gate = self.gate();
        while gate.entered < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} appends reached the store, not {count}",
                gate.entered
            );
            gate = self.changed.wait_timeout(gate, left).unwrap().0;
        }
    }

    /// Records the appending thread, waits at the gate, panics if asked.
    fn enter(&self) {
        self.appenders.lock().unwrap().push(current_thread());
        let mut gate = self.gate();
        gate.entered += 1;
        self.changed.notify_all();
        while gate.closed && gate.passes == 0 {
            gate = self.changed.wait(gate).unwrap();
        }
        if gate.closed {
            gate.passes -= 1;
        }
        drop(gate);
        assert!(
            !self.panic_next.swap(false, Ordering::SeqCst),
            "the store panics in append, as asked"
        );
    }
}

impl<S: Store> Store for CountingStore<S> {
    fn create_runs(&self, runs: &[NewRun]) -> Result<Result<Vec<RunRecord>, KeyExists>, StoreError> {
        self.creators.lock().unwrap().push(current_thread());
        self.inner.create_runs(runs)
    }

    fn append(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.enter();
        self.inner.append(batches)
    }

    fn append_independent(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.enter();
        self.inner.append_independent(batches)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.syncers.lock().unwrap().push(current_thread());
        self.inner.sync()
    }

    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        self.inner.run(id)
    }

    fn find(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        self.inner.find(key)
    }

    fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.list(filter)
    }

    fn max_episode(&self, goal: &str, agent: Option<&str>) -> Result<Option<u32>, StoreError> {
        self.inner.max_episode(goal, agent)
    }

    fn scan(&self, run: RunId, from_seq: u64, end_seq: u64, visit: &mut Visit<'_>) -> Result<(), StoreError> {
        self.inner.scan(run, from_seq, end_seq, &mut |seq, record| {
            self.records_scanned.fetch_add(1, Ordering::SeqCst);
            visit(seq, record)
        })
    }

    fn latest_snapshot(&self, run: RunId, at_most_seq: u64) -> Result<Option<SnapshotRecord>, StoreError> {
        self.inner.latest_snapshot(run, at_most_seq)
    }

    fn children(&self, run: RunId) -> Result<Vec<RunId>, StoreError> {
        self.inner.children(run)
    }

    fn delete_runs(&self, runs: &[RunId]) -> Result<u64, StoreError> {
        self.inner.delete_runs(runs)
    }

    fn replace_snapshots(&self, run: RunId, snapshot: Option<SnapshotRecord>) -> Result<(), StoreError> {
        self.inner.replace_snapshots(run, snapshot)
    }

    fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }

    fn reserve_run_id(&self) -> Result<RunId, StoreError> {
        self.inner.reserve_run_id()
    }

    fn stage(&self, run: RunId, first_seq: u64, records: &[Vec<u8>]) -> Result<(), StoreError> {
        self.inner.stage(run, first_seq, records)
    }

    fn publish_staged(&self, runs: &[RunRecord]) -> Result<Result<(), KeyExists>, StoreError> {
        self.inner.publish_staged(runs)
    }

    fn discard_staged(&self, runs: &[RunId]) -> Result<(), StoreError> {
        self.inner.discard_staged(runs)
    }

    fn claim_epoch(&self, run: RunId, epoch: u64) -> Result<bool, StoreError> {
        self.inner.claim_epoch(run, epoch)
    }

    fn watch(&self) -> Result<Option<Box<dyn Watch>>, StoreError> {
        self.inner.watch()
    }
}

/// Waits until `journal` has at least `count` writes queued (embedded: handed
/// to the writer and not answered; connected: waiting for a request).
pub fn wait_queued(journal: &Journal, count: usize) {
    let deadline = Instant::now() + DEADLINE;
    while journal.queued_appends() < count {
        assert!(
            Instant::now() < deadline,
            "{} writes queued, not {count}",
            journal.queued_appends()
        );
        std::thread::yield_now();
    }
}

/// The calling thread's name.
fn current_thread() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}
