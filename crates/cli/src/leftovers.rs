//! The work files the CLI writes beside a target while it builds it: an
//! export's `.NAME.partial-PID`, an import's `.NAME.importing-PID` (a new
//! database built beside its target), a salvage's `.NAME.salvage-PID` (a copy
//! of a damaged database beside it).
//!
//! Invariants: a work file is always beside its target, in the same
//! directory (so a rename publishes it and a leftover is found again), and is
//! named after the process that writes it. A leftover is removed only when
//! its process is gone (Linux: no `/proc/PID`); one of a live process, or of
//! a process whose liveness cannot be told, is never touched.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// What a work file is for: the part of its name between the target's name
/// and the process id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// An export being written (`export -o`, `export --salvage -o`).
    Export,
    /// A new database being imported.
    Import,
    /// A salvage's copy of a damaged database.
    Salvage,
}

impl Work {
    fn tag(self) -> &'static str {
        match self {
            Work::Export => "partial",
            Work::Import => "importing",
            Work::Salvage => "salvage",
        }
    }
}

/// The work file of this process for `target`: `.NAME.TAG-PID` beside it.
pub fn path(target: &Path, work: Work) -> PathBuf {
    target.with_file_name(name(target, work, std::process::id()))
}

fn name(target: &Path, work: Work, pid: u32) -> OsString {
    let mut name = OsString::from(".");
    name.push(target.file_name().unwrap_or_else(|| "runjournal".as_ref()));
    name.push(format!(".{}-{pid}", work.tag()));
    name
}

/// Removes the work files of `work` for `target` whose process is gone;
/// returns the paths removed. Failures to remove are left for the next run.
pub fn remove_stale(target: &Path, work: Work) -> Vec<PathBuf> {
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(file_name) = target.file_name() else {
        return Vec::new();
    };
    let prefix = format!(".{}.{}-", file_name.to_string_lossy(), work.tag());
    let Ok(entries) = fs::read_dir(&directory) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = entry_name.strip_prefix(&prefix).and_then(|pid| pid.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || !process_is_gone(pid) {
            continue;
        }
        let path = entry.path();
        let gone = if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Whether process `pid` is known to have exited: only where `/proc` tells.
fn process_is_gone(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    proc_root.join("self").exists() && !proc_root.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

    use super::*;

    #[test]
    fn a_work_file_is_beside_its_target_and_named_after_this_process() {
        let target = Path::new("/tmp/out/export.jsonl");
        let work = path(target, Work::Export);
        assert_eq!(work.parent(), target.parent());
        assert_eq!(
            work.file_name().unwrap().to_string_lossy(),
            format!(".export.jsonl.partial-{}", std::process::id())
        );
    }

    #[test]
    fn only_leftovers_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        // A pid above the kernel's maximum (2^22) never runs.
        let dead = dir.path().join(name(&target, Work::Export, 4_999_999));
        let mine = path(&target, Work::Export);
        let other_work = dir.path().join(name(&target, Work::Import, 4_999_999));
        let unrelated = dir.path().join(".out.jsonl.partial-notapid");
        for file in [&dead, &mine, &other_work, &unrelated] {
            fs::write(file, b"x").unwrap();
        }
        let removed = remove_stale(&target, Work::Export);
        assert_eq!(removed, std::slice::from_ref(&dead));
        assert!(!dead.exists());
        assert!(mine.exists() && other_work.exists() && unrelated.exists());
    }
}
