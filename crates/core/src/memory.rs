//! An in-memory [`Store`] for tests and tools: the reference model of the
//! storage trait's semantics. One mutex guards everything, so every operation
//! is atomic; `sync` has nothing to do.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::key::RunKey;
use crate::store::{
    AppendBatch, AppendRejection, KeyExists, NewRun, RunFilter, RunId, RunRecord, ScanControl, SnapshotRecord, Store,
    StoreError,
};

/// A store that keeps everything in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    next_id: RunId,
    runs: HashMap<RunId, MemoryRun>,
    by_key: BTreeMap<RunKey, RunId>,
    /// Events of reserved, unpublished runs.
    staged: HashMap<RunId, Vec<Vec<u8>>>,
}

struct MemoryRun {
    record: RunRecord,
    events: Vec<Vec<u8>>,
    snapshots: BTreeMap<u64, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, MemoryState>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Backend {
            operation: "lock",
            detail: "a thread panicked while holding the memory store".into(),
        })
    }

    /// Replaces the stored bytes of one event (for corruption tests).
    pub fn overwrite_record(&self, run: RunId, seq: u64, bytes: Vec<u8>) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let slot = state
            .runs
            .get_mut(&run)
            .and_then(|run| usize::try_from(seq).ok().and_then(|seq| run.events.get_mut(seq)));
        match slot {
            Some(slot) => {
                *slot = bytes;
                Ok(())
            }
            None => Err(StoreError::Backend {
                operation: "overwrite_record",
                detail: format!("no record at run {run} seq {seq}"),
            }),
        }
    }
}

impl Store for MemoryStore {
    fn create_runs(&self, runs: &[NewRun]) -> Result<Result<Vec<RunRecord>, KeyExists>, StoreError> {
        let mut state = self.lock()?;
        let mut seen = std::collections::BTreeSet::new();
        for run in runs {
            if state.by_key.contains_key(&run.key) || !seen.insert(&run.key) {
                return Ok(Err(KeyExists(run.key.clone())));
            }
        }
        let mut created = Vec::with_capacity(runs.len());
        let mut ids = HashMap::new();
        for run in runs {
            let id = state.next_id;
            state.next_id += 1;
            let record = RunRecord {
                id,
                key: run.key.clone(),
                created_ts: run.created_ts,
                head: run.head,
                status: run.status,
                fork: run.resolved_fork(&ids),
            };
            ids.insert(run.key.clone(), id);
            state.by_key.insert(run.key.clone(), id);
            state.runs.insert(
                id,
                MemoryRun {
                    record: record.clone(),
                    events: run.records.clone(),
                    snapshots: BTreeMap::new(),
                },
            );
            created.push(record);
        }
        for superseded in runs.iter().filter_map(|run| run.supersedes) {
            if let Some(run) = state.runs.get_mut(&superseded) {
                run.record = run.record.superseded();
            }
        }
        Ok(Ok(created))
    }

