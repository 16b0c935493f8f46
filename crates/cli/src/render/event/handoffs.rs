//! Summaries of handoffs between agents.

use crate::output::{one_line, quoted};
use crate::render::Tone;

/// `handoff_sent`.
pub fn sent(id: &str, from: &str, to: &str, generation: u64, version: &str, timeout_ms: u64) -> (Tone, String) {
    (
        Tone::Handoff,
        format!(
            "⇄ handoff {} {} → {} (v{version}, generation {generation}, timeout {timeout_ms} ms)",
            one_line(id, 40),
            one_line(from, 40),
            one_line(to, 40)
        ),
    )
}

/// `handoff_acked`.
pub fn acked(id: &str, by: &str) -> (Tone, String) {
    (
        Tone::Handoff,
        format!("⇄ handoff {} acknowledged by {}", one_line(id, 40), one_line(by, 40)),
    )
}

/// `handoff_rejected`, with the reason.
pub fn rejected(id: &str, by: &str, reason: &str, text: usize) -> (Tone, String) {
    (
        Tone::Handoff,
        format!(
            "⇄ handoff {} rejected by {}: {}",
            one_line(id, 40),
            one_line(by, 40),
            quoted(reason, text)
        ),
    )
}

/// `handoff_timed_out`.
pub fn timed_out(id: &str) -> (Tone, String) {
    (Tone::Handoff, format!("⇄ handoff {} timed out", one_line(id, 40)))
}
