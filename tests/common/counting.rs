//! [`CountingStore`]: a store that counts the records its scans hand out, so
//! a test can pin how much a read takes from the store.
#![allow(dead_code, reason = "shared test helpers, each file uses a part")]

use std::sync::atomic::{AtomicU64, Ordering};

use runjournal::core::store::{
    AppendBatch, AppendRejection, KeyExists, NewRun, RunFilter, RunId, RunRecord, ScanControl, SnapshotRecord,
    StoreError, Watch,
};
use runjournal::core::{RunKey, Store};

/// The visitor a scan hands each record to.
type Visit<'a> = dyn FnMut(u64, &[u8]) -> ScanControl + 'a;

/// `inner`, with a count of the records every `scan` visited.
pub struct CountingStore<S: Store> {
    inner: S,
    records_scanned: AtomicU64,
}

impl<S: Store> CountingStore<S> {
    /// `inner` with a count of zero.
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            records_scanned: AtomicU64::new(0),
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
}

impl<S: Store> Store for CountingStore<S> {
    fn create_runs(&self, runs: &[NewRun]) -> Result<Result<Vec<RunRecord>, KeyExists>, StoreError> {
        self.inner.create_runs(runs)
    }

    fn append(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.inner.append(batches)
    }

    fn append_independent(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.inner.append_independent(batches)
    }

    fn sync(&self) -> Result<(), StoreError> {
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
