//! `diff RUN_A RUN_B`: where two runs' histories part (the first diverging
//! event of each) and the state fields that differ.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use runjournal::{Envelope, RunDiff, RunKey};

use super::KeyJson;
use crate::context::Context;
use crate::output::{one_line, plural};
use crate::render::event::summarize;
use crate::select::RunArg;

/// The arguments of `diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first run's short id (or a unique prefix).
    #[arg(value_name = "RUN_A")]
    a: String,
    /// The second run's short id (or a unique prefix).
    #[arg(value_name = "RUN_B")]
    b: String,
}

/// `diff`.
pub fn run(cx: &mut Context, args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let a = cx.resolve(&journal, &RunArg::id(&args.a))?.key;
    let b = cx.resolve(&journal, &RunArg::id(&args.b))?.key;
    let diff = journal.diff(&a, &b).map_err(|error| cx.read_error(error))?;
    if cx.json {
        write_json(cx, &a, &b, &diff)?;
    } else {
        write_text(cx, &a, &b, &diff)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(cx: &mut Context, a: &RunKey, b: &RunKey, diff: &RunDiff) -> anyhow::Result<()> {
    let event = |envelope: &Option<Envelope>| {
        envelope
            .as_ref()
            .map(|envelope| serde_json::from_str::<serde_json::Value>(&envelope.to_json_line()))
            .transpose()
    };
    let differences: Vec<serde_json::Value> = diff
        .state_differences
        .iter()
        .map(|(field, left, right)| serde_json::json!({"field": field, "a": left, "b": right}))
        .collect();
    let value = serde_json::json!({
        "a": KeyJson::of(a),
        "b": KeyJson::of(b),
        "common": diff.common,
        "a_event": event(&diff.a)?,
        "b_event": event(&diff.b)?,
        "state_differences": differences,
    });
    cx.print_json(&value)
}

fn write_text(cx: &mut Context, a: &RunKey, b: &RunKey, diff: &RunDiff) -> anyhow::Result<()> {
    let out = &mut *cx.out;
    writeln!(out, "A: {a} ({})", a.short_id())?;
    writeln!(out, "B: {b} ({})", b.short_id())?;
    if let (None, None) = (&diff.a, &diff.b) {
        writeln!(out, "identical histories ({})", plural(diff.common as u64, "event"))?;
    } else {
        writeln!(out, "shared history: {}", plural(diff.common as u64, "event"))?;
        writeln!(out, "first divergence at history position {}:", diff.common)?;
        for (side, envelope) in [("A", &diff.a), ("B", &diff.b)] {
            match envelope {
                Some(envelope) => writeln!(
                    out,
                    "  {side} seq {:>4}  {:<18} {}",
                    envelope.seq,
                    envelope.event.type_name(),
                    summarize(&envelope.event, crate::render::TEXT).1
                )?,
                None => writeln!(out, "  {side} (history ends)")?,
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
    Ok(())
}
