//! One test per fold rule of docs/resume-state.md, plus `rejection()` agreeing with
//! `apply()` and the JSON shape of the state.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::collections::BTreeMap;
use std::fmt;

use runjournal_core::fold::{
    Anomaly, HandoffStatus, ResourceState, ResumeState, Segment, SegmentEnd, TaskStatus, FOLD_VERSION, MAX_SEGMENTS,
};
use runjournal_core::{
    ChainHash, CompactionSource, ConflictStrategy, Envelope, ErrorInfo, Event, InterruptCause, Message, Role,
    RotationReason, RunKey, RunMeta, RunStatus, TaskResult,
};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

// ---------------------------------------------------------------- helpers

fn key() -> RunKey {
    RunKey::new("g", 0, "orchestrator-0").unwrap()
}

/// A distinct, deterministic hash per seq so `head` can be checked.
fn hash_of(seq: u64) -> ChainHash {
    ChainHash::next(&ChainHash::GENESIS, b"test", seq, b"")
}

/// Envelopes numbered from 0, all at ts 0; each `attached` opens the next epoch.
fn envelopes(events: impl IntoIterator<Item = Event>) -> Vec<Envelope> {
    timed_envelopes(events.into_iter().map(|event| (0, event)))
}

/// Envelopes numbered from 0 at the given `ts`; each `attached` opens the next epoch.
fn timed_envelopes(events: impl IntoIterator<Item = (u64, Event)>) -> Vec<Envelope> {
    let mut epoch = 0;
    events
        .into_iter()
        .enumerate()
        .map(|(seq, (ts, event))| {
            if matches!(event, Event::Attached { .. }) {
                epoch += 1;
            }
            let seq = seq as u64;
            Envelope {
                run: key(),
                seq,
                epoch,
                ts,
                hash: hash_of(seq),
                event,
            }
        })
        .collect()
}

fn fold(events: impl IntoIterator<Item = Event>) -> ResumeState {
    ResumeState::fold(key(), &envelopes(events))
}

fn fold_timed(events: impl IntoIterator<Item = (u64, Event)>) -> ResumeState {
    ResumeState::fold(key(), &timed_envelopes(events))
}

fn started() -> Event {
    started_with(None)
}

fn started_with(strategy: Option<ConflictStrategy>) -> Event {
    Event::RunStarted {
        meta: RunMeta {
            conflict_strategy: strategy,
            ..RunMeta::default()
        },
    }
}

fn attached() -> Event {
    Event::Attached {
        owner: "host/42".into(),
    }
}

fn step(contents: &[&str]) -> Event {
    Event::Step {
        messages: contents
            .iter()
            .map(|content| Message::new(Role::Assistant, *content))
            .collect(),
    }
}

fn compaction_started(id: Option<&str>, source: CompactionSource) -> Event {
    Event::CompactionStarted {
        id: id.map(Into::into),
        source,
        messages_before: None,
        tokens_before: None,
    }
}

fn compaction_done(id: Option<&str>, source: CompactionSource, summary: Option<&str>) -> Event {
    Event::CompactionDone {
        id: id.map(Into::into),
        source,
        summary: summary.map(Into::into),
        messages_after: None,
        tokens_after: None,
    }
}

fn phase_started(index: u32, name: &str) -> Event {
    Event::PhaseStarted {
        index,
        name: name.into(),
    }
}

fn phase_completed(index: u32, name: &str, output: &str) -> Event {
    Event::PhaseCompleted {
        index,
        name: name.into(),
        output: output.into(),
    }
}

fn sent(id: &str, from: &str, to: &str) -> Event {
    Event::HandoffSent {
        id: id.into(),
        from: from.into(),
        to: to.into(),
        generation: 1,
        version: "3.1.0".into(),
        content_hash: "ab12".into(),
        timeout_ms: 1000,
    }
}

fn acked(id: &str, by: &str) -> Event {
    Event::HandoffAcked {
        id: id.into(),
        by: by.into(),
    }
}

fn rejected(id: &str, by: &str) -> Event {
    Event::HandoffRejected {
        id: id.into(),
        by: by.into(),
        reason: "busy".into(),
    }
}

fn timed_out(id: &str) -> Event {
    Event::HandoffTimedOut { id: id.into() }
}

fn claim(task: &str, agent: &str, priority: u8, confidence: f64) -> Event {
    Event::TaskClaimed {
        task: task.into(),
        agent: agent.into(),
        priority,
        confidence,
    }
}

fn task_done(task: &str, agent: &str) -> Event {
    Event::TaskCompleted {
        task: task.into(),
        agent: agent.into(),
        result: TaskResult::Success,
        summary: None,
    }
}

fn died(reason: &str, exit_code: Option<i32>) -> Event {
    Event::AgentDied {
        reason: reason.into(),
        exit_code,
    }
}

fn completed(output: Option<&str>) -> Event {
    Event::RunCompleted {
        output: output.map(Into::into),
    }
}

fn failed(error: ErrorInfo, cleanup_errors: Vec<ErrorInfo>) -> Event {
    Event::RunFailed { error, cleanup_errors }
}

fn interrupted() -> Event {
    Event::RunInterrupted {
        cause: InterruptCause::Shutdown,
    }
}

