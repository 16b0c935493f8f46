//! The lineage commands: `fork`, `diff`, `purge`, and `rebuild-snapshots`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use runjournal::{Envelope, PurgePolicy, RunKey};
use serde::Serialize;

use crate::output::{fail, one_line, plural, Output};
use crate::render;
use crate::select::{open_existing, read_error, resolve, RunArg};

#[derive(Serialize)]
struct KeyJson<'a> {
    id: String,
    goal: &'a str,
    episode: u32,
    agent: &'a str,
}

fn key_json(key: &RunKey) -> KeyJson<'_> {
    KeyJson {
        id: key.short_id(),
        goal: &key.goal,
        episode: key.episode,
        agent: &key.agent,
    }
}

/// `fork RUN --at SEQ [--to-episode N]`: a child run continuing the parent's
/// history up to SEQ, in episode N (default: the goal's next episode).
pub fn fork(
    db: &Path,
    json: bool,
    out: &mut Output,
    run: &RunArg,
    at: u64,
    to_episode: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let parent = resolve(&journal, db, run)?.key;
    let episode = match to_episode {
        Some(episode) => episode,
        None => journal
            .next_episode(&parent.goal)
            .map_err(|error| read_error(db, error))?,
    };
    let child = RunKey::new(parent.goal.clone(), episode, parent.agent.clone())?;
    journal.fork(&parent, at, child.clone())?;
    if json {
        #[derive(Serialize)]
        struct Forked<'a> {
            #[serde(flatten)]
            child: KeyJson<'a>,
            parent: KeyJson<'a>,
            at: u64,
        }
        let forked = Forked {
            child: key_json(&child),
            parent: key_json(&parent),
            at,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&forked)?)?;
    } else {
        writeln!(out, "forked {} at seq {at} into {}", parent, child)?;
        writeln!(out, "child id: {}", child.short_id())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `rewind RUN --at SEQ`: forks the run into the goal's next episode and, in
/// the same atomic step, marks it superseded.
pub fn rewind(db: &Path, json: bool, out: &mut Output, run: &RunArg, at: u64) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let original = resolve(&journal, db, run)?.key;
    let branch = journal.rewind(&original, at)?.key().clone();
    if json {
        #[derive(Serialize)]
        struct Rewound<'a> {
            #[serde(flatten)]
            branch: KeyJson<'a>,
            superseded: KeyJson<'a>,
            at: u64,
        }
        let rewound = Rewound {
            branch: key_json(&branch),
            superseded: key_json(&original),
            at,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&rewound)?)?;
    } else {
        writeln!(
            out,
            "rewound {original} to seq {at}: it goes on as {branch}; {original} is superseded"
        )?;
        writeln!(out, "branch id: {}", branch.short_id())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `diff RUN_A RUN_B`: where two runs' histories part, and how their states differ.
pub fn diff(db: &Path, json: bool, out: &mut Output, a: &RunArg, b: &RunArg) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let a = resolve(&journal, db, a)?.key;
    let b = resolve(&journal, db, b)?.key;
    let diff = journal.diff(&a, &b).map_err(|error| read_error(db, error))?;
    if json {
        let differences: Vec<serde_json::Value> = diff
            .state_differences
            .iter()
            .map(|(field, left, right)| serde_json::json!({"field": field, "a": left, "b": right}))
            .collect();
        let value = serde_json::json!({
            "a": key_json(&a),
            "b": key_json(&b),
            "common": diff.common,
            "a_event": diff.a.as_ref().map(Envelope::to_json_line).map(|line| serde_json::from_str::<serde_json::Value>(&line)).transpose()?,
            "b_event": diff.b.as_ref().map(Envelope::to_json_line).map(|line| serde_json::from_str::<serde_json::Value>(&line)).transpose()?,
            "state_differences": differences,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "A: {a} ({})", a.short_id())?;
    writeln!(out, "B: {b} ({})", b.short_id())?;
    match (&diff.a, &diff.b) {
        (None, None) => writeln!(out, "identical histories ({})", plural(diff.common as u64, "event"))?,
        _ => {
            writeln!(out, "shared history: {}", plural(diff.common as u64, "event"))?;
            writeln!(out, "first divergence at history position {}:", diff.common)?;
            for (side, envelope) in [("A", &diff.a), ("B", &diff.b)] {
                match envelope {
                    Some(envelope) => writeln!(
                        out,
                        "  {side} seq {:>4}  {:<18} {}",
                        envelope.seq,
                        envelope.event.type_name(),
                        render::summarize(&envelope.event).1
                    )?,
                    None => writeln!(out, "  {side} (history ends)")?,
                }
            }
        }
    }
    if diff.state_differences.is_empty() {
        writeln!(out, "states: equal")?;
    } else {
        writeln!(out, "states differ in:")?;
        for (field, left, right) in &diff.state_differences {
            writeln!(
                out,
                "  {field:<22} A: {}  B: {}",
                one_line(&left.to_string(), 40),
                one_line(&right.to_string(), 40)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `30s`, `15m`, `12h`, `7d` (or plain seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 15m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} has an unknown unit (use s, m, h or d)")),
    };
    Ok(Duration::from_secs(value.saturating_mul(seconds)))
}

/// `purge`: removes runs by policy; `--dry-run` only lists them.
pub fn purge(db: &Path, json: bool, out: &mut Output, policy: PurgePolicy, dry_run: bool) -> anyhow::Result<ExitCode> {
    if policy == PurgePolicy::default() {
        return Err(fail(
            "say what to purge: --completed-older-than DURATION, --keep-newest N, or --run ID (repeatable)",
        ));
    }
    let journal = open_existing(db)?;
    let report = journal.purge(&policy, dry_run)?;
    if json {
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
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "would purge" } else { "purged" };
    for (key, events) in &report.purged {
        writeln!(out, "{verb} {} {key} ({})", key.short_id(), plural(*events, "event"))?;
    }
    for (key, why) in &report.kept {
        writeln!(out, "kept {} {key}: {why}", key.short_id())?;
    }
    if dry_run {
        writeln!(
            out,
            "dry run: {} would go; nothing was changed",
            plural(report.purged.len() as u64, "run")
        )?;
    } else {
        writeln!(
            out,
            "{} purged, {} bytes freed",
            plural(report.purged.len() as u64, "run"),
            report.freed_bytes
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `rebuild-snapshots RUN`: replaces a run's snapshots with one rebuilt from
/// its verified log (the fix a corrupt snapshot's error names).
pub fn rebuild_snapshots(db: &Path, json: bool, out: &mut Output, run: &RunArg) -> anyhow::Result<ExitCode> {
    let journal = open_existing(db)?;
    let key = resolve(&journal, db, run)?.key;
    journal.rebuild_snapshots(&key)?;
    if json {
        writeln!(out, "{}", serde_json::json!({"rebuilt": key_json(&key)}))?;
    } else {
        writeln!(out, "rebuilt the snapshot of {key} from its verified log")?;
    }
    Ok(ExitCode::SUCCESS)
}
