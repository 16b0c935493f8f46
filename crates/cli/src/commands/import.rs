//! `import`: creates the runs of a JSON-lines file, all or nothing.
//!
//! Invariants: a refused file stores nothing; a database the refused import
//! created from nothing is removed again, one that existed is kept.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use runjournal::{ImportReport, RunKey};
use serde::Serialize;

use crate::context::Context;
use crate::output::{fail, plural};
use crate::progress;
use crate::render::status_text;

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
        let size = handle.metadata().map(|metadata| metadata.len()).unwrap_or(0);
        (Box::new(handle), size)
    };
    let existed = cx.db.exists();
    let journal = cx.open_or_create()?;
    let bar = progress::bytes(size, "importing");
    let reader: Box<dyn BufRead> = Box::new(BufReader::new(Storing {
        inner: bar.wrap_read(input),
        bar: bar.clone(),
    }));
    let result = journal.import(reader);
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            drop(journal);
            if !existed {
                // The refused import created this database: leave no trace of it.
                drop(std::fs::remove_dir_all(&cx.db));
            }
            return Err(fail(format!(
                "import of {} refused, nothing was stored: {error}",
                file.display()
            )));
        }
    };
    if cx.json {
        write_json(cx, &report)?;
    } else {
        write_text(cx, file, &report)?;
    }
    Ok(ExitCode::SUCCESS)
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

/// A reader that says "storing" on the bar once the input is read: the
/// import validated it all and now stores it in one step.
struct Storing<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Storing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read == 0 && !buf.is_empty() {
            self.bar.set_message("validated; storing");
        }
        Ok(read)
    }
}