fn labels(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn started_with_labels(entries: &[(&str, &str)]) -> Event {
    Event::RunStarted {
        meta: RunMeta {
            labels: Some(labels(entries)),
            ..RunMeta::default()
        },
    }
}

fn rotated(reason: RotationReason, provenance: Option<&[(&str, &str)]>) -> Event {
    Event::SegmentRotated {
        reason,
        session_id: Some("session-2".into()),
        provenance: provenance.map(labels),
    }
}

fn usage(
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cost_usd: Option<f64>,
    counters: &[(&str, f64)],
) -> Event {
    Event::Usage {
        input_tokens,
        output_tokens,
        cost_usd,
        counters: (!counters.is_empty()).then(|| {
            counters
                .iter()
                .map(|(name, value)| (name.to_string(), *value))
                .collect()
        }),
    }
}

fn acquired(resource: &str) -> Event {
    Event::ResourceAcquired {
        resource: resource.into(),
    }
}

fn teardown(resource: &str, error: Option<&str>) -> Event {
    Event::Teardown {
        resource: resource.into(),
        error: error.map(Into::into),
    }
}

fn anomaly_kinds(state: &ResumeState) -> Vec<&str> {
    state.anomalies.iter().map(|anomaly| anomaly.kind.as_str()).collect()
}

fn anomaly_seqs(state: &ResumeState) -> Vec<u64> {
    state.anomalies.iter().map(|anomaly| anomaly.seq).collect()
}

fn contenders(state: &ResumeState, task: &str) -> Vec<String> {
    state.tasks.iter().find(|t| t.task == task).unwrap().contenders.clone()
}

fn holder(state: &ResumeState, task: &str) -> Option<String> {
    state.tasks.iter().find(|t| t.task == task).unwrap().claimed_by.clone()
}

fn task_status(state: &ResumeState, task: &str) -> TaskStatus {
    state.tasks.iter().find(|t| t.task == task).unwrap().status
}

fn handoff_status(state: &ResumeState, id: &str) -> HandoffStatus {
    state.handoffs.iter().find(|h| h.id == id).unwrap().status
}

const S: CompactionSource = CompactionSource::Structured;
const X: CompactionSource = CompactionSource::Scraped;

// ---------------------------------------------------------------- rule 1

#[test]
fn rule_1_status_completed_failed_interrupted_and_resume() {
    let empty = ResumeState::new(key());
    assert_eq!(empty.status, RunStatus::Running);
    assert!(empty.recoverable);
    assert_eq!(empty.last_seq, None);
    assert_eq!(empty.head, ChainHash::GENESIS);
    assert_eq!(empty.epoch, 0);

    let running = fold([started(), step(&["hi"])]);
    assert_eq!(running.status, RunStatus::Running);
    assert!(running.recoverable);
    assert_eq!(running.last_seq, Some(1));
    assert_eq!(running.head, hash_of(1));
    assert_eq!(running.epoch, 0);

    let done = fold([started(), step(&["hi"]), completed(Some("the answer"))]);
    assert_eq!(done.status, RunStatus::Completed);
    assert!(!done.recoverable);
    assert_eq!(done.output.as_deref(), Some("the answer"));
    assert_eq!(done.last_seq, Some(2));
    assert_eq!(done.head, hash_of(2));

    let broken = fold([started(), failed(ErrorInfo::new("backend", "503"), vec![])]);
    assert_eq!(broken.status, RunStatus::Failed);
    assert!(!broken.recoverable);
    assert_eq!(broken.output, None);

    let stopped = fold([started(), step(&["hi"]), interrupted()]);
    assert_eq!(stopped.status, RunStatus::Interrupted);
    assert!(stopped.recoverable);
    assert_eq!(stopped.epoch, 0);

    let resumed = fold([started(), interrupted(), attached()]);
    assert_eq!(resumed.status, RunStatus::Running);
    assert!(resumed.recoverable);
    assert_eq!(resumed.epoch, 1);

    let twice = fold([
        started(),
        interrupted(),
        attached(),
        step(&["a"]),
        interrupted(),
        attached(),
    ]);
    assert_eq!(twice.status, RunStatus::Running);
    assert_eq!(twice.epoch, 2);
    assert_eq!(twice.last_seq, Some(5));

    // A run that crashed while running is resumed without an interruption: still running.
    let crashed = fold([started(), step(&["a"]), attached()]);
    assert_eq!(crashed.status, RunStatus::Running);
    assert_eq!(crashed.epoch, 1);

    // `attached` never reopens a completed run.
    let reopened = fold([started(), completed(None), attached()]);
    assert_eq!(reopened.status, RunStatus::Completed);
    assert!(!reopened.recoverable);
}

#[test]
fn rule_1_superseded_is_representable_and_not_recoverable() {
    let mut state = fold([started(), step(&["a"])]);
    state.status = RunStatus::Superseded;
    assert!(!state.status.is_recoverable());
    assert_eq!(state.to_json()["status"], "superseded");
    assert_eq!("superseded".parse::<RunStatus>(), Ok(RunStatus::Superseded));
    assert_eq!(RunStatus::Superseded.to_string(), "superseded");

    // `attached` never revives a superseded run.
    let mut envelopes = envelopes([started(), step(&["a"]), attached()]);
    let mut state = ResumeState::fold(key(), &envelopes[..2]);
    state.status = RunStatus::Superseded;
    state.recoverable = false;
    state.apply(&envelopes.remove(2));
    assert_eq!(state.status, RunStatus::Superseded);
    assert!(!state.recoverable);
}

#[test]
fn rule_1_meta_is_the_latest_run_started_meta() {
    let meta = RunMeta {
        backend: Some("claude-code".into()),
        model: Some("m-large".into()),
        conflict_strategy: Some(ConflictStrategy::Escalate),
        ..RunMeta::default()
    };
    let state = fold([Event::RunStarted { meta: meta.clone() }, step(&["a"])]);
    assert_eq!(state.meta, meta);
    assert_eq!(state.conflict_strategy(), ConflictStrategy::Escalate);
    assert_eq!(state.to_json()["meta"]["backend"], "claude-code");

    // A fork's history holds its parent's run_started and then its own: its own wins.
    let child = RunMeta {
        model: Some("m-small".into()),
        ..RunMeta::default()
    };
    let state = fold([
        Event::RunStarted { meta },
        step(&["a"]),
        Event::RunStarted { meta: child.clone() },
    ]);
    assert_eq!(state.meta, child);
    assert_eq!(state.conflict_strategy(), ConflictStrategy::FirstClaim);
}

// ---------------------------------------------------------------- rule 2

#[test]
fn rule_2_steps_count_iterations_and_extend_transcript() {
    let state = fold([
        started(),
        step(&["one", "two"]),
        Event::TurnCompleted,
        Event::Custom {
            kind: "k".into(),
            data: "d".into(),
        },
        step(&[]),
        step(&["three"]),
    ]);
    assert_eq!(state.iteration, 3);
    let contents: Vec<&str> = state.transcript.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["one", "two", "three"]);
    assert!(state.transcript.iter().all(|m| m.role == Role::Assistant));
    assert!(state.anomalies.is_empty());
}

// ---------------------------------------------------------------- rule 3

#[test]
fn rule_3_compaction_gate_structured_then_scraped_ignored() {
    // Before any structured signal, scraped signals act and the gate stays null.
    let scraped = fold([started(), step(&["a"]), compaction_started(None, X)]);
    assert_eq!(scraped.compaction.gate, None);
    assert!(scraped.compaction.active);
    let scraped = fold([
        started(),
        compaction_started(None, X),
        compaction_done(None, X, Some("s")),
    ]);
    assert_eq!(scraped.compaction.gate, None);
    assert_eq!(scraped.compaction.count, 1);

    // A structured started sets the gate.
    let base = [started(), step(&["a"]), compaction_started(Some("k1"), S)];
    let gated = fold(base.clone());
    assert_eq!(gated.compaction.gate, Some(S));
    assert!(gated.compaction.active);

    // Afterwards scraped signals have no effect and add no anomaly.
    let mut events = base.to_vec();
    events.extend([
        compaction_done(Some("x1"), X, Some("scraped summary")),
        compaction_done(None, X, None),
        compaction_started(None, X),
    ]);
    let after = fold(events.clone());
    assert_eq!(after.compaction, gated.compaction);
    assert_eq!(after.segment, 0);
    assert_eq!(after.transcript, gated.transcript);
    assert!(after.anomalies.is_empty());
    for event in &events[3..] {
        assert_eq!(gated.rejection(event), None, "{event:?}");
    }

    // The structured done still rotates once; a scraped done for the same compaction does not.
    events.push(compaction_done(Some("k1"), S, Some("summary")));
    events.push(compaction_done(Some("k1-scraped"), X, Some("again")));
    let rotated = fold(events);
    assert_eq!(rotated.compaction.count, 1);
    assert_eq!(rotated.segment, 1);
    assert_eq!(rotated.transcript, [Message::new(Role::System, "summary")]);
    assert!(rotated.anomalies.is_empty());

    // A structured done alone also sets the gate.
    let by_done = fold([started(), compaction_done(None, S, None), compaction_started(None, X)]);
    assert_eq!(by_done.compaction.gate, Some(S));
    assert!(!by_done.compaction.active);
}

// ---------------------------------------------------------------- rule 4

#[test]
fn rule_4_compaction_done_rotates_segment() {
    let before = fold([started(), step(&["a", "b"]), compaction_started(Some("k1"), S)]);
    assert!(before.compaction.active);
    assert_eq!(before.transcript.len(), 2);

    let state = fold([
        started(),
        step(&["a", "b"]),
        compaction_started(Some("k1"), S),
        compaction_done(Some("k1"), S, Some("summary one")),
    ]);
    assert!(!state.compaction.active);
    assert_eq!(state.compaction.count, before.compaction.count + 1);
    assert_eq!(state.segment, before.segment + 1);
    assert_eq!(state.transcript, [Message::new(Role::System, "summary one")]);
    assert_eq!(state.iteration, 1);
    assert!(state.anomalies.is_empty());

    let state = fold([
        started(),
        step(&["a", "b"]),
        compaction_started(Some("k1"), S),
        compaction_done(Some("k1"), S, Some("summary one")),
        step(&["c"]),
        compaction_started(Some("k2"), S),
        compaction_done(Some("k2"), S, None),
    ]);
    assert_eq!(state.compaction.count, 2);
    assert_eq!(state.segment, 2);
    assert!(state.transcript.is_empty(), "no summary → empty transcript");
    assert_eq!(state.iteration, 2);
}

