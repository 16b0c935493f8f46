//! Human renderings: the timeline of `show` (one line per event), the
//! sections of `state` and the entries of `recover`.
//!
//! Invariants: every rendering is a pure function of what it is given (no
//! reads), every free text is cut to one line, and enum names come from
//! `runjournal` (`as_str`), never spelled again here.

pub mod event;
pub mod recover;
pub mod state;
pub mod timeline;

use runjournal::{Message, RunStatus};

use crate::output::{one_line, Style};

/// The longest piece of free text quoted in a one-line summary.
pub const TEXT: usize = 72;

/// How an event line stands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// An ordinary event.
    Plain,
    /// Phase boundaries.
    Phase,
    /// Compactions and interruptions.
    Warn,
    /// Handoffs.
    Handoff,
    /// Deaths and failures.
    Bad,
    /// Completion.
    Good,
    /// A resume (new epoch).
    Resume,
}

impl Tone {
    /// `text` in this tone.
    pub fn paint(self, style: Style, text: &str) -> String {
        match self {
            Tone::Plain => text.to_owned(),
            Tone::Phase => style.phase(text),
            Tone::Warn => style.warn(text),
            Tone::Handoff => style.handoff(text),
            Tone::Bad => style.bad(text),
            Tone::Good => style.good(text),
            Tone::Resume => style.resume(text),
        }
    }
}

/// A run status's name, coloured.
pub fn status_text(status: RunStatus, style: Style) -> String {
    let name = status.as_str();
    match status {
        RunStatus::Completed => style.good(name),
        RunStatus::Failed => style.bad(name),
        RunStatus::Interrupted => style.warn(name),
        // Running, and any status a later build adds.
        _ => style.bold(name),
    }
}

/// Who speaks a message: its role, and its name when it has one.
pub fn speaker(message: &Message) -> String {
    let name = message
        .name
        .as_ref()
        .map(|name| format!(" ({})", one_line(name, 30)))
        .unwrap_or_default();
    format!("{}{name}", message.role.as_str())
}
