//! `import`: creates the runs of a JSON-lines file, all or nothing.
//!
//! Invariants: a refused file stores nothing. A new database comes into
//! existence only complete: it is built beside its target
//! (`.NAME.importing-PID`, see `leftovers`), closed, and renamed into place;
//! the rename never replaces a database another process created meanwhile
//! (that import is then refused). A refused import removes only its own
//! build directory, never the target; a build directory left by a killed
//! import is removed by the next import to the same target.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use runjournal::{ImportReport, Journal, RunKey};
use serde::Serialize;

use crate::context::Context;
use crate::leftovers::{self, Work};
use crate::output::{fail, plural};
use crate::progress;
use crate::render::status_text;
use crate::select;

/// The arguments of `import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The JSON-lines file to import (`-` for stdin).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// One created run in `import --json`.
#[derive(Serialize)]
struct ImportRow<'a> {
    id: String,
    run: &'a RunKey,
    status: &'static str,
    events: u64,
    epoch: u64,
    head: String,
}

/// `import --json`.
#[derive(Serialize)]
struct ImportJson<'a> {
    runs: Vec<ImportRow<'a>>,
    events: u64,
    lines: u64,
}

/// `import`.
pub fn run(cx: &mut Context, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let file = args.file.as_path();
    let (input, size): (Box<dyn Read>, u64) = if file == Path::new("-") {
        (Box::new(io::stdin().lock()), 0)
    } else {
        let handle = File::open(file).map_err(|error| fail(format!("cannot read {}: {error}", file.display())))?;
        let size = handle.metadata().map_or(0, |metadata| metadata.len());
        (Box::new(handle), size)
    };
    let report = match cx.db.sled_path() {
        Some(db) if !db.exists() => {
            leftovers::remove_stale(db, Work::Import);
            import_new(db, input, size, file)?
        }
        sled => {
            if let Some(db) = sled {
                leftovers::remove_stale(db, Work::Import);
            }
            // An existing database, or a PostgreSQL one: the import stages
            // its runs and publishes them all or nothing.
            let journal = cx.open_or_create()?;
            import_into(&journal, input, size, file)?
        }
    };
    if cx.json {
        write_json(cx, &report)?;
    } else {
        write_text(cx, file, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports `input` into a new database built beside `db`, then renamed to it.
fn import_new(db: &Path, input: Box<dyn Read>, size: u64, file: &Path) -> anyhow::Result<ImportReport> {
    let build = leftovers::path(db, Work::Import);
    let imported = select::open_or_create(&build).and_then(|journal| {
        let report = import_into(&journal, input, size, file)?;
        // Closed (synced, files released) before it is renamed into place.
        drop(journal);
        Ok(report)
    });
    let published = imported.and_then(|report| {
        rename_no_replace(&build, db).map_err(|error| {
            fail(format!(
                "import of {} refused, nothing was stored: {} appeared while the import ran ({error}); \
                 import into it again",
                file.display(),
                db.display()
            ))
        })?;
        Ok(report)
    });
    if published.is_err() {
        drop(std::fs::remove_dir_all(&build));
    }
    published
}

/// Renames the directory `from` to `to`, unless `to` exists (then it fails
/// and changes nothing). An empty directory at `to` is replaced: nothing was
/// written in it.
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "it is not empty",
        ));
    }
    std::fs::rename(from, to)
}

/// Imports `input` into `journal`, with a progress bar over `size` bytes.
fn import_into(journal: &Journal, input: Box<dyn Read>, size: u64, file: &Path) -> anyhow::Result<ImportReport> {
    let bar = progress::bytes(size, "importing");
    let reader: Box<dyn BufRead> = Box::new(BufReader::with_capacity(1 << 20, bar.wrap_read(input)));
    let result = journal.import(reader);
    bar.finish_and_clear();
    result.map_err(|error| {
        crate::failure::coded(
            crate::failure::import_code(&error),
            format!("import of {} refused, nothing was stored: {error}", file.display()),
        )
    })
}

fn write_json(cx: &mut Context, report: &ImportReport) -> anyhow::Result<()> {
    let runs: Vec<ImportRow> = report
        .runs
        .iter()
        .map(|run| ImportRow {
            id: run.key.short_id(),
            run: &run.key,
            status: run.status.as_str(),
            events: run.events,
            epoch: run.epoch,
            head: run.head.to_hex(),
        })
        .collect();
    cx.print_json(&ImportJson {
        runs,
        events: report.events,
        lines: report.lines,
    })
}

fn write_text(cx: &mut Context, file: &Path, report: &ImportReport) -> anyhow::Result<()> {
    let style = cx.style();
    writeln!(
        cx.out,
        "imported {} ({}) from {} into {}",
        plural(report.runs.len() as u64, "run"),
        plural(report.events, "event"),
        file.display(),
        cx.db.display()
    )?;
    for run in &report.runs {
        writeln!(
            cx.out,
            "  {}  {}  {} · {}",
            style.bold(&run.key.short_id()),
            run.key,
            status_text(run.status, style),
            plural(run.events, "event")
        )?;
    }
    Ok(())
}
