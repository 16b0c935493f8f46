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

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runjournal::{ExportItem, Journal, OpenError, Options, ReadError, RunKey, StoreError};
use runjournal_sled::files;

use crate::context::{Context, Db};
use crate::events;
use crate::export_file::write_export;
use crate::leftovers::{self, Work};
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

/// A run the salvage stopped at damage: its key, the events exported, the damage.
type Damaged = (RunKey, u64, ReadError);

/// `export --salvage [RUN] [-o FILE]`.
pub fn run(cx: &mut Context, run: &RunArg, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (journal, _copy) = open(&cx.db)?;
    let selected = if run.given() {
        Some(cx.resolve(&journal, run)?.key)
    } else {
        None
    };
    let items = journal
        .export_order(selected.as_ref())
        .map_err(|error| cx.read_error(error))?;
    let (exported, damaged) = write_export(cx.out, file, |target| {
        let mut exported = 0u64;
        let mut damaged: Vec<Damaged> = Vec::new();
        for ExportItem { key, end_seq } in &items {
            let (events, damage) = events::write_run_until_damage(&journal, key, *end_seq, target)?;
            exported += events;
            if let Some(damage) = damage {
                damaged.push((key.clone(), events, damage));
            }
        }
        Ok((exported, damaged))
    })?;
    for (key, events, damage) in &damaged {
        eprintln!(
            "runjournal: salvage: {key}: exported its first {}; {damage}",
            plural(*events, "event")
        );
    }
    report(cx, file.is_some(), items.len(), exported, &damaged)?;
    if exported == 0 && !items.is_empty() {
        return Err(fail(format!(
            "salvage recovered no event of {} in {}",
            plural(items.len() as u64, "run"),
            cx.db.display()
        )));
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

/// Says what the salvage exported: on stdout when the export went to a file,
/// else on stderr (stdout holds the export).
fn report(cx: &mut Context, to_file: bool, runs: usize, exported: u64, damaged: &[Damaged]) -> anyhow::Result<()> {
    if cx.json {
        let report = serde_json::json!({
            "runs": runs,
            "events": exported,
            "damaged": damaged.iter().map(|(key, events, damage)| serde_json::json!({
                "id": key.short_id(), "goal": key.goal, "episode": key.episode, "agent": key.agent,
                "events": events, "error": damage.to_string(),
            })).collect::<Vec<_>>(),
        });
        if to_file {
            cx.print_json(&report)?;
        } else {
            eprintln!("{report}");
        }
        return Ok(());
    }
    let summary = format!(
        "salvaged {} ({}); {} stopped at damage",
        plural(runs as u64, "run"),
        plural(exported, "event"),
        plural(damaged.len() as u64, "run")
    );
    if to_file {
        writeln!(cx.out, "{summary}")?;
    } else {
        eprintln!("runjournal: {summary}");
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
    let log = files::Log::read(&copy.path)?;
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
