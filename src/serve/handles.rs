//! The write handles clients append through, one per run, at the run's
//! current epoch.
//!
//! Invariants:
//! - A client never gets a handle at an epoch other than the one it names:
//!   an older one is `fenced`, a newer one (never opened) is refused.
//! - At most one handle per run and epoch is alive in the owner process
//!   (`Journal::handle_at` refuses to build a second): two cursors at one
//!   epoch would chain the same seqs differently. A cached handle is used
//!   while it is unbroken and at the client's epoch; its cursor (queued
//!   appends included) is the truth an expected seq is checked against.
//! - At most `capacity` handles are kept; an evicted one is rebuilt on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use runjournal_core::RunKey;

use super::api::ApiError;
use crate::journal::HandleAt;
use crate::run::Run;
use crate::Journal;

/// How long a request waits for a handle another one is building.
const HELD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The handles kept for clients' runs.
pub(crate) struct HandleCache {
    capacity: usize,
    handles: Mutex<HashMap<RunKey, Arc<Run>>>,
    /// Woken at every insertion: a request that found the epoch held by a
    /// handle not cached yet (a resume or begin finishing) waits for it.
    inserted: tokio::sync::Notify,
}

impl HandleCache {
    pub(crate) fn new(capacity: usize) -> HandleCache {
        HandleCache {
            capacity: capacity.max(1),
            handles: Mutex::new(HashMap::new()),
            inserted: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunKey, Arc<Run>>> {
        self.handles.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `run` as the handle of its run, replacing an older one.
    pub(crate) fn insert(&self, run: Run) -> Arc<Run> {
        let run = Arc::new(run);
        let mut handles = self.lock();
        if handles.len() >= self.capacity && !handles.contains_key(run.key()) {
            let victim = handles.keys().next().cloned();
            if let Some(victim) = victim {
                handles.remove(&victim);
            }
        }
        handles.insert(run.key().clone(), run.clone());
        drop(handles);
        self.inserted.notify_waiters();
        run
    }

    /// Forgets the handle of `key`, if it is `run` (a newer one stays).
    pub(crate) fn evict(&self, run: &Arc<Run>) {
        let mut handles = self.lock();
        if handles.get(run.key()).is_some_and(|kept| Arc::ptr_eq(kept, run)) {
            handles.remove(run.key());
        }
    }

    /// Forgets `run` if a failed append broke it (it writes nothing more).
    pub(crate) fn evict_if_broken(&self, run: &Arc<Run>) {
        if run.is_broken() {
            self.evict(run);
        }
    }

    /// Forgets every handle of `keys` (purged runs).
    pub(crate) fn forget(&self, keys: &[RunKey]) {
        let mut handles = self.lock();
        for key in keys {
            handles.remove(key);
        }
    }

    /// The handle writing `key` at `epoch`: the cached one while it is at
    /// that epoch and unbroken (its cursor is the truth, queued appends
    /// included), else one built from the store.
    pub(crate) async fn get(&self, journal: &Journal, key: &RunKey, epoch: u64) -> Result<Arc<Run>, ApiError> {
        let deadline = tokio::time::Instant::now() + HELD_WAIT;
        loop {
            let inserted = self.inserted.notified();
            tokio::pin!(inserted);
            inserted.as_mut().enable();
            if let Some(run) = self.cached(key, epoch)? {
                return Ok(run);
            }
            let journal = journal.clone();
            let owned_key = key.clone();
            let built = super::api::blocking(move || journal.handle_at(&owned_key, epoch)).await??;
            match built {
                HandleAt::Built(run) => return Ok(self.insert(*run)),
                HandleAt::NeverOpened => {
                    return Err(ApiError::invalid(format!(
                        "run {key}: epoch {epoch} was never opened (resume the run to get an epoch)"
                    )))
                }
                // Another request is building it, a resume is finishing, or
                // the owner itself writes at this epoch: wait for an insertion.
                HandleAt::Held => {
                    if tokio::time::timeout_at(deadline, inserted).await.is_err() {
                        return Err(ApiError::transport(
                            crate::wire::BUSY,
                            format!(
                                "run {key}: another handle of the owner writes at epoch {epoch}; retry, or resume the run"
                            ),
                        ));
                    }
                }
            }
        }
    }

    /// The cached handle writing `key` at `epoch`, if one is: never waits.
    pub(crate) fn cached(&self, key: &RunKey, epoch: u64) -> Result<Option<Arc<Run>>, ApiError> {
        let Some(run) = self.lock().get(key).cloned() else {
            return Ok(None);
        };
        if run.epoch() > epoch {
            return Err(crate::Error::Fenced {
                run: key.clone(),
                seq: run.next_seq(),
                epoch,
                current: run.epoch(),
            }
            .into());
        }
        if run.epoch() == epoch && !run.is_broken() {
            return Ok(Some(run));
        }
        // Older or broken: forget it; a new one is built once it is dropped.
        self.evict(&run);
        Ok(None)
    }
}
