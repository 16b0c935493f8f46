//! The stored format: every stored value is a header then a payload.
//!
//! ```text
//! offset  size  field
//! 0       2     magic  "RJ"
//! 2       1     record kind  b'E' event, b'R' run, b'S' snapshot, b'M' meta
//! 3       1     format version (1)
//! 4       1     codec id (1 = bincode 2.0.1, standard config: little-endian varints)
//! 5       …     payload
//! ```
//!
//! An event record's payload is `hash (32 bytes) ‖ body`, where `body` is the
//! codec's encoding of `(epoch: u64, ts: u64, event: Event)` and `hash` is the
//! chain hash over the body (see [`crate::hash`]). Other records' payloads are
//! the codec's encoding of their type.
//!
//! The codec only turns values into bytes and back: it lays an event record
//! out with an empty hash slot ([`UnsealedEvent`]); hashing, sealing and the
//! event size limit belong to [`crate::chain_writer::ChainWriter`].
//!
//! Invariants: encoding is deterministic; decoding never panics, rejects
//! trailing bytes, and never allocates more than [`ALLOCATION_FACTOR`] times
//! the size of the bytes it decodes (bincode's own allocation limit, chosen per
//! record from power-of-four tiers), so a corrupt length cannot exhaust memory.

use bincode::{Decode, Encode};

use crate::event::Event;
use crate::hash::ChainHash;

/// The magic bytes that open every stored value.
pub const MAGIC: [u8; 2] = *b"RJ";
/// The format version this build writes.
pub const FORMAT_VERSION: u8 = 1;
/// The codec id of bincode 2.0.1 with its standard configuration.
pub const CODEC_BINCODE2: u8 = 1;
/// Bytes of header before every payload.
pub const HEADER_LEN: usize = 5;
/// Bytes of header and hash before an event record's body.
pub const EVENT_BODY_OFFSET: usize = HEADER_LEN + 32;
/// The default largest encoded event body: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;
/// Decoding may claim at most this many bytes of memory per byte of input.
pub const ALLOCATION_FACTOR: usize = 32;

/// What a stored value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// One event of a run.
    Event,
    /// A run's record: key, head, status, lineage.
    Run,
    /// A persisted projection.
    Snapshot,
    /// Database metadata.
    Meta,
}

impl RecordKind {
    fn tag(self) -> u8 {
        match self {
            RecordKind::Event => b'E',
            RecordKind::Run => b'R',
            RecordKind::Snapshot => b'S',
            RecordKind::Meta => b'M',
        }
    }
}

/// A stored value that cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Shorter than its header.
    #[error("record is truncated: {len} bytes, shorter than its {needed}-byte header")]
    Truncated {
        /// The record's length.
        len: usize,
        /// The least length a record of its kind has.
        needed: usize,
    },
    /// Does not start with `RJ`.
    #[error("record does not start with the magic bytes \"RJ\" (found {found:02x?})")]
    BadMagic {
        /// The first two bytes.
        found: [u8; 2],
    },
    /// Holds another kind of record than the one expected.
    #[error("record kind is {found:?}, expected {expected:?}")]
    WrongKind {
        /// The kind the reader wanted.
        expected: RecordKind,
        /// The tag byte found.
        found: u8,
    },
    /// Written by a format version this build does not know.
    #[error("unknown format version {found} (this build reads version {FORMAT_VERSION}); upgrade runjournal")]
    UnknownVersion {
        /// The version byte.
        found: u8,
    },
    /// Written with a codec this build does not know.
    #[error("unknown codec id {found} (this build reads codec {CODEC_BINCODE2}); upgrade runjournal")]
    UnknownCodec {
        /// The codec byte.
        found: u8,
    },
    /// The payload does not decode.
    #[error("payload does not decode: {reason}")]
    Payload {
        /// The decoder's explanation.
        reason: String,
    },
    /// The payload decodes but leaves bytes over.
    #[error("payload has {extra} trailing bytes")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
    /// The encoded event is larger than the configured maximum.
    #[error("event is {size} bytes encoded, larger than the maximum of {max} bytes")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The encoder refused a value (no stored type is refused; kept typed
    /// rather than a panic).
    #[error("value does not encode: {reason}")]
    Unencodable {
        /// The encoder's explanation.
        reason: String,
    },
}

/// An event record laid out for storing, its hash slot still empty: the chain
/// writer ([`crate::chain_writer`]) hashes [`UnsealedEvent::body`] and fills
/// the slot with [`UnsealedEvent::seal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsealedEvent {
    record: Vec<u8>,
}

