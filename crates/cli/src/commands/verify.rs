//! `verify`: checks the hash chain and the seqs of one run, or of every run.
//! Every run is checked, and each is reported; the exit is non-zero when one
//! is bad, the error naming the first bad run and seq.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use runjournal::{ReadError, RunFilter, RunKey, RunRecord, VerifyReport};
use serde::Serialize;

use crate::context::Context;
use crate::failure::{coded, Code};
use crate::output::{one_line, plural};
use crate::progress;
use crate::select::RunArg;
use crate::table::{Align, Table};

/// The arguments of `verify` (and `rebuild-snapshots`): a run, or none for every run.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub run: RunArg,
}

/// One run's result in `verify --json`.
#[derive(Serialize)]
struct VerifyRow<'a> {
    id: String,
    run: &'a RunKey,
    ok: bool,
    events: Option<u64>,
    head: Option<String>,
    seq: Option<u64>,
    error: Option<String>,
}

/// `verify --json`.
#[derive(Serialize)]
struct VerifyJson<'a> {
    ok: bool,
    runs_checked: usize,
    runs: Vec<VerifyRow<'a>>,
}

/// A bad run: its key, the first bad seq when known, the error.
type Bad = (RunKey, Option<u64>, String);

/// `verify`.
pub fn run(cx: &mut Context, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let records = if args.run.given() {
        vec![cx.resolve(&journal, &args.run)?]
    } else {
        journal
            .runs(&RunFilter::default())
            .map_err(|error| cx.read_error(error))?
    };
    let total: u64 = records.iter().map(|record| record.head.next_seq).sum();
    let bar = progress::events(total, "verifying");
    let mut results = Vec::with_capacity(records.len());
    for record in records {
        let result = journal.verify(&record.key);
        bar.inc(record.head.next_seq);
        results.push((record, result));
    }
    bar.finish_and_clear();
    let bad = if cx.json {
        write_json(cx, &results)?
    } else {
        write_text(cx, &results)?
    };
    let Some((run, seq, message)) = bad.first() else {
        return Ok(ExitCode::SUCCESS);
    };
    let at = seq.map(|seq| format!(" at seq {seq}")).unwrap_or_default();
    let more = match bad.len() {
        1 => String::new(),
        n => format!(" ({} more bad)", plural((n - 1) as u64, "run")),
    };
    Err(coded(
        Code::Integrity,
        format!(
            "verification failed: run {} {run} is corrupt{at}: {message}{more}",
            run.short_id()
        ),
    ))
}

/// Writes the results as JSON; returns the bad runs.
fn write_json(cx: &mut Context, results: &[(RunRecord, Result<VerifyReport, ReadError>)]) -> anyhow::Result<Vec<Bad>> {
    let mut bad = Vec::new();
    let rows: Vec<VerifyRow> = results
        .iter()
        .map(|(record, result)| match result {
            Ok(report) => VerifyRow {
                id: record.key.short_id(),
                run: &record.key,
                ok: true,
                events: Some(report.events),
                head: Some(report.head.to_hex()),
                seq: None,
                error: None,
            },
            Err(error) => {
                bad.push((record.key.clone(), failed_seq(error), error.to_string()));
                VerifyRow {
                    id: record.key.short_id(),
                    run: &record.key,
                    ok: false,
                    events: None,
                    head: None,
                    seq: failed_seq(error),
                    error: Some(error.to_string()),
                }
            }
        })
        .collect();
    cx.print_json(&VerifyJson {
        ok: bad.is_empty(),
        runs_checked: results.len(),
        runs: rows,
    })?;
    Ok(bad)
}

/// Writes one line per run and, when all are intact, a summary; returns the bad runs.
fn write_text(cx: &mut Context, results: &[(RunRecord, Result<VerifyReport, ReadError>)]) -> anyhow::Result<Vec<Bad>> {
    let style = cx.style();
    let table = Table::fixed(&[(Align::Left, 3), (Align::Left, 0), (Align::Left, 0), (Align::Left, 0)]);
    let mut events = 0;
    let mut bad = Vec::new();
    for (record, result) in results {
        let id = record.key.short_id();
        let key = record.key.to_string();
        let line = match result {
            Ok(report) => {
                events += report.events;
                let detail = format!(
                    "{} · head {}",
                    plural(report.events, "event"),
                    &report.head.to_hex()[..16]
                );
                table.styled_line(&["ok", &id, &key, &detail], |column, cell| match column {
                    0 => style.good(cell),
                    _ => cell.to_owned(),
                })
            }
            Err(error) => {
                let message = error.to_string();
                let detail = one_line(&message, 300);
                bad.push((record.key.clone(), failed_seq(error), message));
                table.styled_line(&["BAD", &id, &key, &detail], |column, cell| match column {
                    0 => style.bad(cell),
                    _ => cell.to_owned(),
                })
            }
        };
        writeln!(cx.out, "{line}")?;
    }
    if bad.is_empty() {
        writeln!(
            cx.out,
            "verified {} ({}): every chain is intact",
            plural(results.len() as u64, "run"),
            plural(events, "event")
        )?;
    }
    Ok(bad)
}

/// The first bad seq a read error names, if any.
fn failed_seq(error: &ReadError) -> Option<u64> {
    match error {
        ReadError::Integrity(integrity) => Some(integrity.seq),
        ReadError::SnapshotCorrupt { seq, .. } => Some(*seq),
        _ => None,
    }
}
