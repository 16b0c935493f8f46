//! `runjournal`: the replay tooling of the runjournal journal (SPEC §5).
//!
//! List runs, read a run's timeline, fold its resume state at any seq, verify
//! hash chains, export and import the JSON lines of SPEC §2, list what a
//! supervisor should recover, and run a demo of a crash and a resume.
//!
//! Every error is one line on stderr (`runjournal: error: …`) and a non-zero
//! exit; commands that only read never create a database.
#![forbid(unsafe_code)]

mod commands;
mod demo;
mod lineage;
mod output;
mod progress;
mod render;
mod salvage;
mod select;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use runjournal::RunStatus;

use crate::output::Output;
use crate::select::RunArg;

/// The database path when `--db` is not given.
const DEFAULT_DB: &str = "./runjournal.db";
/// The database path `demo` uses when `--db` is not given.
const DEFAULT_DEMO_DB: &str = "./runjournal-demo.db";

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
    Runs(RunsArgs),
    /// A run's timeline, one line per event (`--json`: its events as JSON lines, like export).
    Show(ShowArgs),
    /// A run's resume state (SPEC §3), as of its last event or of --at SEQ.
    State(StateArgs),
    /// Check the hash chains and seqs of one run, or of every run.
    Verify(VerifyArgs),
    /// Write runs as JSON lines, one event per line (every run unless one is named).
    Export(ExportArgs),
    /// Create runs from JSON lines; refuses the whole file on its first bad line.
    Import(ImportArgs),
    /// The runs a supervisor should resume (running or interrupted), with their resume state.
    Recover,
    /// A simulated agent session that is killed mid-compaction and resumed by a new process.
    Demo,
    /// Fork a run after SEQ into a new episode of its goal: the child shares the parent's history up to SEQ.
    Fork(ForkArgs),
    /// Rewind a run to SEQ: fork it into the goal's next episode and mark it superseded (no longer recoverable).
    Rewind(RewindArgs),
    /// Where two runs' histories part (the first diverging event of each) and how their states differ.
    Diff(DiffArgs),
    /// Remove runs by a retention policy; failed and recoverable runs stay unless named with --run.
    Purge(PurgeArgs),
    /// Replace a run's snapshots with one rebuilt from its verified log (the fix for a corrupt snapshot).
    #[command(name = "rebuild-snapshots")]
    RebuildSnapshots(VerifyArgs),
    /// The throughput harness: the journal side by side with raw sled, fdatasync per event and SQLite.
    Bench(BenchArgs),
    /// (internal) The demo's agent process: appends a session until it is killed.
    #[command(name = "demo-agent", hide = true)]
    DemoAgent(demo::ChildArgs),
    /// (internal) The demo's resuming process.
    #[command(name = "demo-resume", hide = true)]
    DemoResume(demo::ChildArgs),
}

#[derive(Args, Debug)]
struct RunsArgs {
    /// Only runs of this goal.
    #[arg(long, value_name = "G")]
    goal: Option<String>,
    /// Only runs of this agent.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// Only runs with this status: running, completed, failed or interrupted.
    #[arg(long, value_name = "S", value_parser = parse_status)]
    status: Option<RunStatus>,
}

#[derive(Args, Debug)]
struct ShowArgs {
    #[command(flatten)]
    run: RunArg,
    /// Start at this seq.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    from: u64,
}

#[derive(Args, Debug)]
struct StateArgs {
    #[command(flatten)]
    run: RunArg,
    /// The state as of this seq (time travel) instead of the last event.
    #[arg(long, value_name = "SEQ")]
    at: Option<u64>,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    run: RunArg,
}

