//! [`SledStore`]: the storage trait on sled: one tree for runs and events, one
//! for snapshots.
//!
//! Invariants:
//! - Every write (create, append, delete, snapshot replacement) holds the
//!   `write` mutex from its condition check to the end of its `apply_batch`, and
//!   run records are served from a cache updated only after the batch is
//!   applied. sled applies a batch's keys in no fixed order, so this is what
//!   makes "a reader that sees a head sees every event before it" true. sled
//!   lets one process open a database at a time, so the mutex covers every
//!   writer and reader there is.
//! - A run's events are stored under `(run, first seq)` keys, each value a
//!   bare record or a chunk of consecutive records ([`chunk`]); the values of
//!   a run never overlap, and a read from seq `n` starts at the value
//!   holding `n` (one reverse range step, O(log n)).
//! - A write is crash-atomic in sled's log per run: an append group of one
//!   run is one commit, a single `insert` carrying the run's record and the
//!   counters after it ([`crate::commit`]), and a group of independent
//!   appends ([`Store::append_independent`]) one commit per run, each with
//!   the counters after it, so any prefix of them sled recovers is
//!   consistent; every other write (anything that must be all or nothing
//!   across runs) is one `apply_batch`.
//!   Every write raises the `writes` counter (and an append the `appended`
//!   counter) that the loss guard ([`crate::guard`]) checks at open: in the
//!   commit's header, or in the meta records of the batch.
//! - Snapshots live in their own tree ([`layout::SNAPSHOT_TREE`], format 4;
//!   older formats' in the default tree are read and removed as the run
//!   gets a newer one), written after the events they fold in sled's one
//!   log, so sled's recovery of a prefix of its log never keeps a snapshot
//!   without its events. A snapshot is derived data: a crash may keep an
//!   append without its snapshot, or a run's older snapshot beside its
//!   newer one (a read takes the newest), never a wrong one. Their writes
//!   are not counted by the guard.
//! - A run's record is the stored one or its last commit's, whichever head
//!   is further; it is resolved when the run enters the cache (one reverse
//!   range step), and the stored record is rewritten only by batches.
//! - `sync` is sled's `flush` (which on Linux ends in `sync_file_range`, not a
//!   durability barrier) followed by `fdatasync` of sled's log file and of any
//!   new blob file, and of the directories, so acknowledged data survives power loss.
//! - Fail-stop: the first failed write, flush or sync is remembered. Every
//!   later write or sync is refused with [`StoreError::Poisoned`], and closing
//!   (explicitly, or on drop) never calls sled's flush again: after a failed
//!   write sled's flush can wait forever for log space it will never get. A
//!   store dropped after a failure hands its last sled handle to a detached
//!   thread, so the drop returns at once even if sled's own drop blocks, and
//!   logs (a `tracing` warning) what was not made durable.
//! - Nothing panics on damaged files: every call into sled runs under
//!   `catch_unwind`, and a panic (sled asserts on what it reads, e.g. a blob
//!   file under another blob's name) is [`StoreError::BackendPanicked`],
//!   naming the run when one is being read. A panic during a write poisons
//!   the store for reads too: sled's state is then unknown.
//! - An I/O error is [`StoreError::File`], naming the operation and the
//!   database directory (or the file, for the store's own fdatasyncs and
//!   guard), with the OS error in words.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use runjournal_core::chunk;
use runjournal_core::codec::{decode_record, encode_record, RecordKind};
use runjournal_core::{
    AppendBatch, AppendRejection, KeyExists, NewRun, RunFilter, RunId, RunKey, RunRecord, ScanControl, SnapshotRecord,
    Store, StoreError,
};

use crate::guard::Guarded;
use crate::{files, layout};

/// How to open a sled database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the database when the path does not exist.
    CreateIfMissing,
    /// Fail with [`StoreError::Missing`] when the path does not exist.
    MustExist,
}

/// The storage trait on sled 0.34.
pub struct SledStore {
    /// The tree of snapshot records ([`layout::SNAPSHOT_TREE`]); sled's `db`
    /// holds it too, so this handle's drop never flushes.
    snapshots: sled::Tree,
    db: sled::Db,
    path: PathBuf,
    write: Mutex<WriteState>,
    synced_blobs: Mutex<SyncState>,
    /// The first failed write, flush or sync (or the close): fail-stop.
    failure: OnceLock<Failure>,
    /// Set by a drop after a failure; declared after `db`, so it is dropped
    /// after it: its receiver, on the thread holding the last sled handle,
    /// then learns that this store's handle is gone (see [`SledStore::release`]).
    release: Option<std::sync::mpsc::Sender<()>>,
}

struct WriteState {
    runs: HashMap<RunId, RunRecord>,
    next_run_id: RunId,
    /// Events ever appended (created runs' too), as the meta record holds.
    appended: u64,
    /// Write batches ever applied, as the meta record holds.
    writes: u64,
    /// The store format the format record holds (raised to
    /// [`STORE_FORMAT`] by the first batch that writes a chunk, or the first
    /// append).
    format: u8,
    /// The key of the newest commit this store wrote (or the one the guard
    /// named at open, when it was found): what the guard names as its reference.
    reference: Option<Reference>,
}

/// An event key naming a commit (see [`crate::guard`]).
type Reference = [u8; crate::guard::REFERENCE_LEN];

#[derive(Default)]
struct SyncState {
    blobs: HashSet<std::ffi::OsString>,
    /// sled's log, open for `fdatasync`; `Some` once the first sync made the
    /// database's own files and directory entries durable.
    log_file: Option<File>,
    /// Whether the `blobs` directory's entry in the database directory is durable.
    blob_directory_durable: bool,
    /// The counts the guard file holds, and when it was written.
    guard: Option<(Counts, std::time::Instant)>,
    /// The `blobs` directory's modification time at the last listing, when
    /// that listing can be trusted to have seen every file created up to
    /// that time (see [`SledStore::sync_files`]).
    blobs_listed: Option<std::time::SystemTime>,
    /// The counts the last completed sync made durable.
    durable: Counts,
}

/// The store's counters: events appended and write batches applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    events: u64,
    writes: u64,
}

/// Why the store stopped accepting writes.
#[derive(Debug)]
struct Failure {
    /// The error, as a sentence.
    cause: String,
    /// sled panicked while writing: its state is unknown, reads are refused too.
    panicked: bool,
    /// Closed on purpose, not failed.
    closed: bool,
}

/// How much older than a listing of `blobs/` the directory's modification
/// time must be for the listing to be trusted to have seen every file created
/// up to that time. A file created after the listing gets a later time when
/// the listing began at least one timestamp granule after the time it saw:
/// the granule is one tick of the kernel's coarse clock (4 ms at 250 Hz) on
/// ext4 with large inodes, xfs and btrfs, but a whole second on ext4 with
/// 128-byte inodes and two on FAT, so the margin covers the coarsest.
const BLOB_LISTING_MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

