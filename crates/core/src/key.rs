//! Run identity (docs/format.md#the-run-key).
//!
//! Invariants: a [`RunKey`] that passed [`RunKey::validate`] has a `goal` of
//! 1–256 bytes and an `agent` of 1–128 bytes, neither holding a control
//! character. Its [`RunKey::canonical_bytes`] are unique per key and order keys
//! by `(goal, agent, episode)`, episode big-endian, so a store can scan every
//! episode of a `(goal, agent)` pair in order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest `goal`, in bytes of UTF-8.
pub const MAX_GOAL_BYTES: usize = 256;
/// Longest `agent`, in bytes of UTF-8.
pub const MAX_AGENT_BYTES: usize = 128;

/// The stable identity of a run: `(goal, episode, agent)`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, bincode::Encode, bincode::Decode,
)]
#[serde(deny_unknown_fields)]
pub struct RunKey {
    /// The task being worked on, shared by every attempt at it.
    pub goal: String,
    /// The attempt number inside the goal.
    pub episode: u32,
    /// A stable id of the agent inside the episode (never a per-process random name).
    pub agent: String,
}

/// Which part of a key an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// The `goal` string.
    Goal,
    /// The `agent` string.
    Agent,
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyPart::Goal => "goal",
            KeyPart::Agent => "agent",
        })
    }
}

/// A key that breaks docs/format.md#the-run-key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The part is the empty string.
    #[error("invalid run key: {part} is empty (it must be 1 to {max} bytes)")]
    Empty {
        /// The offending part.
        part: KeyPart,
        /// The longest allowed length in bytes.
        max: usize,
    },
    /// The part is longer than allowed.
    #[error("invalid run key: {part} is {len} bytes long (at most {max} bytes)")]
    TooLong {
        /// The offending part.
        part: KeyPart,
        /// Its length in bytes.
        len: usize,
        /// The longest allowed length in bytes.
        max: usize,
    },
    /// The part holds a control character.
    #[error("invalid run key: {part} holds control character {character:?} at byte {at} (control characters are not allowed)")]
    ControlCharacter {
        /// The offending part.
        part: KeyPart,
        /// The character.
        character: char,
        /// Its byte offset in the part.
        at: usize,
    },
}

impl RunKey {
    /// Builds a key and validates it.
    pub fn new(goal: impl Into<String>, episode: u32, agent: impl Into<String>) -> Result<Self, KeyError> {
        let key = RunKey {
            goal: goal.into(),
            episode,
            agent: agent.into(),
        };
        key.validate()?;
        Ok(key)
    }

    /// Checks the key against docs/format.md#the-run-key.
    pub fn validate(&self) -> Result<(), KeyError> {
        validate_part(KeyPart::Goal, &self.goal, MAX_GOAL_BYTES)?;
        validate_part(KeyPart::Agent, &self.agent, MAX_AGENT_BYTES)
    }

    /// `goal ‖ 0x00 ‖ agent ‖ 0x00 ‖ episode (u32 BE)`: unique per valid key
    /// (neither string holds 0x00) and ordered by `(goal, agent, episode)`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = Self::goal_agent_prefix(&self.goal, &self.agent);
        bytes.extend_from_slice(&self.episode.to_be_bytes());
        bytes
    }

    /// The canonical prefix shared by every episode of `(goal, agent)`.
    pub fn goal_agent_prefix(goal: &str, agent: &str) -> Vec<u8> {
        let mut bytes = Self::goal_prefix(goal);
        bytes.extend_from_slice(agent.as_bytes());
        bytes.push(0);
        bytes
    }

    /// The canonical prefix shared by every run of `goal`.
    pub fn goal_prefix(goal: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(goal.len() + 1);
        bytes.extend_from_slice(goal.as_bytes());
        bytes.push(0);
        bytes
    }

    /// A short id of the key: the first 8 hex digits of blake3 of its canonical
    /// bytes. Stable across databases and processes.
    pub fn short_id(&self) -> String {
        let digest = blake3::hash(&self.canonical_bytes());
        crate::hash::to_hex(&digest.as_bytes()[..4])
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}/{}/{:?}", self.goal, self.episode, self.agent)
    }
}

