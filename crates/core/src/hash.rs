//! The blake3 hash chain (docs/format.md).
//!
//! `hash(n) = blake3(hash(n-1) ‖ canonical bytes of envelope n without its hash)`
//! with `hash(-1)` = 32 zero bytes, or the parent's hash at the fork point for a
//! forked run. The canonical bytes of an envelope are
//! `key.canonical_bytes() ‖ seq (u64 BE) ‖ body`, where `body` is the bincode
//! encoding of `(epoch, ts, event)` stored in the record (see [`crate::codec`]).
//! Hashing the stored body directly means verifying never re-encodes. The
//! key bytes are computed once per reader ([`crate::chain::ChainReader`]) and
//! writer ([`crate::chain_writer::ChainWriter`]), not per event.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes of one blake3 chunk: inputs up to this long are hashed in one call.
const ONE_CHUNK: usize = 1024;

/// A 32-byte blake3 digest in the chain. Lowercase hex in JSON.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, bincode::Encode, bincode::Decode)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// `hash(-1)` of a run that is not a fork.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// The hash of the envelope `(key, seq, body)` following `previous`.
    pub fn next(previous: &ChainHash, key_bytes: &[u8], seq: u64, body: &[u8]) -> ChainHash {
        // One chunk's input is hashed from one contiguous buffer (the digest
        // of the same bytes, without the streaming hasher's per-call work).
        let len = 32 + key_bytes.len() + 8 + body.len();
        if len <= ONE_CHUNK {
            let mut input = [0u8; ONE_CHUNK];
            input[..32].copy_from_slice(&previous.0);
            let key_end = 32 + key_bytes.len();
            input[32..key_end].copy_from_slice(key_bytes);
            input[key_end..key_end + 8].copy_from_slice(&seq.to_be_bytes());
            input[key_end + 8..len].copy_from_slice(body);
            return ChainHash(*blake3::hash(&input[..len]).as_bytes());
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&previous.0);
        hasher.update(key_bytes);
        hasher.update(&seq.to_be_bytes());
        hasher.update(body);
        ChainHash(*hasher.finalize().as_bytes())
    }

    /// Lowercase hex, 64 digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<ChainHash> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        let mut bad = 0;
        for (digits, slot) in text.as_bytes().chunks_exact(8).zip(out.chunks_exact_mut(4)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(digits);
            let (value, word_bad) = hex_word(u64::from_be_bytes(word));
            bad |= word_bad;
            slot.copy_from_slice(&value);
        }
        (bad == 0).then_some(ChainHash(out))
    }
}

/// One in each byte of a word.
const EACH_BYTE: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of a word.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The 4 bytes that 8 hex digits (`word`, the first digit its most
/// significant byte) spell, and a word that is 0 exactly when all 8 are hex
/// digits of either case.
///
/// Computed on the whole word, without a branch or a lookup per digit: a
/// hash's digits are random, so any per-digit branch (which the compiler
/// also makes of a lookup table) mispredicts about every other digit.
fn hex_word(word: u64) -> ([u8; 4], u64) {
    let digits = bytes_in_range(word, b'0', b'9');
    // Setting bit 5 folds 'A'..='F' onto 'a'..='f' and no other byte there.
    let letters = bytes_in_range(word | (EACH_BYTE * 0x20), b'a', b'f');
    let bad = (word & HIGH_BITS) | ((digits | letters) ^ HIGH_BITS);
    // A digit's low nibble is its value; a letter (bit 6 set) adds 9.
    let nibbles = (word & (EACH_BYTE * 0x0f)) + ((word >> 6) & EACH_BYTE) * 9;
    // Each byte pair (high digit, low digit) becomes one byte in its low half.
    let pairs = ((nibbles >> 4) | nibbles).to_be_bytes();
    ([pairs[1], pairs[3], pairs[5], pairs[7]], bad)
}

/// The high bit of each byte of `word` set exactly when the byte is in
/// `low..=high`; meaningful only for bytes below 0x80 (no carry then
/// crosses a byte: `low` is at least 0x30 and `high` at most 0x7f).
fn bytes_in_range(word: u64, low: u8, high: u8) -> u64 {
    let at_least_low = word.wrapping_add(EACH_BYTE * u64::from(0x80 - low));
    let above_high = word.wrapping_add(EACH_BYTE * u64::from(0x7f - high));
    at_least_low & !above_high & HIGH_BITS
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    text
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for ChainHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(HexVisitor)
    }
}

/// Parses a hash from the string the deserializer holds, copying nothing.
struct HexVisitor;

