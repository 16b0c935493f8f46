//! Properties of the fold over random event sequences: determinism, snapshot
//! plus tail equals the whole fold at every cut, compaction invariants, and
//! `rejection()` agreeing with `apply()`.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use runjournal_core::fold::{Anomaly, ResumeState};
use runjournal_core::{
    ChainHash, CompactionSource, ConflictStrategy, Envelope, ErrorInfo, Event, InterruptCause, Message, Role, RunKey,
    RunMeta, TaskResult,
};

fn key() -> RunKey {
    RunKey::new("g", 0, "a0").unwrap()
}

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
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        strategy().prop_map(|conflict_strategy| Event::RunStarted {
            meta: RunMeta {
                conflict_strategy,
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
    ]
}

fn envelopes(events: Vec<Event>) -> Vec<Envelope> {
    let mut epoch = 0;
    events
        .into_iter()
        .enumerate()
        .map(|(seq, event)| {
            if matches!(event, Event::Attached { .. }) {
                epoch += 1;
            }
            let seq = seq as u64;
            Envelope {
                run: key(),
                seq,
                epoch,
                ts: 0,
                hash: ChainHash::next(&ChainHash::GENESIS, b"p", seq, b""),
                event,
            }
        })
        .collect()
}

fn run() -> impl Strategy<Value = Vec<Envelope>> {
    proptest::collection::vec(event(), 0..48).prop_map(envelopes)
}

fn snapshot(state: &ResumeState) -> ResumeState {
    let bytes = bincode::encode_to_vec(state, bincode::config::standard()).unwrap();
    let (decoded, read): (ResumeState, usize) =
        bincode::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
    assert_eq!(read, bytes.len());
    decoded
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fold_is_deterministic(envelopes in run()) {
        let first = ResumeState::fold(key(), &envelopes);
        let second = ResumeState::fold(key(), &envelopes);
        prop_assert_eq!(first.to_json(), second.to_json());
        prop_assert_eq!(first, second);
    }

    #[test]
    fn snapshot_plus_tail_equals_full_fold_at_every_cut(envelopes in run()) {
        let full = ResumeState::fold(key(), &envelopes);
        let mut prefix = ResumeState::new(key());
        for cut in 0..=envelopes.len() {
            let mut resumed = snapshot(&prefix);
            prop_assert_eq!(&resumed, &prefix);
            for envelope in &envelopes[cut..] {
                resumed.apply(envelope);
            }
            prop_assert_eq!(&resumed, &full, "cut at {}", cut);
            if let Some(envelope) = envelopes.get(cut) {
                prefix.apply(envelope);
            }
        }
    }

    #[test]
    fn compaction_count_never_decreases_and_segment_equals_count(envelopes in run()) {
        let mut state = ResumeState::new(key());
        for envelope in &envelopes {
            let before = state.compaction.count;
            state.apply(envelope);
            prop_assert!(state.compaction.count >= before);
            prop_assert!(state.compaction.count <= before + 1);
            prop_assert_eq!(state.segment, state.compaction.count);
            prop_assert_eq!(state.recoverable, state.status.is_recoverable());
            prop_assert_eq!(state.last_seq, Some(envelope.seq));
            prop_assert_eq!(state.head, envelope.hash);
        }
    }

    #[test]
    fn rejection_agrees_with_apply(envelopes in run()) {
        let mut state = ResumeState::new(key());
        for envelope in &envelopes {
            let before = state.clone();
            let predicted = state.rejection(&envelope.event);
            state.apply(envelope);
            match predicted {
                Some(anomaly) => {
                    prop_assert_eq!(anomaly.seq, envelope.seq);
                    let mut expected = before;
                    expected.anomalies.push(anomaly);
                    expected.last_seq = Some(envelope.seq);
                    expected.head = envelope.hash;
                    prop_assert_eq!(&state, &expected);
                }
                None => {
                    for added in &state.anomalies[before.anomalies.len()..] {
                        prop_assert!(
                            added.kind == Anomaly::COMPACTION_DONE_WITHOUT_START
                                || added.kind == Anomaly::PHASE_COMPLETED_AGAIN,
                            "unpredicted anomaly {:?}",
                            added
                        );
                    }
                }
            }
        }
    }
}
