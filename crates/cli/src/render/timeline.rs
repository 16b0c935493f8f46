//! The timeline of `show`: a heading naming the run, a column header, then
//! one line per event with the anomalies the fold recorded at its seq.
//!
//! Invariant: the columns (seq, run with `--with-prefix`, time, epoch, event
//! type, summary) have widths fixed before the first line, so a timeline
//! streams.

use runjournal::{Envelope, RunRecord};
use std::fmt::Write as _;

use super::event::summarize;
use super::{status_text, TEXT};
use crate::output::{plural, Style};
use crate::table::{Align, Table};

/// The width of the epoch column.
const EPOCH_WIDTH: usize = 5;
/// The width of the event type column (the longest type name).
const EVENT_WIDTH: usize = 18;
/// The width of a short run id.
const ID_WIDTH: usize = 8;

/// The heading line of a run: id, key, status, epoch, events, fork (and
/// whether its inherited prefix is shown).
pub fn run_heading(record: &RunRecord, with_prefix: bool, style: Style) -> String {
    let mut text = format!(
        "{} {}  {} · {} · epoch {}",
        style.bold("run"),
        style.bold(&record.key.short_id()),
        record.key,
        status_text(record.status, style),
        record.head.epoch
    );
    let _ = write!(text, " · {}", plural(record.head.next_seq, "event"));
    if let Some(fork) = &record.fork {
        let shown = if with_prefix {
            "its prefix is shown first; SEQ counts positions in the whole history"
        } else {
            "its prefix is not shown; --with-prefix shows it"
        };
        let _ = write!(
            text,
            " · forked from {} {} at seq {} ({shown})",
            fork.parent_key.short_id(),
            fork.parent_key,
            fork.seq
        );
    }
    text
}

/// The columns of a timeline and how its lines are written.
pub struct Timeline {
    table: Table,
    /// A RUN column: the run each event is stored in (`--with-prefix`).
    with_run: bool,
    /// The longest free text in a summary.
    text: usize,
    style: Style,
}

impl Timeline {
    /// A timeline of seqs up to `last_seq`; `with_run` adds the RUN column,
    /// `full` keeps free text whole.
    pub fn new(last_seq: u64, with_run: bool, full: bool, style: Style) -> Timeline {
        let mut columns = vec![(Align::Right, last_seq.to_string().len().max(3))];
        if with_run {
            columns.push((Align::Left, ID_WIDTH));
        }
        columns.extend([
            (Align::Left, style.time_width()),
            (Align::Right, EPOCH_WIDTH),
            (Align::Left, EVENT_WIDTH),
            (Align::Left, 0),
        ]);
        Timeline {
            table: Table::fixed(&columns),
            with_run,
            text: if full { usize::MAX } else { TEXT },
            style,
        }
    }

    /// The column header.
    pub fn header(&self) -> String {
        let time = self.style.time_heading("TIME");
        let mut cells = vec!["SEQ"];
        if self.with_run {
            cells.push("RUN");
        }
        cells.extend([time.as_str(), "EPOCH", "EVENT", "SUMMARY"]);
        self.style.dim(self.table.line(&cells).trim_end())
    }

    /// One event's line at `seq` (its own seq, or its history position),
    /// with the anomalies the fold recorded for it.
    pub fn line(&self, seq: u64, envelope: &Envelope, anomalies: &[String]) -> String {
        let style = self.style;
        let (tone, summary) = summarize(&envelope.event, self.text);
        let mut cells = vec![seq.to_string()];
        if self.with_run {
            cells.push(envelope.run.short_id());
        }
        cells.extend([
            style.time(envelope.ts),
            envelope.epoch.to_string(),
            envelope.event.type_name().to_owned(),
            summary,
        ]);
        let event_column = cells.len() - 2;
        let line = self.table.styled_line(&cells, |column, cell| {
            if column == event_column {
                tone.paint(style, cell)
            } else if column == event_column + 1 {
                let mut text = tone.paint(style, cell);
                for kind in anomalies {
                    let _ = write!(text, "  {}", style.warn(&format!("⚠ {kind}")));
                }
                text
            } else {
                cell.to_owned()
            }
        });
        line.trim_end().to_owned()
    }
}
