//! `export --salvage`: export every run up to its last verified event, even
//! from a damaged database.
//!
//! The database is never changed. When it opens, each run is exported up to
//! the first event that fails verification, and the export goes on with the
//! next run. When it cannot be opened (sled refuses it, or it lost events its
//! loss guard recorded as durable), the salvage works on a copy:
//! first without sled's snapshot file (sled then rebuilds its index from the
//! log), then with the log cut back, one 512 KiB segment at a time, to the
//! longest prefix sled accepts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runjournal::{ExportItem, Journal, OpenError, Options, ReadError, StoreError};

use crate::commands::stream_events_until_damage;
use crate::output::{fail, plural, Output};
use crate::select::{open_error, read_error, resolve, RunArg};

/// sled 0.34's default log segment size: the unit the log is cut back by.
const SEGMENT: u64 = 512 * 1024;

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
pub fn export_salvage(
    db: &Path,
    json: bool,
    out: &mut Output,
    run: &RunArg,
    file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let (journal, _copy) = match Journal::open_existing(db, Options::default()) {
        Ok(journal) => (journal, None),
        Err(
            error @ (OpenError::Store(StoreError::Missing { .. } | StoreError::Locked { .. }) | OpenError::Thread(_)),
        ) => return Err(open_error(db, error)),
        Err(error) => {
            eprintln!(
                "runjournal: salvage: sled cannot open {} ({error}); salvaging from a copy",
                db.display()
            );
            let (journal, copy) = open_copy(db)?;
            (journal, Some(copy))
        }
    };
    let selected = if run.given() {
        Some(resolve(&journal, db, run)?.key)
    } else {
        None
    };
    let items = journal
        .export_order(selected.as_ref())
        .map_err(|error| read_error(db, error))?;
    let mut target: Box<dyn Write> = match file {
        Some(file) => {
            Box::new(std::io::BufWriter::new(fs::File::create(file).map_err(|error| {
                fail(format!("cannot create {}: {error}", file.display()))
            })?))
        }
        None => Box::new(&mut *out),
    };
    let mut exported = 0u64;
    let mut damaged = Vec::new();
    for ExportItem { key, end_seq } in &items {
        let (events, damage) = stream_events_until_damage(&journal, db, key, *end_seq, &mut *target)?;
        exported += events;
        if let Some(damage) = damage {
            damaged.push((key.clone(), events, damage));
        }
    }
    target.flush()?;
    drop(target);
    for (key, events, damage) in &damaged {
        eprintln!(
            "runjournal: salvage: {key}: exported its first {}; {damage}",
            plural(*events, "event")
        );
    }
    let summary = format!(
        "salvaged {} ({}); {} stopped at damage",
        plural(items.len() as u64, "run"),
        plural(exported, "event"),
        plural(damaged.len() as u64, "run")
    );
    if json {
        let report = serde_json::json!({
            "runs": items.len(),
            "events": exported,
            "damaged": damaged.iter().map(|(key, events, damage)| serde_json::json!({
                "id": key.short_id(), "goal": key.goal, "episode": key.episode, "agent": key.agent,
                "events": events, "error": damage.to_string(),
            })).collect::<Vec<_>>(),
        });
        if file.is_some() {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            eprintln!("{report}");
        }
    } else if file.is_some() {
        writeln!(out, "{summary}")?;
    } else {
        eprintln!("runjournal: {summary}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a copy of `db` that sled accepts: without its snapshot, then with
/// its log cut back segment by segment.
fn open_copy(db: &Path) -> anyhow::Result<(Journal, Copy)> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let copy = Copy {
        path: std::env::temp_dir().join(format!("runjournal-salvage-{}-{nanos}", std::process::id())),
    };
    copy_dir(db, &copy.path)?;
    // The copy drops the loss guard (its whole point is to refuse a database
    // that lost data; salvage exports what is left) and sled's snapshot, so
    // sled rebuilds its index from the log.
    for entry in fs::read_dir(&copy.path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("snap.") || name == runjournal_sled::guard::GUARD_FILE {
            fs::remove_file(entry.path())?;
        }
    }
    if let Ok(journal) = Journal::open_existing(&copy.path, Options::default()) {
        eprintln!("runjournal: salvage: opened a copy without sled's snapshot and loss guard");
        return Ok((journal, copy));
    }
    let log = copy.path.join("db");
    let original = fs::read(&log)?;
    let segments = (original.len() as u64).div_ceil(SEGMENT);
    for kept in (1..segments).rev() {
        let length = usize::try_from(kept * SEGMENT).unwrap_or(original.len());
        fs::write(&log, &original[..length])?;
        if let Ok(journal) = Journal::open_existing(&copy.path, Options::default()) {
            eprintln!(
                "runjournal: salvage: opened a copy with sled's log cut to {} of {} bytes",
                length,
                original.len()
            );
            return Ok((journal, copy));
        }
    }
    Err(fail(format!(
        "salvage: sled cannot open {} or any prefix of its log; nothing can be exported",
        db.display()
    )))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Whether a read error is damage to one run (the salvage goes on) rather
/// than a failure of the store.
pub fn is_run_damage(error: &ReadError) -> bool {
    matches!(error, ReadError::Integrity(_) | ReadError::ParentMissing { .. })
}
