//! The files of a database directory: sled 0.34's own and runjournal's loss
//! guard, for the tools that handle a database as files rather than through
//! the store (the CLI's demo clears its previous database, a salvage opens a
//! copy of a damaged one).
//!
//! ```text
//! conf               sled's configuration, written before `db` when a database is created
//! db                 sled's log: every write, in segments of LOG_SEGMENT bytes
//! blobs/             values too large for the log, one file each
//! snap.<lsn>         sled's snapshot: an index of the log, rebuilt from the log when missing
//! snap.<lsn>.generating  a snapshot being written
//! runjournal.guard   the loss guard (see crate::guard), and `runjournal.guard.new` while replaced
//! ```
//!
//! Invariants: a directory holding `conf` and `db` and only the files above is
//! a database (nothing else is ever taken for one, so nothing else is ever
//! removed as one); the functions that change files only ever change a copy
//! they were given, never the database a store has open.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use runjournal_core::codec::{decode_record, CodecError, RecordKind};
use runjournal_core::{RunId, RunKey, RunRecord};

use crate::guard::GUARD_FILE;

/// sled's configuration file.
pub const CONFIG: &str = "conf";
/// sled's log file.
pub const LOG: &str = "db";
/// sled's directory of large values.
pub const BLOBS: &str = "blobs";
/// The start of the names of sled's snapshot files.
pub const SNAPSHOT_PREFIX: &str = "snap.";
/// The served API's Unix socket, which the serving owner keeps in the
/// database directory (a killed owner leaves it behind).
pub const SOCKET: &str = "runjournal.sock";
/// The start of the name of the private directory a socket is bound in
/// before it is renamed to [`SOCKET`].
pub const SOCKET_STAGING_PREFIX: &str = ".runjournal-sock-";
/// sled 0.34's default log segment size: the unit its log is written in.
pub const LOG_SEGMENT: u64 = 512 * 1024;

/// Whether `name` is one of the files a database directory holds.
pub fn is_database_file(name: &str) -> bool {
    matches!(name, CONFIG | LOG | BLOBS | SOCKET)
        || name.starts_with(SNAPSHOT_PREFIX)
        || name.starts_with(GUARD_FILE)
        || name.starts_with(SOCKET_STAGING_PREFIX)
}

/// Whether `path` is a database directory: `conf` and `db`, and nothing but
/// the files of [`is_database_file`].
pub fn looks_like_database(path: &Path) -> bool {
    let Ok(entries) = fs::read_dir(path) else {
        return false;
    };
    let mut names = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else {
            return false;
        };
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.iter().any(|name| name == LOG)
        && names.iter().any(|name| name == CONFIG)
        && names.iter().all(|name| is_database_file(name))
}

/// Copies the database at `from` into `to` without sled's snapshot and
/// without the loss guard: sled rebuilds its index from the log alone, and
/// the copy opens even when the original lost events its guard recorded (a
/// salvage exports what is left). `from` is only read.
pub fn copy_without_snapshot(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(SNAPSHOT_PREFIX)
            || name == GUARD_FILE
            || name == SOCKET
            || name.starts_with(SOCKET_STAGING_PREFIX)
        {
            continue;
        }
        copy_entry(&entry, &to.join(entry.file_name()))?;
    }
    Ok(())
}

