//! The events of a run (docs/format.md).
//!
//! One enum, two forms: the JSON interchange form (serde, `type`-tagged) and
//! the stored form (bincode's own derive, variant index first). The stored
//! form is forever: variants and fields are only ever added at the end, and no
//! stored type uses a serde attribute that changes its shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::key::RunKey;

/// One fact of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The run was created; always seq 0.
    RunStarted {
        /// What is known about the run at its start.
        meta: RunMeta,
    },
    /// A process resumed the run, opening a new epoch.
    Attached {
        /// Host/pid of the process that resumed the run.
        owner: String,
    },
    /// One model/tool step: messages added to the transcript.
    Step {
        /// The messages of the step, in order.
        messages: Vec<Message>,
    },
    /// A turn ended.
    TurnCompleted,
    /// A phase began.
    PhaseStarted {
        /// The phase's position in the plan; phases are told apart by it.
        index: u32,
        /// The phase's name; two phases may share one.
        name: String,
    },
    /// A phase ended with an output.
    PhaseCompleted {
        /// The phase's position in the plan.
        index: u32,
        /// The phase's name.
        name: String,
        /// What the phase produced.
        output: String,
    },
    /// A context compaction began.
    CompactionStarted {
        /// An id shared with its `compaction_done`, when the detector has one.
        #[serde(default)]
        id: Option<String>,
        /// Which detector saw it.
        source: CompactionSource,
        /// Messages in the context before compaction.
        #[serde(default)]
        messages_before: Option<u64>,
        /// Tokens in the context before compaction.
        #[serde(default)]
        tokens_before: Option<u64>,
    },
    /// A context compaction finished: a new context segment starts.
    CompactionDone {
        /// An id shared with its `compaction_started`, when the detector has one.
        #[serde(default)]
        id: Option<String>,
        /// Which detector saw it.
        source: CompactionSource,
        /// The summary that opens the new segment.
        #[serde(default)]
        summary: Option<String>,
        /// Messages in the context after compaction.
        #[serde(default)]
        messages_after: Option<u64>,
        /// Tokens in the context after compaction.
        #[serde(default)]
        tokens_after: Option<u64>,
    },
    /// Work was handed to another agent.
    HandoffSent {
        /// The handoff's id.
        id: String,
        /// The sending agent.
        from: String,
        /// The receiving agent; only it may ack or reject.
        to: String,
        /// The handoff generation.
        generation: u64,
        /// The payload version, `M.m.p`.
        version: String,
        /// Hex digest of the payload.
        content_hash: String,
        /// How long the sender waits for an answer.
        timeout_ms: u64,
    },
    /// The receiver accepted a handoff.
    HandoffAcked {
        /// The handoff's id.
        id: String,
        /// The agent that acked.
        by: String,
    },
    /// The receiver refused a handoff.
    HandoffRejected {
        /// The handoff's id.
        id: String,
        /// The agent that rejected.
        by: String,
        /// Why.
        reason: String,
    },
    /// A handoff got no answer in time.
    HandoffTimedOut {
        /// The handoff's id.
        id: String,
    },
    /// An agent claimed a task.
    TaskClaimed {
        /// The task.
        task: String,
        /// The claiming agent.
        agent: String,
        /// 0 (critical) … 3 (low).
        priority: u8,
        /// 0.0–1.0.
        confidence: f64,
    },
    /// An agent finished a task.
    TaskCompleted {
        /// The task.
        task: String,
        /// The agent reporting completion.
        agent: String,
        /// How it went.
        result: TaskResult,
        /// A summary of the result.
        #[serde(default)]
        summary: Option<String>,
    },
    /// The agent's process died; the run stays recoverable.
    AgentDied {
        /// Why it died.
        reason: String,
        /// Its exit code, when known.
        #[serde(default)]
        exit_code: Option<i32>,
    },
    /// A resource was torn down.
    Teardown {
        /// The resource.
        resource: String,
        /// The teardown's error, if it failed.
        #[serde(default)]
        error: Option<String>,
    },
    /// The run succeeded. Terminal.
    RunCompleted {
        /// The run's final output.
        #[serde(default)]
        output: Option<String>,
    },
    /// The run failed. Terminal.
    RunFailed {
        /// The primary failure.
        error: ErrorInfo,
        /// Failures of cleanup after the primary one, kept apart from it.
        cleanup_errors: Vec<ErrorInfo>,
    },
    /// The run was stopped for recovery. Terminal for its epoch; a resume may follow.
    RunInterrupted {
        /// Why.
        cause: InterruptCause,
    },
    /// An application-defined fact.
    Custom {
        /// The application's name for it.
        kind: String,
        /// Its payload.
        data: String,
    },
    /// Resources the run consumed since the previous `usage`; the fold sums them.
    Usage {
        /// Input (prompt) tokens.
        #[serde(default)]
        input_tokens: Option<u64>,
        /// Output (completion) tokens.
        #[serde(default)]
        output_tokens: Option<u64>,
        /// Cost in US dollars; finite and not negative.
        #[serde(default)]
        cost_usd: Option<f64>,
        /// Named counters (tool calls, retries, …); finite values, added per name.
        #[serde(default)]
        counters: Option<BTreeMap<String, f64>>,
    },
    /// The runtime's session changed under the run: the context segment ends
    /// without a compaction and the next one starts empty.
    SegmentRotated {
        /// Why the segment ended.
        reason: RotationReason,
        /// The runtime's id of the session now in use.
        #[serde(default)]
        session_id: Option<String>,
        /// Where the new session came from; merged into the state's provenance.
        #[serde(default)]
        provenance: Option<BTreeMap<String, String>>,
    },
    /// A resource was acquired; a later `teardown` releases it.
    ResourceAcquired {
        /// The resource.
        resource: String,
    },
}

