//! Summaries of task claims and completions.

use runjournal::TaskResult;
use std::fmt::Write as _;

use crate::output::{one_line, quoted};
use crate::render::Tone;

/// `task_claimed`, with the claim's priority and confidence.
pub fn claimed(task: &str, agent: &str, priority: u8, confidence: f64) -> (Tone, String) {
    (
        Tone::Plain,
        format!(
            "task {} claimed by {} (priority {priority}, confidence {confidence:.2})",
            one_line(task, 40),
            one_line(agent, 40)
        ),
    )
}

/// `task_completed`, with its result and summary.
pub fn completed(task: &str, agent: &str, result: TaskResult, summary: Option<&str>, max: usize) -> (Tone, String) {
    let mut text = format!(
        "task {} completed by {}: {}",
        one_line(task, 40),
        one_line(agent, 40),
        result.as_str()
    );
    if let Some(summary) = summary {
        let _ = write!(text, " — {}", quoted(summary, max));
    }
    (Tone::Plain, text)
}
