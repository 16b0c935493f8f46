//! `runjournal`: the replay tooling of the runjournal journal (SPEC §5).
//!
//! List runs, read a run's timeline, fold its resume state at any seq, verify
//! hash chains, export and import the JSON lines of SPEC §2, list what a
//! supervisor should recover, and run a demo of a crash and a resume.
//!
//! This file parses the command line and hands each command (one module each
//! under `commands/`) its [`context::Context`]. Every error is one
//! line on stderr (`runjournal: error: …`) and a non-zero exit; commands that
//! only read never create a database.
#![forbid(unsafe_code)]

mod commands;
mod context;
mod events;
mod export_file;
mod leftovers;
mod output;
mod progress;
mod render;
mod select;
mod table;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{
    bench, demo, diff, export, fork, import, purge, rebuild_snapshots, recover, rewind, runs, show, state, verify,
};
use crate::context::Context;
use crate::output::Output;

/// The database path when `--db` is not given.
const DEFAULT_DB: &str = "./runjournal.db";

/// runjournal: replay tooling for the event-sourced journal of AI-agent runs.
#[derive(Parser, Debug)]
#[command(name = "runjournal", version)]
#[command(
    after_help = "A run is selected by the short id that `runjournal runs` prints (or a unique prefix of at \
least 4 hex digits), or by --goal G --episode N --agent A.\nNew here? Try `runjournal demo`."
)]
struct Cli {
    /// The sled database directory [default: ./runjournal.db; ./runjournal-demo.db for `demo`].
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List runs: short id, key, status, events, last activity, parent.
    Runs(runs::RunsArgs),
    /// A run's timeline, one line per event (`--json`: its events as JSON lines, like export).
    Show(show::ShowArgs),
    /// A run's resume state (SPEC §3), as of its last event or of --at SEQ.
    State(state::StateArgs),
    /// Check the hash chains and seqs of one run, or of every run.
    Verify(verify::VerifyArgs),
    /// Write runs as JSON lines, one event per line (every run unless one is named).
    Export(export::ExportArgs),
    /// Create runs from JSON lines; refuses the whole file on its first bad line.
    Import(import::ImportArgs),
    /// The runs a supervisor should resume (running or interrupted), with their resume state.
    Recover,
    /// A simulated agent session that is killed mid-compaction and resumed by a new process.
    Demo,
    /// Fork a run after SEQ into a new episode of its goal: the child shares the parent's history up to SEQ.
    Fork(fork::ForkArgs),
    /// Rewind a run to SEQ: fork it into the goal's next episode and mark it superseded (no longer recoverable).
    Rewind(rewind::RewindArgs),
    /// Where two runs' histories part (the first diverging event of each) and how their states differ.
    Diff(diff::DiffArgs),
    /// Remove runs by a retention policy; failed and recoverable runs stay unless named with --run.
    Purge(purge::PurgeArgs),
    /// Replace a run's snapshots with one rebuilt from its verified log (the fix for a corrupt snapshot).
    #[command(name = "rebuild-snapshots")]
    RebuildSnapshots(verify::VerifyArgs),
    /// The throughput harness: the journal side by side with raw sled, fdatasync per event and SQLite.
    Bench(bench::BenchArgs),
    /// (internal) The demo's agent process: appends a session until it is killed.
    #[command(name = "demo-agent", hide = true)]
    DemoAgent(demo::session::ChildArgs),
    /// (internal) The demo's resuming process.
    #[command(name = "demo-resume", hide = true)]
    DemoResume(demo::session::ChildArgs),
}

fn main() -> ExitCode {
    output::install_panic_hook();
    let cli = Cli::parse();
    let mut out = Output::stdout();
    let result = run(cli, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            drop(out.flush());
            output::report_error(&error);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut context = Context {
        db_given: cli.db.is_some(),
        db: cli.db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB)),
        json: cli.json,
        out,
    };
    let cx = &mut context;
    match cli.command {
        Command::Runs(args) => runs::run(cx, args),
        Command::Show(args) => show::run(cx, &args),
        Command::State(args) => state::run(cx, &args),
        Command::Verify(args) => verify::run(cx, &args),
        Command::Export(args) => export::run(cx, &args),
        Command::Import(args) => import::run(cx, &args),
        Command::Recover => recover::run(cx),
        Command::Demo => demo::run(cx),
        Command::Bench(args) => bench::run(cx, args),
        Command::Fork(args) => fork::run(cx, &args),
        Command::Rewind(args) => rewind::run(cx, &args),
        Command::Diff(args) => diff::run(cx, &args),
        Command::Purge(args) => purge::run(cx, &args),
        Command::RebuildSnapshots(args) => rebuild_snapshots::run(cx, &args),
        Command::DemoAgent(args) => demo::session::agent(cx, &args),
        Command::DemoResume(args) => demo::session::resume(cx, &args),
    }
}
