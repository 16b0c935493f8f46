//! Summaries of a run's lifecycle: its start, resumes, the agent's death,
//! teardowns and the three terminal events.

use runjournal::{ErrorInfo, InterruptCause, RunMeta};
use std::fmt::Write as _;

use crate::output::{one_line, plural, quoted};
use crate::render::Tone;

/// `run_started`: the agent, model, lineage, conflict strategy and prompt
/// (the caller, backend and labels are in `--json`).
pub fn started(meta: &RunMeta, text: usize) -> (Tone, String) {
    let mut parts = Vec::new();
    for (name, value) in [("agent", &meta.agent_name), ("model", &meta.model)] {
        if let Some(value) = value {
            parts.push(format!("{name} {}", one_line(value, 40)));
        }
    }
    if let Some(parent) = &meta.parent {
        parts.push(format!("parent {}", parent.short_id()));
    }
    if let Some(fork) = &meta.forked_from {
        parts.push(format!("forked from {} at seq {}", fork.run.short_id(), fork.seq));
    }
    if let Some(strategy) = meta.conflict_strategy {
        parts.push(format!("conflicts {}", strategy.as_str()));
    }
    if let Some(prompt) = &meta.prompt {
        parts.push(format!(
            "prompt {}",
            quoted(prompt, if text == usize::MAX { text } else { 56 })
        ));
    }
    let text = if parts.is_empty() {
        "run started".to_owned()
    } else {
        parts.join(" · ")
    };
    (Tone::Plain, text)
}

/// `attached`: a resume.
pub fn attached(owner: &str) -> (Tone, String) {
    (Tone::Resume, format!("↻ resumed by {}", one_line(owner, 60)))
}

/// `agent_died`.
pub fn died(reason: &str, exit_code: Option<i32>, text: usize) -> (Tone, String) {
    let code = exit_code.map(|code| format!(" (exit {code})")).unwrap_or_default();
    (Tone::Bad, format!("✖ agent died: {}{code}", one_line(reason, text)))
}

/// `teardown`: ok, or its error.
pub fn teardown(resource: &str, error: Option<&str>, text: usize) -> (Tone, String) {
    match error {
        None => (Tone::Plain, format!("teardown {}: ok", one_line(resource, 40))),
        Some(error) => (
            Tone::Warn,
            format!("teardown {} failed: {}", one_line(resource, 40), quoted(error, text)),
        ),
    }
}

/// `run_completed`.
pub fn completed(output: Option<&str>, text: usize) -> (Tone, String) {
    match output {
        Some(output) => (Tone::Good, format!("✔ run completed: {}", quoted(output, text))),
        None => (Tone::Good, "✔ run completed".into()),
    }
}

/// `run_failed`: the primary error, then the kinds of the cleanup errors.
pub fn failed(error: &ErrorInfo, cleanup_errors: &[ErrorInfo], text: usize) -> (Tone, String) {
    let mut text = format!(
        "✖ run failed: {}: {}",
        one_line(&error.kind, 30),
        quoted(&error.message, text)
    );
    if !cleanup_errors.is_empty() {
        let kinds: Vec<String> = cleanup_errors.iter().map(|error| one_line(&error.kind, 20)).collect();
        let _ = write!(
            text,
            " (+ {}: {})",
            plural(cleanup_errors.len() as u64, "cleanup error"),
            kinds.join(", ")
        );
    }
    (Tone::Bad, text)
}

/// `run_interrupted`.
pub fn interrupted(cause: InterruptCause) -> (Tone, String) {
    (
        Tone::Warn,
        format!("run interrupted ({}); left for recovery", cause.as_str()),
    )
}
