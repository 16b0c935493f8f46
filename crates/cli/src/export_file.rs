//! The one writer of exports (`export`, `export --salvage`): to stdout, or to
//! a file that appears only once the export is complete.
//!
//! Invariants: a file export is written beside its target (`.NAME.partial-PID`),
//! synced, then renamed over the target, so the target is the old file or the
//! whole new export, never a part of one; a failed export removes its partial
//! file, and an export to a target first removes the partial files that
//! killed exports to it left (`leftovers`); stdout is flushed before the writer returns, so anything the caller
//! then prints on stderr comes after the exported lines.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::leftovers::{self, Work};
use crate::output::{fail, Output};

/// Runs `write` on stdout, or on a partial file renamed to `file` once
/// `write` succeeded; returns what `write` returned.
pub fn write_export<T>(
    out: &mut Output,
    file: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let Some(file) = file else {
        let written = write(&mut *out)?;
        out.flush()?;
        return Ok(written);
    };
    leftovers::remove_stale(file, Work::Export);
    let partial = leftovers::path(file, Work::Export);
    let result = write_then_rename(&partial, file, write);
    if result.is_err() {
        drop(std::fs::remove_file(&partial));
    }
    result
}

fn write_then_rename<T>(
    partial: &Path,
    file: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let handle =
        File::create(partial).map_err(|error| fail(format!("cannot create {}: {error}", partial.display())))?;
    let mut writer = BufWriter::new(handle);
    let written = write(&mut writer)?;
    let handle = writer.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    handle.sync_all()?;
    std::fs::rename(partial, file).map_err(|error| fail(format!("cannot write {}: {error}", file.display())))?;
    Ok(written)
}
