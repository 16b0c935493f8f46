//! The one-line summary of an event, by event group: a run's lifecycle, its
//! conversation (steps, turns, custom events), phases, compactions, handoffs
//! and tasks.
//!
//! Invariant: every event type has exactly one summary (the match below is
//! exhaustive), one line long, with free text cut and quoted.

mod compaction;
mod conversation;
mod handoffs;
mod lifecycle;
mod phases;
mod tasks;

use runjournal::Event;
use std::fmt::Write as _;

use super::Tone;
use crate::output::{one_line, plural};

/// The one-line summary of an event and how it stands out; free text is cut
/// at `text` characters ([`TEXT`](super::TEXT), or `usize::MAX` for `--full`).
pub fn summarize(event: &Event, text: usize) -> (Tone, String) {
    match event {
        Event::RunStarted { meta } => lifecycle::started(meta, text),
        Event::Attached { owner } => lifecycle::attached(owner),
        Event::AgentDied { reason, exit_code } => lifecycle::died(reason, *exit_code, text),
        Event::Teardown { resource, error } => lifecycle::teardown(resource, error.as_deref(), text),
        Event::RunCompleted { output } => lifecycle::completed(output.as_deref(), text),
        Event::RunFailed { error, cleanup_errors } => lifecycle::failed(error, cleanup_errors, text),
        Event::RunInterrupted { cause } => lifecycle::interrupted(*cause),
        Event::Step { messages } => conversation::step(messages, text),
        Event::TurnCompleted => conversation::turn_completed(),
        Event::Custom { kind, data } => conversation::custom(kind, data, text),
        Event::Usage { .. } => (Tone::Plain, "usage".into()),
        Event::SegmentRotated { .. } => (Tone::Warn, "segment rotated".into()),
        Event::ResourceAcquired { resource } => (Tone::Plain, format!("acquired {}", one_line(resource, 40))),
        Event::PhaseStarted { index, name } => phases::started(*index, name),
        Event::PhaseCompleted { index, name, output } => phases::completed(*index, name, output, text),
        Event::CompactionStarted {
            id,
            source,
            messages_before,
            tokens_before,
        } => compaction::started(id.as_deref(), *source, *messages_before, *tokens_before),
        Event::CompactionDone {
            id,
            source,
            summary,
            messages_after,
            tokens_after,
        } => compaction::done(
            id.as_deref(),
            *source,
            summary.as_deref(),
            *messages_after,
            *tokens_after,
            text,
        ),
        Event::HandoffSent {
            id,
            from,
            to,
            generation,
            version,
            timeout_ms,
            ..
        } => handoffs::sent(id, from, to, *generation, version, *timeout_ms),
        Event::HandoffAcked { id, by } => handoffs::acked(id, by),
        Event::HandoffRejected { id, by, reason } => handoffs::rejected(id, by, reason, text),
        Event::HandoffTimedOut { id } => handoffs::timed_out(id),
        Event::TaskClaimed {
            task,
            agent,
            priority,
            confidence,
        } => tasks::claimed(task, agent, *priority, *confidence),
        Event::TaskCompleted {
            task,
            agent,
            result,
            summary,
        } => tasks::completed(task, agent, *result, summary.as_deref(), text),
    }
}

/// ` ID` for an event that has an id, nothing otherwise.
fn id_part(id: Option<&str>) -> String {
    id.map(|id| format!(" {}", one_line(id, 40))).unwrap_or_default()
}

/// Appends `, N things` when the count is known.
fn count_part(text: &mut String, count: Option<u64>, thing: &str) {
    if let Some(count) = count {
        let _ = write!(text, ", {}", plural(count, thing));
    }
}
