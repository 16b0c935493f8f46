//! Human renderings: the timeline of `show` (one line per event) and the
//! sections of `state` and `recover`.

use std::io::{self, Write};

use runjournal::fold::{HandoffStatus, TaskStatus};
use runjournal::{
    CompactionSource, ConflictStrategy, Envelope, Event, Message, ResumeState, Role, RunRecord, TaskResult,
};

use crate::output::{one_line, plural, quoted, utc, Style};

/// The longest piece of free text quoted in a one-line summary.
const TEXT: usize = 72;
/// The most transcript messages `state` prints.
const TRANSCRIPT_TAIL: usize = 8;

/// How an event line stands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// An ordinary event.
    Plain,
    /// Phase boundaries.
    Phase,
    /// Compactions and interruptions.
    Warn,
    /// Handoffs.
    Handoff,
    /// Deaths and failures.
    Bad,
    /// Completion.
    Good,
    /// A resume (new epoch).
    Resume,
}

impl Tone {
    fn paint(self, style: Style, text: &str) -> String {
        match self {
            Tone::Plain => text.to_owned(),
            Tone::Phase => style.phase(text),
            Tone::Warn => style.warn(text),
            Tone::Handoff => style.handoff(text),
            Tone::Bad => style.bad(text),
            Tone::Good => style.good(text),
            Tone::Resume => style.resume(text),
        }
    }
}

/// The one-line summary of an event and how it stands out.
pub fn summarize(event: &Event) -> (Tone, String) {
    match event {
        Event::RunStarted { meta } => {
            let mut parts = Vec::new();
            // The caller, backend and labels are in `--json`.
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
                parts.push(format!("conflicts {}", strategy_name(strategy)));
            }
            if let Some(prompt) = &meta.prompt {
                parts.push(format!("prompt {}", quoted(prompt, 56)));
            }
            let text = if parts.is_empty() {
                "run started".to_owned()
            } else {
                parts.join(" · ")
            };
            (Tone::Plain, text)
        }
        Event::Attached { owner } => (Tone::Resume, format!("↻ resumed by {}", one_line(owner, 60))),
        Event::Step { messages } => (Tone::Plain, summarize_messages(messages)),
        Event::TurnCompleted => (Tone::Plain, "turn completed".into()),
        Event::PhaseStarted { index, name } => (Tone::Phase, format!("▶ phase {index} {}", quoted(name, 40))),
        Event::PhaseCompleted { index, name, output } => (
            Tone::Phase,
            format!("✔ phase {index} {} → {}", quoted(name, 40), quoted(output, TEXT)),
        ),
        Event::CompactionStarted {
            id,
            source,
            messages_before,
            tokens_before,
        } => {
            let mut text = format!("⟳ compaction{} started ({}", id_part(id), source_name(*source));
            count_part(&mut text, *messages_before, "message");
            count_part(&mut text, *tokens_before, "token");
            text.push(')');
            (Tone::Warn, text)
        }
        Event::CompactionDone {
            id,
            source,
            summary,
            messages_after,
            tokens_after,
        } => {
            let mut text = format!("⟳ compaction{} done ({}", id_part(id), source_name(*source));
            count_part(&mut text, *messages_after, "message");
            count_part(&mut text, *tokens_after, "token");
            text.push(')');
            match summary {
                Some(summary) => text.push_str(&format!(" → new segment: {}", quoted(summary, TEXT))),
                None => text.push_str(" → new segment, no summary"),
            }
            (Tone::Warn, text)
        }
        Event::HandoffSent {
            id,
            from,
            to,
            generation,
            version,
            timeout_ms,
            ..
        } => (
            Tone::Handoff,
            format!(
                "⇄ handoff {} {} → {} (v{version}, generation {generation}, timeout {timeout_ms} ms)",
                one_line(id, 40),
                one_line(from, 40),
                one_line(to, 40)
            ),
        ),
        Event::HandoffAcked { id, by } => (
            Tone::Handoff,
            format!("⇄ handoff {} acknowledged by {}", one_line(id, 40), one_line(by, 40)),
        ),
        Event::HandoffRejected { id, by, reason } => (
            Tone::Handoff,
            format!(
                "⇄ handoff {} rejected by {}: {}",
                one_line(id, 40),
                one_line(by, 40),
                quoted(reason, TEXT)
            ),
        ),
        Event::HandoffTimedOut { id } => (Tone::Handoff, format!("⇄ handoff {} timed out", one_line(id, 40))),
        Event::TaskClaimed {
            task,
            agent,
            priority,
            confidence,
        } => (
            Tone::Plain,
            format!(
                "task {} claimed by {} (priority {priority}, confidence {confidence:.2})",
                one_line(task, 40),
                one_line(agent, 40)
            ),
        ),
        Event::TaskCompleted {
            task,
            agent,
            result,
            summary,
        } => {
            let result = match result {
                TaskResult::Success => "success",
                TaskResult::Partial => "partial",
                TaskResult::Failed => "failed",
            };
            let mut text = format!(
                "task {} completed by {}: {result}",
                one_line(task, 40),
                one_line(agent, 40)
            );
            if let Some(summary) = summary {
                text.push_str(&format!(" — {}", quoted(summary, TEXT)));
            }
            (Tone::Plain, text)
        }
        Event::AgentDied { reason, exit_code } => {
            let code = exit_code.map(|code| format!(" (exit {code})")).unwrap_or_default();
            (Tone::Bad, format!("✖ agent died: {}{code}", one_line(reason, TEXT)))
        }
        Event::Teardown { resource, error } => match error {
            None => (Tone::Plain, format!("teardown {}: ok", one_line(resource, 40))),
            Some(error) => (
                Tone::Warn,
                format!("teardown {} failed: {}", one_line(resource, 40), quoted(error, TEXT)),
            ),
        },
        Event::RunCompleted { output } => match output {
            Some(output) => (Tone::Good, format!("✔ run completed: {}", quoted(output, TEXT))),
            None => (Tone::Good, "✔ run completed".into()),
        },
        Event::RunFailed { error, cleanup_errors } => {
            let mut text = format!(
                "✖ run failed: {}: {}",
                one_line(&error.kind, 30),
                quoted(&error.message, TEXT)
            );
            if !cleanup_errors.is_empty() {
                let kinds: Vec<String> = cleanup_errors.iter().map(|error| one_line(&error.kind, 20)).collect();
                text.push_str(&format!(
                    " (+ {}: {})",
                    plural(cleanup_errors.len() as u64, "cleanup error"),
                    kinds.join(", ")
                ));
            }
            (Tone::Bad, text)
        }
        Event::RunInterrupted { .. } => (Tone::Warn, "run interrupted (shutdown); left for recovery".into()),
        Event::Custom { kind, data } => (Tone::Plain, format!("{}: {}", one_line(kind, 30), quoted(data, TEXT))),
        Event::Usage { .. } => (Tone::Plain, "usage".into()),
        Event::SegmentRotated { .. } => (Tone::Warn, "segment rotated".into()),
        Event::ResourceAcquired { resource } => (Tone::Plain, format!("acquired {}", one_line(resource, 40))),
    }
}