impl serde::de::Visitor<'_> for HexVisitor {
    type Value = ChainHash;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a hash of 64 hex digits")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ChainHash, E> {
        ChainHash::from_hex(text).ok_or_else(|| E::custom(format!("hash {text:?} is not 64 hex digits")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_digits() {
        let hash = ChainHash::next(&ChainHash::GENESIS, b"k", 0, b"body");
        assert_eq!(ChainHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(ChainHash::from_hex(&hash.to_hex().to_uppercase()), Some(hash));
        assert_eq!(ChainHash::from_hex("zz"), None);
        assert_eq!(ChainHash::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn hex_parsing_refuses_a_bad_digit_anywhere() {
        let hex = ChainHash::next(&ChainHash::GENESIS, b"k", 0, b"body").to_hex();
        for at in 0..64 {
            for bad in ["g", "G", "/", ":", "@", "`", " "] {
                let mut text = hex.clone();
                text.replace_range(at..=at, bad);
                assert_eq!(ChainHash::from_hex(&text), None, "{text}");
            }
        }
        // 64 bytes that are not 64 digits: 32 two-byte characters.
        assert_eq!(ChainHash::from_hex(&"é".repeat(32)), None);
        let every_digit = "0123456789abcdefABCDEF".repeat(3);
        let parsed = ChainHash::from_hex(&every_digit[..64]).map(|hash| hash.to_hex());
        assert_eq!(parsed.as_deref(), Some(every_digit[..64].to_lowercase().as_str()));
    }

    /// The digits' value by the obvious method, to check the word-wide one.
    fn hex_by_chars(text: &str) -> Option<[u8; 32]> {
        let digits = text
            .chars()
            .map(|digit| digit.to_digit(16))
            .collect::<Option<Vec<u32>>>()?;
        if digits.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *slot = u8::try_from(pair[0] * 16 + pair[1]).unwrap();
        }
        Some(out)
    }

    #[test]
    fn every_ascii_byte_at_every_position_parses_as_its_digit_or_refuses_the_hash() {
        let hex = ChainHash::next(&ChainHash::GENESIS, b"k", 0, b"body").to_hex();
        for at in 0..64 {
            for byte in 0u8..0x80 {
                let mut text = hex.clone().into_bytes();
                text[at] = byte;
                let text = String::from_utf8(text).unwrap();
                assert_eq!(
                    ChainHash::from_hex(&text).map(|hash| hash.0),
                    hex_by_chars(&text),
                    "{text:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn hex_parsing_agrees_with_parsing_char_by_char(
            text in "[0-9a-fA-F]{62,66}|[0-9a-fA-F]{0,70}|[0-9a-fA-F/:@`gG\\x00\\x7f\u{e9}\u{80}]{60,66}"
        ) {
            proptest::prop_assert_eq!(ChainHash::from_hex(&text).map(|hash| hash.0), hex_by_chars(&text));
        }
    }

    #[test]
    fn a_hash_deserializes_from_json_text_and_refuses_anything_else() {
        let hash = ChainHash::next(&ChainHash::GENESIS, b"k", 0, b"body");
        let json = serde_json::to_string(&hash).expect("a hash serializes");
        assert_eq!(serde_json::from_str::<ChainHash>(&json).ok(), Some(hash));
        let escaped = format!("\"\\u0030{}\"", &hash.to_hex()[1..]);
        let expected = ChainHash::from_hex(&format!("0{}", &hash.to_hex()[1..]));
        assert_eq!(serde_json::from_str::<ChainHash>(&escaped).ok(), expected);
        let short = serde_json::from_str::<ChainHash>("\"abc\"").map_err(|error| error.to_string());
        assert!(
            short
                .as_ref()
                .is_err_and(|error| error.contains("is not 64 hex digits")),
            "{short:?}"
        );
        let number = serde_json::from_str::<ChainHash>("5").map_err(|error| error.to_string());
        assert!(
            number.as_ref().is_err_and(|error| error.contains("64 hex digits")),
            "{number:?}"
        );
    }

    #[test]
    fn chain_depends_on_previous_key_seq_and_body() {
        let base = ChainHash::next(&ChainHash::GENESIS, b"k", 0, b"body");
        assert_ne!(base, ChainHash::next(&base, b"k", 0, b"body"));
        assert_ne!(base, ChainHash::next(&ChainHash::GENESIS, b"j", 0, b"body"));
        assert_ne!(base, ChainHash::next(&ChainHash::GENESIS, b"k", 1, b"body"));
        assert_ne!(base, ChainHash::next(&ChainHash::GENESIS, b"k", 0, b"bodz"));
        let expected = {
            let mut input = vec![0u8; 32];
            input.extend_from_slice(b"k");
            input.extend_from_slice(&0u64.to_be_bytes());
            input.extend_from_slice(b"body");
            *blake3::hash(&input).as_bytes()
        };
        assert_eq!(base.0, expected);
    }

    #[test]
    fn one_chunk_inputs_hash_as_the_streaming_hasher_does() {
        let previous = ChainHash([7; 32]);
        let key = b"goal/3/agent";
        for body_len in [0, 1, 300, ONE_CHUNK - 52, ONE_CHUNK - 51, ONE_CHUNK, 3 * ONE_CHUNK] {
            let body: Vec<u8> = (0..body_len).map(|index| u8::try_from(index % 251).unwrap()).collect();
            let mut hasher = blake3::Hasher::new();
            hasher.update(&previous.0);
            hasher.update(key);
            hasher.update(&9u64.to_be_bytes());
            hasher.update(&body);
            assert_eq!(
                ChainHash::next(&previous, key, 9, &body).0,
                *hasher.finalize().as_bytes(),
                "body of {body_len} bytes"
            );
        }
    }
}