    fn append(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        let mut state = self.lock()?;
        let mut outcomes = Vec::with_capacity(batches.len());
        for batch in batches {
            let Some(run) = state.runs.get_mut(&batch.run) else {
                outcomes.push(Err(AppendRejection::UnknownRun));
                continue;
            };
            if let Err(rejection) = batch.check_against(&run.record) {
                outcomes.push(Err(rejection));
                continue;
            }
            run.events.extend(batch.records.iter().cloned());
            run.record.head = batch.head_after;
            run.record.status = batch.status_after;
            if let Some(snapshot) = &batch.snapshot {
                run.snapshots.clear();
                run.snapshots.insert(snapshot.seq, snapshot.bytes.clone());
            }
            outcomes.push(Ok(()));
        }
        Ok(outcomes)
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.lock()?.runs.get(&id).map(|run| run.record.clone()))
    }

    fn find(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .by_key
            .get(key)
            .and_then(|id| state.runs.get(id))
            .map(|run| run.record.clone()))
    }

    fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let state = self.lock()?;
        let mut records: Vec<RunRecord> = state
            .runs
            .values()
            .map(|run| &run.record)
            .filter(|record| filter.matches(record))
            .cloned()
            .collect();
        records.sort_by_key(|record| record.key.canonical_bytes());
        Ok(records)
    }

    fn max_episode(&self, goal: &str, agent: Option<&str>) -> Result<Option<u32>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .by_key
            .keys()
            .filter(|key| key.goal == goal && agent.is_none_or(|agent| key.agent == agent))
            .map(|key| key.episode)
            .max())
    }

    fn scan(
        &self,
        run: RunId,
        from_seq: u64,
        end_seq: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ScanControl,
    ) -> Result<(), StoreError> {
        let events: Vec<(u64, Vec<u8>)> = {
            let state = self.lock()?;
            let events = match (state.runs.get(&run), state.staged.get(&run)) {
                (Some(run), _) => &run.events,
                (None, Some(staged)) => staged,
                (None, None) => return Ok(()),
            };
            (0u64..)
                .zip(events.iter())
                .filter(|(seq, _)| (from_seq..end_seq).contains(seq))
                .map(|(seq, bytes)| (seq, bytes.clone()))
                .collect()
        };
        for (seq, bytes) in events {
            if visit(seq, &bytes) == ScanControl::Stop {
                break;
            }
        }
        Ok(())
    }

    fn latest_snapshot(&self, run: RunId, at_most_seq: u64) -> Result<Option<SnapshotRecord>, StoreError> {
        let state = self.lock()?;
        Ok(state.runs.get(&run).and_then(|run| {
            run.snapshots
                .range(..=at_most_seq)
                .next_back()
                .map(|(seq, bytes)| SnapshotRecord {
                    seq: *seq,
                    bytes: bytes.clone(),
                })
        }))
    }

    fn children(&self, run: RunId) -> Result<Vec<RunId>, StoreError> {
        let state = self.lock()?;
        let mut children: Vec<RunId> = state
            .runs
            .values()
            .filter(|child| child.record.fork.as_ref().is_some_and(|fork| fork.parent == run))
            .map(|child| child.record.id)
            .collect();
        children.sort_unstable();
        Ok(children)
    }

    fn delete_runs(&self, runs: &[RunId]) -> Result<u64, StoreError> {
        let mut state = self.lock()?;
        let mut freed = 0u64;
        for id in runs {
            if let Some(run) = state.runs.remove(id) {
                state.by_key.remove(&run.record.key);
                freed += run.events.iter().map(|bytes| bytes.len() as u64).sum::<u64>();
                freed += run.snapshots.values().map(|bytes| bytes.len() as u64).sum::<u64>();
            }
        }
        Ok(freed)
    }

    fn replace_snapshots(&self, run: RunId, snapshot: Option<SnapshotRecord>) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if let Some(run) = state.runs.get_mut(&run) {
            run.snapshots.clear();
            if let Some(snapshot) = snapshot {
                run.snapshots.insert(snapshot.seq, snapshot.bytes);
            }
        }
        Ok(())
    }

    fn reserve_run_id(&self) -> Result<RunId, StoreError> {
        let mut state = self.lock()?;
        let id = state.next_id;
        state.next_id += 1;
        state.staged.insert(id, Vec::new());
        Ok(id)
    }

    fn stage(&self, run: RunId, first_seq: u64, records: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let staged = state.staged.get_mut(&run).ok_or_else(|| StoreError::Backend {
            operation: "stage",
            detail: format!("run id {run} is not reserved for staging"),
        })?;
        if staged.len() as u64 != first_seq {
            return Err(StoreError::Backend {
                operation: "stage",
                detail: format!("run id {run}: staged seq {first_seq} after {} events", staged.len()),
            });
        }
        staged.extend(records.iter().cloned());
        Ok(())
    }

    fn publish_staged(&self, runs: &[RunRecord]) -> Result<Result<(), KeyExists>, StoreError> {
        let mut state = self.lock()?;
        let mut seen = std::collections::BTreeSet::new();
        for run in runs {
            if state.by_key.contains_key(&run.key) || !seen.insert(&run.key) {
                return Ok(Err(KeyExists(run.key.clone())));
            }
            if state.staged.get(&run.id).map(Vec::len) != usize::try_from(run.head.next_seq).ok() {
                return Err(StoreError::Backend {
                    operation: "publish_staged",
                    detail: format!("run id {}: the head does not cover the staged events", run.id),
                });
            }
        }
        for run in runs {
            let events = state.staged.remove(&run.id).unwrap_or_default();
            state.by_key.insert(run.key.clone(), run.id);
            state.runs.insert(
                run.id,
                MemoryRun {
                    record: run.clone(),
                    events,
                    snapshots: BTreeMap::new(),
                },
            );
        }
        Ok(Ok(()))
    }

    fn discard_staged(&self, runs: &[RunId]) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        for run in runs {
            state.staged.remove(run);
        }
        Ok(())
    }
}