fn validate_part(part: KeyPart, value: &str, max: usize) -> Result<(), KeyError> {
    if value.is_empty() {
        return Err(KeyError::Empty { part, max });
    }
    if value.len() > max {
        return Err(KeyError::TooLong {
            part,
            len: value.len(),
            max,
        });
    }
    if let Some((at, character)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(KeyError::ControlCharacter { part, character, at });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_goal_is_refused_naming_the_goal() {
        let error = RunKey::new("", 0, "a").unwrap_err();
        assert_eq!(
            error,
            KeyError::Empty {
                part: KeyPart::Goal,
                max: MAX_GOAL_BYTES
            }
        );
        assert!(error.to_string().contains("goal is empty"), "{error}");
    }

    #[test]
    fn empty_agent_is_refused_naming_the_agent() {
        let error = RunKey::new("g", 0, "").unwrap_err();
        assert!(error.to_string().contains("agent is empty"), "{error}");
    }

    #[test]
    fn too_long_parts_are_refused_with_their_length() {
        let error = RunKey::new("g".repeat(257), 0, "a").unwrap_err();
        assert_eq!(
            error,
            KeyError::TooLong {
                part: KeyPart::Goal,
                len: 257,
                max: 256
            }
        );
        assert!(error.to_string().contains("257 bytes"), "{error}");
        let error = RunKey::new("g", 0, "a".repeat(129)).unwrap_err();
        assert_eq!(
            error,
            KeyError::TooLong {
                part: KeyPart::Agent,
                len: 129,
                max: 128
            }
        );
        assert!(RunKey::new("g".repeat(256), 0, "a".repeat(128)).is_ok());
    }

    #[test]
    fn multibyte_length_counts_bytes_not_chars() {
        let goal = "é".repeat(129);
        let error = RunKey::new(goal, 0, "a").unwrap_err();
        assert_eq!(
            error,
            KeyError::TooLong {
                part: KeyPart::Goal,
                len: 258,
                max: 256
            }
        );
    }

    #[test]
    fn control_characters_are_refused_with_their_position() {
        let error = RunKey::new("fix\nbug", 0, "a").unwrap_err();
        assert_eq!(
            error,
            KeyError::ControlCharacter {
                part: KeyPart::Goal,
                character: '\n',
                at: 3
            }
        );
        assert!(
            error.to_string().contains("control character '\\n' at byte 3"),
            "{error}"
        );
        let error = RunKey::new("g", 0, "a\u{0}").unwrap_err();
        assert_eq!(
            error,
            KeyError::ControlCharacter {
                part: KeyPart::Agent,
                character: '\u{0}',
                at: 1
            }
        );
    }

    #[test]
    fn canonical_bytes_order_by_goal_agent_episode() {
        let a = RunKey::new("g", 2, "a").unwrap();
        let b = RunKey::new("g", 10, "a").unwrap();
        let c = RunKey::new("g", 0, "b").unwrap();
        let d = RunKey::new("g2", 0, "a").unwrap();
        assert!(a.canonical_bytes() < b.canonical_bytes());
        assert!(b.canonical_bytes() < c.canonical_bytes());
        assert!(c.canonical_bytes() < d.canonical_bytes());
        assert!(a.canonical_bytes().starts_with(&RunKey::goal_agent_prefix("g", "a")));
        assert!(!d.canonical_bytes().starts_with(&RunKey::goal_prefix("g")));
    }

    #[test]
    fn short_id_is_stable_and_distinct() {
        let a = RunKey::new("g", 0, "a").unwrap();
        assert_eq!(a.short_id(), RunKey::new("g", 0, "a").unwrap().short_id());
        assert_eq!(a.short_id().len(), 8);
        assert_ne!(a.short_id(), RunKey::new("g", 1, "a").unwrap().short_id());
    }
}
