//! `runs`: the runs passing the filters, as a table or a JSON array; each with
//! its parent (the run it was forked from, or `meta.parent`).

use std::cmp::Reverse;
use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use runjournal::{Event, Journal, RunFilter, RunKey, RunRecord, RunStatus};
use serde::Serialize;

use crate::context::Context;
use crate::failure::{coded, Code};
use crate::output::{one_line, plural};
use crate::render::status_text;
use crate::select::RunArg;
use crate::table::{Align, Table};
use crate::when::parse_instant;

/// The arguments of `runs`.
#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Only runs of this goal.
    #[arg(long, value_name = "G")]
    goal: Option<String>,
    /// Only runs of this agent.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// Only runs with this status: running, completed, failed, interrupted or superseded (repeatable: any of them).
    #[arg(long, value_name = "S", value_parser = parse_status)]
    status: Vec<RunStatus>,
    /// Only runs active since: a duration ago (10m, 2h, 3d), an RFC 3339 timestamp or unix milliseconds.
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    since: Option<u64>,
    /// Only runs whose last activity is at or before TIME (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    until: Option<u64>,
    /// Only runs whose parent (the fork parent, or meta.parent) is RUN: a short id or a unique prefix.
    #[arg(long, value_name = "RUN")]
    parent: Option<String>,
    /// The order: last-activity (newest first), created (newest first), key, or events (most first).
    #[arg(long, value_name = "ORDER", default_value = "last-activity")]
    sort: SortOrder,
    /// At most N runs (after sorting).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Refresh the list every --interval until Ctrl-C (on a terminal the screen is redrawn; with --json one JSON
    /// document per line per refresh).
    #[arg(long)]
    watch: bool,
    /// Seconds between refreshes of --watch.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, requires = "watch")]
    interval: f64,
    /// Stop --watch after N refreshes (for scripts; default: until Ctrl-C).
    #[arg(long, value_name = "N", requires = "watch")]
    count: Option<u64>,
}

fn parse_status(text: &str) -> Result<RunStatus, runjournal::core::UnknownStatus> {
    text.parse()
}

/// The order of `runs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortOrder {
    /// The newest last activity first.
    LastActivity,
    /// The newest created first.
    Created,
    /// By key: goal, agent, episode.
    Key,
    /// The most events first.
    Events,
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

/// The table's columns (the time column's heading follows --time-format).
const HEADER: [&str; 8] = [
    "ID",
    "GOAL",
    "EPISODE",
    "AGENT",
    "STATUS",
    "EVENTS",
    "LAST ACTIVITY",
    "PARENT",
];
/// The column of the status, coloured by status.
const STATUS_COLUMN: usize = 4;

/// `runs`.
#[expect(
    clippy::needless_pass_by_value,
    reason = "every subcommand's `run` takes its parsed arguments by value"
)]
pub fn run(cx: &mut Context, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    if !args.watch {
        return list(cx, &journal, &args, false);
    }
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(coded(
            Code::Usage,
            format!("--interval {} is not a positive number of seconds", args.interval),
        ));
    }
    let interval = Duration::from_secs_f64(args.interval);
    let mut refreshes = 0u64;
    loop {
        if cx.out.is_terminal() && !cx.json {
            // Home the cursor and clear the screen: each refresh redraws it.
            write!(cx.out, "\x1b[H\x1b[2J")?;
        }
        list(cx, &journal, &args, true)?;
        cx.out.flush()?;
        refreshes += 1;
        if args.count.is_some_and(|count| refreshes >= count) {
            return Ok(ExitCode::SUCCESS);
        }
        // The refresh period itself, not a wait for another process.
        std::thread::sleep(interval);
    }
}

/// One listing; `watching` prints JSON on one line (one document per refresh).
fn list(cx: &mut Context, journal: &Journal, args: &RunsArgs, watching: bool) -> anyhow::Result<ExitCode> {
    let parent_wanted = match &args.parent {
        Some(id) => Some(cx.resolve(journal, &RunArg::id(id))?.key),
        None => None,
    };
    let filter = RunFilter {
        goal: args.goal.clone(),
        agent: args.agent.clone(),
        status: match args.status.as_slice() {
            [one] => Some(*one),
            _ => None,
        },
    };
    let filtered = filter != RunFilter::default()
        || args.status.len() > 1
        || args.since.is_some()
        || args.until.is_some()
        || parent_wanted.is_some();
    let mut records = journal.runs(&filter).map_err(|error| cx.read_error(error))?;
    records.retain(|record| {
        (args.status.is_empty() || args.status.contains(&record.status))
            && args.since.is_none_or(|since| record.head.last_ts >= since)
            && args.until.is_none_or(|until| record.head.last_ts <= until)
    });
    let mut listed: Vec<(RunRecord, Option<RunKey>)> = records
        .into_iter()
        .map(|record| {
            let parent = parent_of(journal, &record);
            (record, parent)
        })
        .filter(|(_, parent)| {
            parent_wanted
                .as_ref()
                .is_none_or(|wanted| parent.as_ref() == Some(wanted))
        })
        .collect();
    sort(&mut listed, args.sort);
    if let Some(limit) = args.limit {
        listed.truncate(limit);
    }
    let (records, parents): (Vec<RunRecord>, Vec<Option<RunKey>>) = listed.into_iter().unzip();
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
        if watching {
            writeln!(cx.out, "{}", serde_json::to_string(&rows)?)?;
        } else {
            cx.print_json(&rows)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
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
                style.time(record.head.last_ts),
                parent_text(record, parent.as_ref()),
            ]
        })
        .collect();
    let mut table = Table::new(&[
        Align::Left,
        Align::Left,
        Align::Right,
        Align::Left,
        Align::Left,
        Align::Right,
        Align::Left,
        Align::Left,
    ]);
    let time_heading = style.time_heading("LAST ACTIVITY");
    let header = HEADER.map(|cell| {
        if cell == "LAST ACTIVITY" {
            time_heading.as_str()
        } else {
            cell
        }
    });
    table.fit(&header);
    for row in &rows {
        table.fit(row);
    }
    writeln!(cx.out, "{}", style.dim(table.line(&header).trim_end()))?;
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

/// Orders the runs: newest activity or creation first, by key, or most events
/// first; ties keep key order (the order `runs` reads them in).
fn sort(listed: &mut [(RunRecord, Option<RunKey>)], order: SortOrder) {
    match order {
        SortOrder::LastActivity => listed.sort_by_key(|(record, _)| Reverse(record.head.last_ts)),
        SortOrder::Created => listed.sort_by_key(|(record, _)| Reverse(record.created_ts)),
        SortOrder::Key => {}
        SortOrder::Events => listed.sort_by_key(|(record, _)| Reverse(record.head.next_seq)),
    }
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
