//! Summaries of phase boundaries.

use crate::output::quoted;
use crate::render::Tone;

/// `phase_started`.
pub fn started(index: u32, name: &str) -> (Tone, String) {
    (Tone::Phase, format!("▶ phase {index} {}", quoted(name, 40)))
}

/// `phase_completed`, with its output.
pub fn completed(index: u32, name: &str, output: &str, text: usize) -> (Tone, String) {
    (
        Tone::Phase,
        format!("✔ phase {index} {} → {}", quoted(name, 40), quoted(output, text)),
    )
}
