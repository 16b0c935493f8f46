//! `runs`: the runs passing the filters, as a table or a JSON array; each with
//! its parent (the run it was forked from, or `meta.parent`).

use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

use clap::Args;
use runjournal::{Event, Journal, RunFilter, RunKey, RunRecord, RunStatus};
use serde::Serialize;

use crate::context::Context;
use crate::output::{one_line, plural, utc};
use crate::render::status_text;
use crate::table::{Align, Table};

/// The arguments of `runs`.
#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Only runs of this goal.
    #[arg(long, value_name = "G")]
    goal: Option<String>,
    /// Only runs of this agent.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// Only runs with this status: running, completed, failed or interrupted.
    #[arg(long, value_name = "S", value_parser = parse_status)]
    status: Option<RunStatus>,
}

fn parse_status(text: &str) -> Result<RunStatus, runjournal::core::UnknownStatus> {
    text.parse()
}

/// A row of `runs --json`.
#[derive(Serialize)]
struct RunRow<'a> {
    id: String,
    goal: &'a str,
    episode: u32,
    agent: &'a str,
    status: &'static str,
    events: u64,
    last_ts: u64,
    parent: Option<&'a RunKey>,
}

/// The table's columns.
const HEADER: [&str; 8] = [
    "ID",
    "GOAL",
    "EPISODE",
    "AGENT",
    "STATUS",
    "EVENTS",
    "LAST ACTIVITY (UTC)",
    "PARENT",
];
/// The column of the status, coloured by status.
const STATUS_COLUMN: usize = 4;

/// `runs`.
pub fn run(cx: &mut Context, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let filter = RunFilter {
        goal: args.goal,
        agent: args.agent,
        status: args.status,
    };
    let records = journal.runs(&filter).map_err(|error| cx.read_error(error))?;
    let parents: Vec<Option<RunKey>> = records.iter().map(|record| parent_of(&journal, record)).collect();
    if cx.json {
        let rows: Vec<RunRow> = records
            .iter()
            .zip(&parents)
            .map(|(record, parent)| RunRow {
                id: record.key.short_id(),
                goal: &record.key.goal,
                episode: record.key.episode,
                agent: &record.key.agent,
                status: record.status.as_str(),
                events: record.head.next_seq,
                last_ts: record.head.last_ts,
                parent: parent.as_ref(),
            })
            .collect();
        cx.print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        let filtered = filter != RunFilter::default();
        writeln!(
            cx.out,
            "no runs{} in {}",
            if filtered { " match the filters" } else { "" },
            cx.db.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    write_table(cx, &records, &parents)?;
    Ok(ExitCode::SUCCESS)
}

fn write_table(cx: &mut Context, records: &[RunRecord], parents: &[Option<RunKey>]) -> anyhow::Result<()> {
    let style = cx.style();
    let rows: Vec<[String; 8]> = records
        .iter()
        .zip(parents)
        .map(|(record, parent)| {
            [
                record.key.short_id(),
                one_line(&record.key.goal, 40),
                record.key.episode.to_string(),
                one_line(&record.key.agent, 30),
                record.status.as_str().to_owned(),
                record.head.next_seq.to_string(),
                utc(record.head.last_ts),
                parent_text(record, parent.as_ref()),
            ]
        })
        .collect();
    use Align::{Left, Right};
    let mut table = Table::new(&[Left, Left, Right, Left, Left, Right, Left, Left]);
    table.fit(&HEADER);
    for row in &rows {
        table.fit(row);
    }
    writeln!(cx.out, "{}", style.dim(table.line(&HEADER).trim_end()))?;
    for (row, record) in rows.iter().zip(records) {
        let line = table.styled_line(row, |column, cell| match column {
            0 => style.bold(cell),
            STATUS_COLUMN => status_text(record.status, style),
            _ => cell.to_owned(),
        });
        writeln!(cx.out, "{}", line.trim_end())?;
    }
    writeln!(cx.out, "{}", style.dim(&plural(records.len() as u64, "run")))?;
    Ok(())
}

/// The run's parent: the run it was forked from, or `meta.parent` of its `run_started`.
fn parent_of(journal: &Journal, record: &RunRecord) -> Option<RunKey> {
    if let Some(fork) = &record.fork {
        return Some(fork.parent_key.clone());
    }
    let mut parent = None;
    let read = journal.for_each_event(&record.key, 0, |envelope| {
        if let Event::RunStarted { meta } = envelope.event {
            parent = meta.parent;
        }
        ControlFlow::Break(())
    });
    if let Err(error) = read {
        eprintln!("runjournal: warning: {error} (its parent is not shown; `runjournal verify` checks every run)");
    }
    parent
}

fn parent_text(record: &RunRecord, parent: Option<&RunKey>) -> String {
    match (&record.fork, parent) {
        (Some(fork), _) => format!("{} (fork at seq {})", fork.parent_key.short_id(), fork.seq),
        (None, Some(parent)) => parent.short_id(),
        (None, None) => "-".into(),
    }
}
