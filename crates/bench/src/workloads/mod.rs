//! The workloads. Each repetition runs on a fresh database in its own
//! temporary directory, removed when the repetition ends; only the timed part
//! is inside the clock (opening, creating runs and the checks after are not).

pub(crate) mod append;
pub(crate) mod footprint;
pub(crate) mod replay;
pub(crate) mod resume;
pub(crate) mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use runjournal::{Journal, Options, RunRecord};
use runjournal_sled::{layout, OpenMode, SledStore};
use tempfile::TempDir;

use crate::error::{io_error, journal_error, sled_error, BenchError};
use crate::flushes::FlushCounter;
use crate::payload::Payload;

/// What every workload shares: where to put databases, how often to repeat.
pub(crate) struct Bench {
    root: PathBuf,
    pub(crate) repetitions: usize,
    pub(crate) payload: Payload,
    flushes: Option<FlushCounter>,
}

impl Bench {
    pub(crate) fn new(root: PathBuf, repetitions: usize, payload: Payload, flushes: Option<FlushCounter>) -> Bench {
        Bench {
            root,
            repetitions,
            payload,
            flushes,
        }
    }

    /// The flush counter of the device under [`Bench::root`], when it has one.
    pub(crate) fn flush_counter(&self) -> Option<&FlushCounter> {
        self.flushes.as_ref()
    }

    /// The device's flushes so far (`None`: not counted).
    pub(crate) fn device_flushes(&self) -> Option<u64> {
        self.flushes.as_ref().and_then(FlushCounter::read)
    }

    /// The directory every database of this run goes under.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh directory for one database, removed when dropped.
    pub(crate) fn fresh_dir(&self, name: &str) -> Result<TempDir, BenchError> {
        tempfile::Builder::new()
            .prefix(name)
            .tempdir_in(&self.root)
            .map_err(io_error("create a database directory"))
    }
}

/// sled configured exactly as [`SledStore`] configures it.
pub(crate) fn open_raw_sled(path: &Path) -> Result<sled::Db, BenchError> {
    sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()
        .map_err(sled_error("open raw sled"))
}

/// A journal over a sled store the bench keeps a handle on, to count what
/// the journal stored.
pub(crate) fn open_journal(path: &Path, options: Options) -> Result<(Journal, Arc<SledStore>), BenchError> {
    let store =
        Arc::new(SledStore::open(path, OpenMode::CreateIfMissing).map_err(journal_error("open the sled store"))?);
    let journal = Journal::with_store(store.clone(), options).map_err(journal_error("open the journal"))?;
    Ok((journal, store))
}

/// Key + value bytes the journal wrote for `record`'s events from `from_seq`,
/// made with `appends` appends: each event's key and record, each snapshot,
/// and the run record rewritten once per append.
pub(crate) fn journal_bytes(
    store: &SledStore,
    record: &RunRecord,
    from_seq: u64,
    appends: u64,
) -> Result<u64, BenchError> {
    let db = store.sled();
    let mut total = 0u64;
    let events = layout::event_key(record.id, from_seq)..layout::event_key(record.id, record.head.next_seq);
    for entry in db.range(events) {
        let (key, value) = entry.map_err(sled_error("scan stored events"))?;
        total += (key.len() + value.len()) as u64;
    }
    let snapshots = store
        .sled_snapshots()
        .scan_prefix(layout::run_prefix(layout::SNAPSHOT, record.id));
    for entry in db
        .scan_prefix(layout::run_prefix(layout::SNAPSHOT, record.id))
        .chain(snapshots)
    {
        let (key, value) = entry.map_err(sled_error("scan stored snapshots"))?;
        total += (key.len() + value.len()) as u64;
    }
    let run_key = layout::run_key(record.id);
    let run_record = db
        .get(run_key)
        .map_err(sled_error("read the run record"))?
        .map_or(0, |value| value.len());
    Ok(total + appends * (run_key.len() + run_record) as u64)
}
