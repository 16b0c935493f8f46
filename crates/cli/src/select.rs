//! Opening the database and selecting a run: by short id (or a unique prefix
//! of it) or by `--goal --episode --agent`.

use std::path::Path;

use clap::Args;
use runjournal::{Journal, OpenError, Options, ReadError, RunFilter, RunKey, RunRecord, StoreError};

use crate::failure::{coded, Code};

/// The fewest hex digits accepted as a short-id prefix.
const MIN_PREFIX: usize = 4;

/// How a command names a run.
#[derive(Args, Debug)]
pub struct RunArg {
    /// The run's short id as `runjournal runs` prints it, or a unique prefix of at least 4 hex digits.
    #[arg(value_name = "RUN")]
    pub id: Option<String>,
    /// Select the run by key instead: its goal (with --episode and --agent).
    #[arg(long, value_name = "G", requires_all = ["episode", "agent"], conflicts_with = "id")]
    pub goal: Option<String>,
    /// The run's episode (with --goal and --agent).
    #[arg(long, value_name = "N", requires_all = ["goal", "agent"], conflicts_with = "id")]
    pub episode: Option<u32>,
    /// The run's agent (with --goal and --episode).
    #[arg(long, value_name = "A", requires_all = ["goal", "episode"], conflicts_with = "id")]
    pub agent: Option<String>,
}

impl RunArg {
    /// The run with this short id (or unique prefix).
    pub fn id(id: &str) -> RunArg {
        RunArg {
            id: Some(id.to_owned()),
            goal: None,
            episode: None,
            agent: None,
        }
    }

    /// Whether a run is named at all.
    pub fn given(&self) -> bool {
        self.id.is_some() || self.goal.is_some()
    }
}

/// Opens an existing database for a command that must not create one.
pub fn open_existing(db: &Path) -> anyhow::Result<Journal> {
    Journal::open_existing(db, connecting()).map_err(|error| open_error(db, error))
}

/// [`open_existing`] with [`connecting`] options changed by `options`
/// (`ui` serves what it opens).
pub fn open_existing_with(db: &Path, options: impl FnOnce(Options) -> Options) -> anyhow::Result<Journal> {
    Journal::open_existing(db, options(connecting())).map_err(|error| open_error(db, error))
}

/// The options every command opens with: a database another process holds
/// and serves is used through its socket.
pub fn connecting() -> Options {
    Options {
        connect_if_held: true,
        ..Options::default()
    }
}

/// Opens the database, creating it when missing (`import`, `demo`).
pub fn open_or_create(db: &Path) -> anyhow::Result<Journal> {
    Journal::open(db, connecting()).map_err(|error| open_error(db, error))
}

/// One clear line for a database that cannot be opened.
pub fn open_error(db: &Path, error: OpenError) -> anyhow::Error {
    let path = runjournal::location::redacted(db);
    match error {
        OpenError::Store(StoreError::Missing { .. }) => coded(
            Code::NotFound,
            format!(
                "no database at {path}; commands that only read never create one (check --db, or create one with \
             `runjournal import FILE` or `runjournal demo`)"
            ),
        ),
        OpenError::Store(StoreError::Locked { .. }) => coded(
            Code::Locked,
            format!(
            "database {path} is locked by another process (a running agent, or another runjournal command) that does \
             not serve it: sled lets one process open a database at a time; serve it from its owner (`runjournal \
             serve --db {path}`), wait for that process to exit, or work on a copy of the directory"
        ),
        ),
        OpenError::Connect(error) => coded(
            Code::Locked,
            format!("database {path} is held by another process, and its socket does not answer: {error}"),
        ),
        OpenError::Store(error @ (StoreError::Corrupt { .. } | StoreError::Io { .. } | StoreError::Backend { .. })) => {
            let code = match error {
                StoreError::Corrupt { .. } => Code::Integrity,
                StoreError::Io { .. } => Code::Io,
                _ => Code::Other,
            };
            coded(
                code,
                format!(
                "cannot open database {path}: {error}; export what still verifies with `runjournal --db {path} export \
                 --salvage -o FILE` (the database is not changed)"
            ),
            )
        }
        other => coded(Code::Other, format!("cannot open database {path}: {other}")),
    }
}

/// The run `arg` names (a run must be named).
pub fn resolve(journal: &Journal, db: &Path, arg: &RunArg) -> anyhow::Result<RunRecord> {
    if let (Some(goal), Some(episode), Some(agent)) = (&arg.goal, arg.episode, &arg.agent) {
        let key = RunKey::new(goal.clone(), episode, agent.clone())?;
        return journal.run_info(&key).map_err(|error| read_error(db, error));
    }
    let Some(id) = &arg.id else {
        return Err(coded(
            Code::Usage,
            "name a run: its short id (as `runjournal runs` prints it) or --goal G --episode N --agent A",
        ));
    };
    resolve_id(journal, db, id)
}

/// The run whose short id starts with `id`.
fn resolve_id(journal: &Journal, db: &Path, id: &str) -> anyhow::Result<RunRecord> {
    let wanted = id.to_ascii_lowercase();
    if wanted.len() < MIN_PREFIX || wanted.len() > 8 || !wanted.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(coded(
            Code::Usage,
            format!(
            "bad run id {id:?}: a run id is {MIN_PREFIX} to 8 hex digits, as `runjournal runs` prints them (or select \
             the run with --goal, --episode and --agent)"
        ),
        ));
    }
    let mut matches: Vec<RunRecord> = journal
        .runs(&RunFilter::default())
        .map_err(|error| read_error(db, error))?
        .into_iter()
        .filter(|record| record.key.short_id().starts_with(&wanted))
        .collect();
    match matches.len() {
        0 => Err(coded(
            Code::NotFound,
            format!(
                "no run has id {id} in {} (list the runs with `runjournal runs`)",
                runjournal::location::redacted(db)
            ),
        )),
        1 => Ok(matches.remove(0)),
        n => {
            let candidates: Vec<String> = matches
                .iter()
                .take(10)
                .map(|record| format!("{} {}", record.key.short_id(), record.key))
                .collect();
            Err(coded(
                Code::Usage,
                format!(
                    "run id {id} is ambiguous: it matches {n} runs ({}{}); give more digits",
                    candidates.join(", "),
                    if n > 10 { ", …" } else { "" }
                ),
            ))
        }
    }
}

/// One clear line for a read that failed, naming the database when a run is missing.
pub fn read_error(db: &Path, error: ReadError) -> anyhow::Error {
    match error {
        ReadError::NotFound { run } => coded(
            Code::NotFound,
            format!(
                "run {run} not found in {} (list the runs with `runjournal runs`)",
                runjournal::location::redacted(db)
            ),
        ),
        ReadError::Integrity(error) => coded(
            Code::Integrity,
            format!("corrupt event: {error} (the stored log is damaged; `runjournal verify` checks every run)"),
        ),
        other => anyhow::Error::new(other),
    }
}