fn id_part(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" {}", one_line(id, 40)))
        .unwrap_or_default()
}

fn count_part(text: &mut String, count: Option<u64>, thing: &str) {
    if let Some(count) = count {
        text.push_str(&format!(", {}", plural(count, thing)));
    }
}

fn source_name(source: CompactionSource) -> &'static str {
    match source {
        CompactionSource::Structured => "structured",
        CompactionSource::Scraped => "scraped",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn strategy_name(strategy: ConflictStrategy) -> &'static str {
    match strategy {
        ConflictStrategy::FirstClaim => "first_claim",
        ConflictStrategy::HighestConfidence => "highest_confidence",
        ConflictStrategy::HighestPriority => "highest_priority",
        ConflictStrategy::Escalate => "escalate",
    }
}

fn summarize_messages(messages: &[Message]) -> String {
    if messages.is_empty() {
        return "step with no messages".into();
    }
    // Every message gets a share of the line, the longer ones cut.
    let budget = (TEXT + 24) / messages.len().min(4);
    let mut parts: Vec<String> = messages
        .iter()
        .take(4)
        .map(|message| {
            format!(
                "{}{}: {}",
                role_name(message.role),
                speaker(message),
                quoted(&message.content, budget.max(16))
            )
        })
        .collect();
    if messages.len() > 4 {
        parts.push(format!("+{} more", messages.len() - 4));
    }
    parts.join(" · ")
}

fn speaker(message: &Message) -> String {
    message
        .name
        .as_ref()
        .map(|name| format!(" ({})", one_line(name, 30)))
        .unwrap_or_default()
}

/// The heading line of a run: id, key, status, events.
pub fn run_heading(record: &RunRecord, style: Style) -> String {
    let mut text = format!(
        "{} {}  {} · {} · epoch {}",
        style.bold("run"),
        style.bold(&record.key.short_id()),
        record.key,
        status_text(record.status.as_str(), style),
        record.head.epoch
    );
    text.push_str(&format!(" · {}", plural(record.head.next_seq, "event")));
    if let Some(fork) = &record.fork {
        text.push_str(&format!(
            " · forked from {} {} at seq {} (its prefix is not shown)",
            fork.parent_key.short_id(),
            fork.parent_key,
            fork.seq
        ));
    }
    text
}