/// The longest a sync leaves the guard behind what it made durable.
const GUARD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl SledStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: impl AsRef<Path>, mode: OpenMode) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if mode == OpenMode::MustExist && !path.join(files::LOG).exists() {
            return Err(StoreError::Missing {
                path: path.display().to_string(),
            });
        }
        if mode == OpenMode::CreateIfMissing && !path.join(files::LOG).exists() && path.join(files::CONFIG).exists() {
            // sled writes `conf` (not atomically) before it creates `db`: a
            // `conf` without `db` is a creation killed before any data
            // existed, which would otherwise never open again. Start it over.
            std::fs::remove_file(path.join(files::CONFIG)).map_err(io("remove the conf of an interrupted creation"))?;
        }
        let db = open_sled(&path)?;
        let snapshots = db
            .open_tree(layout::SNAPSHOT_TREE)
            .map_err(|error| sled_error(&path, "open the snapshot tree", error))?;
        let next_run_id = read_counter(&db, &path, &layout::next_run_id_key(), "next run id record")?;
        let format = check_or_write_format(&db, &path, mode)?;
        let meta = Counts {
            events: read_counter(&db, &path, &layout::appended_key(), "appended-events record")?,
            writes: read_counter(&db, &path, &layout::writes_key(), "write-batches record")?,
        };
        let Held {
            counts,
            reference,
            guarded,
        } = check_guard(&db, &path, meta)?;
        Ok(SledStore {
            snapshots,
            db,
            path,
            write: Mutex::new(WriteState {
                runs: HashMap::new(),
                next_run_id,
                appended: counts.events,
                writes: counts.writes,
                format,
                reference,
            }),
            synced_blobs: Mutex::new(SyncState {
                // A version 1 guard is rewritten (as version 2) at the first sync.
                guard: guarded.and_then(|guarded| {
                    let writes = guarded.writes?;
                    let counts = Counts {
                        events: guarded.events,
                        writes,
                    };
                    Some((counts, std::time::Instant::now()))
                }),
                durable: counts,
                ..SyncState::default()
            }),
            failure: OnceLock::new(),
            release: None,
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying sled database (for tools and tests that inspect raw bytes).
    pub fn sled(&self) -> &sled::Db {
        &self.db
    }

    /// The sled tree of snapshot records (for tools and tests that inspect
    /// raw bytes; see [`layout::SNAPSHOT_TREE`]).
    pub fn sled_snapshots(&self) -> &sled::Tree {
        &self.snapshots
    }

    fn lock_write(&self) -> Result<MutexGuard<'_, WriteState>, StoreError> {
        self.write.lock().map_err(|_| StoreError::Backend {
            operation: "lock",
            detail: "a thread panicked while writing to the store".into(),
        })
    }

    /// Fails when the store refuses writes (after a failure, or closed).
    fn check_writable(&self) -> Result<(), StoreError> {
        match self.failure.get() {
            Some(failure) => Err(StoreError::Poisoned {
                path: self.path.display().to_string(),
                cause: failure.cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Fails when sled panicked during a write: nothing it returns can be trusted.
    fn check_readable(&self) -> Result<(), StoreError> {
        match self.failure.get() {
            Some(failure) if failure.panicked => self.check_writable(),
            _ => Ok(()),
        }
    }

    /// Remembers the first failure; returns `error` for the caller.
    fn fail(&self, error: StoreError) -> StoreError {
        let panicked = matches!(error, StoreError::BackendPanicked { .. });
        self.failure.get_or_init(|| Failure {
            cause: error.to_string(),
            panicked,
            closed: false,
        });
        error
    }

    /// Runs a call into sled, turning a panic into [`StoreError::BackendPanicked`].
    fn contain<T>(
        &self,
        operation: &'static str,
        run: Option<&RunKey>,
        call: impl FnOnce() -> sled::Result<T>,
    ) -> Result<T, StoreError> {
        // AssertUnwindSafe: after a panic nothing the call touched is used
        // again by the caller (the iterator or batch is dropped, the error
        // returned); sled's own state is what a panic leaves in doubt, which is
        // why a panic during a write poisons the store.
        match catch_unwind(AssertUnwindSafe(call)) {
            Ok(result) => result.map_err(|error| sled_error(&self.path, operation, error)),
            Err(payload) => Err(StoreError::BackendPanicked {
                operation,
                run: run.cloned(),
                message: panic_message(payload.as_ref()),
            }),
        }
    }

    /// A point read.
    fn get(&self, operation: &'static str, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.check_readable()?;
        self.contain(operation, None, || self.db.get(key))
    }

    /// The entries of `iter`, each read under [`SledStore::contain`].
    fn entries<'a, I>(&'a self, operation: &'static str, run: Option<RunKey>, iter: I) -> Entries<'a, I>
    where
        I: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    {
        Entries {
            store: self,
            operation,
            run,
            inner: Some(iter),
        }
    }

    /// Applies one write batch to the default tree; a failure (or a panic)
    /// stops the store.
    fn apply(&self, operation: &'static str, batch: sled::Batch) -> Result<(), StoreError> {
        self.apply_to(&self.db, operation, batch)
    }

    /// Applies one write batch to `tree`; a failure (or a panic) stops the store.
    fn apply_to(&self, tree: &sled::Tree, operation: &'static str, batch: sled::Batch) -> Result<(), StoreError> {
        self.check_writable()?;
        self.contain(operation, None, || tree.apply_batch(batch))
            .map_err(|error| self.fail(error))
    }

    /// Stores each run's newest snapshot of an append group, after the
    /// group's events (and the format record naming the snapshot tree) are in
    /// sled's log, so that sled's recovery of a prefix of its log never keeps
    /// a snapshot without the events it folds. The new snapshot goes in
    /// before the run's older ones are removed: a crash between leaves both,
    /// and a read takes the newest. A run keeps only its newest snapshot.
    fn put_snapshots(
        &self,
        runs: &HashMap<RunId, RunRecord>,
        snapshots: &HashMap<RunId, &SnapshotRecord>,
    ) -> Result<(), StoreError> {
        for (&run, snapshot) in snapshots {
            let key = runs.get(&run).map(|record| record.key.clone());
            let new_key = layout::snapshot_key(run, snapshot.seq);
            self.check_writable()?;
            self.contain("store snapshot", key.as_ref(), || {
                self.snapshots.insert(&new_key[..], snapshot.bytes.as_slice())
            })
            .map_err(|error| self.fail(error))?;
            self.remove_snapshots(&self.snapshots, run, key.clone(), Some(&new_key))?;
            self.remove_snapshots(&self.db, run, key, None)?;
        }
        Ok(())
    }

    /// Removes the run's snapshots stored in `tree` (the snapshot tree, or
    /// the default tree where a format ≤ 3 build stored them), but the one
    /// under `keep`: one batch, and none when there is nothing to remove.
    fn remove_snapshots(
        &self,
        tree: &sled::Tree,
        run: RunId,
        key: Option<RunKey>,
        keep: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut found = false;
        let stored = tree.scan_prefix(layout::run_prefix(layout::SNAPSHOT, run));
        for entry in self.entries("scan snapshots", key, stored) {
            let (stored_key, _) = entry?;
            if keep != Some(&stored_key[..]) {
                batch.remove(stored_key);
                found = true;
            }
        }
        if found {
            self.apply_to(tree, "remove older snapshots", batch)?;
        }
        Ok(())
    }

    /// Stores an append group as one commit per run, in order: each a single
    /// `insert` (one sled log message, crash-atomic like a batch) of the
    /// run's events with the run's record and the store's counters after
    /// that commit ([`crate::commit`]). The inserts wait in sled's buffer
    /// for the next flush, which writes them in one log write. The stored run
    /// records and the meta records are not rewritten.
    ///
    /// Each commit's counters are cumulative, so whatever prefix of the
    /// group sled recovers holds counters that match it, and the reference
    /// (the last commit) being present proves the whole group is.
    fn commit(&self, state: &mut WriteState, commits: &[Commit<'_>]) -> Result<(), StoreError> {
        self.check_writable()?;
        for commit in commits {
            let header = crate::commit::CommitHeader {
                events: state.appended + commit.records.len() as u64,
                writes: state.writes + 1,
                record: commit.record.clone(),
            };
            let key = layout::event_key(commit.record.id, commit.first_seq);
            let value = chunk::encode_commit(&crate::commit::encode_header(&header), commit.records);
            let inserted = self
                .contain("append", Some(&commit.record.key), || self.db.insert(key, value))
                .map_err(|error| self.fail(error));
            if let Err(error) = inserted {
                state.runs.clear();
                return Err(error);
            }
            state.appended = header.events;
            state.writes = header.writes;
            state.reference = Some(key);
            state.runs.insert(header.record.id, header.record);
        }
        Ok(())
    }

    /// Applies an append group (see [`Store::append`]): as commits when
    /// [`commits`] allows it, else as one multi-key batch.
    fn append_group(
        &self,
        batches: &[AppendBatch],
        grouping: Grouping,
    ) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        let mut state = self.lock_write()?;
        self.check_writable()?;
        let mut pending: HashMap<RunId, RunRecord> = HashMap::new();
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut snapshots: HashMap<RunId, &SnapshotRecord> = HashMap::new();
        // Each run's accepted records of the group, from its first seq: one
        // run's accepted batches are consecutive, so they chunk together.
        let mut events: HashMap<RunId, (u64, Vec<&[u8]>)> = HashMap::new();
        // The runs with accepted batches, in the order of their first one.
        let mut run_order: Vec<RunId> = Vec::new();
        let mut sled_batch = sled::Batch::default();
        for batch in batches {
            // A run's record is loaded (cloned from the cache) once per group
            // and then updated in place; a batch that is rejected leaves it,
            // and `pending`, as they were.
            let record = match pending.entry(batch.run) {
                Entry::Occupied(entry) => {
                    if let Err(rejection) = batch.check_against(entry.get()) {
                        outcomes.push(Err(rejection));
                        continue;
                    }
                    entry.into_mut()
                }
                Entry::Vacant(entry) => {
                    let Some(record) = self.load_run(&mut state, batch.run)? else {
                        outcomes.push(Err(AppendRejection::UnknownRun));
                        continue;
                    };
                    if let Err(rejection) = batch.check_against(&record) {
                        outcomes.push(Err(rejection));
                        continue;
                    }
                    entry.insert(record)
                }
            };
            record.head = batch.head_after;
            record.status = batch.status_after;
            let records = match events.entry(batch.run) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    run_order.push(batch.run);
                    entry.insert((batch.expected_seq, Vec::new()))
                }
            };
            records.1.extend(batch.records.iter().map(Vec::as_slice));
            if let Some(snapshot) = &batch.snapshot {
                snapshots.insert(batch.run, snapshot);
            }
            outcomes.push(Ok(()));
        }
        if let Some(commits) = commits(&state, grouping, &run_order, &pending, &events) {
            self.commit(&mut state, &commits)?;
            self.put_snapshots(&state.runs, &snapshots)?;
            return Ok(outcomes);
        }
        if state.format < STORE_FORMAT && !pending.is_empty() {
            // From now on an append may be a commit, which an older build
            // would not read.
            sled_batch.insert(layout::format_key(), encode_record(RecordKind::Meta, &STORE_FORMAT));
            state.format = STORE_FORMAT;
        }
        for (id, (first_seq, records)) in &events {
            put_events(&mut sled_batch, &mut state, *id, *first_seq, records);
        }
        for (id, record) in &pending {
            sled_batch.insert(&layout::run_key(*id)[..], encode_record(RecordKind::Run, record));
        }
        if !pending.is_empty() {
            let appended = state.appended + accepted_events(batches, &outcomes);
            let writes = count_write(&mut sled_batch, &state);
            sled_batch.insert(layout::appended_key(), encode_record(RecordKind::Meta, &appended));
            if let Err(error) = self.apply("append", sled_batch) {
                state.runs.clear();
                return Err(error);
            }
            state.runs.extend(pending);
            state.appended = appended;
            state.writes = writes;
            self.put_snapshots(&state.runs, &snapshots)?;
        }
        Ok(outcomes)
    }

    /// The key of a cached run record, to name the run in an error.
    fn cached_key(&self, id: RunId) -> Option<RunKey> {
        let state = self.write.lock().ok()?;
        state.runs.get(&id).map(|record| record.key.clone())
    }

    /// Removes the events and snapshots of every run with a purge tombstone,
    /// at most [`PURGE_BATCH_KEYS`] keys per batch, then the tombstone; returns
    /// the bytes freed. The runs are invisible already, so a crash between
    /// batches leaves only unreachable keys, removed by the next purge.
    fn finish_purges(&self, state: &mut WriteState) -> Result<u64, StoreError> {
        let mut freed = 0u64;
        let tombstones: Vec<sled::IVec> = self
            .entries("scan purge tombstones", None, self.db.scan_prefix([layout::PURGING]))
            .map(|entry| entry.map(|(key, _)| key))
            .collect::<Result<_, _>>()?;
        for tombstone in tombstones {
            let Some(id) = layout::trailing_u64(&tombstone) else {
                continue;
            };
            // (tree, prefix, whether it is the default tree, whose writes are counted)
            let owned_keys = [
                (&*self.db, layout::EVENT, true),
                (&*self.db, layout::SNAPSHOT, true),
                (&self.snapshots, layout::SNAPSHOT, false),
            ];
            for (tree, prefix, counted) in owned_keys {
                loop {
                    let mut batch = sled::Batch::default();
                    let mut keys = 0usize;
                    let owned = tree.scan_prefix(layout::run_prefix(prefix, id));
                    for entry in self.entries("scan purged run", None, owned).take(PURGE_BATCH_KEYS) {
                        let (key, value) = entry?;
                        freed += (key.len() + value.len()) as u64;
                        batch.remove(key);
                        keys += 1;
                    }
                    if keys == 0 {
                        break;
                    }
                    if counted {
                        state.writes = count_write(&mut batch, state);
                    }
                    self.apply_to(tree, "remove purged keys", batch)?;
                }
            }
            let mut batch = sled::Batch::default();
            batch.remove(tombstone);
            state.writes = count_write(&mut batch, state);
            self.apply("remove purge tombstone", batch)?;
        }
        Ok(freed)
    }

    fn load_run(&self, state: &mut WriteState, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        if let Some(record) = state.runs.get(&id) {
            return Ok(Some(record.clone()));
        }
        let Some(bytes) = self.get("read run record", &layout::run_key(id))? else {
            return Ok(None);
        };
        let mut record = decode_run_record(id, &bytes)?;
        if let Some((seq, value)) = self.last_value(id, &record.key)? {
            if let Some(committed) = Self::commit_record(id, &record.key, seq, &value)? {
                if committed.head.next_seq > record.head.next_seq {
                    record = committed;
                }
            }
            // Every stored value of a run lies below its head: one past it is
            // a commit whose header did not decode as one (damage), and
            // taking the older head would hide it.
            if seq >= record.head.next_seq {
                let why = match runjournal_core::codec::decode_event(&value) {
                    Err(error) => error.to_string(),
                    Ok(_) => "its head does not cover it".to_string(),
                };
                return Err(corrupt(format!(
                    "run {} at seq {seq}: the value stored there lies past the run's head (next seq {}) and is not a \
                     commit of it: {why}",
                    record.key, record.head.next_seq
                )));
            }
        }
        state.runs.insert(id, record.clone());
        Ok(Some(record))
    }

    /// The run's last stored value and its seq (one reverse step: O(log n)).
    fn last_value(&self, id: RunId, key: &RunKey) -> Result<Option<(u64, sled::IVec)>, StoreError> {
        self.check_readable()?;
        let range = layout::event_key(id, 0)..=layout::event_key(id, u64::MAX);
        let last = self.contain("read run head", Some(key), || {
            self.db.range(range).next_back().transpose()
        })?;
        Ok(last.map(|(event_key, value)| (layout::trailing_u64(&event_key).unwrap_or_default(), value)))
    }

    /// The run record in the header of `value` (the run's last stored value,
    /// at `seq`), when it is a commit. A commit's header is the run's record
    /// after it; the stored run record is rewritten only by multi-key
    /// batches, so it may be behind.
    fn commit_record(id: RunId, key: &RunKey, seq: u64, value: &[u8]) -> Result<Option<RunRecord>, StoreError> {
        let Some(header) = chunk::commit_header(value) else {
            return Ok(None);
        };
        let header = crate::commit::decode_header(header)
            .map_err(|reason| corrupt(format!("the commit of run {id} ({key}) at seq {seq}: {reason}")))?;
        if header.record.id != id || header.record.key != *key {
            return Err(corrupt(format!(
                "the commit of run {id} ({key}) at seq {seq} names run {} ({})",
                header.record.id, header.record.key
            )));
        }
        Ok(Some(header.record))
    }

    /// The run record the key index names for `key`: it must exist and carry
    /// that key (a damaged index never resolves to another run, or to nothing).
    fn indexed_run(&self, state: &mut WriteState, key: &RunKey, id: RunId) -> Result<RunRecord, StoreError> {
        let record = self.load_run(state, id)?.ok_or_else(|| dangling_index(id))?;
        if record.key != *key {
            return Err(misdirected_index(id, &key.to_string(), &record.key));
        }
        Ok(record)
    }

    /// The seq of the stored value a read from `seq` starts at: the chunk
    /// holding `seq` (the last value keyed at or before it, found in
    /// O(log n)), or `seq` itself.
    fn first_value_seq(&self, run: RunId, seq: u64, key: Option<&RunKey>) -> Result<u64, StoreError> {
        self.check_readable()?;
        let range = layout::event_key(run, 0)..=layout::event_key(run, seq);
        let before = self.contain("read events", key, || self.db.range(range).next_back().transpose())?;
        match before {
            Some((key, value)) if chunk::is_chunk(&value) => {
                let first = layout::trailing_u64(&key).ok_or_else(|| corrupt("short event key".into()))?;
                Ok(if first.saturating_add(chunk::declared_count(&value)) > seq {
                    first
                } else {
                    seq
                })
            }
            _ => Ok(seq),
        }
    }

    fn find_id(&self, key: &RunKey) -> Result<Option<RunId>, StoreError> {
        let Some(bytes) = self.get("read key index", &layout::key_index_key(key))? else {
            return Ok(None);
        };
        decode_id(&bytes).map(Some)
    }

    /// Flushes, makes sled's files durable, then records what is durable in
    /// the guard (at most every [`GUARD_INTERVAL`], or now when `force`).
    /// Any failure stops the store.
    fn sync_and_guard(&self, force: bool) -> Result<(), StoreError> {
        self.check_writable()?;
        self.flush_and_guard(force).map_err(|error| self.fail(error))
    }

    fn flush_and_guard(&self, force: bool) -> Result<(), StoreError> {
        // Everything applied before the flush is durable after it.
        let (applied, reference) = {
            let state = self.lock_write()?;
            let counts = Counts {
                events: state.appended,
                writes: state.writes,
            };
            (counts, state.reference)
        };
        self.contain("flush", None, || self.db.flush())?;
        self.presize_log()?;
        self.sync_files()?;
        let mut sync = self.lock_sync()?;
        sync.durable = applied;
        let due = match sync.guard {
            None => true,
            Some((counts, written)) => counts != applied && (force || written.elapsed() >= GUARD_INTERVAL),
        };
        if due {
            crate::guard::write_guard(&self.path, applied.events, applied.writes, reference.as_ref())?;
            sync.guard = Some((applied, std::time::Instant::now()));
        }
        Ok(())
    }

    /// Extends sled's log file to the end of the segment its last write is
    /// in, once per segment (the first write of a segment grows the file):
    /// the commits after it write inside the file, and their `fdatasync`
    /// has no new file size to make durable, one device write fewer (about
    /// 50 µs of a 330 µs durable append on this project's VM).
    ///
    /// The extension reads as zeros, which sled reads exactly as the end of
    /// the file: a message header of zeros is the end of its log, a segment
    /// header of zeros an unused segment (sled pads a segment to its end
    /// itself when it closes). It never cuts a write of sled's: sled writes
    /// only for this store's writes, each under the write lock, and its
    /// flushes; under that lock and after a flush nothing of sled's is in
    /// flight, so the length read then stays until the extension. (sled's
    /// own shrinking of the file to a segment boundary may land before or
    /// after it: either way, only whole segments of zeros lie past its end.)
    fn presize_log(&self) -> Result<(), StoreError> {
        let log = self.path.join(files::LOG);
        let length = |log: &Path| {
            std::fs::metadata(log)
                .map(|metadata| metadata.len())
                .map_err(file_error("stat", log))
        };
        if length(&log)? % files::LOG_SEGMENT == 0 {
            return Ok(());
        }
        let _write = self.lock_write()?;
        self.contain("flush", None, || self.db.flush())?;
        let now = length(&log)?;
        let end = now.next_multiple_of(files::LOG_SEGMENT);
        if end > now {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&log)
                .and_then(|file| file.set_len(end))
                .map_err(file_error("extend", &log))?;
        }
        Ok(())
    }

    fn lock_sync(&self) -> Result<MutexGuard<'_, SyncState>, StoreError> {
        self.synced_blobs.lock().map_err(|_| StoreError::Backend {
            operation: "sync",
            detail: "a thread panicked while syncing the store".into(),
        })
    }

    fn sync_files(&self) -> Result<(), StoreError> {
        let mut sync = self.lock_sync()?;
        let log = self.path.join(files::LOG);
        if sync.log_file.is_none() {
            // sled never syncs its `conf`, and a torn `conf` makes sled refuse
            // the database; nor does anything sync the database directory's
            // own entry, without which a power loss can lose the whole
            // database. The first sync makes both durable.
            let config = self.path.join(files::CONFIG);
            File::open(&config)
                .and_then(|file| file.sync_data())
                .map_err(file_error("fdatasync", &config))?;
            let file = File::open(&log).map_err(file_error("open for fdatasync", &log))?;
            sync_directory(&self.path)?;
            sync_directory(parent_directory(&self.path))?;
            sync.log_file = Some(file);
        }
        if let Some(file) = &sync.log_file {
            file.sync_data().map_err(file_error("fdatasync", &log))?;
        }
        let blob_dir = self.path.join(files::BLOBS);
        // Creating or removing a file changes its directory's modification
        // time, so an unchanged time means no blob file appeared since the
        // last listing. The time is the kernel's coarse clock: a file created
        // in the same tick right after a listing leaves it unchanged, so a
        // listing is trusted only when the time it saw was well before it.
        let modified = std::fs::metadata(&blob_dir)
            .and_then(|metadata| metadata.modified())
            .ok();
        if modified.is_some() && modified == sync.blobs_listed {
            return Ok(());
        }
        let listed_at = std::time::SystemTime::now();
        let mut new_blob = false;
        let mut present = HashSet::new();
        if let Ok(entries) = std::fs::read_dir(&blob_dir) {
            for entry in entries {
                let entry = entry.map_err(file_error("list", &blob_dir))?;
                let name = entry.file_name();
                if !sync.blobs.contains(&name) {
                    match File::open(entry.path()).and_then(|file| file.sync_data()) {
                        Ok(()) => new_blob = true,
                        // sled removes blobs it no longer needs at any time: a
                        // blob gone since the listing has nothing left to make durable.
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(error) => return Err(file_error("fdatasync", &entry.path())(error)),
                    }
                }
                present.insert(name);
            }
        }
        sync.blobs = present;
        sync.blobs_listed = modified.filter(|modified| {
            listed_at
                .duration_since(*modified)
                .is_ok_and(|age| age >= BLOB_LISTING_MARGIN)
        });
        if new_blob {
            sync_directory(&blob_dir)?;
            if !sync.blob_directory_durable {
                sync_directory(&self.path)?;
                sync.blob_directory_durable = true;
            }
        }
        Ok(())
    }

    /// What was applied after the last completed sync, as a
    /// [`StoreError::NotDurable`]; `None` when the store has not failed.
    fn not_durable(&self) -> Option<StoreError> {
        let failure = self.failure.get().filter(|failure| !failure.closed)?;
        let durable = self.synced_blobs.lock().map(|sync| sync.durable).unwrap_or_default();
        let (events, writes) = match self.write.lock() {
            Ok(state) => (state.appended, state.writes),
            Err(_) => (durable.events, durable.writes),
        };
        Some(StoreError::NotDurable {
            path: self.path.display().to_string(),
            writes: writes.saturating_sub(durable.writes),
            events: events.saturating_sub(durable.events),
            cause: failure.cause.clone(),
        })
    }

    /// Hands a sled handle to a detached thread that drops it once this
    /// store's own handle is gone: after a failed write, sled's drop flushes
    /// and can wait forever, and a close must never hang. The thread ends when
    /// sled's drop returns (releasing its files and lock), or with the process.
    fn release(&mut self) {
        let (sender, receiver) = std::sync::mpsc::channel::<()>();
        let db = self.db.clone();
        let spawned = std::thread::Builder::new()
            .name("runjournal-sled-release".into())
            .spawn(move || {
                // Ends when the store's `release` sender drops, after its `db`.
                let _gone = receiver.recv();
                drop(db);
            });
        match spawned {
            Ok(_) => self.release = Some(sender),
            Err(error) => {
                tracing::warn!(
                    path = %self.path.display(),
                    %error,
                    "cannot start a thread to release sled; its handle is leaked so the close cannot hang"
                );
                std::mem::forget(self.db.clone());
            }
        }
    }
}

