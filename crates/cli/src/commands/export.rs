//! `export`: the JSON lines of docs/format.md of one run or every run, to stdout or
//! to a file written atomically (`export --salvage` is in `salvage`).
//!
//! Invariant: a fork is exported after its ancestors' prefixes, so that an
//! import elsewhere recreates its lineage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use runjournal::RunKey;
use serde::Serialize;

use super::salvage;
use crate::context::Context;
use crate::events;
use crate::export_file::write_export;
use crate::failure::{coded, Code};
use crate::otlp;
use crate::output::plural;
use crate::progress;
use crate::select::RunArg;

/// The arguments of `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    run: RunArg,
    /// Write to FILE instead of stdout (replaced only once the export succeeded).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Export every run up to its last verified event, even from a damaged
    /// database (which is never changed; one sled cannot open is read from a copy).
    #[arg(long)]
    salvage: bool,
    /// The format: jsonl (the JSON lines of docs/format.md) or otlp-json (one
    /// OpenTelemetry trace per run, docs/otlp.md).
    #[arg(long, value_name = "FORMAT", default_value = "jsonl")]
    format: ExportFormat,
    /// With otlp-json: put message content, outputs and summaries in the spans.
    #[arg(long)]
    include_content: bool,
    /// POST the OTLP trace to this OTLP/HTTP (JSON) collector URL instead of
    /// writing it (implies --format otlp-json; a URL without a path gets /v1/traces).
    #[arg(long, value_name = "URL", conflicts_with_all = ["output", "salvage"])]
    otlp_endpoint: Option<String>,
}

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// JSON lines, one envelope a line.
    Jsonl,
    /// An OTLP/JSON `ExportTraceServiceRequest`.
    OtlpJson,
}

/// `export -o FILE --json`.
#[derive(Serialize)]
struct ExportJson {
    file: String,
    runs: usize,
    events: u64,
}

/// `export` (and `export --salvage`).
pub fn run(cx: &mut Context, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let file = args.output.as_deref();
    if args.salvage {
        return salvage::run(cx, &args.run, file);
    }
    if args.otlp_endpoint.is_some() || args.format == ExportFormat::OtlpJson {
        return otlp(cx, args);
    }
    let journal = cx.open_existing()?;
    let selected = if args.run.given() {
        Some(cx.resolve(&journal, &args.run)?.key)
    } else {
        None
    };
    let records = journal
        .export_order(selected.as_ref())
        .map_err(|error| cx.read_error(error))?;
    let total: u64 = records.iter().map(|item| item.end_seq).sum();
    let bar = progress::events(total, "exporting");
    let db = &cx.db;
    let written = write_export(cx.out, file, |target| {
        for item in &records {
            events::write_run(&journal, db, &item.key, 0..item.end_seq, target, &mut |_| bar.inc(1))?;
        }
        Ok(())
    });
    bar.finish_and_clear();
    written?;
    if let Some(file) = file {
        report(cx, file, records.len(), total)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `export --format otlp-json` and `--otlp-endpoint`: one trace per run.
fn otlp(cx: &mut Context, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    if args.salvage {
        return Err(coded(
            Code::Usage,
            "--salvage exports JSON lines only, not --format otlp-json",
        ));
    }
    let journal = cx.open_existing()?;
    let keys: Vec<RunKey> = if args.run.given() {
        vec![cx.resolve(&journal, &args.run)?.key]
    } else {
        let records = journal.export_order(None).map_err(|error| cx.read_error(error))?;
        records.into_iter().map(|item| item.key).collect()
    };
    let mut histories = Vec::with_capacity(keys.len());
    for key in &keys {
        histories.push(journal.history(key).map_err(|error| cx.read_error(error))?);
    }
    let runs: Vec<otlp::RunTrace<'_>> = keys
        .iter()
        .zip(&histories)
        .map(|(key, history)| otlp::RunTrace { key, history })
        .collect();
    let request = otlp::request(&runs, args.include_content);
    let spans: usize = request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .map(|scope| scope.spans.len())
        .sum();
    let body = serde_json::to_vec(&request)?;
    if let Some(endpoint) = &args.otlp_endpoint {
        otlp::post(endpoint, body).map_err(|error| coded(Code::Io, error))?;
        if cx.json {
            return cx
                .print_json(&serde_json::json!({"endpoint": endpoint, "runs": keys.len(), "spans": spans}))
                .map(|()| ExitCode::SUCCESS);
        }
        writeln!(
            cx.out,
            "posted {} ({}) to {endpoint}",
            plural(keys.len() as u64, "trace"),
            plural(spans as u64, "span")
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let file = args.output.as_deref();
    write_export(cx.out, file, |target| {
        target.write_all(&body)?;
        target.write_all(b"\n")?;
        Ok(())
    })?;
    if let Some(file) = file {
        let events = histories.iter().map(|history| history.len() as u64).sum();
        report(cx, file, keys.len(), events)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Says what an export to `file` wrote.
fn report(cx: &mut Context, file: &Path, runs: usize, events: u64) -> anyhow::Result<()> {
    if cx.json {
        return cx.print_json(&ExportJson {
            file: file.display().to_string(),
            runs,
            events,
        });
    }
    writeln!(
        cx.out,
        "exported {} ({}) to {}",
        plural(runs as u64, "run"),
        plural(events, "event"),
        file.display()
    )?;
    Ok(())
}
