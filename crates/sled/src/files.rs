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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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

/// sled's log of a database copy, read whole so it can be cut back to any
/// prefix and the prefix tried.
pub struct Log {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Log {
    /// Reads the log of the database (a copy) at `database`.
    pub fn read(database: &Path) -> io::Result<Log> {
        let path = database.join(LOG);
        let bytes = fs::read(&path)?;
        Ok(Log { path, bytes })
    }

    /// The log's length in bytes, as read.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the log was empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The lengths of the log's shorter whole-segment prefixes, longest first.
    pub fn segment_prefixes(&self) -> impl Iterator<Item = usize> + '_ {
        let segments = (self.bytes.len() as u64).div_ceil(LOG_SEGMENT);
        (1..segments)
            .rev()
            .map(|kept| usize::try_from(kept * LOG_SEGMENT).unwrap_or(self.bytes.len()))
    }

    /// Rewrites the log file as its first `length` bytes (all of it when
    /// `length` is longer).
    pub fn cut_to(&self, length: usize) -> io::Result<()> {
        fs::write(&self.path, &self.bytes[..length.min(self.bytes.len())])
    }
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
        let dir = tempfile::tempdir().unwrap();
        let segment = usize::try_from(LOG_SEGMENT).unwrap();
        fs::write(dir.path().join(LOG), vec![7u8; 2 * segment + 10]).unwrap();
        let log = Log::read(dir.path()).unwrap();
        assert_eq!(log.len(), 2 * segment + 10);
        let prefixes: Vec<usize> = log.segment_prefixes().collect();
        assert_eq!(prefixes, [2 * segment, segment]);
        log.cut_to(segment).unwrap();
        assert_eq!(fs::metadata(dir.path().join(LOG)).unwrap().len(), LOG_SEGMENT);
    }
}