/// Entries of a sled iterator, each step under [`SledStore::contain`]; ends
/// after the first error.
struct Entries<'a, I> {
    store: &'a SledStore,
    operation: &'static str,
    run: Option<RunKey>,
    inner: Option<I>,
}

impl<I> Iterator for Entries<'_, I>
where
    I: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
{
    type Item = Result<(sled::IVec, sled::IVec), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = self.inner.as_mut()?;
        if let Err(error) = self.store.check_readable() {
            self.inner = None;
            return Some(Err(error));
        }
        let step = self
            .store
            .contain(self.operation, self.run.as_ref(), || inner.next().transpose());
        match step {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.inner = None;
                None
            }
            Err(error) => {
                self.inner = None;
                Some(Err(error))
            }
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        if self.failure.get().is_none() {
            // A clean close records everything it made durable.
            match self.sync_and_guard(true) {
                Ok(()) => return,
                Err(error) => tracing::warn!(path = %self.path.display(), %error, "the final sync at close failed"),
            }
        }
        if let Some(report) = self.not_durable() {
            tracing::warn!(path = %self.path.display(), %report, "closing a store that failed");
        }
        if self.failure.get().is_some_and(|failure| !failure.closed) {
            self.release();
        }
    }
}

impl SledStore {
    /// Closes the store: a final sync (and guard) when it has not failed;
    /// after a failure, at once and without touching sled, the typed report of
    /// what was applied but is not durable ([`StoreError::NotDurable`]). Every
    /// later write is refused. Dropping the store does the same, reporting
    /// through `tracing`.
    pub fn close(&self) -> Result<(), StoreError> {
        match self.failure.get() {
            Some(failure) if failure.closed => return Ok(()),
            Some(_) => {}
            None => {
                if self.sync_and_guard(true).is_ok() {
                    self.failure.get_or_init(|| Failure {
                        cause: format!("the store of {} was closed", self.path.display()),
                        panicked: false,
                        closed: true,
                    });
                    return Ok(());
                }
            }
        }
        self.not_durable().map_or(Ok(()), Err)
    }
}

