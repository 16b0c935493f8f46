//! Properties of the fold over random event sequences (every event type,
//! with timestamps that advance unevenly so handoff deadlines pass): determinism,
//! snapshot plus tail equals the whole fold at every cut, compaction and
//! segment invariants, time invariants, and `rejection()` agreeing with `apply()`.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::collections::BTreeMap;

mod event_strategy;

use event_strategy::event;
use proptest::prelude::*;
use runjournal_core::fold::{Anomaly, ResumeState, MAX_SEGMENTS};
use runjournal_core::{ChainHash, Envelope, Event, RunKey};

fn key() -> RunKey {
    RunKey::new("g", 0, "a0").unwrap()
}

/// Envelopes numbered from 0; each `attached` opens the next epoch; each event
/// comes its step of milliseconds after the previous one (handoffs time out
/// after 5).
fn envelopes(events: Vec<(Event, u64)>) -> Vec<Envelope> {
    let mut epoch = 0;
    let mut ts = 1_000;
    events
        .into_iter()
        .enumerate()
        .map(|(seq, (event, step_ms))| {
            if matches!(event, Event::Attached { .. }) {
                epoch += 1;
            }
            ts += step_ms;
            let seq = seq as u64;
            Envelope {
                run: key(),
                seq,
                epoch,
                ts,
                hash: ChainHash::next(&ChainHash::GENESIS, b"p", seq, b""),
                event,
            }
        })
        .collect()
}

fn run() -> impl Strategy<Value = Vec<Envelope>> {
    let step_ms = prop_oneof![3 => 0..4u64, 1 => 0..100u64];
    proptest::collection::vec((event(), step_ms), 0..48).prop_map(envelopes)
}

/// What an ignored `envelope` does to `state` besides its anomaly: moves
/// `last_seq`, `head` and the time on the run. A `custom` event at the same
/// position has exactly that effect.
fn moved_to(mut state: ResumeState, envelope: &Envelope) -> ResumeState {
    state.apply(&Envelope {
        event: Event::Custom {
            kind: "position".into(),
            data: String::new(),
        },
        ..envelope.clone()
    });
    state
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
    fn apply_owned_folds_exactly_as_apply(envelopes in run()) {
        let borrowed = ResumeState::fold(key(), &envelopes);
        let mut owned = ResumeState::new(key());
        for envelope in envelopes {
            owned.apply_owned(envelope);
        }
        prop_assert_eq!(owned, borrowed);
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
    fn compaction_count_never_decreases_and_segment_counts_compactions_and_rotations(envelopes in run()) {
        let mut state = ResumeState::new(key());
        let mut rotations = 0;
        for envelope in &envelopes {
            let before = state.compaction.count;
            let segment_before = state.segment;
            state.apply(envelope);
            if matches!(envelope.event, Event::SegmentRotated { .. }) {
                rotations += 1;
                prop_assert_eq!(state.compaction.count, before, "a rotation is no compaction");
                prop_assert!(state.transcript.is_empty());
            }
            prop_assert!(state.compaction.count >= before);
            prop_assert!(state.compaction.count <= before + 1);
            prop_assert_eq!(state.segment, state.compaction.count + rotations);
            prop_assert_eq!(state.recoverable, state.status.is_recoverable());
            prop_assert_eq!(state.last_seq, Some(envelope.seq));
            prop_assert_eq!(state.head, envelope.hash);
            // Every rotation closes exactly the segment it ends, at this seq.
            if state.segment > segment_before {
                let closed = state.segments.last().unwrap();
                prop_assert_eq!(closed.index, segment_before);
                prop_assert_eq!(closed.closed_seq, envelope.seq);
            }
            prop_assert!(state.segments.len() <= MAX_SEGMENTS);
            prop_assert_eq!(state.segments.len() as u64, state.segment.min(MAX_SEGMENTS as u64));
            for pair in state.segments.windows(2) {
                prop_assert_eq!(pair[0].index + 1, pair[1].index);
                prop_assert_eq!(pair[0].closed_seq, pair[1].opened_seq);
            }
        }
    }

    #[test]
    fn time_on_the_run_is_bounded_by_the_wall_clock(envelopes in run()) {
        let mut state = ResumeState::new(key());
        for (position, envelope) in envelopes.iter().enumerate() {
            let before = state.clone();
            state.apply(envelope);
            prop_assert_eq!(state.wall_ms, envelope.ts - envelopes[0].ts);
            prop_assert!(state.active_ms <= state.wall_ms);
            prop_assert!(state.active_ms >= before.active_ms);
            let same_epoch = position > 0
                && envelope.epoch == envelopes[position - 1].epoch
                && !matches!(envelope.event, Event::RunStarted { .. });
            if same_epoch {
                prop_assert_eq!(state.active_ms - before.active_ms, state.wall_ms - before.wall_ms);
            } else {
                prop_assert_eq!(state.active_ms, before.active_ms, "a new epoch starts from 0 ms");
            }
        }
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "the values are exact (small integers or copied through unchanged), so exact comparison is the check")]
    fn usage_sums_every_usage_event(envelopes in run()) {
        let state = ResumeState::fold(key(), &envelopes);
        let (mut input, mut output, mut cost, mut counters) = (0, 0, 0.0, BTreeMap::<String, f64>::new());
        for envelope in &envelopes {
            if let Event::Usage { input_tokens, output_tokens, cost_usd, counters: named } = &envelope.event {
                input += input_tokens.unwrap_or(0);
                output += output_tokens.unwrap_or(0);
                cost += cost_usd.unwrap_or(0.0);
                for (name, value) in named.iter().flatten() {
                    *counters.entry(name.clone()).or_default() += value;
                }
            }
        }
        prop_assert_eq!(state.usage.input_tokens, input);
        prop_assert_eq!(state.usage.output_tokens, output);
        prop_assert_eq!(state.usage.cost_usd, cost);
        prop_assert_eq!(&state.usage.counters, &counters);
    }

    #[test]
    fn rejection_agrees_with_apply(envelopes in run()) {
        let mut state = ResumeState::new(key());
        for envelope in &envelopes {
            let before = state.clone();
            let predicted = state.rejection(&envelope.event);
            state.apply(envelope);
            if let Some(anomaly) = predicted {
                prop_assert_eq!(anomaly.seq, envelope.seq);
                let mut expected = moved_to(before, envelope);
                expected.anomalies.push(anomaly);
                prop_assert_eq!(&state, &expected);
            } else {
                let is_answer = matches!(
                    envelope.event,
                    Event::HandoffAcked { .. } | Event::HandoffRejected { .. }
                );
                for added in &state.anomalies[before.anomalies.len()..] {
                    prop_assert!(
                        added.kind == Anomaly::COMPACTION_DONE_WITHOUT_START
                            || added.kind == Anomaly::COMPACTION_ID_MISMATCH
                            || added.kind == Anomaly::PHASE_COMPLETED_AGAIN
                            || (is_answer && added.kind == Anomaly::LATE_HANDOFF_EVENT),
                        "unpredicted anomaly {:?}",
                        added
                    );
                }
            }
        }
    }
}
