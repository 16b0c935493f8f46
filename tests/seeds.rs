//! The stories that motivated runjournal, each reproduced against the real
//! sled store and shown fixed.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::Arc;

use common::{handoff, key, step, stored_run, temp_db};
use runjournal::core::codec::{encode_record, RecordKind, EVENT_BODY_OFFSET, HEADER_LEN};
use runjournal::core::testing::faulty::FaultyStore;
use runjournal::core::{ChainHash, MemoryStore};
use runjournal::fold::HandoffStatus;
use runjournal::*;
use runjournal_sled::{layout, OpenMode, SledStore};

fn meta_named(agent_name: &str) -> RunMeta {
    RunMeta {
        agent_name: Some(agent_name.into()),
        ..RunMeta::default()
    }
}

/// Story: a resume silently started from scratch because the checkpoint key
/// carried a per-process random name.
#[test]
fn a_fresh_process_with_a_different_random_agent_name_resumes_the_same_run_by_its_stable_key() {
    let (_dir, path) = temp_db();
    let stable = key("fix-login-bug", 0, "orchestrator-0");
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        let run = journal
            .begin(stable.clone(), meta_named("orchestrator-0-9c1e2a"))
            .unwrap();
        run.step(step("read auth.rs")).unwrap();
        run.step(step("found the bug")).unwrap();
    }
    // A new process: a new random display name, the same stable key.
    let journal = Journal::open(&path, Options::default()).unwrap();
    let fresh = journal.begin(stable.clone(), meta_named("orchestrator-0-77f0b1"));
    assert!(
        matches!(fresh, Err(BeginError::AlreadyExists { .. })),
        "never a silent fresh start"
    );
    let (_, state) = journal.resume(&stable).unwrap();
    assert_eq!(state.iteration, 2);
    assert_eq!(state.transcript[1].content, "found the bug");
}

/// Story: best-of-N attempt 2 resumed from attempt 1.
#[test]
fn episode_1_is_never_returned_when_resuming_episode_2() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let first = journal.begin(key("g", 1, "solver"), RunMeta::default()).unwrap();
    first.step(step("attempt 1 work")).unwrap();
    let second_key = key("g", 2, "solver");
    assert!(matches!(
        journal.resume(&second_key),
        Err(ResumeError::NotFound { run }) if run == second_key
    ));
    assert_eq!(journal.next_episode("g").unwrap(), 2);
    drop(journal.begin(second_key.clone(), RunMeta::default()).unwrap());
    let (_, state) = journal.resume(&second_key).unwrap();
    assert_eq!(state.run, second_key);
    assert_eq!(state.iteration, 0, "nothing of episode 1 leaks into episode 2");
    assert_eq!(journal.latest_episode("g", "solver").unwrap(), Some(2));
}

/// Story: a second phase with a duplicate name was skipped on a fresh run.
#[test]
fn two_phases_named_alike_both_run_on_a_fresh_run_and_only_completed_indices_are_skipped() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    let plan = ["review", "review", "ship"];
    let mut executed = Vec::new();
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        let skip = run.state().completed_phase_indices();
        for (index, name) in (0u32..).zip(plan).take(2) {
            if skip.contains(&index) {
                continue;
            }
            executed.push(index);
            run.phase_started(index, name).unwrap();
            if index == 0 {
                run.phase_completed(index, name, "looks fine").unwrap();
            }
            // Crash inside phase 1: it never completes.
        }
    }
    assert_eq!(executed, vec![0, 1], "both 'review' phases ran on the fresh run");
    let journal = Journal::open(&path, Options::default()).unwrap();
    let (run, state) = journal.resume(&run_key).unwrap();
    let skip = state.completed_phase_indices();
    assert_eq!(skip, vec![0]);
    assert_eq!(state.phases.active.as_ref().map(|phase| phase.index), Some(1));
    let rerun: Vec<u32> = (0u32..)
        .zip(plan)
        .map(|(index, _)| index)
        .filter(|index| !skip.contains(index))
        .collect();
    assert_eq!(rerun, vec![1, 2], "phase 1 re-runs from its start, then phase 2");
    for index in rerun {
        run.phase_started(index, plan[index as usize]).unwrap();
        run.phase_completed(index, plan[index as usize], "ok").unwrap();
    }
    assert_eq!(run.state().completed_phase_indices(), vec![0, 1, 2]);
}

/// Story: a compaction flag stuck on after the agent died mid-compaction.
#[test]
fn death_mid_compaction_leaves_active_false_and_count_unchanged_after_replay() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.step(step("context")).unwrap();
        run.compaction_started(CompactionSource::Structured, CompactionInfo::default())
            .unwrap();
        assert!(run.state().compaction.active);
        run.agent_died("oom-killed", Some(137)).unwrap();
    }
    let journal = Journal::open(&path, Options::default()).unwrap();
    let state = journal.state(&run_key).unwrap();
    assert!(!state.compaction.active);
    assert_eq!((state.compaction.count, state.segment), (0, 0));
    assert_eq!(state.transcript.len(), 1, "the transcript is untouched");
    assert!(state.recoverable);
}

/// Story: two compaction detectors rotated twice for one compaction.
#[test]
fn structured_plus_scraped_detectors_give_one_rotation() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let info = || CompactionInfo {
        id: Some("k1".into()),
        summary: Some("summary".into()),
        ..CompactionInfo::default()
    };
    run.compaction_started(CompactionSource::Structured, info()).unwrap();
    run.compaction_started(CompactionSource::Scraped, info()).unwrap();
    run.compaction_done(CompactionSource::Structured, info()).unwrap();
    run.compaction_done(CompactionSource::Scraped, info()).unwrap();
    let state = journal.state(&run_key).unwrap();
    assert_eq!((state.compaction.count, state.segment), (1, 1));
    assert_eq!(state.compaction.gate, Some(CompactionSource::Structured));
    assert!(!state.compaction.active);
}