impl Store for SledStore {
    fn create_runs(&self, runs: &[NewRun]) -> Result<Result<Vec<RunRecord>, KeyExists>, StoreError> {
        let mut state = self.lock_write()?;
        self.check_writable()?;
        let mut seen = HashSet::new();
        for run in runs {
            if !seen.insert(&run.key) || self.find_id(&run.key)?.is_some() {
                return Ok(Err(KeyExists(run.key.clone())));
            }
        }
        let mut batch = sled::Batch::default();
        let mut created = Vec::with_capacity(runs.len());
        let mut next_id = state.next_run_id;
        let mut ids = HashMap::new();
        for run in runs {
            let id = next_id;
            next_id += 1;
            let record = RunRecord {
                id,
                key: run.key.clone(),
                created_ts: run.created_ts,
                head: run.head,
                status: run.status,
                fork: run.resolved_fork(&ids),
            };
            ids.insert(run.key.clone(), id);
            let records: Vec<&[u8]> = run.records.iter().map(Vec::as_slice).collect();
            put_events(&mut batch, &mut state, id, 0, &records);
            batch.insert(&layout::run_key(id)[..], encode_record(RecordKind::Run, &record));
            batch.insert(layout::key_index_key(&run.key), &id.to_be_bytes()[..]);
            if let Some(fork) = &record.fork {
                batch.insert(&layout::child_key(fork.parent, id)[..], &[][..]);
            }
            created.push(record);
        }
        let mut superseded = Vec::new();
        for id in runs.iter().filter_map(|run| run.supersedes) {
            if let Some(record) = self.load_run(&mut state, id)? {
                let record = record.superseded();
                batch.insert(&layout::run_key(id)[..], encode_record(RecordKind::Run, &record));
                superseded.push(record);
            }
        }
        batch.insert(layout::next_run_id_key(), encode_record(RecordKind::Meta, &next_id));
        let appended = state.appended + runs.iter().map(|run| run.records.len() as u64).sum::<u64>();
        let writes = count_write(&mut batch, &state);
        batch.insert(layout::appended_key(), encode_record(RecordKind::Meta, &appended));
        self.apply("create runs", batch)?;
        state.next_run_id = next_id;
        state.appended = appended;
        state.writes = writes;
        for record in created.iter().chain(&superseded) {
            state.runs.insert(record.id, record.clone());
        }
        Ok(Ok(created))
    }

