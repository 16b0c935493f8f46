//! The loss guard: a record, outside sled, of how much was durable.
//!
//! sled 0.34 takes a damaged message in the part of its log after its last
//! snapshot for a torn write and ends recovery there, silently dropping
//! everything after it, acknowledged data included. The store therefore
//! counts, in meta records written in the same batch as each write, every
//! event it ever appended (`0x00 ‖ "appended"`) and every write batch it ever
//! applied (`0x00 ‖ "writes"`: creations, appends, purges, snapshot
//! replacements alike), and after a sync records the counts that sync made
//! durable in `runjournal.guard` beside sled's files. At open, a database
//! holding fewer appended events or fewer write batches than its guard
//! recorded has lost durable data, and the open fails loudly. Counting
//! batches, not only events, is what makes a lost purge or a lost snapshot
//! replacement (which append nothing) detectable too.
//!
//! With store format 3 most appends are one stored value (a commit, see
//! [`crate::commit`]) that carries the counters after it, and the meta
//! records are raised only by multi-key batches. The guard therefore also
//! names the **reference**: the key of the newest commit the recorded sync
//! covered. At open the counts sled holds are the larger of the meta records
//! and the counters in the commit under the reference (one point read): sled
//! recovers a prefix of its log, so the reference being there means every
//! write before it is there too, and its being gone (with no later batch
//! raising the meta records past the guard) means durable writes were lost.
//!
//! File layout, version 3: `"RJG" ‖ 3 ‖ events (u64 BE) ‖ writes (u64 BE) ‖
//! reference (17 bytes: an event key `0x01 ‖ run ‖ seq`, or 17 zero bytes for
//! none) ‖ blake3 of the first 37 bytes, truncated to 8` (45 bytes). Version
//! 2 is `"RJG" ‖ 2 ‖ events ‖ writes ‖ blake3 of the first 20 bytes,
//! truncated to 8` (28 bytes), version 1, which the oldest builds wrote,
//! `"RJG" ‖ 1 ‖ events (u64 BE) ‖ blake3 of the first 12 bytes, truncated to
//! 8` (20 bytes); both are still read and honoured (version 1 checks events
//! only), and the next sync replaces them with version 3. The file is
//! replaced atomically (written beside, synced, renamed), so a crash leaves
//! the old guard or the new one; an old guard only checks less, it never
//! raises a false alarm.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use runjournal_core::StoreError;

/// The guard file's name inside the database directory.
pub const GUARD_FILE: &str = "runjournal.guard";

const MAGIC: &[u8; 3] = b"RJG";
/// The version this build writes.
pub const VERSION: u8 = 3;
const LEN_V1: usize = 20;
const LEN_V2: usize = 28;
const LEN_V3: usize = 45;
/// Bytes of a reference: an event key.
pub const REFERENCE_LEN: usize = 17;

/// What a sync made durable, as the guard records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guarded {
    /// Events ever appended.
    pub events: u64,
    /// Write batches ever applied; `None` for a version 1 guard, which did not
    /// count them.
    pub writes: Option<u64>,
    /// The key of the newest commit the sync covered (version 3; `None`
    /// before any commit, or for an older guard).
    pub reference: Option<[u8; REFERENCE_LEN]>,
}

/// Why an existing guard file cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The file exists but reading it failed.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The guard file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a guard of a version this build reads.
    #[error("{GUARD_FILE} is not a version 1, 2 or {VERSION} guard ({len} bytes, starting {start:02x?})")]
    UnknownFormat {
        /// The file's length.
        len: usize,
        /// Its first (at most four) bytes.
        start: Vec<u8>,
    },
    /// The file's checksum does not match its contents.
    #[error("{GUARD_FILE} fails its checksum")]
    Checksum,
}

/// The guard file of the database at `database`.
pub fn guard_path(database: &Path) -> PathBuf {
    database.join(GUARD_FILE)
}

/// What the guard recorded, if there is a guard file.
pub fn read_guard(database: &Path) -> Result<Option<Guarded>, GuardError> {
    let path = guard_path(database);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(GuardError::Unreadable { path, source }),
    };
    let (body, writes, reference) = match (bytes.len(), bytes.get(..3), bytes.get(3)) {
        (LEN_V1, Some(magic), Some(1)) if magic == MAGIC => (&bytes[..12], None, None),
        (LEN_V2, Some(magic), Some(2)) if magic == MAGIC => (&bytes[..20], Some(u64_at(&bytes, 12)), None),
        (LEN_V3, Some(magic), Some(3)) if magic == MAGIC => {
            let mut reference = [0u8; REFERENCE_LEN];
            reference.copy_from_slice(&bytes[20..20 + REFERENCE_LEN]);
            let named = reference != [0u8; REFERENCE_LEN];
            (&bytes[..37], Some(u64_at(&bytes, 12)), named.then_some(reference))
        }
        _ => {
            return Err(GuardError::UnknownFormat {
                len: bytes.len(),
                start: bytes.iter().take(4).copied().collect(),
            })
        }
    };
    if blake3::hash(body).as_bytes()[..8] != bytes[body.len()..] {
        return Err(GuardError::Checksum);
    }
    Ok(Some(Guarded {
        events: u64_at(&bytes, 4),
        writes,
        reference,
    }))
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut value = [0u8; 8];
    value.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_be_bytes(value)
}

