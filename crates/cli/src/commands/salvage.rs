//! `export --salvage`: every run up to its last verified event, even from a
//! damaged database.
//!
//! Invariants: the database is never changed. When it opens, each run is
//! exported up to the first event that fails verification or cannot be read
//! (a store I/O error, such as a deleted blob file), named on stderr, and the
//! export goes on with the next run. A salvage that recovered no event of a
//! database that has runs exits non-zero. When it cannot be opened (sled refuses it, or it
//! lost events its loss guard recorded as durable), the salvage works on a
//! copy (`runjournal_sled::files`): first without sled's snapshot (sled then
//! rebuilds its index from the log) and the guard, then with the log cut
//! back, one segment at a time, to the longest prefix sled accepts. The copy
//! is beside the database (`.NAME.salvage-PID`), removed at the end, and a
//! copy a killed salvage left is removed by the next salvage of that
//! database. A file export is written atomically, like `export -o`.
//!
//! Before sled opens the database (its recovery may clear the log past
//! damage), the salvage reads what existed (`crate::loss`). A run that
//! recovered fewer events than existed is reported (the events, the seqs lost,
//! its lost end) and exported marked: its verified prefix, then a `run_failed`
//! of kind `salvaged`. A salvage that lost anything exits with `integrity`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runjournal::{ExportItem, Journal, OpenError, Options, RunRecord, StoreError};
use runjournal_sled::files;

use crate::context::{Context, Db};
use crate::events;
use crate::export_file::write_export;
use crate::failure::{coded, Code};
use crate::leftovers::{self, Work};
use crate::loss::{self, Existed, Loss};
use crate::output::{fail, plural};
use crate::select::{open_error, RunArg};

/// A copy of a damaged database, removed when dropped.
struct Copy {
    path: PathBuf,
}

impl Drop for Copy {
    fn drop(&mut self) {
        drop(fs::remove_dir_all(&self.path));
    }
}