    fn append(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.append_group(batches, Grouping::Atomic)
    }

    fn append_independent(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        self.append_group(batches, Grouping::Independent)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.sync_and_guard(false)
    }

    fn close(&self) -> Result<(), StoreError> {
        SledStore::close(self)
    }

    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let mut state = self.lock_write()?;
        self.load_run(&mut state, id)
    }

    fn find(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        let mut state = self.lock_write()?;
        match self.find_id(key)? {
            Some(id) => self.indexed_run(&mut state, key, id).map(Some),
            None => Ok(None),
        }
    }

    fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let mut state = self.lock_write()?;
        let prefix = match &filter.goal {
            Some(goal) => layout::key_index_prefix(&RunKey::goal_prefix(goal)),
            None => vec![layout::KEY_INDEX],
        };
        let mut records = Vec::new();
        for entry in self.entries("list runs", None, self.db.scan_prefix(prefix)) {
            let (index_key, value) = entry?;
            let id = decode_id(&value)?;
            let record = self.load_run(&mut state, id)?.ok_or_else(|| dangling_index(id))?;
            if layout::key_index_key(&record.key) != index_key.as_ref() {
                return Err(misdirected_index(id, "another key", &record.key));
            }
            if filter.matches(&record) {
                records.push(record);
            }
        }
        Ok(records)
    }

    fn max_episode(&self, goal: &str, agent: Option<&str>) -> Result<Option<u32>, StoreError> {
        let _state = self.lock_write()?;
        let prefix = match agent {
            Some(agent) => RunKey::goal_agent_prefix(goal, agent),
            None => RunKey::goal_prefix(goal),
        };
        let mut max = None;
        let index = self.db.scan_prefix(layout::key_index_prefix(&prefix));
        for entry in self.entries("scan key index", None, index) {
            let (key, _) = entry?;
            let episode = layout::trailing_u32(&key).ok_or_else(|| corrupt("short key index entry".into()))?;
            max = max.max(Some(episode));
        }
        Ok(max)
    }

    fn scan(
        &self,
        run: RunId,
        from_seq: u64,
        end_seq: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ScanControl,
    ) -> Result<(), StoreError> {
        if from_seq >= end_seq {
            return Ok(());
        }
        let run_key = self.cached_key(run);
        let start = self.first_value_seq(run, from_seq, run_key.as_ref())?;
        let range = layout::event_key(run, start)..layout::event_key(run, end_seq);
        for entry in self.entries("read events", run_key, self.db.range(range)) {
            let (key, value) = entry?;
            let first = layout::trailing_u64(&key).ok_or_else(|| corrupt("short event key".into()))?;
            for (seq, record) in (first..).zip(chunk::records(&value)) {
                if seq < from_seq {
                    continue;
                }
                if seq >= end_seq || visit(seq, record) == ScanControl::Stop {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn latest_snapshot(&self, run: RunId, at_most_seq: u64) -> Result<Option<SnapshotRecord>, StoreError> {
        self.check_readable()?;
        let range = layout::snapshot_key(run, 0)..=layout::snapshot_key(run, at_most_seq);
        let cached_key = self.cached_key(run);
        let mut newest: Option<(sled::IVec, sled::IVec)> = None;
        // The snapshot tree, and the default tree for those a format ≤ 3 build stored.
        for tree in [&self.snapshots, &*self.db] {
            let found = self.contain("read snapshot", cached_key.as_ref(), || {
                tree.range(range.clone()).next_back().transpose()
            })?;
            if let Some((key, value)) = found {
                if newest.as_ref().is_none_or(|(newer, _)| key > *newer) {
                    newest = Some((key, value));
                }
            }
        }
        let Some((key, value)) = newest else {
            return Ok(None);
        };
        let seq = layout::trailing_u64(&key).ok_or_else(|| corrupt("short snapshot key".into()))?;
        Ok(Some(SnapshotRecord {
            seq,
            bytes: value.to_vec(),
        }))
    }

    fn children(&self, run: RunId) -> Result<Vec<RunId>, StoreError> {
        let mut children = Vec::new();
        let lineage = self.db.scan_prefix(layout::run_prefix(layout::CHILD, run));
        for entry in self.entries("read lineage", self.cached_key(run), lineage) {
            let (key, _) = entry?;
            children.push(layout::trailing_u64(&key).ok_or_else(|| corrupt("short lineage key".into()))?);
        }
        Ok(children)
    }

    fn delete_runs(&self, runs: &[RunId]) -> Result<u64, StoreError> {
        let mut state = self.lock_write()?;
        self.check_writable()?;
        // One atomic step makes the runs invisible: their records, keys and
        // lineage entries go, and a tombstone names each run.
        let mut batch = sled::Batch::default();
        let mut freed = 0u64;
        let mut unpublished = Vec::new();
        for &id in runs {
            let Some(record) = self.load_run(&mut state, id)? else {
                continue;
            };
            let owned = self.db.scan_prefix(layout::run_prefix(layout::CHILD, id));
            for entry in self.entries("scan run for delete", Some(record.key.clone()), owned) {
                let (key, value) = entry?;
                freed += (key.len() + value.len()) as u64;
                batch.remove(key);
            }
            if let Some(fork) = &record.fork {
                batch.remove(&layout::child_key(fork.parent, id)[..]);
            }
            batch.remove(&layout::run_key(id)[..]);
            batch.remove(layout::key_index_key(&record.key));
            batch.insert(&layout::purging_key(id)[..], &[][..]);
            unpublished.push(id);
        }
        if !unpublished.is_empty() {
            state.writes = count_write(&mut batch, &state);
            self.apply("delete runs", batch)?;
            for id in &unpublished {
                state.runs.remove(id);
            }
        }
        // Then their events and snapshots, a bounded batch at a time; this
        // finishes the tombstones an interrupted purge left too.
        freed += self.finish_purges(&mut state)?;
        Ok(freed)
    }

    fn replace_snapshots(&self, run: RunId, snapshot: Option<SnapshotRecord>) -> Result<(), StoreError> {
        let mut state = self.lock_write()?;
        self.check_writable()?;
        let key = state.runs.get(&run).map(|record| record.key.clone());
        // The counted write (with the format raised to one whose snapshots
        // are in their tree) precedes the tree's changes in sled's log.
        let mut batch = sled::Batch::default();
        if state.format < STORE_FORMAT {
            batch.insert(layout::format_key(), encode_record(RecordKind::Meta, &STORE_FORMAT));
        }
        let writes = count_write(&mut batch, &state);
        self.apply("replace snapshots", batch)?;
        state.writes = writes;
        state.format = STORE_FORMAT;
        let mut tree_batch = sled::Batch::default();
        let stored = self.snapshots.scan_prefix(layout::run_prefix(layout::SNAPSHOT, run));
        for entry in self.entries("scan snapshots", key.clone(), stored) {
            let (key, _) = entry?;
            tree_batch.remove(key);
        }
        if let Some(snapshot) = snapshot {
            tree_batch.insert(&layout::snapshot_key(run, snapshot.seq)[..], snapshot.bytes);
        }
        self.apply_to(&self.snapshots, "replace snapshots", tree_batch)?;
        self.remove_snapshots(&self.db, run, key, None)
    }

    fn reserve_run_id(&self) -> Result<RunId, StoreError> {
        let mut state = self.lock_write()?;
        let id = state.next_run_id;
        let mut batch = sled::Batch::default();
        batch.insert(layout::next_run_id_key(), encode_record(RecordKind::Meta, &(id + 1)));
        let writes = count_write(&mut batch, &state);
        self.apply("reserve run id", batch)?;
        state.next_run_id = id + 1;
        state.writes = writes;
        Ok(id)
    }

    fn stage(&self, run: RunId, first_seq: u64, records: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut state = self.lock_write()?;
        let mut batch = sled::Batch::default();
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        put_events(&mut batch, &mut state, run, first_seq, &slices);
        let appended = state.appended + records.len() as u64;
        let writes = count_write(&mut batch, &state);
        batch.insert(layout::appended_key(), encode_record(RecordKind::Meta, &appended));
        self.apply("stage events", batch)?;
        state.appended = appended;
        state.writes = writes;
        Ok(())
    }

    fn publish_staged(&self, runs: &[RunRecord]) -> Result<Result<(), KeyExists>, StoreError> {
        let mut state = self.lock_write()?;
        let mut seen = HashSet::new();
        for run in runs {
            if !seen.insert(&run.key) || self.find_id(&run.key)?.is_some() {
                return Ok(Err(KeyExists(run.key.clone())));
            }
        }
        let mut batch = sled::Batch::default();
        for record in runs {
            batch.insert(&layout::run_key(record.id)[..], encode_record(RecordKind::Run, record));
            batch.insert(layout::key_index_key(&record.key), &record.id.to_be_bytes()[..]);
            if let Some(fork) = &record.fork {
                batch.insert(&layout::child_key(fork.parent, record.id)[..], &[][..]);
            }
        }
        let writes = count_write(&mut batch, &state);
        self.apply("publish staged runs", batch)?;
        state.writes = writes;
        for record in runs {
            state.runs.insert(record.id, record.clone());
        }
        Ok(Ok(()))
    }

    fn discard_staged(&self, runs: &[RunId]) -> Result<(), StoreError> {
        let mut state = self.lock_write()?;
        let mut batch = sled::Batch::default();
        for &id in runs {
            let staged = self.db.scan_prefix(layout::run_prefix(layout::EVENT, id));
            for entry in self.entries("scan staged events", None, staged) {
                let (key, _) = entry?;
                batch.remove(key);
            }
        }
        let writes = count_write(&mut batch, &state);
        self.apply("discard staged events", batch)?;
        state.writes = writes;
        Ok(())
    }
}

/// The store format this build writes: 4, snapshots in a tree of their own
/// ([`layout::SNAPSHOT_TREE`]) and appends as commits ([`crate::commit`]: a
/// chunk with a header, one key per append). It reads formats 1 (one bare
/// record per key), 2 (event chunks, [`chunk`]) and 3 (commits), whose
/// snapshots are in the default tree, and raises them to 4 with its first
/// append or snapshot replacement.
pub const STORE_FORMAT: u8 = 4;

/// The oldest store format this build reads.
const OLDEST_STORE_FORMAT: u8 = 1;

/// A stored chunk is at most this many bytes (header and framing included). sled keeps values inline
/// in its leaf nodes, splits a leaf only past 16 entries, rewrites a whole
/// leaf at every consolidation, and moves a log message over 128 KiB (a
/// quarter of its 512 KiB segment) to a blob file with a sync of its own: 16
/// chunks of 4 KiB keep every leaf at most half that, so no leaf becomes a blob.
const CHUNK_MAX_BYTES: usize = 4 << 10;

/// A chunk holds at most this many records.
const CHUNK_MAX_RECORDS: usize = 256;

/// Adds `records` (seqs `first_seq..` of `run`) to `batch`: consecutive
/// records in chunks of up to [`CHUNK_MAX_BYTES`] and [`CHUNK_MAX_RECORDS`],
/// each under the seq of its first record; a record alone (a group of one,
/// or one as large as a chunk) is stored bare. The first chunk raises a
/// format 1 database's format record, in the same batch, so that an older
/// build refuses the database instead of misreading it.
fn put_events(batch: &mut sled::Batch, state: &mut WriteState, run: RunId, first_seq: u64, records: &[&[u8]]) {
    let mut seq = first_seq;
    let mut rest = records;
    while !rest.is_empty() {
        let mut bytes = chunk::CHUNK_HEADER_LEN;
        let taken = rest
            .iter()
            .take(CHUNK_MAX_RECORDS)
            .take_while(|record| {
                bytes += chunk::CHUNK_FRAME_LEN + record.len();
                bytes <= CHUNK_MAX_BYTES
            })
            .count()
            .max(1);
        let (group, later) = rest.split_at(taken);
        if let [record] = group {
            batch.insert(&layout::event_key(run, seq)[..], *record);
        } else {
            batch.insert(&layout::event_key(run, seq)[..], chunk::encode_chunk(group));
            if state.format < STORE_FORMAT {
                batch.insert(layout::format_key(), encode_record(RecordKind::Meta, &STORE_FORMAT));
                state.format = STORE_FORMAT;
            }
        }
        seq += taken as u64;
        rest = later;
    }
}

/// Whether an append group's batches of different runs must be stored
/// together ([`Store::append`]) or are independent
/// ([`Store::append_independent`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grouping {
    /// All or nothing, across runs: one commit only for a group of one run.
    Atomic,
    /// Each run's part all or nothing: one commit per run.
    Independent,
}

/// One run's part of an append group as one commit: its events, in one value.
#[derive(Clone, Copy)]
struct Commit<'a> {
    /// The run's record after the group.
    record: &'a RunRecord,
    first_seq: u64,
    records: &'a [&'a [u8]],
}

