//! The commands of SPEC §5 (but `demo`, in its own module, and `bench`, in crates/bench).

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runjournal::fold::Died;
use runjournal::{Envelope, Event, Journal, ReadError, ResumeState, RunFilter, RunKey, RunRecord, RunStatus};
use serde::Serialize;

use crate::output::{fail, one_line, plural, utc, Output};
use crate::progress;
use crate::render;
use crate::select::{open_existing, open_or_create, read_error, resolve, RunArg};

/// `runs`: the runs passing the filters.
pub fn runs(
    db: &Path,
    json: bool,
    out: &mut Output,
    goal: Option<String>,
    agent: Option<String>,
    status: Option<RunStatus>,
) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let filter = RunFilter { goal, agent, status };
    let records = journal.runs(&filter).map_err(|error| read_error(db, error))?;
    let parents: Vec<Option<RunKey>> = records.iter().map(|record| parent_of(&journal, record)).collect();
    if json {
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
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        let filtered = filter != RunFilter::default();
        writeln!(
            out,
            "no runs{} in {}",
            if filtered { " match the filters" } else { "" },
            db.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let style = out.style;
    let rows: Vec<[String; 8]> = records
        .iter()
        .zip(&parents)
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
    let header = [
        "ID",
        "GOAL",
        "EPISODE",
        "AGENT",
        "STATUS",
        "EVENTS",
        "LAST ACTIVITY (UTC)",
        "PARENT",
    ];
    let mut widths = header.map(|title| title.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let numeric = [false, false, true, false, false, true, false, false];
    let line = |cells: &[String; 8], paint: &dyn Fn(usize, String) -> String| {
        let mut text = String::new();
        for (column, cell) in cells.iter().enumerate() {
            let pad = widths[column] - cell.chars().count();
            let padded = if numeric[column] {
                format!("{}{cell}", " ".repeat(pad))
            } else {
                format!("{cell}{}", " ".repeat(pad))
            };
            text.push_str(&paint(column, padded));
            text.push_str("  ");
        }
        text.trim_end().to_owned()
    };
    let header_cells = header.map(str::to_owned);
    writeln!(out, "{}", style.dim(&line(&header_cells, &|_, cell| cell)))?;
    for row in &rows {
        let status = row[4].clone();
        let painted = line(row, &|column, cell| match column {
            0 => style.bold(&cell),
            4 => {
                let pad = cell.len() - status.len();
                format!("{}{}", render::status_text(&status, style), " ".repeat(pad))
            }
            _ => cell,
        });
        writeln!(out, "{painted}")?;
    }
    writeln!(out, "{}", style.dim(&plural(records.len() as u64, "run")))?;
    Ok(ExitCode::SUCCESS)
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

/// `export -o FILE --json`.
#[derive(Serialize)]
struct ExportJson {
    file: String,
    runs: usize,
    events: u64,
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

/// A phase named by index and name.
#[derive(Serialize)]
struct PhaseRef<'a> {
    index: u32,
    name: &'a str,
}

/// One run in `recover --json`: its resume-state summary.
#[derive(Serialize)]
struct RecoverRow<'a> {
    id: String,
    run: &'a RunKey,
    status: &'static str,
    last_seq: Option<u64>,
    epoch: u64,
    iteration: u64,
    segment: u64,
    completed_phases: Vec<PhaseRef<'a>>,
    active_phase: Option<PhaseRef<'a>>,
    compaction_active: bool,
    died: Option<&'a Died>,
}

/// `show`: the run's timeline from `from`.
pub fn show(db: &Path, json: bool, out: &mut Output, run: &RunArg, from: u64) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let record = resolve(&journal, db, run)?;
    if from > 0 && from >= record.head.next_seq {
        return Err(fail(format!(
            "run {} has no seq {from} (its last seq is {})",
            record.key,
            record.head.next_seq.saturating_sub(1)
        )));
    }
    write_timeline(&journal, db, &record, from, json, out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the run's timeline (or its JSON lines) from `from`.
pub fn write_timeline(
    journal: &Journal,
    db: &Path,
    record: &RunRecord,
    from: u64,
    json: bool,
    out: &mut Output,
) -> anyhow::Result<()> {
    let style = out.style;
    if json {
        return stream_events(journal, db, &record.key, from..u64::MAX, out, &mut |_| {});
    }
    // The fold's anomalies, by seq. A fork's fold numbers its parent's prefix
    // too, so its seqs are ambiguous: no annotations for forks. A run that
    // does not fold (corruption) is annotated nowhere; the walk below reports it.
    let anomalies = match (&record.fork, journal.state(&record.key)) {
        (None, Ok(state)) => state.anomalies,
        _ => Vec::new(),
    };
    writeln!(out, "{}", render::run_heading(record, style))?;
    let seq_width = record.head.next_seq.saturating_sub(1).to_string().len().max(3);
    render::write_timeline_header(out, seq_width, style)?;
    let mut failure: Option<io::Error> = None;
    let walk = journal.for_each_event(&record.key, from, |envelope| {
        let kinds: Vec<&str> = anomalies
            .iter()
            .filter(|anomaly| anomaly.seq == envelope.seq)
            .map(|anomaly| anomaly.kind.as_str())
            .collect();
        match render::write_timeline_line(out, &envelope, seq_width, &kinds, style) {
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
    walk.map_err(|error| read_error(db, error))
}

/// Writes the run's events from `from` as JSON lines, calling `each` per event.
/// Writes the run's own events in `seqs` as JSON lines; an I/O error is the
/// outer error, a read error (the first damaged event) the inner one, after
/// every event before it was written. Returns how many were written.
fn write_events(
    journal: &Journal,
    key: &RunKey,
    seqs: std::ops::Range<u64>,
    out: &mut dyn Write,
    each: &mut dyn FnMut(&Envelope),
) -> anyhow::Result<(u64, Result<(), ReadError>)> {
    let mut written = 0u64;
    let mut failure: Option<io::Error> = None;
    let walk = journal.for_each_event(key, seqs.start, |envelope| {
        if envelope.seq >= seqs.end {
            return ControlFlow::Break(());
        }
        each(&envelope);
        match writeln!(out, "{}", envelope.to_json_line()) {
            Ok(()) => {
                written += 1;
                ControlFlow::Continue(())
            }
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    });
    match failure {
        Some(error) => Err(error.into()),
        None => Ok((written, walk)),
    }
}

/// Writes the run's own events `0..end` up to the first one that fails
/// verification; returns how many were written and that damage.
pub fn stream_events_until_damage(
    journal: &Journal,
    db: &Path,
    key: &RunKey,
    end: u64,
    out: &mut dyn Write,
) -> anyhow::Result<(u64, Option<ReadError>)> {
    match write_events(journal, key, 0..end, out, &mut |_| {})? {
        (written, Ok(())) => Ok((written, None)),
        (written, Err(error)) if crate::salvage::is_run_damage(&error) => Ok((written, Some(error))),
        (_, Err(error)) => Err(read_error(db, error)),
    }
}

fn stream_events(
    journal: &Journal,
    db: &Path,
    key: &RunKey,
    seqs: std::ops::Range<u64>,
    out: &mut dyn Write,
    each: &mut dyn FnMut(&Envelope),
) -> anyhow::Result<()> {
    let (_, walk) = write_events(journal, key, seqs, out, each)?;
    walk.map_err(|error| read_error(db, error))
}

/// `state`: the resume state as of the last event or of `at`.
pub fn state(db: &Path, json: bool, out: &mut Output, run: &RunArg, at: Option<u64>) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let record = resolve(&journal, db, run)?;
    let state = match at {
        Some(seq) => journal.state_at(&record.key, seq),
        None => journal.state(&record.key),
    }
    .map_err(|error| read_error(db, error))?;
    write_state(&state, at, json, out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a resume state: SPEC §3 JSON in SPEC key order, or sections.
pub fn write_state(state: &ResumeState, at: Option<u64>, json: bool, out: &mut Output) -> anyhow::Result<()> {
    if json {
        // The struct's fields are in SPEC order; a serde_json::Value would sort them.
        writeln!(out, "{}", serde_json::to_string_pretty(state)?)?;
    } else {
        let style = out.style;
        render::write_state(out, state, at, style)?;
    }
    Ok(())
}

/// `verify`: one run's chain, or every run's.
pub fn verify(db: &Path, json: bool, out: &mut Output, run: &RunArg) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let records = if run.given() {
        vec![resolve(&journal, db, run)?]
    } else {
        journal
            .runs(&RunFilter::default())
            .map_err(|error| read_error(db, error))?
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
    let style = out.style;
    let mut events = 0;
    let mut bad: Vec<(RunKey, Option<u64>, String)> = Vec::new();
    let mut rows = Vec::new();
    for (record, result) in &results {
        let id = record.key.short_id();
        match result {
            Ok(report) => {
                events += report.events;
                if json {
                    rows.push(VerifyRow {
                        id,
                        run: &record.key,
                        ok: true,
                        events: Some(report.events),
                        head: Some(report.head.to_hex()),
                        seq: None,
                        error: None,
                    });
                } else {
                    writeln!(
                        out,
                        "{}   {id}  {}  {} · head {}",
                        style.good("ok"),
                        record.key,
                        plural(report.events, "event"),
                        &report.head.to_hex()[..16]
                    )?;
                }
            }
            Err(error) => {
                let seq = failed_seq(error);
                let message = error.to_string();
                if json {
                    rows.push(VerifyRow {
                        id,
                        run: &record.key,
                        ok: false,
                        events: None,
                        head: None,
                        seq,
                        error: Some(message.clone()),
                    });
                } else {
                    writeln!(
                        out,
                        "{}  {id}  {}  {}",
                        style.bad("BAD"),
                        record.key,
                        one_line(&message, 300)
                    )?;
                }
                bad.push((record.key.clone(), seq, message));
            }
        }
    }
    if json {
        let report = VerifyJson {
            ok: bad.is_empty(),
            runs_checked: results.len(),
            runs: rows,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else if bad.is_empty() {
        writeln!(
            out,
            "verified {} ({}): every chain is intact",
            plural(results.len() as u64, "run"),
            plural(events, "event")
        )?;
    }
    let Some((run, seq, message)) = bad.first() else {
        return Ok(ExitCode::SUCCESS);
    };
    let at = seq.map(|seq| format!(" at seq {seq}")).unwrap_or_default();
    let more = match bad.len() {
        1 => String::new(),
        n => format!(" ({} more bad)", plural((n - 1) as u64, "run")),
    };
    Err(fail(format!(
        "verification failed: run {} {run} is corrupt{at}: {message}{more}",
        run.short_id()
    )))
}

/// The first bad seq a read error names, if any.
fn failed_seq(error: &ReadError) -> Option<u64> {
    match error {
        ReadError::Integrity(integrity) => Some(integrity.seq),
        ReadError::SnapshotCorrupt { seq, .. } => Some(*seq),
        _ => None,
    }
}

/// `export`: JSON lines of one run or every run, to stdout or a file.
pub fn export(db: &Path, json: bool, out: &mut Output, run: &RunArg, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    // A fork is exported after its ancestors' prefixes, so that an import
    // elsewhere recreates its lineage.
    let selected = if run.given() {
        Some(resolve(&journal, db, run)?.key)
    } else {
        None
    };
    let records = journal
        .export_order(selected.as_ref())
        .map_err(|error| read_error(db, error))?;
    let total: u64 = records.iter().map(|item| item.end_seq).sum();
    let bar = progress::events(total, "exporting");
    let write_all = |target: &mut dyn Write| -> anyhow::Result<()> {
        for item in &records {
            stream_events(&journal, db, &item.key, 0..item.end_seq, target, &mut |_| bar.inc(1))?;
        }
        Ok(())
    };
    let Some(file) = file else {
        write_all(out)?;
        bar.finish_and_clear();
        return Ok(ExitCode::SUCCESS);
    };
    // Written beside the target and renamed once complete: a failed export
    // never leaves a partial file that looks like a whole one.
    let partial = partial_path(file);
    let result = File::create(&partial)
        .map_err(|error| fail(format!("cannot create {}: {error}", partial.display())))
        .and_then(|handle| {
            let mut writer = BufWriter::new(handle);
            write_all(&mut writer)?;
            let handle = writer.into_inner().map_err(|error| error.into_error())?;
            handle.sync_all()?;
            Ok(())
        })
        .and_then(|()| {
            std::fs::rename(&partial, file).map_err(|error| fail(format!("cannot write {}: {error}", file.display())))
        });
    bar.finish_and_clear();
    if let Err(error) = result {
        drop(std::fs::remove_file(&partial));
        return Err(error);
    }
    if json {
        let report = ExportJson {
            file: file.display().to_string(),
            runs: records.len(),
            events: total,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(
            out,
            "exported {} ({}) to {}",
            plural(records.len() as u64, "run"),
            plural(total, "event"),
            file.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn partial_path(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    file.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// `import`: creates the runs of a JSON-lines file, all or nothing.
pub fn import(db: &Path, json: bool, out: &mut Output, file: &Path) -> anyhow::Result<ExitCode> {
    let (input, size): (Box<dyn Read>, u64) = if file == Path::new("-") {
        (Box::new(io::stdin().lock()), 0)
    } else {
        let handle = File::open(file).map_err(|error| fail(format!("cannot read {}: {error}", file.display())))?;
        let size = handle.metadata().map(|metadata| metadata.len()).unwrap_or(0);
        (Box::new(handle), size)
    };
    // Only a database this import creates from nothing may be removed again.
    let existed = db.exists();
    let journal = open_or_create(db)?;
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
                drop(std::fs::remove_dir_all(db));
            }
            return Err(fail(format!(
                "import of {} refused, nothing was stored: {error}",
                file.display()
            )));
        }
    };
    if json {
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
        let report = ImportJson {
            runs,
            events: report.events,
            lines: report.lines,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let style = out.style;
    writeln!(
        out,
        "imported {} ({}) from {} into {}",
        plural(report.runs.len() as u64, "run"),
        plural(report.events, "event"),
        file.display(),
        db.display()
    )?;
    for run in &report.runs {
        writeln!(
            out,
            "  {}  {}  {} · {}",
            style.bold(&run.key.short_id()),
            run.key,
            render::status_text(run.status.as_str(), style),
            plural(run.events, "event")
        )?;
    }
    Ok(ExitCode::SUCCESS)
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

/// `recover`: the runs a supervisor should resume, with their resume state.
pub fn recover(db: &Path, json: bool, out: &mut Output) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let states = journal.recoverable().map_err(|error| read_error(db, error))?;
    if json {
        let rows: Vec<RecoverRow> = states
            .iter()
            .map(|state| RecoverRow {
                id: state.run.short_id(),
                run: &state.run,
                status: state.status.as_str(),
                last_seq: state.last_seq,
                epoch: state.epoch,
                iteration: state.iteration,
                segment: state.segment,
                completed_phases: state
                    .phases
                    .completed
                    .iter()
                    .map(|phase| PhaseRef {
                        index: phase.index,
                        name: &phase.name,
                    })
                    .collect(),
                active_phase: state.phases.active.as_ref().map(|phase| PhaseRef {
                    index: phase.index,
                    name: &phase.name,
                }),
                compaction_active: state.compaction.active,
                died: state.died.as_ref(),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if states.is_empty() {
        writeln!(
            out,
            "nothing to recover: every run in {} is completed or failed",
            db.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let style = out.style;
    writeln!(
        out,
        "{} to recover (running or interrupted; a supervisor resumes each in a new process):\n",
        plural(states.len() as u64, "run")
    )?;
    for state in &states {
        render::write_recover_entry(out, state, style)?;
    }
    Ok(ExitCode::SUCCESS)
}