#[test]
fn rule_4_duplicate_compaction_done_is_ignored_with_anomaly() {
    let events = [
        started(),
        compaction_started(Some("k1"), X),
        compaction_done(Some("k1"), X, Some("summary")),
        step(&["after"]),
        compaction_done(Some("k1"), S, Some("other summary")),
    ];
    let state = fold(events);
    assert_eq!(state.compaction.count, 1);
    assert_eq!(state.segment, 1);
    let contents: Vec<&str> = state.transcript.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["summary", "after"]);
    assert_eq!(anomaly_kinds(&state), ["duplicate_compaction_done"]);
    assert_eq!(anomaly_seqs(&state), [4]);
    assert!(state.anomalies[0].detail.contains("k1"));
    // Ignored entirely: the structured duplicate does not even set the gate.
    assert_eq!(state.compaction.gate, None);

    // Only the previous *effective* done counts: k1, k2, k1 rotates three times.
    let state = fold([
        started(),
        compaction_done(Some("k1"), S, None),
        compaction_done(Some("k2"), S, None),
        compaction_done(Some("k1"), S, None),
    ]);
    assert_eq!(state.compaction.count, 3);
    assert!(!anomaly_kinds(&state).contains(&"duplicate_compaction_done"));

    // Dones without ids are never duplicates.
    let state = fold([
        started(),
        compaction_started(None, S),
        compaction_done(None, S, None),
        compaction_started(None, S),
        compaction_done(None, S, None),
    ]);
    assert_eq!(state.compaction.count, 2);
    assert!(state.anomalies.is_empty());
}

#[test]
fn rule_4_done_without_start_still_counts() {
    let events = [started(), step(&["a"]), compaction_done(Some("k1"), S, Some("sum"))];
    let before = fold(events[..2].to_vec());
    assert_eq!(before.rejection(&events[2]), None, "the done is not ignored");
    let state = fold(events);
    assert_eq!(state.compaction.count, 1);
    assert_eq!(state.segment, 1);
    assert_eq!(state.transcript, [Message::new(Role::System, "sum")]);
    assert_eq!(anomaly_kinds(&state), ["compaction_done_without_start"]);
    assert_eq!(anomaly_seqs(&state), [2]);

    // A started line followed by a stranding event, then the done: still counts.
    let state = fold([
        started(),
        compaction_started(None, S),
        Event::TurnCompleted,
        compaction_done(None, S, None),
    ]);
    assert_eq!(state.compaction.count, 1);
    assert_eq!(anomaly_kinds(&state), ["compaction_done_without_start"]);
}

#[test]
fn rule_4_compaction_id_mismatch_counts_with_anomaly() {
    let events = [
        started(),
        step(&["a"]),
        compaction_started(Some("k1"), S),
        compaction_done(Some("k2"), S, Some("sum")),
    ];
    let before = fold(events[..3].to_vec());
    assert_eq!(before.rejection(&events[3]), None, "a mismatched done is not ignored");
    let state = fold(events);
    assert_eq!(state.compaction.count, 1);
    assert_eq!(state.segment, 1);
    assert!(!state.compaction.active);
    assert_eq!(state.transcript, [Message::new(Role::System, "sum")]);
    assert_eq!(anomaly_kinds(&state), ["compaction_id_mismatch"]);
    assert_eq!(anomaly_seqs(&state), [3]);
    let detail = &state.anomalies[0].detail;
    assert!(detail.contains("k1") && detail.contains("k2"), "{detail}");

    // Only when both ids are set; a matching id is no anomaly.
    for (start, done) in [
        (None, Some("k2")),
        (Some("k1"), None),
        (Some("k1"), Some("k1")),
        (None, None),
    ] {
        let state = fold([started(), compaction_started(start, S), compaction_done(done, S, None)]);
        assert_eq!(state.compaction.count, 1, "{start:?} / {done:?}");
        assert!(
            state.anomalies.is_empty(),
            "{start:?} / {done:?}: {:?}",
            state.anomalies
        );
    }
    // The start's id is the one of the active compaction: a stranded one is forgotten.
    let state = fold([
        started(),
        compaction_started(Some("k1"), S),
        Event::TurnCompleted,
        compaction_started(None, S),
        compaction_done(Some("k2"), S, None),
    ]);
    assert!(state.anomalies.is_empty(), "{:?}", state.anomalies);
}

#[test]
fn rule_4_compaction_closes_the_segment_with_end_reason_compaction() {
    let state = fold([
        started(),
        step(&["a"]),
        compaction_started(Some("k1"), S),
        compaction_done(Some("k1"), S, Some("one")),
        step(&["b"]),
        compaction_done(Some("k2"), S, None),
    ]);
    assert_eq!(
        state.segments,
        [
            Segment {
                index: 0,
                opened_seq: 0,
                closed_seq: 3,
                end_reason: SegmentEnd::Compaction
            },
            Segment {
                index: 1,
                opened_seq: 3,
                closed_seq: 5,
                end_reason: SegmentEnd::Compaction
            },
        ]
    );
    assert_eq!(state.segment, 2);
    // Ignored and gated-out dones close nothing.
    let state = fold([
        started(),
        compaction_done(Some("k1"), S, None),
        compaction_done(Some("k1"), S, None),
        compaction_done(None, X, None),
    ]);
    assert_eq!(state.segments.len(), 1);
}

// ---------------------------------------------------------------- rule 5

#[test]
fn rule_5_stranded_compaction_cleared_by_turn_death_attach_and_terminal() {
    let prefix = [
        started(),
        compaction_started(Some("k0"), S),
        compaction_done(Some("k0"), S, Some("old")),
        step(&["a"]),
        compaction_started(Some("k1"), S),
    ];
    let stranded = fold(prefix.clone());
    assert!(stranded.compaction.active);
    let clearing = [
        Event::TurnCompleted,
        died("oom", Some(137)),
        attached(),
        completed(None),
        failed(ErrorInfo::new("backend", "x"), vec![]),
        interrupted(),
    ];
    for event in clearing {
        let mut events = prefix.to_vec();
        events.push(event.clone());
        let state = fold(events);
        assert!(!state.compaction.active, "{event:?} clears active");
        assert_eq!(state.compaction.count, stranded.compaction.count, "{event:?}");
        assert_eq!(state.segment, stranded.segment, "{event:?}");
        assert_eq!(state.transcript, stranded.transcript, "{event:?}");
        assert!(state.anomalies.is_empty(), "{event:?}");
    }
    // Events that are not stranding leave it active.
    let mut events = prefix.to_vec();
    events.extend([
        step(&["b"]),
        phase_started(0, "p"),
        rotated(RotationReason::SessionLoad, None),
    ]);
    assert!(fold(events).compaction.active);
}