/// The group as commits, one per run in `order`, when it can be: the
/// database is of this format, each run's records fit one chunk (or are one
/// record), and either one run's batches were accepted or the group is
/// [`Grouping::Independent`] (several commits are several log messages, of
/// which a crash may keep a prefix). Any other group is one multi-key batch.
/// (Snapshots go to their own tree after either.)
fn commits<'a>(
    state: &WriteState,
    grouping: Grouping,
    order: &[RunId],
    pending: &'a HashMap<RunId, RunRecord>,
    events: &'a HashMap<RunId, (u64, Vec<&'a [u8]>)>,
) -> Option<Vec<Commit<'a>>> {
    let runs_allowed = order.len() == 1 || (grouping == Grouping::Independent && !order.is_empty());
    if state.format < STORE_FORMAT || !runs_allowed {
        return None;
    }
    order
        .iter()
        .map(|id| {
            let record = pending.get(id)?;
            let (first_seq, records) = events.get(id)?;
            let bytes = chunk::CHUNK_HEADER_LEN
                + 4
                + records
                    .iter()
                    .map(|record| chunk::CHUNK_FRAME_LEN + record.len())
                    .sum::<usize>();
            let fits = records.len() == 1 || (records.len() <= CHUNK_MAX_RECORDS && bytes <= CHUNK_MAX_BYTES);
            (!records.is_empty() && fits).then_some(Commit {
                record,
                first_seq: *first_seq,
                records,
            })
        })
        .collect()
}

