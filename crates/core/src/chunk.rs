//! Chunks (store format version 2): several consecutive event records of one
//! run in one stored value, so a store pays its per-key cost once per chunk.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "RJ"
//! 2       1     record kind b'C' (chunk)
//! 3       1     chunk format version (2)
//! 4       1     codec id 0 (fixed framing, no codec)
//! 5       4     count: records in the chunk (u32 BE, at least 2)
//! 9       …     count × (length u32 BE ‖ event record)
//! ```
//!
//! A **commit** (chunk version 3, store format 3) is a chunk that also carries
//! an opaque header, which the store fills with what the commit changed
//! besides the events (the sled store: its counters and the run's record after
//! the commit), so that one stored value is the whole commit:
//!
//! ```text
//! 0       2     magic "RJ"
//! 2       1     record kind b'C'
//! 3       1     chunk format version (3)
//! 4       1     codec id 0
//! 5       4     header length h (u32 BE)
//! 9       h     header
//! 9 + h   4     count (u32 BE, at least 1)
//! 13 + h  …     count × (length u32 BE ‖ event record)
//! ```
//!
//! The event records inside are byte for byte what a version 1 store keeps
//! under one key each (header, hash, body): the chain, the hash and the
//! envelope do not change. A chunk stored under seq `s` holds seqs `s`,
//! `s + 1`, … `s + count − 1`. A stored value that is not a chunk is one bare
//! event record (every version 1 value, and a version 2 group of one event).
//!
//! Invariants: [`encode_chunk`] of [`records`] is the identity on records;
//! reading never panics and never allocates. Damaged framing is not hidden:
//! where the framing stops making sense, the rest of the value comes out as
//! one record, which the [`crate::ChainReader`] then rejects at that seq (a
//! wrong header, a hash mismatch or a gap), so the damage is named by run
//! and seq like any other damaged record.

use crate::codec::MAGIC;

/// The record kind tag of a chunk.
pub const CHUNK_TAG: u8 = b'C';
/// The chunk format version (the store format that introduced chunks).
pub const CHUNK_VERSION: u8 = 2;
/// The chunk format version of a commit: a chunk with a header.
pub const COMMIT_VERSION: u8 = 3;
/// The codec id of a chunk's framing: fixed big-endian integers, no codec.
pub const CHUNK_CODEC: u8 = 0;
/// Bytes before a chunk's first record: header and count.
pub const CHUNK_HEADER_LEN: usize = 9;
/// Framing bytes per record in a chunk (its length).
pub const CHUNK_FRAME_LEN: usize = 4;

/// Whether `value` is a chunk (its header says so), rather than one bare record.
pub fn is_chunk(value: &[u8]) -> bool {
    value.len() >= CHUNK_HEADER_LEN
        && value[..2] == MAGIC
        && value[2] == CHUNK_TAG
        && (value[3] == CHUNK_VERSION || value[3] == COMMIT_VERSION)
        && value[4] == CHUNK_CODEC
}

/// Whether `value` is a commit: a chunk (version 3) with a header.
pub fn is_commit(value: &[u8]) -> bool {
    is_chunk(value) && value[3] == COMMIT_VERSION
}

/// A commit's header; `None` for any other value, or a commit whose header
/// length runs past its end (damage: its records then come out as one
/// damaged record, see [`records`]).
pub fn commit_header(value: &[u8]) -> Option<&[u8]> {
    if !is_commit(value) {
        return None;
    }
    let len = usize::try_from(read_u32(value, 5)?).ok()?;
    value.get(CHUNK_HEADER_LEN..CHUNK_HEADER_LEN.checked_add(len)?)
}

/// Where a chunk's count field is: after the header of a commit. A commit
/// whose header length runs past its end has none.
fn count_offset(value: &[u8]) -> Option<usize> {
    if is_commit(value) {
        let header = commit_header(value)?;
        let at = CHUNK_HEADER_LEN + header.len();
        (value.len() >= at + 4).then_some(at)
    } else {
        Some(5)
    }
}

