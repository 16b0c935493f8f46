//! The mapping of a run's history to spans (the table of docs/otlp.md).
//!
//! Invariants: one trace per run, rooted at an `invoke_agent` span over the
//! whole history; every other span is a child of the innermost open phase (or
//! of the root); a `usage` event gives its tokens to the latest `chat` span
//! without usage, and always to the root's totals; the root's status is
//! `Error` exactly when the history ends in `run_failed`; message content,
//! phase outputs, summaries and custom data appear only with `include_content`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event as SpanEvent, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use runjournal::{Envelope, Event, Message, Role, RunKey, RunMeta};

use super::attrs::{double, int, text};
use super::ids::{span_id, trace_id, SpanRole};

/// One run to export: its key and its whole history (fork prefix included).
pub struct RunTrace<'a> {
    /// The run.
    pub key: &'a RunKey,
    /// Its history, oldest first.
    pub history: &'a [Envelope],
}

/// The OTLP request holding one trace per run.
pub fn request(runs: &[RunTrace<'_>], include_content: bool) -> ExportTraceServiceRequest {
    let spans = runs
        .iter()
        .flat_map(|run| spans_of(run.key, run.history, include_content))
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "runjournal")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "runjournal".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// The spans of one run: the root first, then in the order they opened.
fn spans_of(key: &RunKey, history: &[Envelope], include_content: bool) -> Vec<Span> {
    let mut builder = Builder::new(key, history, include_content);
    for (position, envelope) in (0u64..).zip(history) {
        builder.event(position, envelope);
        builder.previous_ts = envelope.ts;
    }
    builder.finish()
}

/// Unix milliseconds to OTLP nanoseconds.
fn nanos(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

/// The key as `goal/episode/agent`.
fn key_text(key: &RunKey) -> String {
    format!("{}/{}/{}", key.goal, key.episode, key.agent)
}

struct Builder<'a> {
    key: &'a RunKey,
    trace: Vec<u8>,
    include_content: bool,
    /// `spans[0]` is the root.
    spans: Vec<Span>,
    /// Open phases: (phase index, span index), innermost last.
    phases: Vec<(u32, usize)>,
    /// The latest `chat` span that has no usage yet.
    awaiting_usage: Option<usize>,
    model: Option<String>,
    previous_ts: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
    end_ts: u64,
}

impl<'a> Builder<'a> {
    fn new(key: &'a RunKey, history: &[Envelope], include_content: bool) -> Self {
        let trace = trace_id(key);
        let start_ts = history.first().map_or(0, |envelope| envelope.ts);
        let end_ts = history.last().map_or(0, |envelope| envelope.ts);
        let agent = key.agent.clone();
        let root = Span {
            trace_id: trace.clone(),
            span_id: span_id(key, SpanRole::Root, 0, 0),
            name: format!("invoke_agent {agent}"),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: nanos(start_ts),
            end_time_unix_nano: nanos(end_ts),
            attributes: vec![
                text("gen_ai.operation.name", "invoke_agent"),
                text("gen_ai.agent.id", key_text(key)),
                text("gen_ai.conversation.id", key_text(key)),
                text("runjournal.goal", key.goal.clone()),
                int("runjournal.episode", u64::from(key.episode)),
                text("runjournal.agent", agent),
                int("runjournal.events", history.len() as u64),
            ],
            ..Span::default()
        };
        Builder {
            key,
            trace,
            include_content,
            spans: vec![root],
            phases: Vec::new(),
            awaiting_usage: None,
            model: None,
            previous_ts: start_ts,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            end_ts,
        }
    }

    /// The span new spans and span events belong to.
    fn parent(&self) -> usize {
        self.phases.last().map_or(0, |(_, span)| *span)
    }

    fn open(
        &mut self,
        role: SpanRole,
        position: u64,
        index: u64,
        name: String,
        kind: SpanKind,
        start_ts: u64,
    ) -> usize {
        let parent = self.parent();
        let span = Span {
            trace_id: self.trace.clone(),
            span_id: span_id(self.key, role, position, index),
            parent_span_id: self.spans[parent].span_id.clone(),
            name,
            kind: kind as i32,
            start_time_unix_nano: nanos(start_ts),
            end_time_unix_nano: nanos(self.end_ts),
            ..Span::default()
        };
        self.spans.push(span);
        self.spans.len() - 1
    }

    /// A span event on the innermost open span, with the envelope's seq.
    fn mark(&mut self, envelope: &Envelope, name: &str, mut attributes: Vec<KeyValue>) {
        attributes.insert(0, int("runjournal.seq", envelope.seq));
        let parent = self.parent();
        self.spans[parent].events.push(SpanEvent {
            time_unix_nano: nanos(envelope.ts),
            name: name.to_owned(),
            attributes,
            ..SpanEvent::default()
        });
    }

    fn content(&self, key: &str, value: &str) -> Option<KeyValue> {
        self.include_content.then(|| text(key, value))
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per event type of docs/format.md, each a row of docs/otlp.md"
    )]
    fn event(&mut self, position: u64, envelope: &Envelope) {
        match &envelope.event {
            Event::RunStarted { meta } => self.started(envelope, meta),
            Event::Attached { owner } => {
                let attributes = vec![
                    text("runjournal.owner", owner.clone()),
                    int("runjournal.epoch", envelope.epoch),
                ];
                self.mark(envelope, "runjournal.attached", attributes);
            }
            Event::Step { messages } => self.step(position, envelope, messages),
            Event::TurnCompleted => self.mark(envelope, "runjournal.turn_completed", Vec::new()),
            Event::PhaseStarted { index, name } => {
                let span = self.open(
                    SpanRole::Phase,
                    position,
                    0,
                    format!("phase {name}"),
                    SpanKind::Internal,
                    envelope.ts,
                );
                self.spans[span].attributes = vec![
                    text("runjournal.phase.name", name.clone()),
                    int("runjournal.phase.index", u64::from(*index)),
                    int("runjournal.seq", envelope.seq),
                ];
                self.phases.push((*index, span));
            }
            Event::PhaseCompleted { index, output, .. } => {
                if let Some(at) = self.phases.iter().rposition(|(open, _)| open == index) {
                    let (_, span) = self.phases.remove(at);
                    self.spans[span].end_time_unix_nano = nanos(envelope.ts);
                    self.spans[span].status = Some(status(StatusCode::Ok, ""));
                    if let Some(output) = self.content("runjournal.phase.output", output) {
                        self.spans[span].attributes.push(output);
                    }
                }
            }
            Event::CompactionStarted {
                id,
                source,
                messages_before,
                tokens_before,
            } => {
                let mut attributes = vec![text("runjournal.compaction.source", source.as_str())];
                attributes.extend(id.as_deref().map(|id| text("runjournal.compaction.id", id)));
                attributes.extend(messages_before.map(|n| int("runjournal.compaction.messages_before", n)));
                attributes.extend(tokens_before.map(|n| int("runjournal.compaction.tokens_before", n)));
                self.mark(envelope, "runjournal.compaction_started", attributes);
            }
            Event::CompactionDone {
                id,
                source,
                summary,
                messages_after,
                tokens_after,
            } => {
                let mut attributes = vec![text("runjournal.compaction.source", source.as_str())];
                attributes.extend(id.as_deref().map(|id| text("runjournal.compaction.id", id)));
                attributes.extend(messages_after.map(|n| int("runjournal.compaction.messages_after", n)));
                attributes.extend(tokens_after.map(|n| int("runjournal.compaction.tokens_after", n)));
                let summary = summary
                    .as_deref()
                    .and_then(|summary| self.content("runjournal.compaction.summary", summary));
                attributes.extend(summary);
                self.mark(envelope, "runjournal.compaction_done", attributes);
            }
            Event::HandoffSent {
                id,
                from,
                to,
                generation,
                version,
                content_hash,
                timeout_ms,
            } => {
                let attributes = vec![
                    text("runjournal.handoff.id", id.clone()),
                    text("runjournal.handoff.from", from.clone()),
                    text("runjournal.handoff.to", to.clone()),
                    int("runjournal.handoff.generation", *generation),
                    text("runjournal.handoff.version", version.clone()),
                    text("runjournal.handoff.content_hash", content_hash.clone()),
                    int("runjournal.handoff.timeout_ms", *timeout_ms),
                ];
                self.mark(envelope, "runjournal.handoff_sent", attributes);
            }
            Event::HandoffAcked { id, by } => {
                let attributes = vec![
                    text("runjournal.handoff.id", id.clone()),
                    text("runjournal.handoff.by", by.clone()),
                ];
                self.mark(envelope, "runjournal.handoff_acked", attributes);
            }
            Event::HandoffRejected { id, by, reason } => {
                let attributes = vec![
                    text("runjournal.handoff.id", id.clone()),
                    text("runjournal.handoff.by", by.clone()),
                    text("runjournal.handoff.reason", reason.clone()),
                ];
                self.mark(envelope, "runjournal.handoff_rejected", attributes);
            }
            Event::HandoffTimedOut { id } => {
                self.mark(
                    envelope,
                    "runjournal.handoff_timed_out",
                    vec![text("runjournal.handoff.id", id.clone())],
                );
            }
            Event::TaskClaimed {
                task,
                agent,
                priority,
                confidence,
            } => {
                let attributes = vec![
                    text("runjournal.task", task.clone()),
                    text("runjournal.task.agent", agent.clone()),
                    int("runjournal.task.priority", u64::from(*priority)),
                    double("runjournal.task.confidence", *confidence),
                ];
                self.mark(envelope, "runjournal.task_claimed", attributes);
            }
            Event::TaskCompleted {
                task,
                agent,
                result,
                summary,
            } => {
                let mut attributes = vec![
                    text("runjournal.task", task.clone()),
                    text("runjournal.task.agent", agent.clone()),
                    text("runjournal.task.result", result.as_str()),
                ];
                let summary = summary
                    .as_deref()
                    .and_then(|summary| self.content("runjournal.task.summary", summary));
                attributes.extend(summary);
                self.mark(envelope, "runjournal.task_completed", attributes);
            }
            Event::AgentDied { reason, exit_code } => {
                let mut attributes = vec![text("runjournal.death.reason", reason.clone())];
                attributes
                    .extend(exit_code.map(|code| int("runjournal.death.exit_code", u64::from(code.unsigned_abs()))));
                self.mark(envelope, "runjournal.agent_died", attributes);
            }
            Event::Teardown { resource, error } => {
                let mut attributes = vec![text("runjournal.resource", resource.clone())];
                attributes.extend(error.as_deref().map(|error| text("runjournal.teardown.error", error)));
                self.mark(envelope, "runjournal.teardown", attributes);
            }
            Event::RunCompleted { output } => {
                let output = output
                    .as_deref()
                    .and_then(|output| self.content("runjournal.output", output));
                self.mark(envelope, "runjournal.run_completed", output.into_iter().collect());
                self.spans[0].status = Some(status(StatusCode::Ok, ""));
            }
            Event::RunFailed { error, cleanup_errors } => self.failed(envelope, error, cleanup_errors),
            Event::RunInterrupted { cause } => {
                self.mark(
                    envelope,
                    "runjournal.run_interrupted",
                    vec![text("runjournal.interrupt.cause", cause.as_str())],
                );
                self.spans[0].status = None;
            }
            Event::Custom { kind, data } => {
                let mut attributes = vec![text("runjournal.custom.kind", kind.clone())];
                attributes.extend(self.content("runjournal.custom.data", data));
                self.mark(envelope, "runjournal.custom", attributes);
            }
            Event::Usage {
                input_tokens,
                output_tokens,
                cost_usd,
                counters,
            } => self.usage(envelope, *input_tokens, *output_tokens, *cost_usd, counters.as_ref()),
            Event::SegmentRotated { reason, session_id, .. } => {
                let reason = serde_json::to_value(reason)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut attributes = vec![text("runjournal.segment.reason", reason)];
                attributes.extend(
                    session_id
                        .as_deref()
                        .map(|id| text("runjournal.segment.session_id", id)),
                );
                self.mark(envelope, "runjournal.segment_rotated", attributes);
            }
            Event::ResourceAcquired { resource } => {
                self.mark(
                    envelope,
                    "runjournal.resource_acquired",
                    vec![text("runjournal.resource", resource.clone())],
                );
            }
        }
    }

    /// `run_started`: the run's own start names the agent and model on the
    /// root; an inherited one (a fork's prefix) is a span event. Either sets
    /// the model that names the `chat` spans after it.
    fn started(&mut self, envelope: &Envelope, meta: &RunMeta) {
        if envelope.run != *self.key {
            // An ancestor's model names the chat spans of the inherited prefix.
            if meta.model.is_some() {
                self.model.clone_from(&meta.model);
            }
            self.mark(
                envelope,
                "runjournal.run_started",
                vec![text("runjournal.run", key_text(&envelope.run))],
            );
            return;
        }
        let root = &mut self.spans[0].attributes;
        if let Some(name) = &meta.agent_name {
            root.push(text("gen_ai.agent.name", name.clone()));
        }
        if let Some(model) = &meta.model {
            root.push(text("gen_ai.request.model", model.clone()));
        }
        if let Some(backend) = &meta.backend {
            root.push(text("gen_ai.provider.name", backend.clone()));
        }
        if let Some(fork) = &meta.forked_from {
            root.push(text("runjournal.forked_from", key_text(&fork.run)));
            root.push(int("runjournal.forked_at", fork.seq));
        }
        if let Some(prompt) = meta
            .prompt
            .as_deref()
            .and_then(|prompt| self.content("runjournal.prompt", prompt))
        {
            self.spans[0].attributes.push(prompt);
        }
        if meta.model.is_some() {
            self.model.clone_from(&meta.model);
        }
    }

    /// A `step`: a `chat` span for its model messages, an `execute_tool`
    /// span per tool message; each from the previous event to this one.
    fn step(&mut self, position: u64, envelope: &Envelope, messages: &[Message]) {
        let (tools, talk): (Numbered<'_>, Numbered<'_>) = (0u64..)
            .zip(messages)
            .partition(|(_, message)| message.role == Role::Tool);
        if !talk.is_empty() {
            let name = self
                .model
                .as_ref()
                .map_or_else(|| "chat".to_owned(), |model| format!("chat {model}"));
            let span = self.open(SpanRole::Chat, position, 0, name, SpanKind::Client, self.previous_ts);
            self.spans[span].end_time_unix_nano = nanos(envelope.ts);
            let mut attributes = vec![
                text("gen_ai.operation.name", "chat"),
                int("runjournal.seq", envelope.seq),
            ];
            if let Some(model) = &self.model {
                attributes.push(text("gen_ai.request.model", model.clone()));
            }
            if self.include_content {
                let (output, input): (Vec<&Message>, Vec<&Message>) = talk
                    .iter()
                    .map(|(_, message)| *message)
                    .partition(|message| message.role == Role::Assistant);
                attributes.push(text("gen_ai.input.messages", messages_json(&input)));
                attributes.push(text("gen_ai.output.messages", messages_json(&output)));
            }
            self.spans[span].attributes = attributes;
            self.awaiting_usage = Some(span);
        }
        for (index, message) in tools {
            let tool = message.name.clone().unwrap_or_else(|| "tool".to_owned());
            let span = self.open(
                SpanRole::Tool,
                position,
                index,
                format!("execute_tool {tool}"),
                SpanKind::Internal,
                self.previous_ts,
            );
            self.spans[span].end_time_unix_nano = nanos(envelope.ts);
            let mut attributes = vec![
                text("gen_ai.operation.name", "execute_tool"),
                text("gen_ai.tool.name", tool),
                int("runjournal.seq", envelope.seq),
            ];
            attributes.extend(
                message
                    .tool_call_id
                    .as_deref()
                    .map(|id| text("gen_ai.tool.call.id", id)),
            );
            attributes.extend(self.content("gen_ai.tool.call.result", &message.content));
            self.spans[span].attributes = attributes;
        }
    }

    fn usage(
        &mut self,
        envelope: &Envelope,
        input: Option<u64>,
        output: Option<u64>,
        cost: Option<f64>,
        counters: Option<&std::collections::BTreeMap<String, f64>>,
    ) {
        self.input_tokens += input.unwrap_or(0);
        self.output_tokens += output.unwrap_or(0);
        self.cost_usd += cost.unwrap_or(0.0);
        let mut attributes = Vec::new();
        attributes.extend(input.map(|n| int("gen_ai.usage.input_tokens", n)));
        attributes.extend(output.map(|n| int("gen_ai.usage.output_tokens", n)));
        attributes.extend(cost.map(|usd| double("runjournal.usage.cost_usd", usd)));
        if let Some(span) = self.awaiting_usage.take() {
            self.spans[span].attributes.extend(attributes);
        } else {
            let counters = counters.into_iter().flatten();
            attributes.extend(counters.map(|(name, value)| double(&format!("runjournal.usage.{name}"), *value)));
            self.mark(envelope, "runjournal.usage", attributes);
        }
    }

    /// `run_failed`: an `exception` event per error on the innermost span and
    /// `Error` status on the root and every phase still open.
    fn failed(&mut self, envelope: &Envelope, error: &runjournal::ErrorInfo, cleanup: &[runjournal::ErrorInfo]) {
        for (primary, info) in std::iter::once((true, error)).chain(cleanup.iter().map(|info| (false, info))) {
            let attributes = vec![
                text("exception.type", info.kind.clone()),
                text("exception.message", info.message.clone()),
                text("runjournal.error.role", if primary { "primary" } else { "cleanup" }),
            ];
            self.mark(envelope, "exception", attributes);
        }
        let message = format!("{}: {}", error.kind, error.message);
        self.spans[0].status = Some(status(StatusCode::Error, &message));
        self.spans[0].attributes.push(text("error.type", error.kind.clone()));
        for (_, span) in &self.phases {
            self.spans[*span].status = Some(status(StatusCode::Error, &message));
        }
    }

    fn finish(mut self) -> Vec<Span> {
        let root = &mut self.spans[0].attributes;
        if self.input_tokens > 0 || self.output_tokens > 0 {
            root.push(int("gen_ai.usage.input_tokens", self.input_tokens));
            root.push(int("gen_ai.usage.output_tokens", self.output_tokens));
        }
        if self.cost_usd > 0.0 {
            root.push(double("runjournal.usage.cost_usd", self.cost_usd));
        }
        self.spans
    }
}

/// Messages with their index in their step.
type Numbered<'m> = Vec<(u64, &'m Message)>;

fn status(code: StatusCode, message: &str) -> Status {
    Status {
        code: code as i32,
        message: message.to_owned(),
    }
}

/// Messages in the `GenAI` conventions' JSON form: `[{"role", "parts": [{"type": "text", "content"}]}]`.
fn messages_json(messages: &[&Message]) -> String {
    let value: Vec<serde_json::Value> = messages
        .iter()
        .map(|message| {
            serde_json::json!({
                "role": message.role.as_str(),
                "parts": [{"type": "text", "content": message.content}],
            })
        })
        .collect();
    serde_json::Value::Array(value).to_string()
}
