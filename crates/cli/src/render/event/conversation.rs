//! Summaries of the conversation: steps (their messages, each given a share
//! of the line), turn boundaries and custom events.

use runjournal::Message;

use crate::output::{one_line, quoted};
use crate::render::{speaker, Tone, TEXT};

/// The most messages of one step shown; the rest are counted.
const SHOWN: usize = 4;

/// `step`: up to four messages, the longer ones cut.
pub fn step(messages: &[Message]) -> (Tone, String) {
    if messages.is_empty() {
        return (Tone::Plain, "step with no messages".into());
    }
    let budget = (TEXT + 24) / messages.len().min(SHOWN);
    let mut parts: Vec<String> = messages
        .iter()
        .take(SHOWN)
        .map(|message| format!("{}: {}", speaker(message), quoted(&message.content, budget.max(16))))
        .collect();
    if messages.len() > SHOWN {
        parts.push(format!("+{} more", messages.len() - SHOWN));
    }
    (Tone::Plain, parts.join(" · "))
}

/// `turn_completed`.
pub fn turn_completed() -> (Tone, String) {
    (Tone::Plain, "turn completed".into())
}

/// `custom`: its kind and data.
pub fn custom(kind: &str, data: &str) -> (Tone, String) {
    (Tone::Plain, format!("{}: {}", one_line(kind, 30), quoted(data, TEXT)))
}
