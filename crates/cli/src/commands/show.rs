//! `show`: a run's timeline from a seq, one line per event annotated with the
//! fold's anomalies (`--json`: its events as JSON lines, like `export`).

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;

use clap::Args;
use runjournal::{Journal, RunRecord};

use crate::context::Context;
use crate::events;
use crate::output::fail;
use crate::render::timeline;
use crate::select::RunArg;

/// The arguments of `show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    run: RunArg,
    /// Start at this seq.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    from: u64,
}

/// `show`.
pub fn run(cx: &mut Context, args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let record = cx.resolve(&journal, &args.run)?;
    let from = args.from;
    if from > 0 && from >= record.head.next_seq {
        return Err(fail(format!(
            "run {} has no seq {from} (its last seq is {})",
            record.key,
            record.head.next_seq.saturating_sub(1)
        )));
    }
    write_timeline(cx, &journal, &record, from)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the run's timeline (with `--json`, its JSON lines) from `from`.
pub fn write_timeline(cx: &mut Context, journal: &Journal, record: &RunRecord, from: u64) -> anyhow::Result<()> {
    if cx.json {
        return events::write_run(journal, &cx.db, &record.key, from..u64::MAX, cx.out, &mut |_| {});
    }
    let style = cx.style();
    // The fold's anomalies, by seq. A fork's fold numbers its parent's prefix
    // too, so its seqs are ambiguous: no annotations for forks. A run that
    // does not fold (corruption) is annotated nowhere; the walk below reports it.
    let anomalies = match (&record.fork, journal.state(&record.key)) {
        (None, Ok(state)) => state.anomalies,
        _ => Vec::new(),
    };
    writeln!(cx.out, "{}", timeline::run_heading(record, style))?;
    let table = timeline::table(record.head.next_seq.saturating_sub(1));
    writeln!(cx.out, "{}", timeline::header(&table, style))?;
    let out = &mut *cx.out;
    let mut failure: Option<io::Error> = None;
    let walk = journal.for_each_event(&record.key, from, |envelope| {
        let kinds: Vec<&str> = anomalies
            .iter()
            .filter(|anomaly| anomaly.seq == envelope.seq)
            .map(|anomaly| anomaly.kind.as_str())
            .collect();
        match writeln!(out, "{}", timeline::line(&table, &envelope, &kinds, style)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(error) = failure {
        return Err(error.into());
    }
    walk.map_err(|error| cx.read_error(error))
}
