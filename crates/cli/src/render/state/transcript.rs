//! The transcript section: the current segment's newest messages, speakers
//! aligned in a column.

use std::io::{self, Write};

use runjournal::ResumeState;

use crate::output::{one_line, plural, Style};
use crate::render::speaker;
use crate::table::{Align, Table};

/// How much of the transcript is shown (`state --transcript N|all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranscriptShown {
    /// The newest N messages.
    Last(usize),
    /// Every message of the current segment.
    All,
}

impl TranscriptShown {
    /// The default: the newest 8 messages.
    pub const DEFAULT: TranscriptShown = TranscriptShown::Last(8);
}

/// Writes the transcript's newest messages, as many as `shown` says,
/// counting the earlier ones.
pub fn write(out: &mut dyn Write, state: &ResumeState, shown: TranscriptShown, style: Style) -> io::Result<()> {
    writeln!(
        out,
        "\n{} (segment {}: {})",
        style.bold("Transcript"),
        state.segment,
        plural(state.transcript.len() as u64, "message")
    )?;
    if state.transcript.is_empty() {
        writeln!(out, "  empty")?;
    }
    let skip = match shown {
        TranscriptShown::Last(count) => state.transcript.len().saturating_sub(count),
        TranscriptShown::All => 0,
    };
    if skip > 0 {
        writeln!(
            out,
            "  {}",
            style.dim(&format!(
                "… {} earlier (--transcript all shows them)",
                plural(skip as u64, "message")
            ))
        )?;
    }
    let rows: Vec<[String; 2]> = state.transcript[skip..]
        .iter()
        .map(|message| [speaker(message), one_line(&message.content, 100)])
        .collect();
    let mut table = Table::new(&[Align::Left, Align::Left]);
    for row in &rows {
        table.fit(row);
    }
    for row in &rows {
        writeln!(out, "  {}", table.line(row))?;
    }
    Ok(())
}