/// Story: a late ack turned a timed-out handoff into an acknowledged one.
#[test]
fn a_late_ack_after_a_timeout_stays_timed_out() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.handoff_sent(handoff("h1", "3.1.0", "ff00", 1000)).unwrap();
    run.handoff_timed_out("h1").unwrap();
    let refused = run.handoff_acked("h1", "b").unwrap_err();
    assert!(matches!(&refused, AppendError::Refused { anomaly, .. } if anomaly.kind == "late_handoff_event"));
    // Recorded anyway (an import, another writer): still timed out.
    run.append(vec![Event::HandoffAcked {
        id: "h1".into(),
        by: "b".into(),
    }])
    .unwrap();
    let state = journal.state(&run_key).unwrap();
    assert_eq!(state.handoffs[0].status, HandoffStatus::TimedOut);
    assert_eq!(state.handoff_success_rate, Some(0.0));
    assert_eq!(state.anomalies[0].kind, "late_handoff_event");
}

/// Story: a cleanup error hid the real failure.
#[test]
fn a_cleanup_failure_never_masks_the_primary_failure() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.teardown("sandbox", Some("container busy".into())).unwrap();
    run.finish(Outcome::Failure {
        error: ErrorInfo::new("backend", "model returned 503"),
        cleanup_errors: vec![ErrorInfo::new("stop", "container busy")],
    })
    .unwrap();
    let failure = journal.state(&run_key).unwrap().failure.unwrap();
    assert_eq!(failure.error, ErrorInfo::new("backend", "model returned 503"));
    assert_eq!(failure.cleanup_errors, vec![ErrorInfo::new("stop", "container busy")]);
}

/// Story: a storage failure while recording the failure lost the real one.
#[test]
fn a_storage_failure_during_finish_carries_the_primary_failure_too() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
    let run = journal.begin(key("g", 0, "a"), RunMeta::default()).unwrap();
    store.fail_nth_sync(1);
    let error = run
        .finish(Outcome::Failure {
            error: ErrorInfo::new("backend", "model returned 503"),
            cleanup_errors: vec![ErrorInfo::new("stop", "container busy")],
        })
        .unwrap_err();
    assert_eq!(error.primary, Some(ErrorInfo::new("backend", "model returned 503")));
    assert_eq!(error.cleanup_errors, vec![ErrorInfo::new("stop", "container busy")]);
    assert!(
        matches!(error.source, AppendError::Storage { .. }),
        "{:?}",
        error.source
    );
    let message = error.to_string();
    assert!(
        message.contains("model returned 503") && message.contains("storage"),
        "{message}"
    );
}

/// Story: a restore swallowed a deserialization error and silently lost the
/// context version.
#[test]
fn a_stored_event_that_fails_to_decode_makes_resume_fail_loudly_naming_run_and_seq() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    let run_id = stored_run(&path, &run_key, &["one", "two"]);
    {
        // A record whose header and chain hash are valid but whose body is
        // not an event: only decoding can catch it.
        let store = SledStore::open(&path, OpenMode::MustExist).unwrap();
        let previous = store.sled().get(layout::event_key(run_id, 0)).unwrap().unwrap();
        let previous = ChainHash(previous[HEADER_LEN..EVENT_BODY_OFFSET].try_into().unwrap());
        let body = vec![0xff; 12];
        let hash = ChainHash::next(&previous, &run_key.canonical_bytes(), 1, &body);
        let mut record = encode_record(RecordKind::Event, &())[..HEADER_LEN].to_vec();
        record.extend_from_slice(&hash.0);
        record.extend_from_slice(&body);
        store.sled().insert(layout::event_key(run_id, 1), record).unwrap();
        store.sled().flush().unwrap();
    }
    let journal = Journal::open(&path, Options::default()).unwrap();
    let error = journal.resume(&run_key).unwrap_err();
    let ResumeError::Read(ReadError::Integrity(integrity)) = &error else {
        panic!("expected a loud integrity error, got {error:?}");
    };
    assert_eq!((&integrity.run, integrity.seq), (&run_key, 1));
    assert!(
        matches!(integrity.problem, IntegrityProblem::Undecodable(_)),
        "{:?}",
        integrity.problem
    );
    assert!(error.to_string().contains("does not decode"), "{error}");
}

/// The worked example of `tests/fixtures/example_session`, appended through the library.
#[test]
fn the_example_session_appended_through_the_library_gives_the_expected_state() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/example_session");
    let lines = std::fs::read_to_string(root.join("session.jsonl")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("session.expected.json")).unwrap()).unwrap();
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let mut run: Option<Run> = None;
    let mut run_key = None;
    for line in lines.lines() {
        let partial: runjournal::core::PartialEnvelope = serde_json::from_str(line).unwrap();
        match partial.event {
            Event::RunStarted { meta } => {
                run = Some(journal.begin(partial.run.clone(), meta).unwrap());
                run_key = Some(partial.run);
            }
            event => {
                let seq = run.as_ref().unwrap().append_at(partial.seq, vec![event]).unwrap();
                assert_eq!(seq, partial.seq);
            }
        }
    }
    let state = journal.state(&run_key.unwrap()).unwrap();
    let actual = serde_json::to_value(&state).unwrap();
    for (field, want) in expected.as_object().unwrap() {
        let got = match field.strip_suffix(".len") {
            Some(array) => serde_json::json!(actual[array].as_array().unwrap().len()),
            None => actual[field].clone(),
        };
        assert_eq!(&got, want, "state field {field}");
    }
}