impl UnsealedEvent {
    /// The encoded `(epoch, ts, event)`: the bytes the chain hashes.
    pub fn body(&self) -> &[u8] {
        &self.record[EVENT_BODY_OFFSET..]
    }

    /// The whole stored value, with `hash` in its hash slot.
    pub fn seal(mut self, hash: &ChainHash) -> Vec<u8> {
        self.record[HEADER_LEN..EVENT_BODY_OFFSET].copy_from_slice(&hash.0);
        self.record
    }
}

/// The parts of a decoded event record.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedEvent {
    /// The chain hash stored in the record.
    pub hash: ChainHash,
    /// The writer epoch.
    pub epoch: u64,
    /// Unix milliseconds.
    pub ts: u64,
    /// The event.
    pub event: Event,
}

/// Lays out one event as a stored record: header, an empty hash slot, then
/// the body `(epoch, ts, event)`. Fails with [`CodecError::Unencodable`] only
/// if the encoder refuses a value (no event type does).
pub fn encode_event(epoch: u64, ts: u64, event: &Event) -> Result<UnsealedEvent, CodecError> {
    let body = (epoch, ts, event);
    // Sized first, so the record is allocated once, at its length.
    let mut record = Vec::with_capacity(EVENT_BODY_OFFSET + encoded_len(&body)?);
    push_header(&mut record, RecordKind::Event);
    record.extend_from_slice(&[0; 32]);
    try_encode_into(&mut record, &body)?;
    Ok(UnsealedEvent { record })
}

/// Splits an event record into its stored hash and its body, checking the header.
pub fn split_event_record(record: &[u8]) -> Result<(ChainHash, &[u8]), CodecError> {
    check_header(record, RecordKind::Event, EVENT_BODY_OFFSET)?;
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&record[HEADER_LEN..EVENT_BODY_OFFSET]);
    Ok((ChainHash(hash), &record[EVENT_BODY_OFFSET..]))
}

/// Decodes an event body into `(epoch, ts, event)`.
pub fn decode_event_body(body: &[u8]) -> Result<(u64, u64, Event), CodecError> {
    decode_limited(body)
}

/// Decodes a whole event record, without checking its chain hash.
pub fn decode_event(record: &[u8]) -> Result<DecodedEvent, CodecError> {
    let (hash, body) = split_event_record(record)?;
    let (epoch, ts, event) = decode_event_body(body)?;
    Ok(DecodedEvent { hash, epoch, ts, event })
}

/// Encodes a non-event record of `kind`.
pub fn encode_record<T: Encode>(kind: RecordKind, value: &T) -> Vec<u8> {
    let mut record = Vec::with_capacity(64);
    push_header(&mut record, kind);
    encode_into(&mut record, value);
    record
}

/// Decodes a non-event record of `kind`.
pub fn decode_record<T: Decode<()>>(kind: RecordKind, record: &[u8]) -> Result<T, CodecError> {
    check_header(record, kind, HEADER_LEN)?;
    decode_limited(&record[HEADER_LEN..])
}

fn push_header(record: &mut Vec<u8>, kind: RecordKind) {
    record.extend_from_slice(&MAGIC);
    record.push(kind.tag());
    record.push(FORMAT_VERSION);
    record.push(CODEC_BINCODE2);
}

fn check_header(record: &[u8], kind: RecordKind, needed: usize) -> Result<(), CodecError> {
    if record.len() < needed {
        return Err(CodecError::Truncated {
            len: record.len(),
            needed,
        });
    }
    if record[..2] != MAGIC {
        return Err(CodecError::BadMagic {
            found: [record[0], record[1]],
        });
    }
    if record[2] != kind.tag() {
        return Err(CodecError::WrongKind {
            expected: kind,
            found: record[2],
        });
    }
    if record[3] != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion { found: record[3] });
    }
    if record[4] != CODEC_BINCODE2 {
        return Err(CodecError::UnknownCodec { found: record[4] });
    }
    Ok(())
}

fn encode_into<T: Encode>(buffer: &mut Vec<u8>, value: &T) {
    // Writing to a Vec cannot fail, and the stored types hold no type bincode refuses.
    if let Err(error) = try_encode_into(buffer, value) {
        unreachable!("stored types always encode: {error}");
    }
}

/// The number of bytes `value` encodes to.
fn encoded_len<T: Encode>(value: &T) -> Result<usize, CodecError> {
    let mut encoder =
        bincode::enc::EncoderImpl::new(bincode::enc::write::SizeWriter::default(), bincode::config::standard());
    value.encode(&mut encoder).map_err(|error| CodecError::Unencodable {
        reason: error.to_string(),
    })?;
    Ok(encoder.into_writer().bytes_written)
}