/// Why a context segment ended without a compaction (`segment_rotated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum RotationReason {
    /// The runtime loaded another stored session.
    SessionLoad,
    /// The runtime switched to another live session.
    SessionChanged,
}

/// What is known about a run when it starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(default, deny_unknown_fields)]
pub struct RunMeta {
    /// The agent's display name (may be per-process; never part of the key).
    pub agent_name: Option<String>,
    /// Who started the run.
    pub caller: Option<String>,
    /// The initial prompt.
    pub prompt: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// The backend.
    pub backend: Option<String>,
    /// The run that spawned this one.
    pub parent: Option<RunKey>,
    /// The run and seq this one was forked from.
    pub forked_from: Option<ForkPoint>,
    /// How task-claim conflicts are resolved (default `first_claim`).
    pub conflict_strategy: Option<ConflictStrategy>,
    /// Free-form labels.
    pub labels: Option<BTreeMap<String, String>>,
}

/// The point a forked run continues from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(deny_unknown_fields)]
pub struct ForkPoint {
    /// The parent run.
    pub run: RunKey,
    /// The last parent seq the child's history includes.
    pub seq: u64,
}

/// How two claims on one task are resolved (rule 8 (docs/resume-state.md)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStrategy {
    /// The first claim holds.
    #[default]
    FirstClaim,
    /// The most confident claim holds (ties: the earlier claim).
    HighestConfidence,
    /// The most urgent claim holds (lower number wins; ties: the earlier claim).
    HighestPriority,
    /// Nobody holds it: status `escalated`.
    Escalate,
}

impl ConflictStrategy {
    /// The strategy's name as in docs/format.md (`meta.conflict_strategy`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictStrategy::FirstClaim => "first_claim",
            ConflictStrategy::HighestConfidence => "highest_confidence",
            ConflictStrategy::HighestPriority => "highest_priority",
            ConflictStrategy::Escalate => "escalate",
        }
    }
}

/// A transcript message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
    /// The speaker's name (tools, named participants).
    #[serde(default)]
    pub name: Option<String>,
    /// The tool call this message answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with only a role and content.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            name: None,
            tool_call_id: None,
        }
    }
}

/// The speaker of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System prompt or summary.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

impl Role {
    /// The role's name as in docs/format.md.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// Which detector reported a compaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum CompactionSource {
    /// A structured signal from the runtime; authoritative once seen.
    Structured,
    /// Scraped from output; ignored once a structured signal was seen.
    Scraped,
}

impl CompactionSource {
    /// The source's name as in docs/format.md.
    pub fn as_str(self) -> &'static str {
        match self {
            CompactionSource::Structured => "structured",
            CompactionSource::Scraped => "scraped",
        }
    }
}

