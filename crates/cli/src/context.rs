//! What every command is given: the database path, whether `--json` was
//! asked for, and where the output goes.
//!
//! Invariants: `db` is always a path (the default when `--db` is not given;
//! `db_given` tells which); every result goes to `out`, never straight to
//! stdout; errors name `db` through [`crate::select`].

use std::io::Write;
use std::path::PathBuf;

use runjournal::{Journal, ReadError, RunRecord};
use serde::Serialize;

use crate::output::{Output, Style};
use crate::select::{self, RunArg};

/// A command's context.
pub struct Context<'a> {
    /// The database: `--db`, or the default when it is not given.
    pub db: PathBuf,
    /// Whether `--db` was given (the demo picks its own default otherwise).
    pub db_given: bool,
    /// `--json`: machine output.
    pub json: bool,
    /// Buffered stdout.
    pub out: &'a mut Output,
}

impl Context<'_> {
    /// The style of text output.
    pub fn style(&self) -> Style {
        self.out.style
    }

    /// Opens the database for a command that must not create one.
    pub fn open_existing(&self) -> anyhow::Result<Journal> {
        select::open_existing(&self.db)
    }

    /// Opens the database, creating it when missing.
    pub fn open_or_create(&self) -> anyhow::Result<Journal> {
        select::open_or_create(&self.db)
    }

    /// The run `run` names.
    pub fn resolve(&self, journal: &Journal, run: &RunArg) -> anyhow::Result<RunRecord> {
        select::resolve(journal, &self.db, run)
    }

    /// One clear line for a failed read of this database.
    pub fn read_error(&self, error: ReadError) -> anyhow::Error {
        select::read_error(&self.db, error)
    }

    /// Writes `value` as pretty JSON, in its fields' declaration order.
    pub fn print_json(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        writeln!(self.out, "{}", serde_json::to_string_pretty(value)?)?;
        Ok(())
    }
}
