//! Summaries of the conversation: steps (their messages, each given a share
//! of the line), turn boundaries and custom events.

use runjournal::Message;

use crate::output::{one_line, quoted};
use crate::render::{speaker, Tone};

/// The most messages of one step shown; the rest are counted.
const SHOWN: usize = 4;

/// `step`: up to four messages, the longer ones cut (each gets a share of
/// `text`; with `--full`, every message whole).
pub fn step(messages: &[Message], text: usize) -> (Tone, String) {
    if messages.is_empty() {
        return (Tone::Plain, "step with no messages".into());
    }
    let full = text == usize::MAX;
    let shown = if full { messages.len() } else { SHOWN };
    let budget = if full {
        usize::MAX
    } else {
        (text + 24) / messages.len().min(SHOWN)
    };
    let mut parts: Vec<String> = messages
        .iter()
        .take(shown)
        .map(|message| format!("{}: {}", speaker(message), quoted(&message.content, budget.max(16))))
        .collect();
    if messages.len() > shown {
        parts.push(format!("+{} more", messages.len() - shown));
    }
    (Tone::Plain, parts.join(" · "))
}

/// `turn_completed`.
pub fn turn_completed() -> (Tone, String) {
    (Tone::Plain, "turn completed".into())
}

/// `custom`: its kind and data.
pub fn custom(kind: &str, data: &str, text: usize) -> (Tone, String) {
    (Tone::Plain, format!("{}: {}", one_line(kind, 30), quoted(data, text)))
}