#[test]
fn rule_5_attached_clears_stranded_compaction() {
    let prefix = [
        started(),
        step(&["a"]),
        compaction_started(Some("k1"), S),
        compaction_done(Some("k1"), S, Some("old")),
        step(&["b"]),
        compaction_started(Some("k2"), S),
    ];
    let stranded = fold(prefix.clone());
    assert!(stranded.compaction.active);
    let mut events = prefix.to_vec();
    events.push(attached());
    let resumed = fold(events.clone());
    assert!(!resumed.compaction.active, "the fenced writer's done can never come");
    assert_eq!(resumed.compaction.count, stranded.compaction.count);
    assert_eq!(resumed.segment, stranded.segment);
    assert_eq!(resumed.segments, stranded.segments);
    assert_eq!(resumed.transcript, stranded.transcript);
    assert!(resumed.anomalies.is_empty());

    // A done that arrives after the resume still counts, as a done without a start.
    events.push(compaction_done(Some("k2"), S, Some("late")));
    let state = fold(events);
    assert_eq!(state.compaction.count, 2);
    assert_eq!(state.segment, 2);
    assert_eq!(anomaly_kinds(&state), ["compaction_done_without_start"]);
}

// ---------------------------------------------------------------- rule 6

#[test]
fn rule_6_phases_told_apart_by_index() {
    let state = fold([
        started(),
        phase_started(0, "build"),
        phase_completed(0, "build", "first build"),
        phase_started(1, "build"),
    ]);
    assert_eq!(state.completed_phase_indices(), [0]);
    let active = state.phases.active.clone().unwrap();
    assert_eq!((active.index, active.name.as_str()), (1, "build"));

    // Completions are kept ordered by index whatever their order; active is
    // cleared only by the completion of its own index.
    let state = fold([
        started(),
        phase_started(0, "build"),
        phase_completed(0, "build", "first build"),
        phase_started(2, "build"),
        phase_completed(3, "test", "tests pass"),
        phase_completed(1, "build", "second build"),
    ]);
    assert_eq!(state.completed_phase_indices(), [0, 1, 3]);
    let outputs: Vec<(&str, &str)> = state
        .phases
        .completed
        .iter()
        .map(|p| (p.name.as_str(), p.output.as_str()))
        .collect();
    assert_eq!(
        outputs,
        [
            ("build", "first build"),
            ("build", "second build"),
            ("test", "tests pass")
        ]
    );
    assert_eq!(state.phases.active.as_ref().map(|a| a.index), Some(2));

    let state = fold([
        started(),
        phase_started(2, "build"),
        phase_completed(2, "build", "done"),
    ]);
    assert_eq!(state.phases.active, None);
    assert_eq!(state.completed_phase_indices(), [2]);
    assert!(state.anomalies.is_empty());
}

#[test]
fn rule_6_repeated_completion_replaces_entry_with_anomaly() {
    let events = [
        started(),
        phase_completed(0, "plan", "v1"),
        phase_started(0, "plan"),
        phase_completed(0, "plan", "v2"),
    ];
    let before = fold(events[..3].to_vec());
    assert_eq!(before.rejection(&events[3]), None, "a repeated completion takes effect");
    let state = fold(events);
    assert_eq!(state.completed_phase_indices(), [0]);
    assert_eq!(state.phases.completed[0].output, "v2");
    assert_eq!(state.phases.active, None);
    assert_eq!(anomaly_kinds(&state), ["phase_completed_again"]);
    assert_eq!(anomaly_seqs(&state), [3]);
}

// ---------------------------------------------------------------- rule 7

#[test]
fn rule_7_handoffs_final_states_and_late_events() {
    let base = [
        started(),
        sent("h1", "a", "b"),
        sent("h2", "a", "c"),
        sent("h3", "a", "d"),
        sent("h4", "a", "e"),
    ];
    let pending = fold(base.clone());
    assert!(pending.handoffs.iter().all(|h| h.status == HandoffStatus::Pending));
    assert_eq!(pending.handoff_success_rate, None, "pending handoffs are not counted");
    let first = &pending.handoffs[0];
    assert_eq!(
        (
            first.id.as_str(),
            first.from.as_str(),
            first.to.as_str(),
            first.version.as_str()
        ),
        ("h1", "a", "b", "3.1.0")
    );

    let mut events = base.to_vec();
    events.extend([acked("h1", "b"), rejected("h2", "c"), timed_out("h3")]);
    let settled = fold(events.clone());
    assert_eq!(handoff_status(&settled, "h1"), HandoffStatus::Acknowledged);
    assert_eq!(handoff_status(&settled, "h2"), HandoffStatus::Rejected);
    assert_eq!(handoff_status(&settled, "h3"), HandoffStatus::TimedOut);
    assert_eq!(handoff_status(&settled, "h4"), HandoffStatus::Pending);
    assert_eq!(settled.handoff_success_rate, Some(1.0 / 3.0));
    assert!(settled.anomalies.is_empty());

    // A late ack never turns a time-out into an ack; every later event on a final id is ignored.
    let late = [
        acked("h3", "d"),
        rejected("h1", "b"),
        timed_out("h2"),
        acked("h1", "zz"),
        sent("h1", "a", "b"),
    ];
    events.extend(late);
    let state = fold(events.clone());
    assert_eq!(state.handoffs, settled.handoffs);
    assert_eq!(state.handoff_success_rate, settled.handoff_success_rate);
    assert_eq!(anomaly_kinds(&state), ["late_handoff_event"; 5]);
    assert_eq!(anomaly_seqs(&state), [8, 9, 10, 11, 12]);

    // Events for a handoff never sent, and a resend of a pending id, are ignored.
    events.extend([acked("nope", "b"), timed_out("nope"), sent("h4", "a", "x")]);
    let state = fold(events);
    assert_eq!(
        anomaly_kinds(&state)[5..],
        ["unknown_handoff", "unknown_handoff", "duplicate_handoff"]
    );
    assert_eq!(state.handoffs, settled.handoffs);
}

#[test]
fn rule_7_wrong_agent_ack_ignored() {
    let state = fold([started(), sent("h1", "a", "b"), acked("h1", "c"), rejected("h1", "a")]);
    assert_eq!(handoff_status(&state, "h1"), HandoffStatus::Pending);
    assert_eq!(state.handoff_success_rate, None);
    assert_eq!(anomaly_kinds(&state), ["wrong_agent", "wrong_agent"]);
    assert_eq!(anomaly_seqs(&state), [2, 3]);

    let state = fold([started(), sent("h1", "a", "b"), acked("h1", "c"), acked("h1", "b")]);
    assert_eq!(handoff_status(&state, "h1"), HandoffStatus::Acknowledged);
    assert_eq!(state.handoff_success_rate, Some(1.0));

    let state = fold([started(), sent("h1", "a", "b"), rejected("h1", "b")]);
    assert_eq!(handoff_status(&state, "h1"), HandoffStatus::Rejected);
    assert_eq!(state.handoff_success_rate, Some(0.0));
}