fn try_encode_into<T: Encode>(buffer: &mut Vec<u8>, value: &T) -> Result<(), CodecError> {
    struct VecWriter<'a>(&'a mut Vec<u8>);
    impl bincode::enc::write::Writer for VecWriter<'_> {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            self.0.extend_from_slice(bytes);
            Ok(())
        }
    }
    bincode::encode_into_writer(value, VecWriter(buffer), bincode::config::standard()).map_err(|error| {
        CodecError::Unencodable {
            reason: error.to_string(),
        }
    })
}

/// Decodes `bytes` as one `T`, claiming at most `ALLOCATION_FACTOR × len` bytes
/// of memory (rounded up to a power of four, at least 4 KiB).
fn decode_limited<T: Decode<()>>(bytes: &[u8]) -> Result<T, CodecError> {
    let budget = bytes.len().saturating_mul(ALLOCATION_FACTOR).max(4096);
    let exponent = usize::BITS - (budget - 1).leading_zeros();
    macro_rules! tiers {
        ($($tier:literal),*) => {
            match exponent {
                $(e if e <= $tier => decode_with_limit::<{ 1usize << $tier }, T>(bytes),)*
                _ => Err(CodecError::TooLarge { size: bytes.len(), max: (1usize << 36) / ALLOCATION_FACTOR }),
            }
        };
    }
    tiers!(12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36)
}

fn decode_with_limit<const LIMIT: usize, T: Decode<()>>(bytes: &[u8]) -> Result<T, CodecError> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let (value, used) = bincode::decode_from_slice(bytes, config).map_err(|error| CodecError::Payload {
        reason: error.to_string(),
    })?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Message, Role};

    fn step() -> Event {
        Event::Step {
            messages: vec![Message::new(Role::User, "hello")],
        }
    }

    fn sealed_step(hash: &ChainHash, epoch: u64, ts: u64) -> Vec<u8> {
        encode_event(epoch, ts, &step()).unwrap().seal(hash)
    }

    #[test]
    fn header_layout_is_magic_kind_version_codec() {
        let hash = ChainHash([7; 32]);
        let record = sealed_step(&hash, 1, 2);
        assert_eq!(&record[..5], b"RJE\x01\x01");
        assert_eq!(&record[5..37], &hash.0);
        assert_eq!(encode_record(RecordKind::Run, &7u64)[..5], *b"RJR\x01\x01");
    }

    #[test]
    fn event_record_round_trips() {
        let hash = ChainHash([9; 32]);
        let unsealed = encode_event(1, 99, &step()).unwrap();
        let body = unsealed.body().to_vec();
        let record = unsealed.seal(&hash);
        let decoded = decode_event(&record).unwrap();
        assert_eq!(
            decoded,
            DecodedEvent {
                hash,
                epoch: 1,
                ts: 99,
                event: step()
            }
        );
        assert_eq!(split_event_record(&record).unwrap(), (hash, &body[..]));
    }

    #[test]
    fn bad_headers_are_named() {
        let record = sealed_step(&ChainHash::GENESIS, 0, 0);
        let mut bad = record.clone();
        bad[0] = b'X';
        assert_eq!(
            decode_event(&bad).unwrap_err(),
            CodecError::BadMagic { found: [b'X', b'J'] }
        );
        let mut bad = record.clone();
        bad[3] = 9;
        assert_eq!(decode_event(&bad).unwrap_err(), CodecError::UnknownVersion { found: 9 });
        let mut bad = record.clone();
        bad[4] = 2;
        assert_eq!(decode_event(&bad).unwrap_err(), CodecError::UnknownCodec { found: 2 });
        assert_eq!(
            decode_event(&record[..10]).unwrap_err(),
            CodecError::Truncated { len: 10, needed: 37 }
        );
        let mut long = record.clone();
        long.push(0);
        assert_eq!(decode_event(&long).unwrap_err(), CodecError::TrailingBytes { extra: 1 });
        assert!(matches!(
            decode_record::<u64>(RecordKind::Run, &record).unwrap_err(),
            CodecError::WrongKind {
                expected: RecordKind::Run,
                found: b'E'
            }
        ));
    }

    #[test]
    fn huge_claimed_length_is_refused_without_allocating() {
        // A Step whose message count claims 2^60 entries.
        let mut body = vec![0u8, 0, 2]; // epoch 0, ts 0, variant 2 (step)
        body.push(255); // u64 varint marker
        body.extend_from_slice(&(1u64 << 60).to_le_bytes());
        let error = decode_event_body(&body).unwrap_err();
        assert!(matches!(error, CodecError::Payload { .. }), "{error:?}");
    }
}