/// The events of the accepted batches.
fn accepted_events(batches: &[AppendBatch], outcomes: &[Result<(), AppendRejection>]) -> u64 {
    batches
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(batch, _)| batch.records.len() as u64)
        .sum()
}

/// The most keys one batch of a purge removes: a purge's memory is bounded
/// by this, not by the size of the runs it removes.
const PURGE_BATCH_KEYS: usize = 4096;

/// Adds the raised write counter and the current appended counter to
/// `batch` (a batch that appends inserts its raised appended counter after
/// this, which replaces it); returns the write counter, for the state once
/// the batch is applied.
///
/// Every multi-key batch writes both meta records, so a batch after a commit
/// holds counts at least that commit's: a purge that removes the commit the
/// guard names leaves the guard's counts in the meta records.
fn count_write(batch: &mut sled::Batch, state: &WriteState) -> u64 {
    let writes = state.writes + 1;
    batch.insert(layout::writes_key(), encode_record(RecordKind::Meta, &writes));
    batch.insert(layout::appended_key(), encode_record(RecordKind::Meta, &state.appended));
    writes
}

/// How long an open waits for sled's lock. sled releases it from background
/// threads shortly after the last handle of a database drops, so a reopen
/// right after a close in the same process can find it still held.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// sled's page cache (its default is 1 GiB, which a large import fills):
/// reads beyond it go to the OS page cache.
const SLED_CACHE_BYTES: u64 = 64 << 20;

fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    let mut cleared_snapshots = false;
    loop {
        let config = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(SLED_CACHE_BYTES)
            .flush_every_ms(None);
        // sled asserts on what it reads while recovering: a panic is damage.
        let opened = match catch_unwind(AssertUnwindSafe(|| config.open())) {
            Ok(opened) => opened.map_err(|error| open_error(path, error)),
            Err(payload) => Err(StoreError::BackendPanicked {
                operation: "open",
                run: None,
                message: format!("{} (opening {})", panic_message(payload.as_ref()), path.display()),
            }),
        };
        match opened {
            Err(StoreError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(StoreError::Corrupt { .. }) if !cleared_snapshots && remove_unfinished_snapshots(path)? => {
                cleared_snapshots = true;
            }
            other => return other,
        }
    }
}

/// Removes sled's unfinished snapshot files (`snap.*.generating`); returns
/// whether there were any.
///
/// sled 0.34 writes a snapshot to `snap.<lsn>.generating`, syncs it, renames
/// it to `snap.<lsn>` and only then removes older snapshots, so such a file
/// is never a snapshot sled finished, and the older snapshot and the log it
/// covers are still whole. But sled's recovery picks the newest `snap.*`
/// file, `.generating` ones included: one left by a process killed while
/// writing it fails every open as corrupt. Called only after sled's open
/// failed that way, so no live owner was writing it (sled held its lock).
fn remove_unfinished_snapshots(path: &Path) -> Result<bool, StoreError> {
    let io = |operation: &'static str, source: std::io::Error| StoreError::Io { operation, source };
    let mut removed = false;
    for entry in std::fs::read_dir(path).map_err(|error| io("list the database directory", error))? {
        let entry = entry.map_err(|error| io("list the database directory", error))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path()).map_err(|error| io("remove an unfinished sled snapshot", error))?;
            tracing::warn!(
                path = %path.display(),
                file = %name,
                "removed an unfinished sled snapshot left by a killed process"
            );
            removed = true;
        }
    }
    Ok(removed)
}

/// A point read at open, before the store exists.
fn get_at_open(db: &sled::Db, path: &Path, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
    match catch_unwind(AssertUnwindSafe(|| db.get(key))) {
        Ok(read) => read.map_err(|error| sled_error(path, "open", error)),
        Err(payload) => Err(StoreError::BackendPanicked {
            operation: "open",
            run: None,
            message: panic_message(payload.as_ref()),
        }),
    }
}

/// A u64 meta record (0 when absent).
fn read_counter(db: &sled::Db, path: &Path, key: &[u8], what: &str) -> Result<u64, StoreError> {
    match get_at_open(db, path, key)? {
        Some(bytes) => {
            decode_record::<u64>(RecordKind::Meta, &bytes).map_err(|error| corrupt(format!("{what}: {error}")))
        }
        None => Ok(0),
    }
}

/// What an open found sled to hold, checked against the guard.
struct Held {
    /// The counts sled holds: the meta records', or the guard's reference
    /// commit's when they are larger.
    counts: Counts,
    /// The guard's reference, when sled holds it.
    reference: Option<Reference>,
    /// What the guard recorded.
    guarded: Option<Guarded>,
}