#[derive(Args, Debug)]
struct ExportArgs {
    #[command(flatten)]
    run: RunArg,
    /// Write to FILE instead of stdout (replaced only once the export succeeded).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Export every run up to its last verified event, even from a damaged
    /// database (which is never changed; one sled cannot open is read from a copy).
    #[arg(long)]
    salvage: bool,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The JSON-lines file to import (`-` for stdin).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Workload size: 1.0 takes about a minute on a 2-core machine.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    scale: f64,
    /// Where the benchmark databases go [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn bench(json: bool, out: &mut Output, args: BenchArgs) -> anyhow::Result<ExitCode> {
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err(output::fail(format!(
            "--scale must be a positive number, not {}",
            args.scale
        )));
    }
    let config = runjournal_bench::BenchConfig {
        dir: args.dir,
        ..runjournal_bench::BenchConfig::with_scale(args.scale)
    };
    let report = runjournal_bench::run(&config, &mut |line| eprintln!("bench: {line}"))?;
    if json {
        writeln!(out, "{:#}", report.to_json())?;
    } else {
        write!(out, "{}", report.to_table())?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
struct ForkArgs {
    #[command(flatten)]
    run: RunArg,
    /// The last parent seq the child's history includes.
    #[arg(long, value_name = "SEQ")]
    at: u64,
    /// The child's episode [default: the goal's next episode].
    #[arg(long, value_name = "N")]
    to_episode: Option<u32>,
}

#[derive(Args, Debug)]
struct RewindArgs {
    #[command(flatten)]
    run: RunArg,
    /// The last seq of the run that the branch that goes on keeps.
    #[arg(long, value_name = "SEQ")]
    at: u64,
}

#[derive(Args, Debug)]
struct DiffArgs {
    /// The first run's short id (or a unique prefix).
    #[arg(value_name = "RUN_A")]
    a: String,
    /// The second run's short id (or a unique prefix).
    #[arg(value_name = "RUN_B")]
    b: String,
}

#[derive(Args, Debug)]
struct PurgeArgs {
    /// Completed runs whose last event is older than this (30s, 15m, 12h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = lineage::parse_duration)]
    completed_older_than: Option<std::time::Duration>,
    /// Keep only the newest N episodes of each (goal, agent); older completed ones go.
    #[arg(long, value_name = "N")]
    keep_newest: Option<u32>,
    /// Purge this run whatever its status (short id; repeatable).
    #[arg(long = "run", value_name = "ID")]
    runs: Vec<String>,
    /// List what would go; change nothing.
    #[arg(long)]
    dry_run: bool,
}

fn id_arg(id: &str) -> RunArg {
    RunArg {
        id: Some(id.to_owned()),
        goal: None,
        episode: None,
        agent: None,
    }
}

fn purge(db: &std::path::Path, json: bool, out: &mut Output, args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let explicit = if args.runs.is_empty() {
        Vec::new()
    } else {
        let journal = select::open_existing(db)?;
        let keys = args
            .runs
            .iter()
            .map(|id| select::resolve(&journal, db, &id_arg(id)).map(|record| record.key))
            .collect::<anyhow::Result<Vec<_>>>()?;
        drop(journal);
        keys
    };
    let policy = runjournal::PurgePolicy {
        completed_older_than: args.completed_older_than,
        keep_newest_episodes: args.keep_newest,
        explicit,
    };
    lineage::purge(db, json, out, policy, args.dry_run)
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    text.parse()
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
    let db = || cli.db.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    let json = cli.json;
    match cli.command {
        Command::Runs(args) => commands::runs(&db(), json, out, args.goal, args.agent, args.status),
        Command::Show(args) => commands::show(&db(), json, out, &args.run, args.from),
        Command::State(args) => commands::state(&db(), json, out, &args.run, args.at),
        Command::Verify(args) => commands::verify(&db(), json, out, &args.run),
        Command::Export(args) if args.salvage => {
            salvage::export_salvage(&db(), json, out, &args.run, args.output.as_deref())
        }
        Command::Export(args) => commands::export(&db(), json, out, &args.run, args.output.as_deref()),
        Command::Import(args) => commands::import(&db(), json, out, &args.file),
        Command::Recover => commands::recover(&db(), json, out),
        Command::Demo => demo::demo(cli.db.as_deref(), json, out),
        Command::Bench(args) => bench(json, out, args),
        Command::Fork(args) => lineage::fork(&db(), json, out, &args.run, args.at, args.to_episode),
        Command::Rewind(args) => lineage::rewind(&db(), json, out, &args.run, args.at),
        Command::Diff(args) => lineage::diff(&db(), json, out, &id_arg(&args.a), &id_arg(&args.b)),
        Command::Purge(args) => purge(&db(), json, out, args),
        Command::RebuildSnapshots(args) => lineage::rebuild_snapshots(&db(), json, out, &args.run),
        Command::DemoAgent(args) => demo::agent(&db(), &args, out),
        Command::DemoResume(args) => demo::resume(&db(), &args, out),
    }
}