/// The offset of the first record's length frame in a chunk (9 for a
/// version 2 chunk, after the header and count for a commit); 0 for a bare
/// record, whose record is the whole value.
pub fn first_frame_offset(value: &[u8]) -> usize {
    if is_chunk(value) {
        count_offset(value).map_or(value.len(), |at| at + 4)
    } else {
        0
    }
}

/// The number of records a stored value holds as its header says: a chunk's
/// count, 1 for a bare record.
pub fn declared_count(value: &[u8]) -> u64 {
    if is_chunk(value) {
        count_offset(value)
            .and_then(|at| read_u32(value, at))
            .map_or(1, u64::from)
    } else {
        1
    }
}

/// The stored bytes of a chunk of `records` (at least two, each shorter than
/// 4 GiB: the store's chunking guarantees both). One record is stored bare
/// instead, by the store, not through this function.
pub fn encode_chunk(records: &[&[u8]]) -> Vec<u8> {
    let total = CHUNK_HEADER_LEN
        + records
            .iter()
            .map(|record| CHUNK_FRAME_LEN + record.len())
            .sum::<usize>();
    let mut value = Vec::with_capacity(total);
    value.extend_from_slice(&MAGIC);
    value.extend_from_slice(&[CHUNK_TAG, CHUNK_VERSION, CHUNK_CODEC]);
    push_records(&mut value, records);
    value
}

/// The stored bytes of a commit: `header`, then `records` (at least one,
/// each shorter than 4 GiB, as for [`encode_chunk`]).
pub fn encode_commit(header: &[u8], records: &[&[u8]]) -> Vec<u8> {
    let total = CHUNK_HEADER_LEN
        + header.len()
        + 4
        + records
            .iter()
            .map(|record| CHUNK_FRAME_LEN + record.len())
            .sum::<usize>();
    let mut value = Vec::with_capacity(total);
    value.extend_from_slice(&MAGIC);
    value.extend_from_slice(&[CHUNK_TAG, COMMIT_VERSION, CHUNK_CODEC]);
    value.extend_from_slice(&u32::try_from(header.len()).unwrap_or(u32::MAX).to_be_bytes());
    value.extend_from_slice(header);
    push_records(&mut value, records);
    value
}

/// Appends `count u32 BE ‖ count × (length u32 BE ‖ record)`.
fn push_records(value: &mut Vec<u8>, records: &[&[u8]]) {
    value.extend_from_slice(&u32::try_from(records.len()).unwrap_or(u32::MAX).to_be_bytes());
    for record in records {
        value.extend_from_slice(&u32::try_from(record.len()).unwrap_or(u32::MAX).to_be_bytes());
        value.extend_from_slice(record);
    }
}

/// The event records a stored value holds, in seq order: a chunk's records,
/// or the value itself when it is a bare record. A commit whose header
/// length runs past its end holds one damaged record: the bytes after the
/// chunk header.
pub fn records(value: &[u8]) -> Records<'_> {
    if is_chunk(value) {
        let Some(at) = count_offset(value) else {
            return Records {
                rest: &value[CHUNK_HEADER_LEN..],
                remaining: 0,
                bare: true,
            };
        };
        Records {
            rest: &value[at + 4..],
            remaining: read_u32(value, at).unwrap_or(0),
            bare: false,
        }
    } else {
        Records {
            rest: value,
            remaining: 1,
            bare: true,
        }
    }
}

