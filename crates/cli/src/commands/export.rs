//! `export`: the JSON lines of docs/format.md of one run or every run, to stdout or
//! to a file written atomically (`export --salvage` is in `salvage`).
//!
//! Invariant: a fork is exported after its ancestors' prefixes, so that an
//! import elsewhere recreates its lineage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::salvage;
use crate::context::Context;
use crate::events;
use crate::export_file::write_export;
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
