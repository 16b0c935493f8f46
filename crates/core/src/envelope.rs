//! The envelope: one record of a run's log, in its JSON interchange form (docs/format.md).

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::hash::ChainHash;
use crate::key::RunKey;

/// One event of a run with its position, writer epoch, time and chain hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The run the event belongs to.
    pub run: RunKey,
    /// 0-based, gapless, strictly increasing per run.
    pub seq: u64,
    /// The writer epoch that appended it.
    pub epoch: u64,
    /// Unix time in milliseconds when it was appended.
    pub ts: u64,
    /// The chain hash of this envelope.
    pub hash: ChainHash,
    /// The event.
    pub event: Event,
}

/// An envelope as it may appear in an import file: `epoch`, `ts` and `hash`
/// may be missing and are then computed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialEnvelope {
    /// The run the event belongs to.
    pub run: RunKey,
    /// Its seq.
    pub seq: u64,
    /// The writer epoch, if given.
    #[serde(default)]
    pub epoch: Option<u64>,
    /// Unix milliseconds, if given.
    #[serde(default)]
    pub ts: Option<u64>,
    /// The chain hash, if given; it must then match the computed one.
    #[serde(default)]
    pub hash: Option<ChainHash>,
    /// The event.
    pub event: Event,
}

impl PartialEnvelope {
    /// Parses one line of JSON: exactly the envelope, or the error, that
    /// `serde_json::from_str` gives. An event whose `type` comes first (as
    /// the journal writes it) is decoded without first being buffered
    /// (module `event_json`); any line that decoder refuses is parsed again
    /// with the derived one, whose outcome is returned.
    pub fn from_json(text: &str) -> Result<PartialEnvelope, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let type_first = TypeFirstEnvelope::deserialize(&mut deserializer)
            .and_then(|envelope| deserializer.end().map(|()| envelope));
        type_first.or_else(|_| serde_json::from_str(text))
    }
}

/// [`PartialEnvelope`]'s decoder with its event read type first.
#[derive(Deserialize)]
#[serde(remote = "PartialEnvelope", deny_unknown_fields)]
struct TypeFirstEnvelope {
    run: RunKey,
    seq: u64,
    #[serde(default)]
    epoch: Option<u64>,
    #[serde(default)]
    ts: Option<u64>,
    #[serde(default)]
    hash: Option<ChainHash>,
    #[serde(deserialize_with = "crate::event_json::deserialize_type_first")]
    event: Event,
}

impl Envelope {
    /// The envelope as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_else(|error| unreachable!("envelope serializes: {error}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

    use super::*;
    use crate::event::{Message, Role};

    /// `from_json` falls back to the derived decoder on any refusal, so its
    /// outcome alone cannot show the type-first decoder is ever used: an
    /// exported line must decode with it, with no second parse.
    #[test]
    fn an_exported_line_decodes_type_first_without_the_derived_decoder() {
        let envelope = Envelope {
            run: RunKey::new("g", 1, "a").unwrap(),
            seq: 4,
            epoch: 2,
            ts: 1_700_000_000_000,
            hash: ChainHash::next(&ChainHash::GENESIS, b"k", 4, b"body"),
            event: Event::Step {
                messages: vec![Message::new(Role::Assistant, "done")],
            },
        };
        let line = envelope.to_json_line();
        let mut deserializer = serde_json::Deserializer::from_str(&line);
        let decoded = TypeFirstEnvelope::deserialize(&mut deserializer).unwrap();
        deserializer.end().unwrap();
        assert_eq!(decoded, serde_json::from_str::<PartialEnvelope>(&line).unwrap());
        assert_eq!(decoded.event, envelope.event);
        assert_eq!(decoded.hash, Some(envelope.hash));
    }
}
