//! Deterministic trace and span ids: blake3 of a domain tag, the run key and
//! a position, truncated (16 bytes for a trace, 8 for a span).
//!
//! Invariant: an id depends only on its inputs, so exporting a run twice
//! yields identical ids (a collector deduplicates the re-export); the key's
//! parts are length-prefixed, so two keys never hash alike by concatenation.

use runjournal::RunKey;

/// What a span stands for; part of its id's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanRole {
    /// The run's `invoke_agent` root span.
    Root,
    /// A phase, by the history position of its `phase_started`.
    Phase,
    /// A model step, by the history position of its `step`.
    Chat,
    /// A tool message, by its step's position and its index in the step.
    Tool,
}

impl SpanRole {
    fn tag(self) -> u8 {
        match self {
            SpanRole::Root => 0,
            SpanRole::Phase => 1,
            SpanRole::Chat => 2,
            SpanRole::Tool => 3,
        }
    }
}

fn hasher(domain: &str, key: &RunKey) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain.as_bytes());
    for part in [key.goal.as_bytes(), key.agent.as_bytes()] {
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update(&key.episode.to_be_bytes());
    hasher
}

/// The run's trace id (16 bytes).
pub fn trace_id(key: &RunKey) -> Vec<u8> {
    hasher("runjournal-otlp-trace", key).finalize().as_bytes()[..16].to_vec()
}

/// The id (8 bytes) of the span `role` at history position `position` (and
/// message `index` inside it, 0 for spans that are not per message).
pub fn span_id(key: &RunKey, role: SpanRole, position: u64, index: u64) -> Vec<u8> {
    let mut hasher = hasher("runjournal-otlp-span", key);
    hasher.update(&[role.tag()]);
    hasher.update(&position.to_be_bytes());
    hasher.update(&index.to_be_bytes());
    hasher.finalize().as_bytes()[..8].to_vec()
}
