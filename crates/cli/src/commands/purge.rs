//! `purge`: removes runs by a retention policy; `--dry-run` only lists them.
//!
//! Invariants (kept by `Journal::purge`): failed and recoverable runs go only
//! when named with `--run`; a run a surviving fork reads from is never purged.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use runjournal::{PurgePolicy, PurgeReport};

use crate::context::Context;
use crate::output::{fail, plural};
use crate::select::RunArg;

/// The arguments of `purge`.
#[derive(Args, Debug)]
pub struct PurgeArgs {
    /// Completed runs whose last event is older than this (30s, 15m, 12h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = crate::when::parse_duration)]
    completed_older_than: Option<Duration>,
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

/// Parses `30s`, `15m`, `12h`, `7d` (or plain seconds).
/// `purge`.
pub fn run(cx: &mut Context, args: &PurgeArgs) -> anyhow::Result<ExitCode> {
    let explicit = if args.runs.is_empty() {
        Vec::new()
    } else {
        let journal = cx.open_existing()?;
        args.runs
            .iter()
            .map(|id| cx.resolve(&journal, &RunArg::id(id)).map(|record| record.key))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let policy = PurgePolicy {
        completed_older_than: args.completed_older_than,
        keep_newest_episodes: args.keep_newest,
        explicit,
    };
    if policy == PurgePolicy::default() {
        return Err(fail(
            "say what to purge: --completed-older-than DURATION, --keep-newest N, or --run ID (repeatable)",
        ));
    }
    let journal = cx.open_existing()?;
    let report = journal.purge(&policy, args.dry_run)?;
    if cx.json {
        write_json(cx, &report)
    } else {
        write_text(cx, &report, args.dry_run)
    }?;
    Ok(ExitCode::SUCCESS)
}

fn write_json(cx: &mut Context, report: &PurgeReport) -> anyhow::Result<()> {
    let value = serde_json::json!({
        "dry_run": report.dry_run,
        "purged": report.purged.iter().map(|(key, events)| serde_json::json!({
            "id": key.short_id(), "goal": key.goal, "episode": key.episode, "agent": key.agent, "events": events,
        })).collect::<Vec<_>>(),
        "kept": report.kept.iter().map(|(key, why)| serde_json::json!({
            "id": key.short_id(), "goal": key.goal, "episode": key.episode, "agent": key.agent, "reason": why,
        })).collect::<Vec<_>>(),
        "freed_bytes": report.freed_bytes,
    });
    cx.print_json(&value)
}

fn write_text(cx: &mut Context, report: &PurgeReport, dry_run: bool) -> anyhow::Result<()> {
    let verb = if dry_run { "would purge" } else { "purged" };
    for (key, events) in &report.purged {
        writeln!(cx.out, "{verb} {} {key} ({})", key.short_id(), plural(*events, "event"))?;
    }
    for (key, why) in &report.kept {
        writeln!(cx.out, "kept {} {key}: {why}", key.short_id())?;
    }
    if dry_run {
        writeln!(
            cx.out,
            "dry run: {} would go; nothing was changed",
            plural(report.purged.len() as u64, "run")
        )?;
    } else {
        writeln!(
            cx.out,
            "{} purged, {} bytes freed",
            plural(report.purged.len() as u64, "run"),
            report.freed_bytes
        )?;
    }
    Ok(())
}
