//! `runjournal`: the replay tooling of the runjournal journal (docs/cli.md).
//!
//! List runs, read a run's timeline, fold its resume state at any seq, verify
//! hash chains, export and import the JSON lines of docs/format.md, list what a
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
mod failure;
mod leftovers;
mod loss;
mod otlp;
mod output;
mod progress;
mod render;
mod select;
mod stop_signals;
mod table;
mod web;
mod when;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{
    bench, completions, copy, demo, diff, export, fork, import, operator, purge, rebuild_snapshots, recover, rewind,
    runs, serve, show, state, ui, verify,
};
use crate::context::Context;
use crate::failure::Code;
use crate::output::{ColorChoice, Output, TimeFormat};

/// The database path when `--db` is not given.
const DEFAULT_DB: &str = "./runjournal.db";

/// runjournal: replay tooling for the event-sourced journal of AI-agent runs.
#[derive(Parser, Debug)]
#[command(name = "runjournal", version)]
#[command(after_help = AFTER_HELP)]
#[expect(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
struct Cli {
    /// The journal: a sled database directory, or a postgres:// URL [default: ./runjournal.db; ./runjournal-demo.db for `demo`].
    #[arg(long, global = true, value_name = "PATH", env = "RUNJOURNAL_DB")]
    db: Option<PathBuf>,
    /// Print machine-readable JSON instead of text (errors too: a JSON object on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// When to colour the text: auto (a terminal, and NO_COLOR unset or empty), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    color: ColorChoice,
    /// How times are printed: iso (UTC), relative (`5m ago`) or raw (unix ms).
    #[arg(long, global = true, value_name = "FORMAT", default_value = "iso")]
    time_format: TimeFormat,
    #[command(subcommand)]
    command: Command,
}

/// The end of `--help`: selecting a run, the environment, the exit statuses.
const AFTER_HELP: &str = "A run is selected by the short id that `runjournal runs` prints (or a unique prefix of at \
least 4 hex digits), or by --goal G --episode N --agent A.

Environment: RUNJOURNAL_DB sets --db; NO_COLOR turns colour off (under --color auto); PAGER is the pager of `show` \
on a terminal (default `less -FRX`).

Exit status: 0 ok, 1 other error, 2 usage, 3 not found, 4 integrity failure, 5 locked, 6 fenced, 7 conflict, \
8 finished (the run's status refuses it), 9 invalid input, 10 I/O error. Under --json an error is \
{\"error\": {\"code\": \"not_found\", \"message\": \"...\"}} on stderr.

New here? Try `runjournal demo`.";

#[derive(Subcommand, Debug)]
#[expect(
    clippy::doc_markdown,
    reason = "clap prints these doc comments as --help text, where backticks would show"
)]
enum Command {
    /// List runs: short id, key, status, events, last activity, parent.
    Runs(runs::RunsArgs),
    /// A run's timeline, one line per event (`--json`: its events as JSON lines, like export).
    Show(show::ShowArgs),
    /// A run's resume state (docs/resume-state.md), as of its last event or of --at SEQ.
    State(state::StateArgs),
    /// Check the hash chains and seqs of one run, or of every run.
    Verify(verify::VerifyArgs),
    /// Write runs as JSON lines, one event per line (every run unless one is named).
    Export(export::ExportArgs),
    /// Create runs from JSON lines; refuses the whole file on its first bad line.
    Import(import::ImportArgs),
    /// Copy every run (or RUN with its ancestors) from one journal to another: sled or postgres://, either way.
    Copy(copy::CopyArgs),
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
    /// Interrupt a run as an operator: a new epoch (fencing the agent) ending in run_interrupted.
    Interrupt(operator::InterruptArgs),
    /// Fail a run as an operator: a new epoch (fencing the agent) ending in run_failed with REASON.
    Fail(operator::FailArgs),
    /// Resume a run as an operator: attached in a new epoch, naming you (fences the agent).
    Resume(operator::ResumeArgs),
    /// Serve the database to other processes (HTTP on its owner-only Unix socket; TCP with --listen and a token) until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Serve the web timeline of the database: runs, timelines, states, lineage, live updates (docs/ui.md).
    Ui(ui::UiArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
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
    let json = std::env::args_os().any(|arg| arg == "--json");
    output::install_panic_hook(json);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error, json),
    };
    let json = cli.json;
    let mut out = Output::stdout(cli.color, cli.time_format);
    let result = run(cli, &mut out).and_then(|code| {
        out.finish()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            drop(out.finish());
            output::report_error(&error, json)
        }
    }
}

/// A command line clap refused: its usage message (exit 2), or under
/// `--json` one JSON error line with code `usage`. `--help` and `--version`
/// print and exit 0.
fn usage_error(error: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    let asked = matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if asked || !json {
        drop(error.print());
        return if asked {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(Code::Usage.exit_status())
        };
    }
    let text = error.render().to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or("bad command line")
        .trim_start_matches("error: ")
        .to_owned();
    output::print_error(Code::Usage, &message, true);
    ExitCode::from(Code::Usage.exit_status())
}

fn run(cli: Cli, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut context = Context {
        db_given: cli.db.is_some(),
        db: context::Db(cli.db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB))),
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
        Command::Copy(args) => copy::run(cx, &args),
        Command::Recover => recover::run(cx),
        Command::Demo => demo::run(cx),
        Command::Bench(args) => bench::run(cx, args),
        Command::Interrupt(args) => operator::interrupt(cx, &args),
        Command::Fail(args) => operator::fail(cx, &args),
        Command::Resume(args) => operator::resume(cx, &args),
        Command::Serve(args) => serve::run(cx, &args),
        Command::Ui(args) => ui::run(cx, &args),
        Command::Completions(args) => completions::run(cx, &mut Cli::command(), args),
        Command::Fork(args) => fork::run(cx, &args),
        Command::Rewind(args) => rewind::run(cx, &args),
        Command::Diff(args) => diff::run(cx, &args),
        Command::Purge(args) => purge::run(cx, &args),
        Command::RebuildSnapshots(args) => rebuild_snapshots::run(cx, &args),
        Command::DemoAgent(args) => demo::session::agent(cx, &args),
        Command::DemoResume(args) => demo::session::resume(cx, &args),
    }
}
