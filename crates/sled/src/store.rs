//! [`SledStore`]: the storage trait on one sled tree.
//!
//! Invariants:
//! - Every write (create, append, delete, snapshot replacement) holds the
//!   `write` mutex from its condition check to the end of its `apply_batch`, and
//!   run records are served from a cache updated only after the batch is
//!   applied. sled applies a batch's keys in no fixed order, so this is what
//!   makes "a reader that sees a head sees every event before it" true. sled
//!   lets one process open a database at a time, so the mutex covers every
//!   writer and reader there is.
//! - A batch is one `apply_batch`: crash-atomic in sled's log.
//! - `sync` is sled's `flush` (which on Linux ends in `sync_file_range`, not a
//!   durability barrier) followed by `fdatasync` of sled's log file and of any
//!   new blob file, and of the directories, so acknowledged data survives power loss.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use runjournal_core::codec::{decode_record, encode_record, RecordKind, FORMAT_VERSION};
use runjournal_core::{
    AppendBatch, AppendRejection, KeyExists, NewRun, RunFilter, RunId, RunKey, RunRecord, ScanControl, SnapshotRecord,
    Store, StoreError,
};

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
    db: sled::Db,
    path: PathBuf,
    write: Mutex<WriteState>,
    synced_blobs: Mutex<SyncState>,
}

struct WriteState {
    runs: HashMap<RunId, RunRecord>,
    next_run_id: RunId,
    /// Events ever appended (created runs' too), as the meta record holds.
    appended: u64,
}

