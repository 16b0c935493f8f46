//! The loss guard: a record, outside sled, of how many events were durable.
//!
//! sled 0.34 takes a damaged message in the part of its log after its last
//! snapshot for a torn write and ends recovery there, silently dropping
//! everything after it, acknowledged data included. The store therefore
//! counts every event it ever appended in a meta record written in the same
//! batch as the events (`0x00 ‖ "appended"`), and after a sync records the
//! count that sync made durable in `runjournal.guard` beside sled's files. At
//! open, a database holding fewer appended events than its guard recorded has
//! lost durable data, and the open fails loudly.
//!
//! File layout: `"RJG" ‖ version (1) ‖ count (u64 BE) ‖ blake3 of the first 12
//! bytes, truncated to 8`. It is replaced atomically (written beside, synced,
//! renamed), so a crash leaves the old guard or the new one; an old guard only
//! checks less, it never raises a false alarm.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The guard file's name inside the database directory.
pub const GUARD_FILE: &str = "runjournal.guard";

const MAGIC: &[u8; 3] = b"RJG";
const VERSION: u8 = 1;
const LEN: usize = 20;

/// The guard file of the database at `database`.
pub fn guard_path(database: &Path) -> PathBuf {
    database.join(GUARD_FILE)
}

/// The durable count the guard recorded, if there is a readable guard.
/// `Err` holds why an existing guard cannot be read.
pub fn read_guard(database: &Path) -> Result<Option<u64>, String> {
    let bytes = match fs::read(guard_path(database)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", GUARD_FILE)),
    };
    if bytes.len() != LEN || &bytes[..3] != MAGIC || bytes[3] != VERSION {
        return Err(format!("{GUARD_FILE} is not a version {VERSION} guard"));
    }
    if blake3::hash(&bytes[..12]).as_bytes()[..8] != bytes[12..] {
        return Err(format!("{GUARD_FILE} fails its checksum"));
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&bytes[4..12]);
    Ok(Some(u64::from_be_bytes(count)))
}

/// Records `count` as durable: written beside the guard, synced, renamed over it.
pub fn write_guard(database: &Path, count: u64) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.push(VERSION);
    bytes.extend_from_slice(&count.to_be_bytes());
    let digest = blake3::hash(&bytes);
    bytes.extend_from_slice(&digest.as_bytes()[..8]);
    let fresh = database.join(format!("{GUARD_FILE}.new"));
    let mut file = File::create(&fresh)?;
    file.write_all(&bytes)?;
    file.sync_data()?;
    fs::rename(&fresh, guard_path(database))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_guard_reads_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_guard(dir.path()), Ok(None));
        write_guard(dir.path(), 4242).unwrap();
        assert_eq!(read_guard(dir.path()), Ok(Some(4242)));
        write_guard(dir.path(), 7).unwrap();
        assert_eq!(read_guard(dir.path()), Ok(Some(7)));
        let mut bytes = fs::read(guard_path(dir.path())).unwrap();
        bytes[6] ^= 1;
        fs::write(guard_path(dir.path()), &bytes).unwrap();
        assert!(read_guard(dir.path()).unwrap_err().contains("checksum"));
        fs::write(guard_path(dir.path()), b"short").unwrap();
        assert!(read_guard(dir.path()).unwrap_err().contains("not a version 1 guard"));
    }
}
