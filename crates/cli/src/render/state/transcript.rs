//! The transcript section: the current segment's newest messages, speakers
//! aligned in a column.

use std::io::{self, Write};

use runjournal::ResumeState;

use crate::output::{one_line, plural, Style};
use crate::render::speaker;
use crate::table::{Align, Table};

/// The most transcript messages shown.
const TAIL: usize = 8;

/// Writes the transcript's newest [`TAIL`] messages, counting the earlier ones.
pub fn write(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
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
    let skip = state.transcript.len().saturating_sub(TAIL);
    if skip > 0 {
        writeln!(
            out,
            "  {}",
            style.dim(&format!("… {} earlier", plural(skip as u64, "message")))
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
