//! The timeline of `show`: a heading naming the run, a column header, then
//! one line per event with the anomalies the fold recorded at its seq.
//!
//! Invariant: the columns (seq, UTC time, epoch, event type, summary) have
//! widths fixed before the first line, so a timeline streams.

use runjournal::{Envelope, RunRecord};

use super::event::summarize;
use super::status_text;
use crate::output::{plural, utc, Style};
use crate::table::{Align, Table};

/// The width of a UTC time.
const TIME_WIDTH: usize = 23;
/// The width of the epoch column.
const EPOCH_WIDTH: usize = 5;
/// The width of the event type column (the longest type name).
const EVENT_WIDTH: usize = 18;

/// The heading line of a run: id, key, status, epoch, events, fork.
pub fn run_heading(record: &RunRecord, style: Style) -> String {
    let mut text = format!(
        "{} {}  {} · {} · epoch {}",
        style.bold("run"),
        style.bold(&record.key.short_id()),
        record.key,
        status_text(record.status, style),
        record.head.epoch
    );
    text.push_str(&format!(" · {}", plural(record.head.next_seq, "event")));
    if let Some(fork) = &record.fork {
        text.push_str(&format!(
            " · forked from {} {} at seq {} (its prefix is not shown)",
            fork.parent_key.short_id(),
            fork.parent_key,
            fork.seq
        ));
    }
    text
}

/// The timeline's columns, for seqs up to `last_seq`.
pub fn table(last_seq: u64) -> Table {
    let seq_width = last_seq.to_string().len().max(3);
    Table::fixed(&[
        (Align::Right, seq_width),
        (Align::Left, TIME_WIDTH),
        (Align::Right, EPOCH_WIDTH),
        (Align::Left, EVENT_WIDTH),
        (Align::Left, 0),
    ])
}

/// The column header.
pub fn header(table: &Table, style: Style) -> String {
    style.dim(&table.line(&["SEQ", "TIME (UTC)", "EPOCH", "EVENT", "SUMMARY"]))
}

/// One event's line, with the anomalies the fold recorded at its seq.
pub fn line(table: &Table, envelope: &Envelope, anomalies: &[&str], style: Style) -> String {
    let (tone, summary) = summarize(&envelope.event);
    let cells = [
        envelope.seq.to_string(),
        utc(envelope.ts),
        envelope.epoch.to_string(),
        envelope.event.type_name().to_owned(),
        summary,
    ];
    let line = table.styled_line(&cells, |column, cell| match column {
        3 => tone.paint(style, cell),
        4 => {
            let mut text = tone.paint(style, cell);
            for kind in anomalies {
                text.push_str(&format!("  {}", style.warn(&format!("⚠ {kind}"))));
            }
            text
        }
        _ => cell.to_owned(),
    });
    line.trim_end().to_owned()
}