#[test]
fn rule_7_ack_past_deadline_times_out() {
    // sent at 1000 with timeout_ms 1000: the deadline is 2000.
    let send = [
        (0, started()),
        (1000, sent("h1", "a", "b")),
        (1000, sent("h2", "a", "c")),
    ];
    let mut events = send.to_vec();
    events.extend([(2001, acked("h1", "b")), (2500, rejected("h2", "c"))]);
    let before = fold_timed(events[..3].to_vec());
    assert_eq!(
        before.rejection(&events[3].1),
        None,
        "the late ack takes effect: a time-out"
    );
    let state = fold_timed(events.clone());
    assert_eq!(handoff_status(&state, "h1"), HandoffStatus::TimedOut);
    assert_eq!(handoff_status(&state, "h2"), HandoffStatus::TimedOut);
    assert_eq!(state.handoff_success_rate, Some(0.0));
    assert_eq!(anomaly_kinds(&state), ["late_handoff_event"; 2]);
    assert_eq!(anomaly_seqs(&state), [3, 4]);
    assert!(
        state.anomalies[0].detail.contains("deadline 2000"),
        "{}",
        state.anomalies[0].detail
    );

    // At the deadline exactly, the answer is in time.
    let mut events = send.to_vec();
    events.extend([(2000, acked("h1", "b")), (1999, rejected("h2", "c"))]);
    let state = fold_timed(events);
    assert_eq!(handoff_status(&state, "h1"), HandoffStatus::Acknowledged);
    assert_eq!(handoff_status(&state, "h2"), HandoffStatus::Rejected);
    assert!(state.anomalies.is_empty());

    // Another agent's late answer says nothing about the receiver's: wrong_agent, still pending.
    let mut events = send.to_vec();
    events.push((9000, acked("h1", "zz")));
    let state = fold_timed(events.clone());
    assert_eq!(handoff_status(&state, "h1"), HandoffStatus::Pending);
    assert_eq!(anomaly_kinds(&state), ["wrong_agent"]);

    // Once timed out by its deadline, the handoff is final like any other.
    events.extend([(9001, acked("h1", "b")), (9002, acked("h1", "b"))]);
    let state = fold_timed(events);
    assert_eq!(handoff_status(&state, "h1"), HandoffStatus::TimedOut);
    assert_eq!(
        anomaly_kinds(&state),
        ["wrong_agent", "late_handoff_event", "late_handoff_event"]
    );
    assert!(state.anomalies[2].detail.contains("already timed_out"));
}

// ---------------------------------------------------------------- rule 8

#[test]
fn rule_8_tasks_first_claim() {
    for strategy in [None, Some(ConflictStrategy::FirstClaim)] {
        let state = fold([
            started_with(strategy),
            claim("t1", "a", 3, 0.1),
            claim("t1", "b", 0, 0.9),
            claim("t1", "a", 0, 1.0),
            claim("t1", "c", 0, 1.0),
            claim("t2", "b", 1, 0.5),
        ]);
        assert_eq!(state.conflict_strategy(), ConflictStrategy::FirstClaim);
        assert_eq!(holder(&state, "t1").as_deref(), Some("a"), "{strategy:?}");
        assert_eq!(task_status(&state, "t1"), TaskStatus::Claimed);
        assert_eq!(contenders(&state, "t1"), ["a", "b", "c"], "each agent once, in order");
        assert_eq!(holder(&state, "t2").as_deref(), Some("b"));
        assert_eq!(contenders(&state, "t2"), ["b"]);
        let order: Vec<&str> = state.tasks.iter().map(|t| t.task.as_str()).collect();
        assert_eq!(order, ["t1", "t2"]);
        assert!(state.anomalies.is_empty());
    }
}

#[test]
fn rule_8_tasks_highest_confidence() {
    let mut events = vec![
        started_with(Some(ConflictStrategy::HighestConfidence)),
        claim("t1", "a", 0, 0.5),
        claim("t1", "b", 3, 0.7),
    ];
    let state = fold(events.clone());
    assert_eq!(holder(&state, "t1").as_deref(), Some("b"));
    events.push(claim("t1", "c", 0, 0.7));
    let state = fold(events.clone());
    assert_eq!(
        holder(&state, "t1").as_deref(),
        Some("b"),
        "a tie keeps the earlier claim"
    );
    events.push(claim("t1", "a", 3, 0.9));
    let state = fold(events.clone());
    assert_eq!(
        holder(&state, "t1").as_deref(),
        Some("a"),
        "a more confident re-claim wins"
    );
    assert_eq!(contenders(&state, "t1"), ["a", "b", "c"]);
    events.push(claim("t1", "d", 0, 0.2));
    let state = fold(events);
    assert_eq!(holder(&state, "t1").as_deref(), Some("a"));
    assert_eq!(task_status(&state, "t1"), TaskStatus::Claimed);
}

#[test]
fn rule_8_tasks_highest_priority() {
    let mut events = vec![
        started_with(Some(ConflictStrategy::HighestPriority)),
        claim("t1", "a", 2, 0.9),
        claim("t1", "b", 1, 0.1),
    ];
    let state = fold(events.clone());
    assert_eq!(holder(&state, "t1").as_deref(), Some("b"), "lower number wins");
    events.push(claim("t1", "c", 1, 1.0));
    assert_eq!(
        holder(&fold(events.clone()), "t1").as_deref(),
        Some("b"),
        "tie keeps earlier"
    );
    events.push(claim("t1", "d", 3, 1.0));
    assert_eq!(holder(&fold(events.clone()), "t1").as_deref(), Some("b"));
    events.push(claim("t1", "a", 0, 0.0));
    let state = fold(events);
    assert_eq!(holder(&state, "t1").as_deref(), Some("a"));
    assert_eq!(contenders(&state, "t1"), ["a", "b", "c", "d"]);
}

#[test]
fn rule_8_tasks_escalate() {
    let state = fold([
        started_with(Some(ConflictStrategy::Escalate)),
        claim("t1", "a", 0, 0.5),
        claim("t1", "a", 0, 0.5),
        claim("t2", "a", 0, 0.5),
    ]);
    assert_eq!(
        task_status(&state, "t1"),
        TaskStatus::Claimed,
        "a holder's re-claim is no conflict"
    );
    assert_eq!(holder(&state, "t1").as_deref(), Some("a"));

    let state = fold([
        started_with(Some(ConflictStrategy::Escalate)),
        claim("t1", "a", 0, 0.5),
        claim("t1", "b", 0, 0.9),
        claim("t1", "c", 0, 0.9),
        task_done("t1", "a"),
    ]);
    assert_eq!(task_status(&state, "t1"), TaskStatus::Escalated);
    assert_eq!(holder(&state, "t1"), None);
    assert_eq!(contenders(&state, "t1"), ["a", "b", "c"]);
    assert_eq!(anomaly_kinds(&state), ["late_task_event"]);
    assert_eq!(anomaly_seqs(&state), [4]);
    let json = state.to_json();
    assert_eq!(json["tasks"][0]["status"], "escalated");
    assert!(json["tasks"][0]["claimed_by"].is_null());
}

#[test]
fn rule_8_task_completion_by_non_holder() {
    let state = fold([started(), claim("t1", "a", 0, 0.5), task_done("t1", "b")]);
    assert_eq!(task_status(&state, "t1"), TaskStatus::Claimed);
    assert_eq!(anomaly_kinds(&state), ["wrong_agent"]);
    assert_eq!(anomaly_seqs(&state), [2]);

    let state = fold([
        started(),
        claim("t1", "a", 0, 0.5),
        task_done("t1", "b"),
        task_done("t1", "a"),
        task_done("t1", "a"),
        task_done("t1", "b"),
        claim("t1", "c", 0, 1.0),
        task_done("t9", "a"),
    ]);
    assert_eq!(task_status(&state, "t1"), TaskStatus::Completed);
    assert_eq!(holder(&state, "t1").as_deref(), Some("a"));
    assert_eq!(
        contenders(&state, "t1"),
        ["a"],
        "a claim on a completed task is ignored"
    );
    assert_eq!(
        anomaly_kinds(&state),
        [
            "wrong_agent",
            "late_task_event",
            "late_task_event",
            "late_task_event",
            "unknown_task"
        ]
    );
    assert_eq!(anomaly_seqs(&state), [2, 4, 5, 6, 7]);
    assert_eq!(state.tasks.len(), 1);
}

// ---------------------------------------------------------------- rule 9

