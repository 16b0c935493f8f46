//! [`FaultyStore`]: a [`Store`] wrapper that injects storage failures, for
//! crash-safety and fault-injection tests.
//!
//! Operations fall into three classes, each with its own trigger:
//!
//! - **writes**: `create_runs`, `append`, `delete_runs`, `replace_snapshots`;
//! - **syncs**: `sync`;
//! - **reads**: `scan`, `run`, `find`, `list`, `latest_snapshot`,
//!   `max_episode`, `children`.
//!
//! A trigger is armed with "fail the Nth operation of this class from now on"
//! (N counts from 1, from the moment it is armed). When it fires, the operation
//! returns [`StoreError::Io`] holding an injected [`std::io::Error`]. A trigger
//! fires once, or, when armed with [`Fault::sticky`], on every later operation
//! of its class too (a disk that stays broken). With [`Fault::after_apply`] the
//! operation is first applied to the inner store and only then reported as
//! failed: data reached the store (the page cache) but the caller is told it
//! failed, as when `fsync` fails after a write.
//!
//! Everything is atomics: the wrapper may be shared between threads and armed
//! while operations are in flight.
//!
//! The wrapper also keeps a model of durability for tests: it counts the
//! append batches the inner store accepted ([`FaultyStore::batches_applied`])
//! and, at each sync reported as successful, how many of them were applied
//! before it ([`FaultyStore::batches_synced`]). A journal that acknowledges a
//! durable append only after a successful sync never acknowledges more batches
//! than `batches_synced`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::key::RunKey;
use crate::store::{
    AppendBatch, AppendRejection, KeyExists, NewRun, RunFilter, RunId, RunRecord, ScanControl, SnapshotRecord, Store,
    StoreError,
};

/// A class of store operations with its own fault trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// `create_runs`, `append`, `delete_runs`, `replace_snapshots`.
    Write,
    /// `sync`.
    Sync,
    /// `scan`, `run`, `find`, `list`, `latest_snapshot`, `max_episode`, `children`.
    Read,
}

impl OpClass {
    fn name(self) -> &'static str {
        match self {
            OpClass::Write => "write",
            OpClass::Sync => "sync",
            OpClass::Read => "read",
        }
    }
}

/// When and how a trigger fails an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Fail the Nth operation of the class after arming (1 = the next one).
    pub nth: u64,
    /// Keep failing every later operation of the class once the Nth failed.
    pub sticky: bool,
    /// Apply the operation to the inner store first, then report the failure.
    pub after_apply: bool,
}

impl Fault {
    /// Fails the Nth operation once, without applying it.
    pub fn nth(nth: u64) -> Self {
        Fault {
            nth,
            sticky: false,
            after_apply: false,
        }
    }

    /// The same fault, failing every later operation of the class too.
    #[must_use]
    pub fn sticky(self) -> Self {
        Fault { sticky: true, ..self }
    }

    /// The same fault, applying the operation to the inner store before failing it.
    #[must_use]
    pub fn after_apply(self) -> Self {
        Fault {
            after_apply: true,
            ..self
        }
    }
}

/// One class's trigger: a countdown to the failing operation.
#[derive(Default)]
struct Trigger {
    /// Operations left until the failing one (0: disarmed or already fired).
    countdown: AtomicU64,
    /// The trigger fired and keeps failing.
    tripped: AtomicBool,
    sticky: AtomicBool,
    after_apply: AtomicBool,
    /// Operations of the class seen, armed or not.
    calls: AtomicU64,
    /// Operations of the class failed by injection.
    injected: AtomicU64,
}

impl Trigger {
    fn arm(&self, fault: Fault) {
        self.tripped.store(false, Ordering::SeqCst);
        self.sticky.store(fault.sticky, Ordering::SeqCst);
        self.after_apply.store(fault.after_apply, Ordering::SeqCst);
        self.countdown.store(fault.nth, Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.countdown.store(0, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
    }

    /// Counts one operation; `Some(after_apply)` when it must fail.
    fn fire(&self) -> Option<bool> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.tripped.load(Ordering::SeqCst) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Some(self.after_apply.load(Ordering::SeqCst));
        }
        let previous = self
            .countdown
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1));
        if previous == Ok(1) {
            if self.sticky.load(Ordering::SeqCst) {
                self.tripped.store(true, Ordering::SeqCst);
            }
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Some(self.after_apply.load(Ordering::SeqCst));
        }
        None
    }
}

/// A store that forwards to `S` and fails operations on demand.
pub struct FaultyStore<S: Store> {
    inner: Arc<S>,
    writes: Trigger,
    syncs: Trigger,
    reads: Trigger,
    batches_applied: AtomicU64,
    batches_synced: AtomicU64,
}

impl<S: Store> FaultyStore<S> {
    /// Wraps `inner`, with every trigger disarmed.
    pub fn new(inner: S) -> Self {
        Self::from_arc(Arc::new(inner))
    }

