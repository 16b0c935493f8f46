//! A misplaced sled blob file (issue 11, item 5): sled asserts on the kind of
//! message it finds in a blob and panics. The sled store catches that at its
//! boundary, so `Journal::open`, `verify` and reading a run (what `export`
//! does) return a typed error, never a panic.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::{copy_dir, key, step};
use runjournal::*;

/// A database whose runs hold values large enough for sled to keep their
/// pages in blob files; returns the directory and the blob file names.
fn database_with_blobs() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let journal = Journal::open(&path, Options::default()).unwrap();
    for agent in 0..3 {
        let run = journal
            .begin(key("blobs", 0, &format!("agent-{agent}")), RunMeta::default())
            .unwrap();
        for index in 0..3 {
            let content = format!("{agent}-{index}-").repeat(40_000);
            run.step(step(&content)).unwrap();
        }
    }
    drop(journal);
    let mut blobs: Vec<String> = std::fs::read_dir(path.join("blobs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    blobs.sort();
    assert!(blobs.len() >= 2, "sled wrote {} blob files", blobs.len());
    (dir, path, blobs)
}

/// What reading a damaged copy gave, or the panic message.
fn read_everything(path: &Path) -> Result<Vec<String>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut errors = Vec::new();
        let journal = match Journal::open(path, Options::default()) {
            Ok(journal) => journal,
            Err(error) => return vec![format!("open: {error}")],
        };
        let runs = match journal.runs(&RunFilter::default()) {
            Ok(runs) => runs,
            Err(error) => return vec![format!("runs: {error}")],
        };
        for record in runs {
            if let Err(error) = journal.verify(&record.key) {
                errors.push(format!("verify: {error}"));
            }
            if let Err(error) = journal.read(&record.key, 0) {
                errors.push(format!("read: {error}"));
            }
        }
        errors
    }))
    .map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(std::string::ToString::to_string))
            .unwrap_or_default()
    })
}

#[test]
fn a_misplaced_blob_file_is_a_typed_error_not_a_panic() {
    let (_base, base_path, blobs) = database_with_blobs();
    let mut typed = Vec::new();
    // Each blob copied over its neighbours' names (in both directions).
    let pairs = blobs
        .windows(2)
        .flat_map(|pair| [(&pair[0], &pair[1]), (&pair[1], &pair[0])]);
    for (source, target) in pairs {
        {
            let copy = tempfile::tempdir().unwrap();
            let path = copy.path().join("journal.db");
            copy_dir(&base_path, &path);
            std::fs::copy(path.join("blobs").join(source), path.join("blobs").join(target)).unwrap();
            match read_everything(&path) {
                Ok(errors) => typed.extend(errors),
                Err(panic) => panic!("blob {source} copied over {target}: the library panicked: {panic}"),
            }
        }
    }
    eprintln!("{typed:#?}");
    assert!(
        typed.iter().any(|error| error.contains("sled panicked")),
        "no case reached sled's assertion: {typed:#?}"
    );
}