/// Fails when sled holds fewer appended events or write batches than the
/// guard recorded as durable; returns what sled holds.
///
/// What sled holds is the larger of the meta records (raised by every
/// multi-key batch) and the counters in the commit the guard names as its
/// reference (one point read). sled recovers a prefix of its log: if that
/// commit is there, every write before it is; if it is gone, so is every
/// write after it, and the meta records hold only counts from before it.
fn check_guard(db: &sled::Db, path: &Path, meta: Counts) -> Result<Held, StoreError> {
    let guarded = crate::guard::read_guard(path).map_err(|reason| {
        corrupt(format!(
            "the loss guard of {} is damaged ({reason}); without it lost data cannot be detected (remove {} to open anyway)",
            path.display(),
            crate::guard::GUARD_FILE
        ))
    })?;
    let mut held = meta;
    let mut reference = None;
    if let Some(key) = guarded.and_then(|guarded| guarded.reference) {
        if let Some(value) = get_at_open(db, path, &key)? {
            match chunk::commit_header(&value).map(crate::commit::decode_header) {
                Some(Ok(header)) => {
                    held.events = held.events.max(header.events);
                    held.writes = held.writes.max(header.writes);
                }
                // sled drops the end of its log, it never rewrites a value:
                // the reference's key being there proves the log reaches it,
                // so the guard's counts are held. Its value's damage is the
                // reads' to report, as an integrity error naming its seq.
                _ => {
                    if let Some(guarded) = guarded {
                        held.events = held.events.max(guarded.events);
                        held.writes = held.writes.max(guarded.writes.unwrap_or(0));
                    }
                }
            }
            reference = Some(key);
        }
    }
    let Some(guarded) = guarded else {
        return Ok(Held {
            counts: held,
            reference,
            guarded: None,
        });
    };
    let salvage = format!(
        "sled silently ends its log at damage. Export what remains with `runjournal --db {} export --salvage -o \
         FILE` and keep this directory for inspection",
        path.display()
    );
    if guarded.events > held.events {
        return Err(corrupt(format!(
            "sled lost events that were durable: {} holds {} appended events, but {} were on stable storage at a sync \
             ({}); {salvage}",
            path.display(),
            held.events,
            guarded.events,
            crate::guard::GUARD_FILE,
        )));
    }
    if let Some(writes) = guarded.writes.filter(|writes| *writes > held.writes) {
        return Err(corrupt(format!(
            "sled lost writes that were durable: {} holds {} write batches, but {writes} were on stable storage at a \
             sync ({}); a lost purge, snapshot replacement or run creation would otherwise go unnoticed (a purged \
             run back, every chain intact); {salvage}",
            path.display(),
            held.writes,
            crate::guard::GUARD_FILE,
        )));
    }
    Ok(Held {
        counts: held,
        reference,
        guarded: Some(guarded),
    })
}

/// Checks the format record and returns the format; writes it only for a
/// database being created, so a must-exist open of a directory that is not a
/// runjournal database changes nothing.
fn check_or_write_format(db: &sled::Db, path: &Path, mode: OpenMode) -> Result<u8, StoreError> {
    match get_at_open(db, path, &layout::format_key())? {
        Some(bytes) => {
            let version: u8 =
                decode_record(RecordKind::Meta, &bytes).map_err(|error| corrupt(format!("format record: {error}")))?;
            if !(OLDEST_STORE_FORMAT..=STORE_FORMAT).contains(&version) {
                return Err(StoreError::UnsupportedFormat {
                    path: path.display().to_string(),
                    found: version,
                    supported: STORE_FORMAT,
                });
            }
            Ok(version)
        }
        None if mode == OpenMode::MustExist && !db.is_empty() => Err(corrupt(format!(
            "{} is a sled database but not a runjournal one (it has no format record)",
            path.display()
        ))),
        None => {
            let record = encode_record(RecordKind::Meta, &STORE_FORMAT);
            db.insert(layout::format_key(), record)
                .map_err(|error| sled_error(path, "create", error))?;
            Ok(STORE_FORMAT)
        }
    }
}

fn decode_run_record(id: RunId, bytes: &[u8]) -> Result<RunRecord, StoreError> {
    let record: RunRecord =
        decode_record(RecordKind::Run, bytes).map_err(|error| corrupt(format!("run record {id}: {error}")))?;
    if record.id != id {
        return Err(corrupt(format!("run record under id {id} says id {}", record.id)));
    }
    Ok(record)
}

fn dangling_index(id: RunId) -> StoreError {
    corrupt(format!("key index names run {id}, which has no run record"))
}

fn misdirected_index(id: RunId, indexed: &str, found: &RunKey) -> StoreError {
    corrupt(format!(
        "key index entry of {indexed} names run {id}, whose run record is {found}"
    ))
}

fn decode_id(bytes: &[u8]) -> Result<RunId, StoreError> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(format!("key index entry is {} bytes, not 8", bytes.len())))?;
    Ok(RunId::from_be_bytes(bytes))
}

/// The directory holding `path` (`.` for a bare relative name).
fn parent_directory(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

fn sync_directory(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|directory| directory.sync_all())
        .map_err(file_error("fsync", path))
}

fn open_error(path: &Path, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(io_error) if io_error.to_string().contains("could not acquire lock") => StoreError::Locked {
            path: path.display().to_string(),
        },
        sled::Error::Io(source) => StoreError::Io {
            operation: "open database",
            source: plain_io_error(source),
        },
        sled::Error::Corruption { .. } => corrupt(format!("sled reports corruption opening {}", path.display())),
        other => StoreError::Backend {
            operation: "open database",
            detail: other.to_string(),
        },
    }
}

/// A sled error during `operation` on the database at `path`.
fn sled_error(path: &Path, operation: &'static str, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(source) => StoreError::File {
            operation,
            path: path.display().to_string(),
            source: plain_io_error(source),
        },
        sled::Error::Corruption { at, .. } => corrupt(format!(
            "sled reports corruption {} of {} during {operation}",
            match at {
                Some(sled::DiskPtr::Inline(offset)) => format!("at offset {offset} of its log"),
                Some(sled::DiskPtr::Blob(offset, blob)) => format!("in blob file blobs/{blob} (log offset {offset})"),
                None => "at an unknown place".to_string(),
            },
            path.display()
        )),
        other => StoreError::Backend {
            operation,
            detail: other.to_string(),
        },
    }
}

/// sled hands out clones of the I/O error that stopped it, and its clone
/// keeps only the kind and the original's `Debug` text (`Os { code: 28, kind:
/// StorageFull, message: "No space left on device" }`). This turns that back
/// into the OS error, so messages read "No space left on device (os error 28)".
fn plain_io_error(error: std::io::Error) -> std::io::Error {
    if error.raw_os_error().is_some() {
        return error;
    }
    let text = error.to_string();
    let code = text
        .strip_prefix("Os { code: ")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<i32>().ok());
    match code {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None if text.contains(" { ") || text.starts_with("Kind(") => std::io::Error::from(error.kind()),
        None => error,
    }
}

fn io(operation: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |source| StoreError::Io { operation, source }
}

fn file_error(operation: &'static str, path: &Path) -> impl Fn(std::io::Error) -> StoreError {
    let path = path.display().to_string();
    move |source| StoreError::File {
        operation,
        path: path.clone(),
        source,
    }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt { detail }
}

/// The text of a caught panic, on one line.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_file_created_after_a_trusted_listing_is_synced_by_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SledStore::open(&path, OpenMode::CreateIfMissing).unwrap();
        store.sync().unwrap();
        let blobs = path.join(files::BLOBS);
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        File::open(&blobs).unwrap().set_modified(long_ago).unwrap();
        store.sync().unwrap();
        assert!(
            store.lock_sync().unwrap().blobs_listed.is_some(),
            "an old listing is trusted"
        );
        std::fs::write(blobs.join("4242"), b"a blob").unwrap();
        store.sync().unwrap();
        let sync = store.lock_sync().unwrap();
        assert!(
            sync.blobs.contains(std::ffi::OsStr::new("4242")),
            "the new blob was listed and synced"
        );
        assert!(
            sync.blobs_listed.is_none(),
            "a listing of a directory changed just now is not trusted"
        );
    }

    #[test]
    fn sleds_cloned_io_errors_become_os_errors_again() {
        let cloned = std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            r#"Os { code: 28, kind: StorageFull, message: "No space left on device" }"#,
        );
        let plain = plain_io_error(cloned);
        assert_eq!(plain.raw_os_error(), Some(28));
        let error = sled_error(Path::new("/data/j.db"), "append", sled::Error::Io(plain));
        assert_eq!(
            error.to_string(),
            "storage I/O failed during append on /data/j.db: no space left on device (os error 28)"
        );
    }
}