/// The result of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum TaskResult {
    /// Done.
    Success,
    /// Partly done.
    Partial,
    /// Not done.
    Failed,
}

impl TaskResult {
    /// The result's name as in docs/format.md.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskResult::Success => "success",
            TaskResult::Partial => "partial",
            TaskResult::Failed => "failed",
        }
    }
}

/// Why a run was interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "snake_case")]
pub enum InterruptCause {
    /// The process was asked to shut down.
    Shutdown,
}

impl InterruptCause {
    /// The cause's name as in docs/format.md.
    pub fn as_str(self) -> &'static str {
        match self {
            InterruptCause::Shutdown => "shutdown",
        }
    }
}

/// A failure: a kind and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(deny_unknown_fields)]
pub struct ErrorInfo {
    /// A short machine-readable kind (`backend`, `panic`, `stop`, …).
    pub kind: String,
    /// The human-readable message.
    pub message: String,
}

impl ErrorInfo {
    /// An error of `kind` with `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInfo {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

/// An event whose fields break docs/format.md.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A field's value is outside what docs/format.md allows.
    #[error("invalid {event_type} event: {field} {reason}")]
    InvalidField {
        /// The event's `type`.
        event_type: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Event {
    /// Every event `type` name of docs/format.md, in the order of the event table
    /// (the order [`Event::type_name`] lists them).
    pub const TYPE_NAMES: [&'static str; 23] = [
        "run_started",
        "attached",
        "step",
        "turn_completed",
        "phase_started",
        "phase_completed",
        "compaction_started",
        "compaction_done",
        "handoff_sent",
        "handoff_acked",
        "handoff_rejected",
        "handoff_timed_out",
        "task_claimed",
        "task_completed",
        "agent_died",
        "teardown",
        "run_completed",
        "run_failed",
        "run_interrupted",
        "custom",
        "usage",
        "segment_rotated",
        "resource_acquired",
    ];

    /// The event's `type` name as in docs/format.md (one of [`Event::TYPE_NAMES`]).
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::Attached { .. } => "attached",
            Event::Step { .. } => "step",
            Event::TurnCompleted => "turn_completed",
            Event::PhaseStarted { .. } => "phase_started",
            Event::PhaseCompleted { .. } => "phase_completed",
            Event::CompactionStarted { .. } => "compaction_started",
            Event::CompactionDone { .. } => "compaction_done",
            Event::HandoffSent { .. } => "handoff_sent",
            Event::HandoffAcked { .. } => "handoff_acked",
            Event::HandoffRejected { .. } => "handoff_rejected",
            Event::HandoffTimedOut { .. } => "handoff_timed_out",
            Event::TaskClaimed { .. } => "task_claimed",
            Event::TaskCompleted { .. } => "task_completed",
            Event::AgentDied { .. } => "agent_died",
            Event::Teardown { .. } => "teardown",
            Event::RunCompleted { .. } => "run_completed",
            Event::RunFailed { .. } => "run_failed",
            Event::RunInterrupted { .. } => "run_interrupted",
            Event::Custom { .. } => "custom",
            Event::Usage { .. } => "usage",
            Event::SegmentRotated { .. } => "segment_rotated",
            Event::ResourceAcquired { .. } => "resource_acquired",
        }
    }