#[test]
fn rule_9_death_keeps_run_recoverable() {
    let state = fold([
        started(),
        step(&["a"]),
        compaction_started(None, S),
        died("oom-killed", Some(137)),
    ]);
    let death = state.died.clone().unwrap();
    assert_eq!((death.reason.as_str(), death.exit_code), ("oom-killed", Some(137)));
    assert!(!state.compaction.active);
    assert_eq!(state.status, RunStatus::Running);
    assert!(state.recoverable);
    assert_eq!(state.transcript.len(), 1);

    let resumed = fold([started(), died("segv", None), attached(), step(&["b"])]);
    assert_eq!(resumed.status, RunStatus::Running);
    assert!(resumed.recoverable);
    assert_eq!(resumed.epoch, 1);
    assert_eq!(resumed.died.as_ref().unwrap().exit_code, None);
    let json = resumed.to_json();
    assert_eq!(json["died"], serde_json::json!({"reason": "segv", "exit_code": null}));
}

// ---------------------------------------------------------------- rule 10

#[test]
fn rule_10_failure_keeps_cleanup_errors_apart() {
    let primary = ErrorInfo::new("backend", "model unavailable");
    let cleanups = vec![
        ErrorInfo::new("stop", "container stuck"),
        ErrorInfo::new("io", "disk full"),
    ];
    let state = fold([
        started(),
        Event::Teardown {
            resource: "sandbox".into(),
            error: Some("busy".into()),
        },
        failed(primary.clone(), cleanups.clone()),
    ]);
    let failure = state.failure.clone().unwrap();
    assert_eq!(failure.error, primary);
    assert_eq!(failure.cleanup_errors, cleanups);
    assert_eq!(state.status, RunStatus::Failed);
    let json = state.to_json();
    assert_eq!(json["failure"]["error"]["kind"], "backend");
    assert_eq!(json["failure"]["cleanup_errors"].as_array().unwrap().len(), 2);
    assert_eq!(json["failure"]["cleanup_errors"][0]["kind"], "stop");
}

// ---------------------------------------------------------------- rule 11

#[test]
fn rule_11_segment_rotated_closes_segment() {
    let state = fold([
        started(),
        step(&["a", "b"]),
        compaction_started(Some("k1"), S),
        compaction_done(Some("k1"), S, Some("summary")),
        step(&["c"]),
        rotated(RotationReason::SessionLoad, None),
        step(&["d"]),
        rotated(RotationReason::SessionChanged, None),
    ]);
    assert_eq!(state.segment, 3);
    assert_eq!(state.compaction.count, 1, "a rotation is no compaction");
    assert!(state.transcript.is_empty());
    assert_eq!(state.iteration, 3);
    let ends: Vec<(u64, u64, u64, SegmentEnd)> = state
        .segments
        .iter()
        .map(|segment| {
            (
                segment.index,
                segment.opened_seq,
                segment.closed_seq,
                segment.end_reason,
            )
        })
        .collect();
    assert_eq!(
        ends,
        [
            (0, 0, 3, SegmentEnd::Compaction),
            (1, 3, 5, SegmentEnd::SessionLoad),
            (2, 5, 7, SegmentEnd::SessionChanged),
        ]
    );
    assert!(state.anomalies.is_empty());
    let json = state.to_json();
    assert_eq!(json["segments"][1]["end_reason"], "session_load");
    assert_eq!(json["segments"][2]["end_reason"], "session_changed");

    // The new segment collects the steps after the rotation.
    let state = fold([
        started(),
        step(&["a"]),
        rotated(RotationReason::SessionLoad, None),
        step(&["b"]),
    ]);
    assert_eq!(state.transcript, [Message::new(Role::Assistant, "b")]);
}

#[test]
fn rule_11_provenance_fills_absent_keys_only() {
    let state = fold([
        started_with_labels(&[("team", "auth"), ("hermes_session_id", "h-1")]),
        rotated(
            RotationReason::SessionLoad,
            Some(&[("hermes_session_id", "h-2"), ("loaded_from", "disk")]),
        ),
        rotated(
            RotationReason::SessionChanged,
            Some(&[("loaded_from", "network"), ("host", "b")]),
        ),
        rotated(RotationReason::SessionChanged, None),
    ]);
    assert_eq!(
        state.provenance,
        labels(&[
            ("hermes_session_id", "h-1"),
            ("host", "b"),
            ("loaded_from", "disk"),
            ("team", "auth")
        ])
    );
    assert_eq!(state.to_json()["provenance"]["hermes_session_id"], "h-1");

    // Without labels the first rotation's value is the one kept.
    let state = fold([
        started(),
        rotated(RotationReason::SessionLoad, Some(&[("hermes_session_id", "h-2")])),
        rotated(RotationReason::SessionLoad, Some(&[("hermes_session_id", "h-3")])),
    ]);
    assert_eq!(state.provenance, labels(&[("hermes_session_id", "h-2")]));
}

#[test]
fn rule_11_segments_keep_the_newest_64() {
    let mut events = vec![started()];
    events.extend((0..MAX_SEGMENTS as u64 + 6).map(|_| rotated(RotationReason::SessionChanged, None)));
    let state = fold(events);
    assert_eq!(state.segment, 70);
    assert_eq!(state.segments.len(), MAX_SEGMENTS);
    assert_eq!(MAX_SEGMENTS, 64);
    assert_eq!(state.segments.first().map(|segment| segment.index), Some(6));
    assert_eq!(state.segments.last().map(|segment| segment.index), Some(69));
    assert_eq!(state.segments.last().map(|segment| segment.closed_seq), Some(70));
}

// ---------------------------------------------------------------- rule 12

#[test]
fn rule_12_active_ms_excludes_downtime() {
    let state = fold_timed([
        (1_000, started()),
        (1_200, step(&["a"])),
        (1_300, compaction_started(None, S)),
        // crash: nothing for an hour, then a resume (epoch 1)
        (3_601_300, attached()),
        (3_601_350, step(&["b"])),
        (3_601_400, interrupted()),
        // another resume (epoch 2), a single event so far
        (7_000_000, attached()),
    ]);
    assert_eq!(state.wall_ms, 7_000_000 - 1_000);
    assert_eq!(state.active_ms, 300 + 100);
    let json = state.to_json();
    assert_eq!(
        (json["active_ms"].as_u64(), json["wall_ms"].as_u64()),
        (Some(400), Some(6_999_000))
    );

    // An ignored event still moves the clock.
    let state = fold_timed([(10, started()), (25, acked("nope", "b"))]);
    assert_eq!((state.active_ms, state.wall_ms), (15, 15));
    assert_eq!(anomaly_kinds(&state), ["unknown_handoff"]);
}

#[test]
fn rule_12_wall_ms_spans_a_forks_prefix() {
    // A fork's history: the parent's prefix (epochs 0 and 1), then the child's own events in its epoch 0.
    let parent_prefix = timed_envelopes([
        (100, started()),
        (150, step(&["a"])),
        (500, attached()),
        (520, step(&["b"])),
    ]);
    let mut history = parent_prefix.clone();
    history.extend(
        timed_envelopes([(10_000, started()), (10_040, step(&["c"]))])
            .into_iter()
            .map(|envelope| Envelope { epoch: 0, ..envelope }),
    );
    let state = ResumeState::fold(key(), &history);
    assert_eq!(state.wall_ms, 10_040 - 100);
    assert_eq!(state.active_ms, 50 + 20 + 40, "the gap before the fork is downtime");
}