    /// Wraps a shared store, so that a test can reopen a journal over it
    /// (through [`FaultyStore::inner`]) after the wrapper poisoned one.
    pub fn from_arc(inner: Arc<S>) -> Self {
        FaultyStore {
            inner,
            writes: Trigger::default(),
            syncs: Trigger::default(),
            reads: Trigger::default(),
            batches_applied: AtomicU64::new(0),
            batches_synced: AtomicU64::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    fn trigger(&self, class: OpClass) -> &Trigger {
        match class {
            OpClass::Write => &self.writes,
            OpClass::Sync => &self.syncs,
            OpClass::Read => &self.reads,
        }
    }

    /// Arms the trigger of `class` (replacing any earlier fault of that class).
    pub fn arm(&self, class: OpClass, fault: Fault) {
        self.trigger(class).arm(fault);
    }

    /// Fails the `nth` write from now (`create_runs`, `append`, `delete_runs`,
    /// `replace_snapshots`) without applying it.
    pub fn fail_nth_write(&self, nth: u64) {
        self.arm(OpClass::Write, Fault::nth(nth));
    }

    /// Applies the `nth` write from now to the inner store, then reports it
    /// failed (data reached the page cache, the `fsync` failed).
    pub fn fail_nth_write_after_apply(&self, nth: u64) {
        self.arm(OpClass::Write, Fault::nth(nth).after_apply());
    }

    /// Fails the `nth` sync from now.
    pub fn fail_nth_sync(&self, nth: u64) {
        self.arm(OpClass::Sync, Fault::nth(nth));
    }

    /// Fails the `nth` read from now.
    pub fn fail_nth_read(&self, nth: u64) {
        self.arm(OpClass::Read, Fault::nth(nth));
    }

    /// Disarms every trigger; operations pass through again.
    pub fn disarm(&self) {
        self.writes.disarm();
        self.syncs.disarm();
        self.reads.disarm();
    }

    /// Operations of `class` seen so far (failed or not).
    pub fn calls(&self, class: OpClass) -> u64 {
        self.trigger(class).calls.load(Ordering::SeqCst)
    }

    /// Operations of `class` failed by injection so far.
    pub fn injected(&self, class: OpClass) -> u64 {
        self.trigger(class).injected.load(Ordering::SeqCst)
    }

    /// Append batches the inner store accepted (applied) so far.
    pub fn batches_applied(&self) -> u64 {
        self.batches_applied.load(Ordering::SeqCst)
    }

    /// Append batches applied before the last sync reported as successful: the
    /// most a durable journal may have acknowledged.
    pub fn batches_synced(&self) -> u64 {
        self.batches_synced.load(Ordering::SeqCst)
    }

    /// Runs `op` under the trigger of `class`: passes it through, fails it
    /// before it reaches the inner store, or applies it and then fails it.
    fn guard<T>(
        &self,
        class: OpClass,
        operation: &'static str,
        op: impl FnOnce(&S) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.trigger(class).fire() {
            None => op(&self.inner),
            Some(after_apply) => {
                if after_apply {
                    // The caller is told the operation failed whatever the
                    // inner store answered; its own failure is dropped.
                    drop(op(&self.inner));
                }
                Err(injected(class, operation, after_apply))
            }
        }
    }
}

fn injected(class: OpClass, operation: &'static str, after_apply: bool) -> StoreError {
    let what = match (class, after_apply) {
        (OpClass::Sync, false) => "the inner store was not synced",
        (OpClass::Sync, true) => "the inner store synced, then the sync was reported failed",
        (OpClass::Read, _) => "nothing was read",
        (OpClass::Write, false) => "nothing was applied",
        (OpClass::Write, true) => "it was applied, then reported failed",
    };
    StoreError::Io {
        operation,
        source: std::io::Error::other(format!("injected {} fault in {operation}: {what}", class.name())),
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn create_runs(&self, runs: &[NewRun]) -> Result<Result<Vec<RunRecord>, KeyExists>, StoreError> {
        self.guard(OpClass::Write, "create_runs", |inner| inner.create_runs(runs))
    }

    fn append(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.guard(OpClass::Write, "append", |inner| {
            let outcomes = inner.append(batches)?;
            let applied = outcomes.iter().filter(|outcome| outcome.is_ok()).count() as u64;
            self.batches_applied.fetch_add(applied, Ordering::SeqCst);
            Ok(outcomes)
        })
    }

    fn append_independent(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.guard(OpClass::Write, "append", |inner| {
            let outcomes = inner.append_independent(batches)?;
            let applied = outcomes.iter().filter(|outcome| outcome.is_ok()).count() as u64;
            self.batches_applied.fetch_add(applied, Ordering::SeqCst);
            Ok(outcomes)
        })
    }

    fn sync(&self) -> Result<(), StoreError> {
        let applied = self.batches_applied.load(Ordering::SeqCst);
        self.guard(OpClass::Sync, "sync", super::super::store::Store::sync)?;
        self.batches_synced.fetch_max(applied, Ordering::SeqCst);
        Ok(())
    }

    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        self.guard(OpClass::Read, "run", |inner| inner.run(id))
    }

    fn find(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        self.guard(OpClass::Read, "find", |inner| inner.find(key))
    }

    fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.guard(OpClass::Read, "list", |inner| inner.list(filter))
    }

    fn max_episode(&self, goal: &str, agent: Option<&str>) -> Result<Option<u32>, StoreError> {
        self.guard(OpClass::Read, "max_episode", |inner| inner.max_episode(goal, agent))
    }

    fn scan(
        &self,
        run: RunId,
        from_seq: u64,
        end_seq: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ScanControl,
    ) -> Result<(), StoreError> {
        self.guard(OpClass::Read, "scan", |inner| inner.scan(run, from_seq, end_seq, visit))
    }

    fn latest_snapshot(&self, run: RunId, at_most_seq: u64) -> Result<Option<SnapshotRecord>, StoreError> {
        self.guard(OpClass::Read, "latest_snapshot", |inner| {
            inner.latest_snapshot(run, at_most_seq)
        })
    }

    fn children(&self, run: RunId) -> Result<Vec<RunId>, StoreError> {
        self.guard(OpClass::Read, "children", |inner| inner.children(run))
    }

    fn delete_runs(&self, runs: &[RunId]) -> Result<u64, StoreError> {
        self.guard(OpClass::Write, "delete_runs", |inner| inner.delete_runs(runs))
    }

    fn replace_snapshots(&self, run: RunId, snapshot: Option<SnapshotRecord>) -> Result<(), StoreError> {
        self.guard(OpClass::Write, "replace_snapshots", |inner| {
            inner.replace_snapshots(run, snapshot)
        })
    }

    fn reserve_run_id(&self) -> Result<RunId, StoreError> {
        self.guard(
            OpClass::Write,
            "reserve_run_id",
            super::super::store::Store::reserve_run_id,
        )
    }

    fn stage(&self, run: RunId, first_seq: u64, records: &[Vec<u8>]) -> Result<(), StoreError> {
        self.guard(OpClass::Write, "stage", |inner| inner.stage(run, first_seq, records))
    }

    fn publish_staged(&self, runs: &[RunRecord]) -> Result<Result<(), KeyExists>, StoreError> {
        self.guard(OpClass::Write, "publish_staged", |inner| inner.publish_staged(runs))
    }

    fn discard_staged(&self, runs: &[RunId]) -> Result<(), StoreError> {
        self.guard(OpClass::Write, "discard_staged", |inner| inner.discard_staged(runs))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn filter() -> RunFilter {
        RunFilter::default()
    }

    #[test]
    fn nth_read_fails_once_counting_from_arming() {
        let store = FaultyStore::new(MemoryStore::new());
        assert!(store.list(&filter()).is_ok());
        store.fail_nth_read(2);
        assert!(store.list(&filter()).is_ok());
        let error = store.list(&filter()).unwrap_err();
        assert!(
            matches!(&error, StoreError::Io { operation: "list", source } if source.to_string().contains("injected read fault")),
            "{error}"
        );
        assert!(store.list(&filter()).is_ok());
        assert_eq!(store.calls(OpClass::Read), 4);
        assert_eq!(store.injected(OpClass::Read), 1);
    }

    #[test]
    fn sticky_faults_keep_failing_until_disarmed() {
        let store = FaultyStore::new(MemoryStore::new());
        store.arm(OpClass::Sync, Fault::nth(1).sticky());
        assert!(store.sync().is_err());
        assert!(store.sync().is_err());
        store.disarm();
        assert!(store.sync().is_ok());
        assert_eq!(store.injected(OpClass::Sync), 2);
    }

    #[test]
    fn after_apply_faults_reach_the_inner_store() {
        let store = FaultyStore::new(MemoryStore::new());
        store.fail_nth_write_after_apply(1);
        let run = NewRun {
            key: RunKey::new("g", 0, "a").unwrap(),
            created_ts: 0,
            records: vec![b"x".to_vec()],
            head: crate::store::Head {
                next_seq: 1,
                hash: crate::hash::ChainHash::GENESIS,
                epoch: 0,
                last_ts: 0,
            },
            status: crate::rules::RunStatus::Running,
            fork: None,
            supersedes: None,
        };
        assert!(store.create_runs(std::slice::from_ref(&run)).is_err());
        assert!(store.inner().find(&run.key).unwrap().is_some());
        store.fail_nth_write(1);
        let mut other = run.clone();
        other.key = RunKey::new("g", 1, "a").unwrap();
        assert!(store.create_runs(std::slice::from_ref(&other)).is_err());
        assert!(store.inner().find(&other.key).unwrap().is_none());
    }
}