#[derive(Default)]
struct SyncState {
    blobs: HashSet<std::ffi::OsString>,
    log_file: Option<File>,
    /// The count the guard file holds, and when it was written.
    guard: Option<(u64, std::time::Instant)>,
}

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
        let next_run_id = read_counter(&db, layout::next_run_id_key(), "next run id record")?;
        check_or_write_format(&db, &path, mode)?;
        let appended = read_counter(&db, layout::appended_key(), "appended-events record")?;
        let guarded = check_guard(&path, appended)?;
        Ok(SledStore {
            db,
            path,
            write: Mutex::new(WriteState {
                runs: HashMap::new(),
                next_run_id,
                appended,
            }),
            synced_blobs: Mutex::new(SyncState {
                guard: guarded.map(|count| (count, std::time::Instant::now())),
                ..SyncState::default()
            }),
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

    fn lock_write(&self) -> Result<MutexGuard<'_, WriteState>, StoreError> {
        self.write.lock().map_err(|_| StoreError::Backend {
            operation: "lock",
            detail: "a thread panicked while writing to the store".into(),
        })
    }

    fn load_run(&self, state: &mut WriteState, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        if let Some(record) = state.runs.get(&id) {
            return Ok(Some(record.clone()));
        }
        let Some(bytes) = self
            .db
            .get(layout::run_key(id))
            .map_err(|e| backend("read run record", e))?
        else {
            return Ok(None);
        };
        let record = decode_run_record(id, &bytes)?;
        state.runs.insert(id, record.clone());
        Ok(Some(record))
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

    fn find_id(&self, key: &RunKey) -> Result<Option<RunId>, StoreError> {
        let Some(bytes) = self
            .db
            .get(layout::key_index_key(key))
            .map_err(|e| backend("read key index", e))?
        else {
            return Ok(None);
        };
        decode_id(&bytes).map(Some)
    }

    /// Flushes, makes sled's files durable, then records what is durable in
    /// the guard (at most every [`GUARD_INTERVAL`], or now when `force`).
    fn sync_and_guard(&self, force: bool) -> Result<(), StoreError> {
        // Everything applied before the flush is durable after it.
        let applied = self.lock_write()?.appended;
        self.db.flush().map_err(|e| backend("flush", e))?;
        self.sync_files()?;
        let mut sync = self.lock_sync()?;
        let due = match sync.guard {
            None => true,
            Some((count, written)) => count != applied && (force || written.elapsed() >= GUARD_INTERVAL),
        };
        if due {
            crate::guard::write_guard(&self.path, applied).map_err(io("write the loss guard"))?;
            sync.guard = Some((applied, std::time::Instant::now()));
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
        if sync.log_file.is_none() {
            let file = File::open(self.path.join(files::LOG)).map_err(io("open sled log for fdatasync"))?;
            sync_directory(&self.path)?;
            sync.log_file = Some(file);
        }
        if let Some(file) = &sync.log_file {
            file.sync_data().map_err(io("fdatasync sled log"))?;
        }
        let blob_dir = self.path.join(files::BLOBS);
        let mut new_blob = false;
        let mut present = HashSet::new();
        if let Ok(entries) = std::fs::read_dir(&blob_dir) {
            for entry in entries {
                let entry = entry.map_err(io("list sled blobs"))?;
                let name = entry.file_name();
                if !sync.blobs.contains(&name) {
                    match File::open(entry.path()).and_then(|file| file.sync_data()) {
                        Ok(()) => new_blob = true,
                        // sled removes blobs it no longer needs at any time: a
                        // blob gone since the listing has nothing left to make durable.
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(error) => return Err(io("fdatasync sled blob")(error)),
                    }
                }
                present.insert(name);
            }
        }
        sync.blobs = present;
        if new_blob {
            sync_directory(&blob_dir)?;
        }
        Ok(())
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // A clean close records everything it made durable. A failure here
        // leaves an older guard, which checks less but never misreports.
        drop(self.sync_and_guard(true));
    }
}

impl Store for SledStore {
    fn create_runs(&self, runs: &[NewRun]) -> Result<Result<Vec<RunRecord>, KeyExists>, StoreError> {
        let mut state = self.lock_write()?;
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
            for (seq, bytes) in (0u64..).zip(&run.records) {
                batch.insert(&layout::event_key(id, seq)[..], bytes.as_slice());
            }
            batch.insert(&layout::run_key(id)[..], encode_record(RecordKind::Run, &record));
            batch.insert(layout::key_index_key(&run.key), &id.to_be_bytes()[..]);
            if let Some(fork) = &record.fork {
                batch.insert(&layout::child_key(fork.parent, id)[..], &[][..]);
            }
            created.push(record);
        }
        batch.insert(layout::next_run_id_key(), encode_record(RecordKind::Meta, &next_id));
        let appended = state.appended + runs.iter().map(|run| run.records.len() as u64).sum::<u64>();
        batch.insert(layout::appended_key(), encode_record(RecordKind::Meta, &appended));
        self.db.apply_batch(batch).map_err(|e| backend("create runs", e))?;
        state.next_run_id = next_id;
        state.appended = appended;
        for record in &created {
            state.runs.insert(record.id, record.clone());
        }
        Ok(Ok(created))
    }

    fn append(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        let mut state = self.lock_write()?;
        let mut pending: HashMap<RunId, RunRecord> = HashMap::new();
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut snapshots: HashMap<RunId, &SnapshotRecord> = HashMap::new();
        let mut sled_batch = sled::Batch::default();
        for batch in batches {
            let current = match pending.get(&batch.run) {
                Some(record) => Some(record.clone()),
                None => self.load_run(&mut state, batch.run)?,
            };
            let Some(mut record) = current else {
                outcomes.push(Err(AppendRejection::UnknownRun));
                continue;
            };
            if let Err(rejection) = batch.check_against(&record) {
                outcomes.push(Err(rejection));
                continue;
            }
            for (seq, bytes) in (batch.expected_seq..).zip(&batch.records) {
                sled_batch.insert(&layout::event_key(batch.run, seq)[..], bytes.as_slice());
            }
            if let Some(snapshot) = &batch.snapshot {
                snapshots.insert(batch.run, snapshot);
            }
            record.head = batch.head_after;
            record.status = batch.status_after;
            pending.insert(batch.run, record);
            outcomes.push(Ok(()));
        }
        for (id, record) in &pending {
            sled_batch.insert(&layout::run_key(*id)[..], encode_record(RecordKind::Run, record));
        }
        // A run keeps only its newest snapshot: the group's last replaces the stored ones.
        for (run, snapshot) in snapshots {
            for entry in self.db.scan_prefix(layout::run_prefix(layout::SNAPSHOT, run)) {
                let (older, _) = entry.map_err(|e| backend("replace snapshot", e))?;
                sled_batch.remove(older);
            }
            sled_batch.insert(&layout::snapshot_key(run, snapshot.seq)[..], snapshot.bytes.as_slice());
        }
        if !pending.is_empty() {
            let accepted = batches
                .iter()
                .zip(&outcomes)
                .filter(|(_, outcome)| outcome.is_ok())
                .map(|(batch, _)| batch.records.len() as u64)
                .sum::<u64>();
            let appended = state.appended + accepted;
            sled_batch.insert(layout::appended_key(), encode_record(RecordKind::Meta, &appended));
            if let Err(error) = self.db.apply_batch(sled_batch) {
                state.runs.clear();
                return Err(backend("append", error));
            }
            state.runs.extend(pending);
            state.appended = appended;
        }
        Ok(outcomes)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.sync_and_guard(false)
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
        for entry in self.db.scan_prefix(prefix) {
            let (index_key, value) = entry.map_err(|e| backend("list runs", e))?;
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
        for entry in self.db.scan_prefix(layout::key_index_prefix(&prefix)) {
            let (key, _) = entry.map_err(|e| backend("scan key index", e))?;
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
        let range = layout::event_key(run, from_seq)..layout::event_key(run, end_seq);
        for entry in self.db.range(range) {
            let (key, value) = entry.map_err(|e| backend("read events", e))?;
            let seq = layout::trailing_u64(&key).ok_or_else(|| corrupt("short event key".into()))?;
            if visit(seq, &value) == ScanControl::Stop {
                break;
            }
        }
        Ok(())
    }

    fn latest_snapshot(&self, run: RunId, at_most_seq: u64) -> Result<Option<SnapshotRecord>, StoreError> {
        let start = layout::snapshot_key(run, 0);
        let end = layout::snapshot_key(run, at_most_seq);
        let Some(entry) = self.db.range(start..=end).next_back() else {
            return Ok(None);
        };
        let (key, value) = entry.map_err(|e| backend("read snapshot", e))?;
        let seq = layout::trailing_u64(&key).ok_or_else(|| corrupt("short snapshot key".into()))?;
        Ok(Some(SnapshotRecord {
            seq,
            bytes: value.to_vec(),
        }))
    }

    fn children(&self, run: RunId) -> Result<Vec<RunId>, StoreError> {
        let mut children = Vec::new();
        for entry in self.db.scan_prefix(layout::run_prefix(layout::CHILD, run)) {
            let (key, _) = entry.map_err(|e| backend("read lineage", e))?;
            children.push(layout::trailing_u64(&key).ok_or_else(|| corrupt("short lineage key".into()))?);
        }
        Ok(children)
    }

    fn delete_runs(&self, runs: &[RunId]) -> Result<u64, StoreError> {
        let mut state = self.lock_write()?;
        let mut batch = sled::Batch::default();
        let mut freed = 0u64;
        for &id in runs {
            let Some(record) = self.load_run(&mut state, id)? else {
                continue;
            };
            for prefix in [layout::EVENT, layout::SNAPSHOT, layout::CHILD] {
                for entry in self.db.scan_prefix(layout::run_prefix(prefix, id)) {
                    let (key, value) = entry.map_err(|e| backend("scan run for delete", e))?;
                    freed += (key.len() + value.len()) as u64;
                    batch.remove(key);
                }
            }
            if let Some(fork) = &record.fork {
                batch.remove(&layout::child_key(fork.parent, id)[..]);
            }
            batch.remove(&layout::run_key(id)[..]);
            batch.remove(layout::key_index_key(&record.key));
        }
        self.db.apply_batch(batch).map_err(|e| backend("delete runs", e))?;
        for id in runs {
            state.runs.remove(id);
        }
        Ok(freed)
    }

    fn replace_snapshots(&self, run: RunId, snapshot: Option<SnapshotRecord>) -> Result<(), StoreError> {
        let _state = self.lock_write()?;
        let mut batch = sled::Batch::default();
        for entry in self.db.scan_prefix(layout::run_prefix(layout::SNAPSHOT, run)) {
            let (key, _) = entry.map_err(|e| backend("scan snapshots", e))?;
            batch.remove(key);
        }
        if let Some(snapshot) = snapshot {
            batch.insert(&layout::snapshot_key(run, snapshot.seq)[..], snapshot.bytes);
        }
        self.db.apply_batch(batch).map_err(|e| backend("replace snapshots", e))
    }

    fn reserve_run_id(&self) -> Result<RunId, StoreError> {
        let mut state = self.lock_write()?;
        let id = state.next_run_id;
        self.db
            .insert(layout::next_run_id_key(), encode_record(RecordKind::Meta, &(id + 1)))
            .map_err(|e| backend("reserve run id", e))?;
        state.next_run_id = id + 1;
        Ok(id)
    }

    fn stage(&self, run: RunId, first_seq: u64, records: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut state = self.lock_write()?;
        let mut batch = sled::Batch::default();
        for (seq, bytes) in (first_seq..).zip(records) {
            batch.insert(&layout::event_key(run, seq)[..], bytes.as_slice());
        }
        let appended = state.appended + records.len() as u64;
        batch.insert(layout::appended_key(), encode_record(RecordKind::Meta, &appended));
        self.db.apply_batch(batch).map_err(|e| backend("stage events", e))?;
        state.appended = appended;
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
        self.db
            .apply_batch(batch)
            .map_err(|e| backend("publish staged runs", e))?;
        for record in runs {
            state.runs.insert(record.id, record.clone());
        }
        Ok(Ok(()))
    }

    fn discard_staged(&self, runs: &[RunId]) -> Result<(), StoreError> {
        let _state = self.lock_write()?;
        let mut batch = sled::Batch::default();
        for &id in runs {
            for entry in self.db.scan_prefix(layout::run_prefix(layout::EVENT, id)) {
                let (key, _) = entry.map_err(|e| backend("scan staged events", e))?;
                batch.remove(key);
            }
        }
        self.db
            .apply_batch(batch)
            .map_err(|e| backend("discard staged events", e))
    }
}

/// Checks the format record; writes it only for a database being created, so
/// a must-exist open of a directory that is not a runjournal database changes nothing.
/// How long an open waits for sled's lock. sled releases it from background
/// threads shortly after the last handle of a database drops, so a reopen
/// right after a close in the same process can find it still held.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// sled's page cache (its default is 1 GiB, which a large import fills):
/// reads beyond it go to the OS page cache.
const SLED_CACHE_BYTES: u64 = 64 << 20;

fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(SLED_CACHE_BYTES)
            .flush_every_ms(None)
            .open()
            .map_err(|error| open_error(path, error));
        match opened {
            Err(StoreError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// A u64 meta record (0 when absent).
fn read_counter(db: &sled::Db, key: Vec<u8>, what: &str) -> Result<u64, StoreError> {
    match db.get(key).map_err(|e| backend("open", e))? {
        Some(bytes) => {
            decode_record::<u64>(RecordKind::Meta, &bytes).map_err(|error| corrupt(format!("{what}: {error}")))
        }
        None => Ok(0),
    }
}

/// Fails when sled holds fewer appended events than the guard recorded as
/// durable; returns what the guard holds.
fn check_guard(path: &Path, appended: u64) -> Result<Option<u64>, StoreError> {
    let guarded = crate::guard::read_guard(path).map_err(|reason| {
        corrupt(format!(
            "the loss guard of {} is damaged ({reason}); without it lost data cannot be detected (remove {} to open anyway)",
            path.display(),
            crate::guard::GUARD_FILE
        ))
    })?;
    match guarded {
        Some(durable) if durable > appended => Err(corrupt(format!(
            "sled lost events that were durable: {} holds {appended} appended events, but {durable} were on stable \
             storage at a sync ({}); sled silently ends its log at damage. Export what remains with `runjournal --db {} \
             export --salvage -o FILE` and keep this directory for inspection",
            path.display(),
            crate::guard::GUARD_FILE,
            path.display()
        ))),
        guarded => Ok(guarded),
    }
}

fn check_or_write_format(db: &sled::Db, path: &Path, mode: OpenMode) -> Result<(), StoreError> {
    match db.get(layout::format_key()).map_err(|e| backend("open", e))? {
        Some(bytes) => {
            let version: u8 =
                decode_record(RecordKind::Meta, &bytes).map_err(|error| corrupt(format!("format record: {error}")))?;
            if version != FORMAT_VERSION {
                return Err(StoreError::UnsupportedFormat {
                    path: path.display().to_string(),
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
        }
        None if mode == OpenMode::MustExist && !db.is_empty() => Err(corrupt(format!(
            "{} is a sled database but not a runjournal one (it has no format record)",
            path.display()
        ))),
        None => {
            let record = encode_record(RecordKind::Meta, &FORMAT_VERSION);
            db.insert(layout::format_key(), record)
                .map_err(|e| backend("open", e))?;
            Ok(())
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

fn sync_directory(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|directory| directory.sync_all())
        .map_err(io("fsync database directory"))
}

fn open_error(path: &Path, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(io_error) if io_error.to_string().contains("could not acquire lock") => StoreError::Locked {
            path: path.display().to_string(),
        },
        sled::Error::Io(source) => StoreError::Io {
            operation: "open database",
            source,
        },
        sled::Error::Corruption { .. } => corrupt(format!("sled reports corruption opening {}", path.display())),
        other => backend("open database", other),
    }
}

fn backend(operation: &'static str, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(source) => StoreError::Io { operation, source },
        sled::Error::Corruption { at, .. } => corrupt(format!("sled reports corruption at {at:?} during {operation}")),
        other => StoreError::Backend {
            operation,
            detail: other.to_string(),
        },
    }
}

fn io(operation: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |source| StoreError::Io { operation, source }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt { detail }
}
