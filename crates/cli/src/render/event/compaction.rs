//! Summaries of context compactions: the start, with what it compacts, and
//! the done, with the segment it opens.

use runjournal::CompactionSource;
use std::fmt::Write as _;

use super::{count_part, id_part};
use crate::output::quoted;
use crate::render::Tone;

/// `compaction_started`.
pub fn started(
    id: Option<&str>,
    source: CompactionSource,
    messages_before: Option<u64>,
    tokens_before: Option<u64>,
) -> (Tone, String) {
    let mut text = format!("⟳ compaction{} started ({}", id_part(id), source.as_str());
    count_part(&mut text, messages_before, "message");
    count_part(&mut text, tokens_before, "token");
    text.push(')');
    (Tone::Warn, text)
}

/// `compaction_done`: the new segment and its summary.
pub fn done(
    id: Option<&str>,
    source: CompactionSource,
    summary: Option<&str>,
    messages_after: Option<u64>,
    tokens_after: Option<u64>,
    max: usize,
) -> (Tone, String) {
    let mut text = format!("⟳ compaction{} done ({}", id_part(id), source.as_str());
    count_part(&mut text, messages_after, "message");
    count_part(&mut text, tokens_after, "token");
    text.push(')');
    match summary {
        Some(summary) => {
            let _ = write!(text, " → new segment: {}", quoted(summary, max));
        }
        None => text.push_str(" → new segment, no summary"),
    }
    (Tone::Warn, text)
}