/// The bytes of a version 3 guard recording `events`, `writes` and the
/// `reference` commit.
pub fn encode_guard(events: u64, writes: u64, reference: Option<&[u8; REFERENCE_LEN]>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(LEN_V3);
    bytes.extend_from_slice(MAGIC);
    bytes.push(VERSION);
    bytes.extend_from_slice(&events.to_be_bytes());
    bytes.extend_from_slice(&writes.to_be_bytes());
    bytes.extend_from_slice(reference.unwrap_or(&[0u8; REFERENCE_LEN]));
    let digest = blake3::hash(&bytes);
    bytes.extend_from_slice(&digest.as_bytes()[..8]);
    bytes
}

/// The bytes of a version 2 guard, as builds before store format 3 wrote it
/// (for tests of reading old databases).
pub fn encode_guard_v2(events: u64, writes: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(LEN_V2);
    bytes.extend_from_slice(MAGIC);
    bytes.push(2);
    bytes.extend_from_slice(&events.to_be_bytes());
    bytes.extend_from_slice(&writes.to_be_bytes());
    let digest = blake3::hash(&bytes);
    bytes.extend_from_slice(&digest.as_bytes()[..8]);
    bytes
}

/// The bytes of a version 1 guard, as builds before write counting wrote it
/// (for tests of reading old databases).
pub fn encode_guard_v1(events: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(LEN_V1);
    bytes.extend_from_slice(MAGIC);
    bytes.push(1);
    bytes.extend_from_slice(&events.to_be_bytes());
    let digest = blake3::hash(&bytes);
    bytes.extend_from_slice(&digest.as_bytes()[..8]);
    bytes
}

/// Records `events`, `writes` and the `reference` commit as durable: written
/// beside the guard, synced, renamed over it.
pub fn write_guard(
    database: &Path,
    events: u64,
    writes: u64,
    reference: Option<&[u8; REFERENCE_LEN]>,
) -> Result<(), StoreError> {
    let fresh = database.join(format!("{GUARD_FILE}.new"));
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |source| StoreError::File {
            operation: "write the loss guard",
            path,
            source,
        }
    };
    let mut file = File::create(&fresh).map_err(failed(&fresh))?;
    file.write_all(&encode_guard(events, writes, reference))
        .and_then(|()| file.sync_data())
        .map_err(failed(&fresh))?;
    let path = guard_path(database);
    fs::rename(&fresh, &path).map_err(failed(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_guard_reads_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_guard(dir.path()).unwrap().is_none());
        let reference = [1u8; REFERENCE_LEN];
        write_guard(dir.path(), 4242, 99, Some(&reference)).unwrap();
        let expected = Guarded {
            events: 4242,
            writes: Some(99),
            reference: Some(reference),
        };
        assert_eq!(read_guard(dir.path()).unwrap(), Some(expected));
        write_guard(dir.path(), 7, 8, None).unwrap();
        assert_eq!(read_guard(dir.path()).unwrap().unwrap().reference, None);
        assert_eq!(read_guard(dir.path()).unwrap().unwrap().writes, Some(8));
        let mut bytes = fs::read(guard_path(dir.path())).unwrap();
        bytes[14] ^= 1;
        fs::write(guard_path(dir.path()), &bytes).unwrap();
        assert!(matches!(read_guard(dir.path()), Err(GuardError::Checksum)));
        fs::write(guard_path(dir.path()), b"short").unwrap();
        let error = read_guard(dir.path()).unwrap_err();
        assert!(error.to_string().contains("not a version 1, 2 or 3 guard"), "{error}");
    }

    #[test]
    fn a_version_1_guard_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(guard_path(dir.path()), encode_guard_v1(61)).unwrap();
        let expected = Guarded {
            events: 61,
            writes: None,
            reference: None,
        };
        assert_eq!(read_guard(dir.path()).unwrap(), Some(expected));
        let mut bytes = encode_guard_v1(61);
        bytes[3] = 3;
        fs::write(guard_path(dir.path()), bytes).unwrap();
        assert!(matches!(
            read_guard(dir.path()),
            Err(GuardError::UnknownFormat { len: 20, .. })
        ));
    }

    #[test]
    fn a_version_2_guard_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(guard_path(dir.path()), encode_guard_v2(5, 6)).unwrap();
        let expected = Guarded {
            events: 5,
            writes: Some(6),
            reference: None,
        };
        assert_eq!(read_guard(dir.path()).unwrap(), Some(expected));
    }

    #[test]
    fn the_version_3_layout_is_fixed() {
        let reference = [7u8; REFERENCE_LEN];
        let bytes = encode_guard(1, 2, Some(&reference));
        assert_eq!(bytes.len(), LEN_V3);
        assert_eq!(&bytes[..4], b"RJG\x03");
        assert_eq!(bytes[4..12], 1u64.to_be_bytes());
        assert_eq!(bytes[12..20], 2u64.to_be_bytes());
        assert_eq!(bytes[20..37], reference);
        assert_eq!(bytes[37..], blake3::hash(&bytes[..37]).as_bytes()[..8]);
        assert_eq!(encode_guard(1, 2, None)[20..37], [0u8; REFERENCE_LEN]);
    }
}