/// `export --salvage [RUN] [-o FILE]`.
pub fn run(cx: &mut Context, run: &RunArg, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let existed = Existed::of(&cx.db);
    let (journal, copy) = open(&cx.db)?;
    let selected = if run.given() {
        Some(cx.resolve(&journal, run)?.key)
    } else {
        None
    };
    let items = journal
        .export_order(selected.as_ref())
        .map_err(|error| cx.read_error(error))?;
    let now_ms = journal.options().clock.now_millis();
    let (exported, losses, present) = write_export(cx.out, file, |target| {
        let mut exported = 0u64;
        let mut losses: Vec<Loss> = Vec::new();
        let mut present = BTreeSet::new();
        for ExportItem { key, end_seq } in &items {
            let recovered = events::write_run_until_damage(&journal, key, *end_seq, target)?;
            exported += recovered.written;
            // What existed: the whole run, unless the export wants only a
            // prefix of it (an ancestor of the run being salvaged).
            let record = journal.run_info(key).ok();
            let existed_here = match &record {
                Some(record) if *end_seq >= record.head.next_seq => existed.run(record),
                _ => (*end_seq, runjournal::RunStatus::Running),
            };
            if let Some(record) = &record {
                present.insert(record.id);
            }
            if let Some(mut loss) = loss::loss_of(key, &recovered, existed_here) {
                if let Some(envelope) = loss::mark(&recovered, &loss, now_ms) {
                    writeln!(target, "{}", envelope.to_json_line())?;
                    loss.marked = true;
                }
                losses.push(loss);
            }
        }
        Ok((exported, losses, present))
    })?;
    for loss in &losses {
        eprintln!("runjournal: salvage: {}: {}", loss.key, loss.describe());
    }
    // Runs only a damaged log can hide: when sled opened the database itself,
    // a run with records in the log but none reachable was purged.
    let missing = if selected.is_some() || copy.is_none() {
        Vec::new()
    } else {
        existed.missing(&present)
    };
    for record in &missing {
        eprintln!(
            "runjournal: salvage: {}: not recovered; sled's log still holds its record of {} ({}): lost, or \
             purged before the damage",
            record.key,
            plural(record.head.next_seq, "event"),
            record.status.as_str()
        );
    }
    let summary = Summary {
        runs: items.len(),
        exported,
        losses: &losses,
        missing: &missing,
        guarded_events: existed.guarded_events,
        logged_events: existed.logged_events(),
        from_copy: copy.is_some(),
    };
    report(cx, file.is_some(), &summary)?;
    let unaccounted = summary.unaccounted();
    if exported == 0 && !items.is_empty() {
        return Err(fail(format!(
            "salvage recovered no event of {} in {}",
            plural(items.len() as u64, "run"),
            cx.db.display()
        )));
    }
    if unaccounted > 0 && losses.is_empty() {
        return Err(coded(
            Code::Integrity,
            format!(
                "salvage lost {}: the loss guard recorded them durable, and no run record left in sled's log \
                 accounts for them",
                plural(unaccounted, "event")
            ),
        ));
    }
    if !losses.is_empty() {
        return Err(coded(
            Code::Integrity,
            format!(
                "salvage lost {} of {} (the export holds what was recovered; {} marked salvaged)",
                plural(losses.iter().map(Loss::lost).sum::<u64>(), "event"),
                plural(losses.len() as u64, "run"),
                plural(losses.iter().filter(|loss| loss.marked).count() as u64, "run")
            ),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The database, or a copy of it sled accepts (removed when the copy drops).
fn open(db: &Db) -> anyhow::Result<(Journal, Option<Copy>)> {
    let Some(db) = db.sled_path() else {
        // PostgreSQL has no files to copy: salvage reads what verifies.
        return Journal::open_existing(&**db, Options::default())
            .map(|journal| (journal, None))
            .map_err(|error| open_error(db, error));
    };
    leftovers::remove_stale(db, Work::Salvage);
    match Journal::open_existing(db, Options::default()) {
        Ok(journal) => Ok((journal, None)),
        Err(
            error @ (OpenError::Store(StoreError::Missing { .. } | StoreError::Locked { .. }) | OpenError::Thread(_)),
        ) => Err(open_error(db, error)),
        Err(error) => {
            eprintln!(
                "runjournal: salvage: sled cannot open {} ({error}); salvaging from a copy",
                db.display()
            );
            let (journal, copy) = open_copy(db)?;
            Ok((journal, Some(copy)))
        }
    }
}

/// What a salvage exported and lost.
struct Summary<'a> {
    runs: usize,
    exported: u64,
    losses: &'a [Loss],
    missing: &'a [&'a RunRecord],
    guarded_events: Option<u64>,
    logged_events: u64,
    /// Whether sled could only open a copy (its log ended early at damage).
    from_copy: bool,
}

impl Summary<'_> {
    /// Events the loss guard recorded durable beyond every run record left
    /// in sled's log: lost without a trace of their run. Counted only when
    /// sled could not open the database itself (then its log ended early);
    /// otherwise purged runs, whose old records sled may have recycled,
    /// would count.
    fn unaccounted(&self) -> u64 {
        match self.guarded_events {
            Some(guarded) if self.from_copy => guarded.saturating_sub(self.logged_events),
            _ => 0,
        }
    }
}

/// Says what the salvage exported and lost: on stdout when the export went to
/// a file, else on stderr (stdout holds the export).
fn report(cx: &mut Context, to_file: bool, summary: &Summary<'_>) -> anyhow::Result<()> {
    let lost: u64 = summary.losses.iter().map(Loss::lost).sum();
    let ends = summary.losses.iter().filter(|loss| loss.lost_end.is_some()).count() as u64;
    if cx.json {
        let report = serde_json::json!({
            "runs": summary.runs,
            "events": summary.exported,
            "lost_events": lost,
            "damaged": summary.losses.iter().map(|loss| serde_json::json!({
                "id": loss.key.short_id(), "goal": loss.key.goal, "episode": loss.key.episode,
                "agent": loss.key.agent, "events": loss.exported, "existed": loss.existed,
                "lost_events": loss.lost(), "lost_seqs": [loss.exported, loss.existed - 1],
                "end_lost": loss.lost_end.is_some(),
                "lost_status": loss.lost_end.map(runjournal::RunStatus::as_str),
                "marked": loss.marked, "error": loss.cause,
            })).collect::<Vec<_>>(),
            "missing": summary.missing.iter().map(|record| serde_json::json!({
                "id": record.key.short_id(), "goal": record.key.goal, "episode": record.key.episode,
                "agent": record.key.agent, "existed": record.head.next_seq, "status": record.status.as_str(),
            })).collect::<Vec<_>>(),
            "guard_events": summary.guarded_events,
            "logged_events": summary.logged_events,
            "unaccounted_events": summary.unaccounted(),
        });
        if to_file {
            cx.print_json(&report)?;
        } else {
            eprintln!("{report}");
        }
        return Ok(());
    }
    let mut text = format!(
        "salvaged {} ({}); {} stopped at damage",
        plural(summary.runs as u64, "run"),
        plural(summary.exported, "event"),
        plural(summary.losses.len() as u64, "run")
    );
    if lost > 0 {
        let ends_word = if ends == 1 { "end" } else { "ends" };
        write!(text, ", losing {} and {ends} {ends_word}", plural(lost, "event"))?;
    }
    if !summary.missing.is_empty() {
        write!(text, "; {} not recovered", plural(summary.missing.len() as u64, "run"))?;
    }
    let unaccounted = summary.unaccounted();
    if unaccounted > 0 {
        write!(
            text,
            "; the loss guard recorded {} durable, {unaccounted} more than any run record in the log accounts for",
            plural(summary.guarded_events.unwrap_or_default(), "event"),
        )?;
    }
    if to_file {
        writeln!(cx.out, "{text}")?;
    } else {
        eprintln!("runjournal: {text}");
    }
    Ok(())
}

/// Opens a copy of `db` that sled accepts: without its snapshot, then with
/// its log cut back segment by segment.
fn open_copy(db: &Path) -> anyhow::Result<(Journal, Copy)> {
    let copy = Copy {
        path: leftovers::path(db, Work::Salvage),
    };
    drop(fs::remove_dir_all(&copy.path));
    files::copy_without_snapshot(db, &copy.path)?;
    if let Ok(journal) = Journal::open_existing(&copy.path, Options::default()) {
        eprintln!("runjournal: salvage: opened a copy without sled's snapshot and loss guard");
        return Ok((journal, copy));
    }
    let log = files::Log::of(db, &copy.path)?;
    for length in log.segment_prefixes() {
        log.cut_to(length)?;
        if let Ok(journal) = Journal::open_existing(&copy.path, Options::default()) {
            eprintln!(
                "runjournal: salvage: opened a copy with sled's log cut to {} of {} bytes",
                length,
                log.len()
            );
            return Ok((journal, copy));
        }
    }
    Err(fail(format!(
        "salvage: sled cannot open {} or any prefix of its log; nothing can be exported",
        db.display()
    )))
}