#[test]
#[expect(
    clippy::float_cmp,
    reason = "the values are exact (small integers or copied through unchanged), so exact comparison is the check"
)]
fn rule_12_usage_sums() {
    let state = fold([
        started(),
        usage(Some(1000), Some(200), Some(0.015), &[("tool_calls", 3.0)]),
        usage(None, Some(100), None, &[]),
        usage(Some(200), None, Some(0.005), &[("tool_calls", 1.0), ("retries", 1.0)]),
        Event::Usage {
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            counters: None,
        },
    ]);
    assert_eq!(state.usage.input_tokens, 1200);
    assert_eq!(state.usage.output_tokens, 300);
    assert!((state.usage.cost_usd - 0.02).abs() < 1e-12, "{}", state.usage.cost_usd);
    assert_eq!(
        state.usage.counters,
        BTreeMap::from([("retries".to_string(), 1.0), ("tool_calls".to_string(), 4.0)])
    );
    assert!(state.anomalies.is_empty());
    let json = state.to_json();
    assert_eq!(json["usage"]["input_tokens"], 1200);
    assert_eq!(json["usage"]["counters"]["tool_calls"], 4.0);

    let none = fold([started()]);
    assert_eq!(none.usage.input_tokens, 0);
    assert_eq!(none.usage.cost_usd, 0.0);
    assert!(none.usage.counters.is_empty());
}

// ---------------------------------------------------------------- rule 13

#[test]
fn rule_13_resources_listed_with_teardown() {
    let state = fold([
        started(),
        acquired("sandbox-1"),
        acquired("browser"),
        acquired("sandbox-1"),
        teardown("sandbox-1", None),
        teardown("scratch-dir", Some("permission denied")),
        completed(Some("done")),
        teardown("browser", Some("busy")),
    ]);
    let expected = [
        ("sandbox-1", Some(1), true, None),
        ("browser", Some(2), true, Some("busy")),
        ("scratch-dir", None, true, Some("permission denied")),
    ];
    let actual: Vec<(&str, Option<u64>, bool, Option<&str>)> = state
        .resources
        .iter()
        .map(|entry| {
            (
                entry.resource.as_str(),
                entry.acquired_seq,
                entry.torn_down,
                entry.error.as_deref(),
            )
        })
        .collect();
    assert_eq!(actual, expected);
    assert_eq!(
        state.status,
        RunStatus::Completed,
        "a teardown after the outcome changes no status"
    );
    assert!(state.anomalies.is_empty());

    // A resource never torn down stays visible; one acquired again after its teardown is listed again;
    // a repeated teardown is a retry whose error replaces the earlier one.
    let state = fold([
        started(),
        acquired("sandbox-1"),
        teardown("sandbox-1", Some("busy")),
        teardown("sandbox-1", None),
        acquired("sandbox-1"),
        acquired("gpu"),
    ]);
    assert_eq!(
        state.resources,
        [
            ResourceState {
                resource: "sandbox-1".into(),
                acquired_seq: Some(1),
                torn_down: true,
                error: None
            },
            ResourceState {
                resource: "sandbox-1".into(),
                acquired_seq: Some(4),
                torn_down: false,
                error: None
            },
            ResourceState {
                resource: "gpu".into(),
                acquired_seq: Some(5),
                torn_down: false,
                error: None
            },
        ]
    );
}

// ---------------------------------------------------------------- fold version

#[test]
fn fold_version_is_2() {
    assert_eq!(FOLD_VERSION, 2);
}

// ---------------------------------------------------------------- rejection()

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

/// Applies each envelope, checking `rejection()` against `apply()`. Returns the
/// kinds `rejection()` reported.
fn check_rejection_agrees(envelopes: &[Envelope]) -> Vec<String> {
    let mut state = ResumeState::new(key());
    let mut reported = Vec::new();
    for envelope in envelopes {
        let before = state.clone();
        let predicted = state.rejection(&envelope.event);
        assert_eq!(state, before, "rejection() does not mutate");
        state.apply(envelope);
        if let Some(anomaly) = predicted {
            assert_eq!(anomaly.seq, envelope.seq, "predicted seq follows last_seq");
            let mut expected = moved_to(before.clone(), envelope);
            expected.anomalies.push(anomaly.clone());
            assert_eq!(
                state, expected,
                "{:?} is ignored with exactly its anomaly",
                envelope.event
            );
            reported.push(anomaly.kind);
        } else {
            let added: Vec<&str> = state.anomalies[before.anomalies.len()..]
                .iter()
                .map(|a| a.kind.as_str())
                .collect();
            let mut applied_with_anomaly = vec![
                Anomaly::COMPACTION_DONE_WITHOUT_START,
                Anomaly::COMPACTION_ID_MISMATCH,
                Anomaly::PHASE_COMPLETED_AGAIN,
            ];
            if matches!(
                envelope.event,
                Event::HandoffAcked { .. } | Event::HandoffRejected { .. }
            ) {
                applied_with_anomaly.push(Anomaly::LATE_HANDOFF_EVENT);
            }
            assert!(
                added.iter().all(|kind| applied_with_anomaly.contains(kind)),
                "{:?} not predicted as rejected, but added {added:?}",
                envelope.event
            );
        }
    }
    reported
}

#[test]
fn rejection_agrees_with_apply_for_every_ignored_kind() {
    let events = [
        started_with(Some(ConflictStrategy::Escalate)),
        compaction_started(Some("k1"), X),
        compaction_done(Some("k1"), X, Some("s")),
        compaction_done(Some("k1"), X, Some("s")), // duplicate_compaction_done
        compaction_done(None, S, None),            // without start: applied
        compaction_done(None, X, None),            // gated: no effect, no anomaly
        phase_completed(0, "p", "x"),
        phase_completed(0, "p", "y"), // phase_completed_again: applied
        sent("h1", "a", "b"),
        sent("h1", "a", "b"), // duplicate_handoff
        acked("h1", "c"),     // wrong_agent
        acked("h1", "b"),
        timed_out("h1"),     // late_handoff_event
        rejected("h9", "b"), // unknown_handoff
        claim("t1", "a", 0, 0.5),
        task_done("t1", "b"), // wrong_agent
        task_done("t1", "a"),
        claim("t1", "b", 0, 0.5), // late_task_event
        task_done("t2", "a"),     // unknown_task
        claim("t3", "a", 0, 0.5),
        claim("t3", "b", 0, 0.5),
        task_done("t3", "a"), // late_task_event (escalated)
        died("oom", None),
        attached(),
        completed(Some("out")),
    ];
    let reported = check_rejection_agrees(&envelopes(events));
    assert_eq!(
        reported,
        [
            "duplicate_compaction_done",
            "duplicate_handoff",
            "wrong_agent",
            "late_handoff_event",
            "unknown_handoff",
            "wrong_agent",
            "late_task_event",
            "unknown_task",
            "late_task_event",
        ]
    );
}

#[test]
fn rejection_agrees_with_apply_for_the_v2_events_and_deadlines() {
    let events = [
        (0, started_with_labels(&[("a", "1")])),
        (10, compaction_started(Some("k1"), S)),
        (20, compaction_done(Some("k2"), S, None)), // compaction_id_mismatch: applied
        (30, compaction_started(Some("k3"), S)),
        (40, attached()),
        (50, compaction_done(Some("k3"), S, None)), // without start: applied
        (60, usage(Some(1), Some(2), Some(0.25), &[("n", 1.0)])),
        (70, rotated(RotationReason::SessionLoad, Some(&[("a", "2")]))),
        (80, acquired("r")),
        (90, teardown("r", None)),
        (100, teardown("never", Some("e"))),
        (110, sent("h1", "a", "b")),
        (5_000, acked("h1", "c")),    // wrong_agent
        (5_001, acked("h1", "b")),    // past the deadline: applied, timed out
        (5_002, rejected("h1", "b")), // late_handoff_event
    ];
    let reported = check_rejection_agrees(&timed_envelopes(events));
    assert_eq!(reported, ["wrong_agent", "late_handoff_event"]);
}