/// The records of one stored value (see [`records`]).
#[derive(Clone, Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
    remaining: u32,
    bare: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.bare {
            self.bare = false;
            self.remaining = 0;
            return Some(std::mem::take(&mut self.rest));
        }
        if self.remaining == 0 {
            // Bytes after the declared records: damage, handed out as one
            // more record so that the reader names it.
            return (!self.rest.is_empty()).then(|| std::mem::take(&mut self.rest));
        }
        self.remaining -= 1;
        let framed = read_u32(self.rest, 0)
            .and_then(|len| usize::try_from(len).ok())
            .and_then(|len| self.rest.get(CHUNK_FRAME_LEN..CHUNK_FRAME_LEN.checked_add(len)?));
        if let Some(record) = framed {
            self.rest = &self.rest[CHUNK_FRAME_LEN + record.len()..];
            Some(record)
        } else {
            // A length past the end (or a truncated frame): the rest is one
            // damaged record, and nothing follows it.
            self.remaining = 0;
            Some(std::mem::take(&mut self.rest))
        }
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_returns_its_records_in_order() {
        let records: [&[u8]; 3] = [b"RJE\x01\x01first", b"", b"third record"];
        let value = encode_chunk(&records);
        assert!(is_chunk(&value));
        assert_eq!(declared_count(&value), 3);
        assert_eq!(super::records(&value).collect::<Vec<_>>(), records.to_vec());
    }

    #[test]
    fn a_bare_record_is_one_record() {
        let record = b"RJE\x01\x01 a version 1 event record";
        assert!(!is_chunk(record));
        assert_eq!(declared_count(record), 1);
        assert_eq!(super::records(record).collect::<Vec<_>>(), vec![&record[..]]);
    }

    #[test]
    fn chunk_layout_is_header_count_then_length_prefixed_records() {
        let value = encode_chunk(&[b"ab", b"c"]);
        assert_eq!(
            value,
            b"RJC\x02\x00\x00\x00\x00\x02\x00\x00\x00\x02ab\x00\x00\x00\x01c".to_vec()
        );
    }

    #[test]
    fn a_commit_returns_its_header_and_records() {
        let records: [&[u8]; 2] = [b"RJE\x01\x01one", b"two"];
        let value = encode_commit(b"head", &records);
        assert!(is_chunk(&value) && is_commit(&value));
        assert_eq!(commit_header(&value), Some(&b"head"[..]));
        assert_eq!(declared_count(&value), 2);
        assert_eq!(first_frame_offset(&value), CHUNK_HEADER_LEN + 4 + 4);
        assert_eq!(super::records(&value).collect::<Vec<_>>(), records.to_vec());
        let single = encode_commit(b"", &[b"only"]);
        assert_eq!(declared_count(&single), 1);
        assert_eq!(super::records(&single).collect::<Vec<_>>(), vec![&b"only"[..]]);
        assert!(!is_commit(&encode_chunk(&records)));
        assert_eq!(commit_header(&encode_chunk(&records)), None);
    }

    #[test]
    fn commit_layout_is_header_length_header_count_then_records() {
        let value = encode_commit(b"h", &[b"ab"]);
        assert_eq!(
            value,
            b"RJC\x03\x00\x00\x00\x00\x01h\x00\x00\x00\x01\x00\x00\x00\x02ab".to_vec()
        );
    }

    #[test]
    fn a_commit_header_past_the_end_is_one_damaged_record() {
        let mut value = encode_commit(b"head", &[b"ab"]);
        value[8] = 200;
        assert_eq!(commit_header(&value), None);
        assert_eq!(declared_count(&value), 1);
        assert_eq!(
            super::records(&value).collect::<Vec<_>>(),
            vec![&value[CHUNK_HEADER_LEN..]]
        );
    }

    #[test]
    fn damaged_framing_surfaces_as_a_record() {
        let mut value = encode_chunk(&[b"ab", b"cd"]);
        // The second length now claims more than is there.
        value[CHUNK_HEADER_LEN + 6 + 3] = 200;
        let read: Vec<_> = super::records(&value).collect();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0], b"ab");
        assert_eq!(read[1], &value[CHUNK_HEADER_LEN + 6..]);
        let mut trailing = encode_chunk(&[b"ab", b"cd"]);
        trailing.extend_from_slice(b"xyz");
        assert_eq!(super::records(&trailing).last(), Some(&b"xyz"[..]));
        let truncated = &encode_chunk(&[b"ab", b"cd"])[..CHUNK_HEADER_LEN + 7];
        assert_eq!(
            super::records(truncated).collect::<Vec<_>>(),
            vec![&b"ab"[..], &b"\x00"[..]]
        );
    }
}