    /// Whether the event ends its epoch (`run_completed`, `run_failed`, `run_interrupted`).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::RunCompleted { .. } | Event::RunFailed { .. } | Event::RunInterrupted { .. }
        )
    }

    /// Checks the value ranges of docs/format.md that the types do not enforce:
    /// priority 0–3, confidence 0.0–1.0, version `M.m.p`, hex content hash,
    /// and usage numbers that sum deterministically (a finite, non-negative
    /// cost; finite counters).
    pub fn validate(&self) -> Result<(), EventError> {
        let invalid = |field: &'static str, reason: String| EventError::InvalidField {
            event_type: self.type_name(),
            field,
            reason,
        };
        match self {
            Event::TaskClaimed {
                priority, confidence, ..
            } => {
                if *priority > 3 {
                    return Err(invalid(
                        "priority",
                        format!("is {priority}; it must be 0 (critical) to 3 (low)"),
                    ));
                }
                if !(0.0..=1.0).contains(confidence) {
                    return Err(invalid("confidence", format!("is {confidence}; it must be 0.0 to 1.0")));
                }
            }
            Event::HandoffSent {
                version, content_hash, ..
            } => {
                if !is_semantic_version(version) {
                    return Err(invalid(
                        "version",
                        format!("is {version:?}; it must be M.m.p, three dot-separated numbers"),
                    ));
                }
                if content_hash.is_empty() || !content_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "content_hash",
                        format!("is {content_hash:?}; it must be hex digits"),
                    ));
                }
            }
            Event::Usage { cost_usd, counters, .. } => {
                if let Some(cost) = cost_usd {
                    if !cost.is_finite() || *cost < 0.0 {
                        return Err(invalid(
                            "cost_usd",
                            format!("is {cost}; it must be a finite number, 0 or more"),
                        ));
                    }
                }
                let counters = counters.iter().flatten();
                if let Some((name, value)) = counters.into_iter().find(|(_, value)| !value.is_finite()) {
                    return Err(invalid(
                        "counters",
                        format!("{name:?} is {value}; counters must be finite numbers"),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn is_semantic_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_unique_and_name_the_typed_events() {
        let mut names = Event::TYPE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Event::TYPE_NAMES.len());
        for event in [Event::TurnCompleted, claim(0, 0.5), handoff("1.0.0", "ab")] {
            assert!(Event::TYPE_NAMES.contains(&event.type_name()));
        }
    }

    fn claim(priority: u8, confidence: f64) -> Event {
        Event::TaskClaimed {
            task: "t".into(),
            agent: "a".into(),
            priority,
            confidence,
        }
    }

    fn handoff(version: &str, content_hash: &str) -> Event {
        Event::HandoffSent {
            id: "h".into(),
            from: "a".into(),
            to: "b".into(),
            generation: 1,
            version: version.into(),
            content_hash: content_hash.into(),
            timeout_ms: 10,
        }
    }

    /// `as_str` is the JSON name: the CLI prints these, the interchange format stores them.
    #[test]
    fn names_are_the_json_names() {
        fn json_name(value: impl Serialize) -> String {
            serde_json::to_value(value).unwrap().as_str().unwrap().to_owned()
        }
        for strategy in [
            ConflictStrategy::FirstClaim,
            ConflictStrategy::HighestConfidence,
            ConflictStrategy::HighestPriority,
            ConflictStrategy::Escalate,
        ] {
            assert_eq!(strategy.as_str(), json_name(strategy));
        }
        for role in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(role.as_str(), json_name(role));
        }
        for source in [CompactionSource::Structured, CompactionSource::Scraped] {
            assert_eq!(source.as_str(), json_name(source));
        }
        for result in [TaskResult::Success, TaskResult::Partial, TaskResult::Failed] {
            assert_eq!(result.as_str(), json_name(result));
        }
        assert_eq!(InterruptCause::Shutdown.as_str(), json_name(InterruptCause::Shutdown));
    }

    #[test]
    fn priority_above_three_is_invalid() {
        assert!(claim(3, 0.5).validate().is_ok());
        let error = claim(4, 0.5).validate().unwrap_err();
        assert!(error.to_string().contains("priority is 4"), "{error}");
    }

    #[test]
    fn confidence_outside_unit_range_or_nan_is_invalid() {
        assert!(claim(0, 0.0).validate().is_ok());
        assert!(claim(0, 1.0).validate().is_ok());
        assert!(claim(0, 1.5).validate().is_err());
        assert!(claim(0, -0.1).validate().is_err());
        assert!(claim(0, f64::NAN).validate().is_err());
    }

    #[test]
    fn handoff_version_must_be_three_numbers() {
        assert!(handoff("3.1.0", "ab12").validate().is_ok());
        for bad in ["3.1", "3.1.0.0", "a.b.c", "3..1", ""] {
            let error = handoff(bad, "ab").validate().unwrap_err();
            assert!(error.to_string().contains("version"), "{bad}: {error}");
        }
        assert!(handoff("1.0.0", "xyz").validate().is_err());
        assert!(handoff("1.0.0", "").validate().is_err());
    }

    #[test]
    fn unknown_event_type_is_a_json_error() {
        let result: Result<Event, _> = serde_json::from_str(r#"{"type":"teleported"}"#);
        let error = result.unwrap_err().to_string();
        assert!(error.contains("teleported"), "{error}");
    }

    #[test]
    fn v2_events_have_their_spec_json_names() {
        let lines = [
            (
                r#"{"type":"usage","input_tokens":12,"cost_usd":0.5,"counters":{"tool_calls":2.0}}"#,
                "usage",
            ),
            (r#"{"type":"usage"}"#, "usage"),
            (
                r#"{"type":"segment_rotated","reason":"session_load","session_id":"s1","provenance":{"k":"v"}}"#,
                "segment_rotated",
            ),
            (
                r#"{"type":"segment_rotated","reason":"session_changed"}"#,
                "segment_rotated",
            ),
            (
                r#"{"type":"resource_acquired","resource":"sandbox-1"}"#,
                "resource_acquired",
            ),
        ];
        for (line, type_name) in lines {
            let event: Event = serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}"));
            assert_eq!(event.type_name(), type_name);
            assert!(event.validate().is_ok());
            let again: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
            assert_eq!(again, event);
        }
        let bad: Result<Event, _> = serde_json::from_str(r#"{"type":"segment_rotated","reason":"compaction"}"#);
        assert!(bad.is_err(), "compaction is no rotation reason");
    }

    #[test]
    fn v2_variants_are_encoded_after_every_v1_variant() {
        let config = bincode::config::standard();
        let index = |event: &Event| bincode::encode_to_vec(event, config).unwrap()[0];
        let custom = Event::Custom {
            kind: "k".into(),
            data: "d".into(),
        };
        assert_eq!(index(&custom), 19);
        let usage = Event::Usage {
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            counters: None,
        };
        assert_eq!(index(&usage), 20);
        let rotated = Event::SegmentRotated {
            reason: RotationReason::SessionLoad,
            session_id: None,
            provenance: None,
        };
        assert_eq!(index(&rotated), 21);
        assert_eq!(index(&Event::ResourceAcquired { resource: "r".into() }), 22);
    }

    #[test]
    fn usage_numbers_must_be_finite_and_cost_not_negative() {
        let usage = |cost_usd: Option<f64>, counter: f64| Event::Usage {
            input_tokens: Some(1),
            output_tokens: None,
            cost_usd,
            counters: Some(BTreeMap::from([("n".to_string(), counter)])),
        };
        assert!(usage(Some(0.0), -3.0).validate().is_ok());
        assert!(usage(None, 1.5).validate().is_ok());
        for cost in [-0.01, f64::NAN, f64::INFINITY] {
            let error = usage(Some(cost), 1.0).validate().unwrap_err();
            assert!(error.to_string().contains("cost_usd"), "{cost}: {error}");
        }
        for counter in [f64::NAN, f64::NEG_INFINITY] {
            let error = usage(None, counter).validate().unwrap_err();
            assert!(error.to_string().contains("counters \"n\""), "{counter}: {error}");
        }
    }

    proptest::proptest! {
        /// An exported float reads back to the same bits (serde_json's
        /// `float_roundtrip`), so an imported usage or claim re-encodes to the
        /// same bytes and its hash still matches.
        #[test]
        fn floats_survive_json_exactly(cost in proptest::num::f64::POSITIVE | proptest::num::f64::ZERO,
                                       value in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL) {
            let event = Event::Usage {
                input_tokens: None,
                output_tokens: None,
                cost_usd: Some(cost),
                counters: Some(BTreeMap::from([("n".to_string(), value)])),
            };
            let again: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
            let config = bincode::config::standard();
            proptest::prop_assert_eq!(
                bincode::encode_to_vec(&again, config).unwrap(),
                bincode::encode_to_vec(&event, config).unwrap()
            );
        }
    }

    #[test]
    fn optional_fields_may_be_absent_or_null() {
        let absent: Event = serde_json::from_str(r#"{"type":"agent_died","reason":"oom"}"#).unwrap();
        let null: Event = serde_json::from_str(r#"{"type":"agent_died","reason":"oom","exit_code":null}"#).unwrap();
        assert_eq!(absent, null);
        assert_eq!(
            absent,
            Event::AgentDied {
                reason: "oom".into(),
                exit_code: None
            }
        );
    }
}
