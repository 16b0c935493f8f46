//! Properties of replay through the journal: the state a live
//! handle holds equals the state replayed after close and reopen, and the
//! state at every seq (snapshot + tail) equals the fold of that prefix.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use proptest::prelude::*;
use runjournal::*;

fn agent() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_string)
}

fn short_id() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["x", "y"]).prop_map(str::to_string)
}

fn source() -> impl Strategy<Value = CompactionSource> {
    prop::sample::select(vec![CompactionSource::Structured, CompactionSource::Scraped])
}

fn usage() -> impl Strategy<Value = Event> {
    let counters = prop::collection::btree_map(short_id(), (0u32..5).prop_map(f64::from), 0..2);
    (prop::option::of(0u64..500), prop::option::of(0u32..100), counters).prop_map(|(input_tokens, cents, counters)| {
        Event::Usage {
            input_tokens,
            output_tokens: Some(1),
            cost_usd: cents.map(|cents| f64::from(cents) / 100.0),
            counters: Some(counters),
        }
    })
}

fn rotation_reason() -> impl Strategy<Value = RotationReason> {
    prop::sample::select(vec![RotationReason::SessionLoad, RotationReason::SessionChanged])
}

/// Events a running run may append (no `run_started`, attached or terminal),
/// the contract v2 ones included.
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => "[a-z ]{0,12}".prop_map(|content| Event::Step { messages: vec![Message::new(Role::Assistant, content)] }),
        1 => Just(Event::TurnCompleted),
        1 => (0u32..4, short_id()).prop_map(|(index, name)| Event::PhaseStarted { index, name }),
        1 => (0u32..4, short_id()).prop_map(|(index, name)| Event::PhaseCompleted { index, name, output: "o".into() }),
        1 => (prop::option::of(short_id()), source()).prop_map(|(id, source)| Event::CompactionStarted {
            id, source, messages_before: None, tokens_before: None }),
        1 => (prop::option::of(short_id()), source(), prop::option::of("[a-z]{1,5}")).prop_map(|(id, source, summary)| {
            Event::CompactionDone { id, source, summary, messages_after: None, tokens_after: None } }),
        1 => (short_id(), agent(), agent()).prop_map(|(id, from, to)| Event::HandoffSent {
            id, from, to, generation: 1, version: "1.0.0".into(), content_hash: "ab".into(), timeout_ms: 5 }),
        1 => (short_id(), agent()).prop_map(|(id, by)| Event::HandoffAcked { id, by }),
        1 => (short_id(), agent()).prop_map(|(id, by)| Event::HandoffRejected { id, by, reason: "no".into() }),
        1 => short_id().prop_map(|id| Event::HandoffTimedOut { id }),
        1 => (short_id(), agent(), 0u8..4, 0.0f64..=1.0).prop_map(|(task, agent, priority, confidence)| {
            Event::TaskClaimed { task, agent, priority, confidence } }),
        1 => (short_id(), agent()).prop_map(|(task, agent)| Event::TaskCompleted {
            task, agent, result: TaskResult::Success, summary: None }),
        1 => Just(Event::AgentDied { reason: "oom".into(), exit_code: Some(137) }),
        1 => Just(Event::Custom { kind: "k".into(), data: "d".into() }),
        1 => usage(),
        1 => (rotation_reason(), prop::collection::btree_map(short_id(), short_id(), 0..2))
            .prop_map(|(reason, provenance)| Event::SegmentRotated {
                reason, session_id: None, provenance: Some(provenance) }),
        1 => short_id().prop_map(|resource| Event::ResourceAcquired { resource }),
        1 => (short_id(), prop::option::of(short_id()))
            .prop_map(|(resource, error)| Event::Teardown { resource, error }),
    ]
}

/// Splits events into batches of 1–4.
fn batches() -> impl Strategy<Value = Vec<Vec<Event>>> {
    prop::collection::vec(prop::collection::vec(event(), 1..=4), 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replay_after_close_and_reopen_equals_the_live_state(batches in batches(), snapshot_every in 0u64..6) {
        let (_dir, path) = common::temp_db();
        let options = Options { snapshot_every, durability: Durability::Buffered, ..Options::default() };
        let run_key = common::key("prop", 0, "a");
        let live = {
            let journal = Journal::open(&path, options.clone()).unwrap();
            let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
            for batch in batches {
                run.append(batch).unwrap();
            }
            run.state()
        };
        let journal = Journal::open(&path, options).unwrap();
        prop_assert_eq!(&journal.state(&run_key).unwrap(), &live);
        let history = journal.history(&run_key).unwrap();
        prop_assert_eq!(&ResumeState::fold(run_key.clone(), &history), &live);
        for seq in 0..history.len() {
            let expected = ResumeState::fold(run_key.clone(), &history[..=seq]);
            prop_assert_eq!(journal.state_at(&run_key, seq as u64).unwrap(), expected, "state at seq {}", seq);
        }
        let (_, resumed) = journal.resume(&run_key).unwrap();
        prop_assert_eq!(resumed.compaction.count, live.compaction.count);
        prop_assert_eq!(resumed.iteration, live.iteration);
    }
}