/// A status word, coloured.
pub fn status_text(status: &str, style: Style) -> String {
    match status {
        "completed" => style.good(status),
        "failed" => style.bad(status),
        "interrupted" => style.warn(status),
        _ => style.bold(status),
    }
}

/// Writes the timeline's column header.
pub fn write_timeline_header(out: &mut dyn Write, seq_width: usize, style: Style) -> io::Result<()> {
    let header = format!(
        "{:>seq_width$}  {:<23}  {:>5}  {:<18}  {}",
        "SEQ", "TIME (UTC)", "EPOCH", "EVENT", "SUMMARY"
    );
    writeln!(out, "{}", style.dim(&header))
}

/// Writes one event as one timeline line, with the anomalies the fold recorded at its seq.
pub fn write_timeline_line(
    out: &mut dyn Write,
    envelope: &Envelope,
    seq_width: usize,
    anomalies: &[&str],
    style: Style,
) -> io::Result<()> {
    let (tone, summary) = summarize(&envelope.event);
    let event = format!("{:<18}", envelope.event.type_name());
    let mut line = format!(
        "{:>seq_width$}  {}  {:>5}  {}  {}",
        envelope.seq,
        utc(envelope.ts),
        envelope.epoch,
        tone.paint(style, &event),
        tone.paint(style, &summary)
    );
    for kind in anomalies {
        line.push_str(&format!("  {}", style.warn(&format!("⚠ {kind}"))));
    }
    writeln!(out, "{}", line.trim_end())
}

/// Writes the resume state in sections.
pub fn write_state(out: &mut dyn Write, state: &ResumeState, at: Option<u64>, style: Style) -> io::Result<()> {
    let recoverable = if state.recoverable {
        " (recoverable: a new process may resume it)"
    } else {
        ""
    };
    writeln!(
        out,
        "{} {}  {}",
        style.bold("run"),
        style.bold(&state.run.short_id()),
        state.run
    )?;
    writeln!(
        out,
        "  status      {}{recoverable}",
        status_text(state.status.as_str(), style)
    )?;
    let last = state
        .last_seq
        .map_or_else(|| "no event".into(), |seq| format!("seq {seq}"));
    let as_of = if at.is_some() { " (time travel: --at)" } else { "" };
    writeln!(
        out,
        "  as of       {last}{as_of} · epoch {} · head {}",
        state.epoch,
        &state.head.to_hex()[..16]
    )?;
    writeln!(
        out,
        "  progress    iteration {} · segment {} · transcript {}",
        state.iteration,
        state.segment,
        plural(state.transcript.len() as u64, "message")
    )?;

    writeln!(out, "\n{}", style.bold("Phases"))?;
    if state.phases.completed.is_empty() && state.phases.active.is_none() {
        writeln!(out, "  none")?;
    }
    for phase in &state.phases.completed {
        writeln!(
            out,
            "  {} {} {} → {}",
            style.phase("✔"),
            phase.index,
            quoted(&phase.name, 40),
            quoted(&phase.output, TEXT)
        )?;
    }
    if let Some(active) = &state.phases.active {
        writeln!(
            out,
            "  {} {} {} active: a resume re-runs it from its start",
            style.phase("▶"),
            active.index,
            quoted(&active.name, 40)
        )?;
    }
    if state.recoverable && !state.phases.completed.is_empty() {
        let skipped: Vec<String> = state.completed_phase_indices().iter().map(u32::to_string).collect();
        writeln!(
            out,
            "  {}",
            style.dim(&format!("a resume skips phases {}", skipped.join(", ")))
        )?;
    }

    writeln!(out, "\n{}", style.bold("Compaction"))?;
    let active = if state.compaction.active {
        style.warn("active (a compaction started and has not finished)")
    } else {
        "not active".into()
    };
    let gate = match state.compaction.gate {
        Some(source) => format!("gate {}", source_name(source)),
        None => "no structured signal seen".into(),
    };
    writeln!(
        out,
        "  {active} · {} · {gate}",
        plural(state.compaction.count, "compaction")
    )?;

    if let Some(died) = &state.died {
        let code = died.exit_code.map(|code| format!(" (exit {code})")).unwrap_or_default();
        writeln!(out, "\n{}", style.bad("Died"))?;
        writeln!(out, "  {}{code}", one_line(&died.reason, TEXT))?;
    }

    writeln!(
        out,
        "\n{} (segment {}: {})",
        style.bold("Transcript"),
        state.segment,
        plural(state.transcript.len() as u64, "message")
    )?;
    if state.transcript.is_empty() {
        writeln!(out, "  empty")?;
    }
    let skip = state.transcript.len().saturating_sub(TRANSCRIPT_TAIL);
    if skip > 0 {
        writeln!(
            out,
            "  {}",
            style.dim(&format!("… {} earlier", plural(skip as u64, "message")))
        )?;
    }
    let shown = &state.transcript[skip..];
    let speakers: Vec<String> = shown
        .iter()
        .map(|message| format!("{}{}", role_name(message.role), speaker(message)))
        .collect();
    let width = speakers.iter().map(|who| who.chars().count()).max().unwrap_or(0);
    for (message, who) in shown.iter().zip(&speakers) {
        writeln!(out, "  {who:<width$}  {}", one_line(&message.content, 100))?;
    }

    if !state.handoffs.is_empty() {
        let rate = state.handoff_success_rate.map_or_else(
            || "no handoff is final yet".into(),
            |rate| format!("{:.0}%", rate * 100.0),
        );
        writeln!(out, "\n{} (success rate {rate})", style.handoff("Handoffs"))?;
        for handoff in &state.handoffs {
            let status = match handoff.status {
                HandoffStatus::Pending => "pending",
                HandoffStatus::Acknowledged => "acknowledged",
                HandoffStatus::Rejected => "rejected",
                HandoffStatus::TimedOut => "timed out",
            };
            writeln!(
                out,
                "  {}  {} → {}  {status}  v{}",
                one_line(&handoff.id, 40),
                one_line(&handoff.from, 40),
                one_line(&handoff.to, 40),
                one_line(&handoff.version, 20)
            )?;
        }
    }

    if !state.tasks.is_empty() {
        writeln!(out, "\n{}", style.bold("Tasks"))?;
        for task in &state.tasks {
            let holder = match (task.status, &task.claimed_by) {
                (TaskStatus::Escalated, _) => "escalated: nobody holds it".to_owned(),
                (TaskStatus::Completed, Some(agent)) => format!("completed by {}", one_line(agent, 40)),
                (_, Some(agent)) => format!("claimed by {}", one_line(agent, 40)),
                (_, None) => "unclaimed".to_owned(),
            };
            let contenders: Vec<String> = task.contenders.iter().map(|agent| one_line(agent, 40)).collect();
            writeln!(
                out,
                "  {}  {holder}  (contenders: {})",
                one_line(&task.task, 40),
                contenders.join(", ")
            )?;
        }
    }

    if let Some(output) = &state.output {
        writeln!(out, "\n{}", style.good("Output"))?;
        writeln!(out, "  {}", one_line(output, 200))?;
    }

    if let Some(failure) = &state.failure {
        writeln!(out, "\n{}", style.bad("Failure"))?;
        writeln!(
            out,
            "  {}: {}",
            one_line(&failure.error.kind, 30),
            one_line(&failure.error.message, 200)
        )?;
        for cleanup in &failure.cleanup_errors {
            writeln!(
                out,
                "  cleanup {}: {}",
                one_line(&cleanup.kind, 30),
                one_line(&cleanup.message, 200)
            )?;
        }
    }

    if !state.anomalies.is_empty() {
        writeln!(out, "\n{}", style.warn("Anomalies"))?;
        for anomaly in &state.anomalies {
            writeln!(
                out,
                "  seq {}  {}  {}",
                anomaly.seq,
                anomaly.kind,
                one_line(&anomaly.detail, 120)
            )?;
        }
    }
    Ok(())
}