#[test]
fn rejection_ignores_gated_scraped_signals_and_done_without_start() {
    let state = fold([started(), compaction_started(None, S)]);
    assert_eq!(state.rejection(&compaction_done(Some("z"), X, None)), None);
    assert_eq!(state.rejection(&compaction_started(None, X)), None);
    let fresh = fold([started()]);
    assert_eq!(fresh.rejection(&compaction_done(None, S, None)), None);
    let empty = ResumeState::new(key());
    let predicted = empty.rejection(&timed_out("h")).unwrap();
    assert_eq!((predicted.seq, predicted.kind.as_str()), (0, "unknown_handoff"));
    assert!(predicted.detail.contains("\"h\""));
}

// ---------------------------------------------------------------- JSON shape

/// A JSON value that keeps the order of object keys, read from text.
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar,
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Ordered>()? {
                    entries.push((key, value));
                }
                Ok(Ordered::Object(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Ordered>()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Ordered, D::Error> {
                IgnoredAny::deserialize(deserializer).map(|_| Ordered::Scalar)
            }
        }
        deserializer.deserialize_any(OrderedVisitor)
    }
}

impl Ordered {
    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(entries) => entries.iter().map(|(key, _)| key.as_str()).collect(),
            _ => panic!("not an object"),
        }
    }

    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(entries) => &entries.iter().find(|(k, _)| k == key).unwrap().1,
            _ => panic!("not an object"),
        }
    }

    fn first(&self) -> &Ordered {
        match self {
            Ordered::Array(items) => &items[0],
            _ => panic!("not an array"),
        }
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one linear scenario; splitting it would scatter what it checks"
)]
fn to_json_has_exactly_the_spec_keys_in_order() {
    let mut state = fold([
        started(),
        step(&["hi"]),
        rotated(RotationReason::SessionChanged, Some(&[("session", "s2")])),
        phase_started(0, "plan"),
        phase_completed(0, "plan", "the plan"),
        phase_started(1, "build"),
        compaction_done(Some("k1"), S, Some("summary")),
        sent("h1", "a", "b"),
        acked("h1", "b"),
        claim("t1", "a", 0, 0.5),
        claim("t1", "b", 0, 0.5),
        died("oom", Some(137)),
        usage(Some(10), None, Some(0.5), &[("tool_calls", 2.0)]),
        acquired("sandbox"),
        failed(ErrorInfo::new("backend", "x"), vec![ErrorInfo::new("stop", "y")]),
    ]);
    state.output = Some("out".into());
    let text = serde_json::to_string(&state).unwrap();
    let ordered: Ordered = serde_json::from_str(&text).unwrap();
    assert_eq!(
        ordered.keys(),
        [
            "run",
            "status",
            "recoverable",
            "meta",
            "active_ms",
            "wall_ms",
            "last_seq",
            "head",
            "epoch",
            "iteration",
            "segment",
            "transcript",
            "compaction",
            "phases",
            "handoffs",
            "handoff_success_rate",
            "tasks",
            "died",
            "output",
            "failure",
            "usage",
            "segments",
            "provenance",
            "resources",
            "anomalies",
        ]
    );
    assert_eq!(ordered.get("run").keys(), ["goal", "episode", "agent"]);
    assert_eq!(ordered.get("compaction").keys(), ["active", "count", "gate"]);
    assert_eq!(ordered.get("phases").keys(), ["completed", "active"]);
    assert_eq!(
        ordered.get("phases").get("completed").first().keys(),
        ["index", "name", "output"]
    );
    assert_eq!(ordered.get("phases").get("active").keys(), ["index", "name"]);
    assert_eq!(
        ordered.get("handoffs").first().keys(),
        ["id", "from", "to", "status", "version"]
    );
    assert_eq!(
        ordered.get("tasks").first().keys(),
        ["task", "status", "claimed_by", "contenders"]
    );
    assert_eq!(ordered.get("died").keys(), ["reason", "exit_code"]);
    assert_eq!(ordered.get("failure").keys(), ["error", "cleanup_errors"]);
    assert_eq!(ordered.get("failure").get("error").keys(), ["kind", "message"]);
    assert_eq!(ordered.get("anomalies").first().keys(), ["seq", "kind", "detail"]);
    assert_eq!(
        ordered.get("usage").keys(),
        ["input_tokens", "output_tokens", "cost_usd", "counters"]
    );
    assert_eq!(
        ordered.get("segments").first().keys(),
        ["index", "opened_seq", "closed_seq", "end_reason"]
    );
    assert_eq!(
        ordered.get("resources").first().keys(),
        ["resource", "acquired_seq", "torn_down", "error"]
    );
    assert_eq!(
        ordered.get("meta").keys(),
        [
            "agent_name",
            "caller",
            "prompt",
            "model",
            "backend",
            "parent",
            "forked_from",
            "conflict_strategy",
            "labels"
        ]
    );

    // to_json() holds the same content, with docs/format.md's value forms.
    let json = state.to_json();
    assert_eq!(json, serde_json::from_str::<serde_json::Value>(&text).unwrap());
    assert_eq!(json["status"], "failed");
    assert_eq!(json["recoverable"], false);
    assert_eq!(json["head"], hash_of(14).to_hex());
    assert_eq!(json["last_seq"], 14);
    assert_eq!(json["compaction"]["gate"], "structured");
    assert_eq!(json["handoffs"][0]["status"], "acknowledged");
    assert_eq!(json["handoff_success_rate"], 1.0);
    assert_eq!(json["tasks"][0]["status"], "claimed");
    assert_eq!(json["transcript"][0]["role"], "system");
    assert_eq!(json["anomalies"][0]["kind"], "compaction_done_without_start");
    assert_eq!(
        json["usage"],
        serde_json::json!({"input_tokens": 10, "output_tokens": 0, "cost_usd": 0.5, "counters": {"tool_calls": 2.0}})
    );
    assert_eq!(json["segments"][0]["end_reason"], "session_changed");
    assert_eq!(json["segments"][1]["end_reason"], "compaction");
    assert_eq!(json["provenance"], serde_json::json!({"session": "s2"}));
    assert_eq!(
        json["resources"][0],
        serde_json::json!({"resource": "sandbox", "acquired_seq": 13, "torn_down": false, "error": null})
    );
    assert_eq!(
        (json["active_ms"].as_u64(), json["wall_ms"].as_u64()),
        (Some(0), Some(0))
    );

    // Before any event: nulls, not missing keys.
    let empty = ResumeState::new(key()).to_json();
    let object = empty.as_object().unwrap();
    assert_eq!(object.len(), 25);
    for key in ["last_seq", "handoff_success_rate", "died", "output", "failure"] {
        assert!(object[key].is_null(), "{key}");
    }
    assert!(empty["compaction"]["gate"].is_null());
    assert!(empty["phases"]["active"].is_null());
    assert!(empty["meta"].is_object(), "meta is an object even before run_started");
    assert_eq!(empty["segments"], serde_json::json!([]));
    assert_eq!(empty["provenance"], serde_json::json!({}));
    assert_eq!(empty["resources"], serde_json::json!([]));
    assert_eq!(empty["usage"]["cost_usd"], 0.0);
    assert_eq!(empty["status"], "running");
    assert_eq!(empty["head"], "0".repeat(64));
}
