//! A strategy of every event type, shared by the property tests.

use std::collections::BTreeMap;

use proptest::prelude::*;
use runjournal_core::{
    CompactionSource, ConflictStrategy, ErrorInfo, Event, InterruptCause, Message, Role, RotationReason, RunMeta,
    TaskResult,
};

fn name(prefix: &'static str, count: u8) -> impl Strategy<Value = String> {
    (0..count).prop_map(move |n| format!("{prefix}{n}"))
}

fn agent() -> impl Strategy<Value = String> {
    name("a", 3)
}

fn id() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(name("k", 2))
}

fn source() -> impl Strategy<Value = CompactionSource> {
    prop_oneof![Just(CompactionSource::Structured), Just(CompactionSource::Scraped)]
}

fn strategy() -> impl Strategy<Value = Option<ConflictStrategy>> {
    proptest::option::of(prop_oneof![
        Just(ConflictStrategy::FirstClaim),
        Just(ConflictStrategy::HighestConfidence),
        Just(ConflictStrategy::HighestPriority),
        Just(ConflictStrategy::Escalate),
    ])
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::System),
        Just(Role::User),
        Just(Role::Assistant),
        Just(Role::Tool)
    ]
}

fn error_info() -> impl Strategy<Value = ErrorInfo> {
    (name("kind", 2), name("msg", 2)).prop_map(|(kind, message)| ErrorInfo::new(kind, message))
}

/// Every event variant, with small alphabets so ids and agents collide.
#[expect(clippy::too_many_lines, reason = "one strategy per event type, in one list")]
pub fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (strategy(), labels()).prop_map(|(conflict_strategy, labels)| Event::RunStarted {
            meta: RunMeta {
                conflict_strategy,
                labels,
                ..RunMeta::default()
            }
        }),
        Just(Event::Attached { owner: "host/1".into() }),
        proptest::collection::vec((role(), name("m", 5)), 0..3).prop_map(|messages| Event::Step {
            messages: messages
                .into_iter()
                .map(|(role, content)| Message::new(role, content))
                .collect()
        }),
        Just(Event::TurnCompleted),
        (0..3u32, name("p", 2)).prop_map(|(index, name)| Event::PhaseStarted { index, name }),
        (0..3u32, name("p", 2), name("o", 2)).prop_map(|(index, name, output)| Event::PhaseCompleted {
            index,
            name,
            output
        }),
        (id(), source()).prop_map(|(id, source)| Event::CompactionStarted {
            id,
            source,
            messages_before: None,
            tokens_before: Some(10),
        }),
        (id(), source(), proptest::option::of(name("sum", 2))).prop_map(|(id, source, summary)| {
            Event::CompactionDone {
                id,
                source,
                summary,
                messages_after: Some(1),
                tokens_after: None,
            }
        }),
        (name("h", 3), agent(), agent()).prop_map(|(id, from, to)| Event::HandoffSent {
            id,
            from,
            to,
            generation: 1,
            version: "1.0.0".into(),
            content_hash: "ab".into(),
            timeout_ms: 5,
        }),
        (name("h", 3), agent()).prop_map(|(id, by)| Event::HandoffAcked { id, by }),
        (name("h", 3), agent()).prop_map(|(id, by)| Event::HandoffRejected {
            id,
            by,
            reason: "no".into()
        }),
        name("h", 3).prop_map(|id| Event::HandoffTimedOut { id }),
        (name("t", 2), agent(), 0..4u8, 0..=4u8).prop_map(|(task, agent, priority, tenths)| Event::TaskClaimed {
            task,
            agent,
            priority,
            confidence: f64::from(tenths) / 4.0,
        }),
        (name("t", 3), agent()).prop_map(|(task, agent)| Event::TaskCompleted {
            task,
            agent,
            result: TaskResult::Partial,
            summary: None,
        }),
        (name("r", 2), proptest::option::of(-1..2i32))
            .prop_map(|(reason, exit_code)| Event::AgentDied { reason, exit_code }),
        (name("res", 2), proptest::option::of(name("e", 2)))
            .prop_map(|(resource, error)| Event::Teardown { resource, error }),
        proptest::option::of(name("out", 2)).prop_map(|output| Event::RunCompleted { output }),
        (error_info(), proptest::collection::vec(error_info(), 0..3))
            .prop_map(|(error, cleanup_errors)| Event::RunFailed { error, cleanup_errors }),
        Just(Event::RunInterrupted {
            cause: InterruptCause::Shutdown
        }),
        (name("c", 2), name("d", 2)).prop_map(|(kind, data)| Event::Custom { kind, data }),
        (
            proptest::option::of(0..1000u64),
            proptest::option::of(0..1000u64),
            proptest::option::of((0..100u32).prop_map(|cents| f64::from(cents) / 100.0)),
            proptest::option::of(proptest::collection::btree_map(
                name("n", 2),
                (0..8u32).prop_map(f64::from),
                0..3
            )),
        )
            .prop_map(|(input_tokens, output_tokens, cost_usd, counters)| Event::Usage {
                input_tokens,
                output_tokens,
                cost_usd,
                counters,
            }),
        (
            prop_oneof![Just(RotationReason::SessionLoad), Just(RotationReason::SessionChanged)],
            proptest::option::of(name("s", 3)),
            labels(),
        )
            .prop_map(|(reason, session_id, provenance)| Event::SegmentRotated {
                reason,
                session_id,
                provenance,
            }),
        name("res", 2).prop_map(|resource| Event::ResourceAcquired { resource }),
    ]
}

/// Label or provenance maps over a small alphabet, so keys collide across events.
fn labels() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    proptest::option::of(proptest::collection::btree_map(name("l", 3), name("v", 3), 0..3))
}