/// Writes a recoverable run's resume-state summary (for `recover`).
pub fn write_recover_entry(out: &mut dyn Write, state: &ResumeState, style: Style) -> io::Result<()> {
    writeln!(out, "{}  {}", style.bold(&state.run.short_id()), state.run)?;
    let last = state
        .last_seq
        .map_or_else(|| "no event".into(), |seq| format!("last seq {seq}"));
    writeln!(
        out,
        "    {} · {last} · epoch {} · iteration {} · segment {}",
        status_text(state.status.as_str(), style),
        state.epoch,
        state.iteration,
        state.segment
    )?;
    let completed: Vec<String> = state
        .phases
        .completed
        .iter()
        .map(|phase| format!("{} {}", phase.index, quoted(&phase.name, 30)))
        .collect();
    let completed = if completed.is_empty() {
        "none".into()
    } else {
        completed.join(", ")
    };
    let active = state.phases.active.as_ref().map_or_else(
        || "none".into(),
        |active| format!("{} {} (re-runs from its start)", active.index, quoted(&active.name, 30)),
    );
    writeln!(out, "    phases completed: {completed} · active: {active}")?;
    let compaction = if state.compaction.active {
        style.warn("compaction active (stranded unless the agent is still running)")
    } else {
        "no compaction active".into()
    };
    let died = state.died.as_ref().map_or_else(
        || "not died".into(),
        |died| {
            let code = died.exit_code.map(|code| format!(", exit {code}")).unwrap_or_default();
            style.bad(&format!("died: {}{code}", one_line(&died.reason, 60)))
        },
    );
    writeln!(out, "    {compaction} · {died}")
}
