//! What every command is given: the database path, whether `--json` was
//! asked for, and where the output goes.
//!
//! Invariants: `db` is always a location (a sled path, or a PostgreSQL URL;
//! the default path when `--db` is not given, `db_given` tells which); it is
//! shown only without its password ([`Db::display`]); every result goes to
//! `out`, never straight to stdout; errors name `db` through [`crate::select`].

use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use runjournal::{Journal, ReadError, RunRecord};
use serde::Serialize;

use crate::output::{Output, Style};
use crate::select::{self, RunArg};

/// Where the journal is: a sled directory, or a `postgres://` URL.
#[derive(Clone, Debug)]
pub struct Db(pub PathBuf);

impl Db {
    /// The location as it may be shown: a URL without its password.
    pub fn display(&self) -> String {
        runjournal::location::redacted(&self.0)
    }

    /// The sled directory, or `None` for a PostgreSQL URL.
    pub fn sled_path(&self) -> Option<&Path> {
        runjournal::location::postgres_url(&self.0)
            .is_none()
            .then_some(self.0.as_path())
    }
}

impl Deref for Db {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

/// A command's context.
pub struct Context<'a> {
    /// The database: `--db`, or the default when it is not given.
    pub db: Db,
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
