//! The write handles clients append through, one per run, at the run's
//! current epoch.
//!
//! Invariants:
//! - A client never gets a handle at an epoch other than the one it names:
//!   an older one is `fenced`, a newer one (never opened) is refused.
//! - A cached handle is used only while it is unbroken and at the client's
//!   epoch; a failed append evicts it, and one behind the store is rebuilt
//!   from the store, so an error is always the store's truth.
//! - At most `capacity` handles are kept; an evicted one is rebuilt on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use runjournal_core::RunKey;

use super::api::ApiError;
use crate::run::Run;
use crate::Journal;

/// The handles kept for clients' runs.
pub(crate) struct HandleCache {
    capacity: usize,
    handles: Mutex<HashMap<RunKey, Arc<Run>>>,
}

impl HandleCache {
    pub(crate) fn new(capacity: usize) -> HandleCache {
        HandleCache {
            capacity: capacity.max(1),
            handles: Mutex::new(HashMap::new()),
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
        run
    }

    /// Forgets the handle of `key`, if it is `run` (a newer one stays).
    pub(crate) fn evict(&self, run: &Arc<Run>) {
        let mut handles = self.lock();
        if handles.get(run.key()).is_some_and(|kept| Arc::ptr_eq(kept, run)) {
            handles.remove(run.key());
        }
    }

    /// Forgets every handle of `keys` (purged runs).
    pub(crate) fn forget(&self, keys: &[RunKey]) {
        let mut handles = self.lock();
        for key in keys {
            handles.remove(key);
        }
    }

    /// The handle writing `key` at `epoch`, expecting to write `expected_seq`
    /// next: the cached one when it is usable and there, else one built from the store.
    pub(crate) async fn get(
        &self,
        journal: &Journal,
        key: &RunKey,
        epoch: u64,
        expected_seq: u64,
    ) -> Result<Arc<Run>, ApiError> {
        let cached = self.lock().get(key).cloned();
        if let Some(run) = cached {
            if run.epoch() == epoch && !run.is_broken() && run.next_seq() == expected_seq {
                return Ok(run);
            }
            if run.epoch() > epoch {
                return Err(crate::Error::Fenced {
                    run: key.clone(),
                    seq: run.next_seq(),
                    epoch,
                    current: run.epoch(),
                }
                .into());
            }
        }
        let journal = journal.clone();
        let owned_key = key.clone();
        let built = super::api::blocking(move || journal.handle_at(&owned_key, epoch)).await??;
        match built {
            Some(run) => Ok(self.insert(run)),
            None => Err(ApiError::invalid(format!(
                "run {key}: epoch {epoch} was never opened (resume the run to get an epoch)"
            ))),
        }
    }
}
