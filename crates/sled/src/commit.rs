//! The header of a commit (store format 3): what one append changes besides
//! its events, stored in the same value as the events
//! ([`runjournal_core::chunk::encode_commit`]), so the append is one sled
//! `insert` (one log message, one device write at the next sync) instead of
//! an `apply_batch` of four keys (which sled writes as two).
//!
//! ```text
//! header = events appended (u64 BE) ‖ write batches (u64 BE) ‖ run record
//! ```
//!
//! The counters are the store's after the commit (see [`crate::guard`]); the
//! run record (`"RJR…"`, the codec's run record) is the run's after the
//! commit: its head and status. The stored run record (`0x02 ‖ run`) is then
//! not rewritten by the commit; the run's true record is the newer of the two
//! (the commit's when its head is further), read at a run's first load with
//! one reverse step to the run's last stored value. A raw scan of sled's log
//! for run records (a salvage) finds the commit's too.

use runjournal_core::codec::{decode_record, encode_record, RecordKind};
use runjournal_core::RunRecord;

/// What a commit's header holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitHeader {
    /// Events ever appended, this commit's included.
    pub events: u64,
    /// Write batches ever applied, this commit included.
    pub writes: u64,
    /// The run's record after the commit.
    pub record: RunRecord,
}

/// The bytes of `header`.
pub fn encode_header(header: &CommitHeader) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(160);
    bytes.extend_from_slice(&header.events.to_be_bytes());
    bytes.extend_from_slice(&header.writes.to_be_bytes());
    bytes.extend_from_slice(&encode_record(RecordKind::Run, &header.record));
    bytes
}

/// The header in `bytes`, or why it is not one.
pub fn decode_header(bytes: &[u8]) -> Result<CommitHeader, String> {
    let counter = |at: usize| -> Result<u64, String> {
        let field: [u8; 8] = bytes
            .get(at..at + 8)
            .and_then(|field| field.try_into().ok())
            .ok_or_else(|| format!("a commit header of {} bytes has no counters", bytes.len()))?;
        Ok(u64::from_be_bytes(field))
    };
    let events = counter(0)?;
    let writes = counter(8)?;
    let record = decode_record(RecordKind::Run, &bytes[16..]).map_err(|error| format!("its run record: {error}"))?;
    Ok(CommitHeader { events, writes, record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use runjournal_core::{ChainHash, Head, RunKey, RunStatus};

    #[test]
    fn a_commit_header_is_counters_then_the_run_record() {
        let header = CommitHeader {
            events: 3,
            writes: 9,
            record: RunRecord {
                id: 4,
                key: RunKey::new("g", 1, "a").unwrap(),
                created_ts: 5,
                head: Head {
                    next_seq: 3,
                    hash: ChainHash::GENESIS,
                    epoch: 1,
                    last_ts: 6,
                },
                status: RunStatus::Completed,
                fork: None,
            },
        };
        let bytes = encode_header(&header);
        assert_eq!(bytes[..8], 3u64.to_be_bytes());
        assert_eq!(bytes[8..16], 9u64.to_be_bytes());
        assert_eq!(&bytes[16..19], b"RJR");
        assert_eq!(decode_header(&bytes).unwrap(), header);
        assert!(decode_header(&bytes[..10]).is_err());
        assert!(decode_header(&bytes[..bytes.len() - 1]).is_err());
    }
}