fn copy_entry(entry: &fs::DirEntry, target: &Path) -> io::Result<()> {
    if entry.file_type()?.is_dir() {
        fs::create_dir_all(target)?;
        for inner in fs::read_dir(entry.path())? {
            let inner = inner?;
            copy_entry(&inner, &target.join(inner.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(entry.path(), target).map(drop)
    }
}

/// sled's log of a database copy, cut back to prefixes of the original's
/// log: each cut copies that prefix from the original (which is only read),
/// streamed, so memory stays bounded whatever the log's size, and what sled
/// rewrote in the copy while refusing a longer prefix never reaches a
/// shorter one.
pub struct Log {
    /// The original database's log (only read).
    original: PathBuf,
    /// The copy's log (rewritten by every cut).
    path: PathBuf,
    len: u64,
}

impl Log {
    /// The log of the copy at `copy` of the database at `database`.
    pub fn of(database: &Path, copy: &Path) -> io::Result<Log> {
        let original = database.join(LOG);
        let len = fs::metadata(&original)?.len();
        Ok(Log {
            original,
            path: copy.join(LOG),
            len,
        })
    }

    /// The original log's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the original log is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The lengths of the log's shorter whole-segment prefixes, longest first.
    pub fn segment_prefixes(&self) -> impl Iterator<Item = u64> + '_ {
        let segments = self.len.div_ceil(LOG_SEGMENT);
        (1..segments).rev().map(|kept| kept * LOG_SEGMENT)
    }

    /// Rewrites the copy's log as the original's first `length` bytes (all of
    /// it when `length` is longer).
    pub fn cut_to(&self, length: u64) -> io::Result<()> {
        let mut source = fs::File::open(&self.original)?.take(length);
        let mut target = fs::File::create(&self.path)?;
        io::copy(&mut source, &mut target)?;
        Ok(())
    }
}

/// The header every stored run record starts with: magic, kind, format
/// version 1, codec 1 (ARCHITECTURE.md, record header).
const RUN_RECORD_HEADER: [u8; 5] = [b'R', b'J', b'R', 1, 1];
/// The most bytes a run record may take (a key is at most 3 × 256 bytes).
const RUN_RECORD_MAX: usize = 4096;
/// How much of the log is read at a time: the scan's memory is this, whatever
/// the log's size.
const SCAN_CHUNK: usize = 4 * 1024 * 1024;

/// The newest run record of every run whose record's bytes are anywhere in
/// sled's log at `database`, read as raw bytes, whether or not sled can
/// still reach them: what the runs held before damage made sled end its log
/// early (a salvage compares it with what it recovered). The newest is the
/// one with the most events (a run's record is rewritten with every append).
/// A run purged since still has old records in the log, and a record that
/// does not decode or holds an invalid key is no record. Reads the log in
/// chunks; `database` is only read.
pub fn scan_run_records(database: &Path) -> io::Result<BTreeMap<RunId, RunRecord>> {
    let mut file = fs::File::open(database.join(LOG))?;
    let mut found: BTreeMap<RunId, RunRecord> = BTreeMap::new();
    let mut window: Vec<u8> = Vec::with_capacity(SCAN_CHUNK + RUN_RECORD_MAX);
    let mut chunk = vec![0u8; SCAN_CHUNK];
    loop {
        let read = file.read(&mut chunk)?;
        let last = read == 0;
        window.extend_from_slice(&chunk[..read]);
        // A record may straddle chunks: keep the tail unscanned until the end.
        let scan_to = if last {
            window.len()
        } else {
            window.len().saturating_sub(RUN_RECORD_MAX)
        };
        let mut at = 0;
        while let Some(offset) = find(&window[at..scan_to], &RUN_RECORD_HEADER) {
            let start = at + offset;
            let end = (start + RUN_RECORD_MAX).min(window.len());
            if let Some(record) = decode_run_prefix(&window[start..end]) {
                let newer = found
                    .get(&record.id)
                    .is_none_or(|known| record.head.next_seq > known.head.next_seq);
                if newer {
                    found.insert(record.id, record);
                }
            }
            at = start + 1;
        }
        if last {
            return Ok(found);
        }
        window.drain(..scan_to);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The run record at the start of `bytes`, which may go on past its end.
fn decode_run_prefix(bytes: &[u8]) -> Option<RunRecord> {
    let record: RunRecord = match decode_record(RecordKind::Run, bytes) {
        Ok(record) => record,
        Err(CodecError::TrailingBytes { extra }) => {
            decode_record(RecordKind::Run, &bytes[..bytes.len() - extra]).ok()?
        }
        Err(_) => return None,
    };
    let RunKey { goal, episode, agent } = &record.key;
    RunKey::new(goal.clone(), *episode, agent.clone()).ok()?;
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_directory_holds_only_sled_files_and_the_guard() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!looks_like_database(dir.path()), "empty");
        for name in [CONFIG, LOG, "snap.0000000000001234", GUARD_FILE] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::create_dir(dir.path().join(BLOBS)).unwrap();
        assert!(looks_like_database(dir.path()));
        // A served database holds its socket (a killed owner leaves it).
        drop(std::os::unix::net::UnixListener::bind(dir.path().join(SOCKET)).unwrap());
        assert!(looks_like_database(dir.path()), "with the served API's socket");
        fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        assert!(!looks_like_database(dir.path()), "a foreign file");
    }

    #[test]
    fn a_copy_leaves_out_the_snapshot_and_the_guard() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::create_dir_all(from.join(BLOBS)).unwrap();
        for name in [CONFIG, LOG, "snap.00000001", GUARD_FILE] {
            fs::write(from.join(name), name).unwrap();
        }
        fs::write(from.join(BLOBS).join("7"), b"blob").unwrap();
        let to = dir.path().join("to");
        copy_without_snapshot(&from, &to).unwrap();
        let mut names: Vec<String> = fs::read_dir(&to)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [BLOBS, CONFIG, LOG]);
        assert_eq!(fs::read(to.join(BLOBS).join("7")).unwrap(), b"blob");
        assert!(from.join(GUARD_FILE).exists(), "the original is only read");
    }

    #[test]
    fn the_log_is_cut_back_one_segment_at_a_time() {
        let original = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        let segment = usize::try_from(LOG_SEGMENT).unwrap();
        let bytes: Vec<u8> = (0..2 * segment + 10)
            .map(|at| u8::try_from(at % 251).unwrap())
            .collect();
        fs::write(original.path().join(LOG), &bytes).unwrap();
        fs::write(copy.path().join(LOG), vec![0u8; 3]).unwrap();
        let log = Log::of(original.path(), copy.path()).unwrap();
        assert_eq!(log.len(), 2 * LOG_SEGMENT + 10);
        let prefixes: Vec<u64> = log.segment_prefixes().collect();
        assert_eq!(prefixes, [2 * LOG_SEGMENT, LOG_SEGMENT]);
        log.cut_to(2 * LOG_SEGMENT).unwrap();
        log.cut_to(LOG_SEGMENT).unwrap();
        assert_eq!(fs::read(copy.path().join(LOG)).unwrap(), bytes[..segment]);
        assert_eq!(
            fs::read(original.path().join(LOG)).unwrap(),
            bytes,
            "the original is only read"
        );
    }

    fn record(id: RunId, next_seq: u64, status: runjournal_core::RunStatus) -> RunRecord {
        RunRecord {
            id,
            key: RunKey::new("scan", 0, "a").unwrap(),
            created_ts: 1,
            head: runjournal_core::Head {
                next_seq,
                hash: runjournal_core::ChainHash::GENESIS,
                epoch: 0,
                last_ts: 2,
            },
            status,
            fork: None,
        }
    }

    #[test]
    fn the_scan_finds_the_newest_record_of_each_run_among_any_bytes_and_across_chunks() {
        use runjournal_core::codec::encode_record;
        use runjournal_core::RunStatus;
        let dir = tempfile::tempdir().unwrap();
        let mut log = vec![0xee; 100];
        log.extend(encode_record(RecordKind::Run, &record(7, 3, RunStatus::Running)));
        log.extend(b"RJR\x01\x01 not a record");
        // The newest record straddles the first chunk's end.
        log.resize(SCAN_CHUNK - 20, 0);
        log.extend(encode_record(RecordKind::Run, &record(7, 30, RunStatus::Completed)));
        log.extend(encode_record(RecordKind::Run, &record(9, 1, RunStatus::Running)));
        log.extend(encode_record(RecordKind::Run, &record(7, 12, RunStatus::Running)));
        fs::write(dir.path().join(LOG), &log).unwrap();
        let found = scan_run_records(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[&7].head.next_seq, 30);
        assert_eq!(found[&7].status, RunStatus::Completed);
        assert_eq!(found[&9].head.next_seq, 1);
    }
}
