//! Library semantics of SPEC §4 beyond the core: finish, panics, recovery,
//! resume points, episodes, typed-method refusals, snapshots, time travel.
//! Each test is named after the rule it proves.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{key, step, temp_db};
use runjournal::core::snapshot::encode_snapshot_as;
use runjournal::core::{MemoryStore, SnapshotRecord, Store};
use runjournal::fold::{HandoffStatus, TaskStatus};
use runjournal::*;
use runjournal_sled::{OpenMode, SledStore};

fn memory_journal() -> Journal {
    Journal::with_store(Arc::new(MemoryStore::new()), Options::default()).unwrap()
}

#[test]
fn finish_success_records_run_completed() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.finish(Outcome::Success {
        output: Some("done".into()),
    })
    .unwrap();
    let state = journal.state(&run_key).unwrap();
    assert_eq!((state.status, state.recoverable), (RunStatus::Completed, false));
    assert_eq!(state.output.as_deref(), Some("done"));
    assert_eq!(journal.read(&run_key, 1).unwrap()[0].event.type_name(), "run_completed");
}

#[test]
fn finish_shutdown_records_run_interrupted_and_leaves_it_recoverable() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    journal
        .begin(run_key.clone(), RunMeta::default())
        .unwrap()
        .finish(Outcome::Shutdown)
        .unwrap();
    let state = journal.state(&run_key).unwrap();
    assert_eq!((state.status, state.recoverable), (RunStatus::Interrupted, true));
    let (_, resumed) = journal.resume(&run_key).unwrap();
    assert_eq!(resumed.status, RunStatus::Running);
}

#[test]
fn finish_failure_keeps_the_primary_error_and_cleanup_errors_apart() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    let primary = ErrorInfo::new("backend", "503 from model");
    let cleanup = vec![ErrorInfo::new("stop", "container busy"), ErrorInfo::new("rm", "EBUSY")];
    journal
        .begin(run_key.clone(), RunMeta::default())
        .unwrap()
        .finish(Outcome::Failure {
            error: primary.clone(),
            cleanup_errors: cleanup.clone(),
        })
        .unwrap();
    let state = journal.state(&run_key).unwrap();
    let failure = state.failure.unwrap();
    assert_eq!(failure.error, primary);
    assert_eq!(failure.cleanup_errors, cleanup);
    assert_eq!(state.status, RunStatus::Failed);
}

#[test]
fn a_handle_dropped_during_a_panic_records_run_failed_with_kind_panic() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    let worker_journal = journal.clone();
    let worker_key = run_key.clone();
    let outcome = std::thread::spawn(move || {
        let run = worker_journal.begin(worker_key, RunMeta::default()).unwrap();
        run.step(step("working")).unwrap();
        panic!("the agent loop crashed");
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    let state = journal.state(&run_key).unwrap();
    assert_eq!(state.status, RunStatus::Failed);
    assert_eq!(state.failure.unwrap().error.kind, "panic");
}

#[test]
fn a_handle_dropped_without_finish_and_without_panic_stays_running_for_recovery() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    drop(journal.begin(run_key.clone(), RunMeta::default()).unwrap());
    assert_eq!(journal.state(&run_key).unwrap().status, RunStatus::Running);
}

#[test]
fn recoverable_lists_exactly_the_running_and_interrupted_runs() {
    let journal = memory_journal();
    let running = key("g", 0, "running");
    let interrupted = key("g", 0, "interrupted");
    drop(journal.begin(running.clone(), RunMeta::default()).unwrap());
    journal
        .begin(interrupted.clone(), RunMeta::default())
        .unwrap()
        .finish(Outcome::Shutdown)
        .unwrap();
    journal
        .begin(key("g", 0, "completed"), RunMeta::default())
        .unwrap()
        .finish(Outcome::Success { output: None })
        .unwrap();
    journal
        .begin(key("g", 0, "failed"), RunMeta::default())
        .unwrap()
        .finish(Outcome::failure("x", "y"))
        .unwrap();
    let recoverable: Vec<(RunKey, RunStatus)> = journal
        .recoverable()
        .unwrap()
        .into_iter()
        .map(|state| (state.run, state.status))
        .collect();
    assert_eq!(
        recoverable,
        vec![(interrupted, RunStatus::Interrupted), (running, RunStatus::Running)]
    );
}

#[test]
fn resume_returns_the_phases_to_skip_the_phase_to_rerun_the_segment_transcript_and_the_iteration() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    {
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.phase_started(0, "plan").unwrap();
        run.step(step("planning")).unwrap();
        run.phase_completed(0, "plan", "the plan").unwrap();
        run.phase_started(1, "build").unwrap();
        run.step(step("old context")).unwrap();
        run.compaction_started(CompactionSource::Structured, CompactionInfo::default())
            .unwrap();
        run.compaction_done(
            CompactionSource::Structured,
            CompactionInfo {
                summary: Some("summary of the plan".into()),
                ..CompactionInfo::default()
            },
        )
        .unwrap();
        run.step(step("building")).unwrap();
    }
    let (_, state) = journal.resume(&run_key).unwrap();
    assert_eq!(state.completed_phase_indices(), vec![0]);
    let active = state.phases.active.clone().unwrap();
    assert_eq!((active.index, active.name.as_str()), (1, "build"));
    let transcript: Vec<(Role, &str)> = state
        .transcript
        .iter()
        .map(|message| (message.role, message.content.as_str()))
        .collect();
    assert_eq!(
        transcript,
        vec![(Role::System, "summary of the plan"), (Role::Assistant, "building")]
    );
    assert_eq!((state.iteration, state.segment), (3, 1));
}

#[test]
fn latest_episode_finds_the_crashed_attempt_and_next_episode_allocates_a_fresh_one() {
    let journal = memory_journal();
    assert_eq!(journal.latest_episode("g", "a").unwrap(), None);
    assert_eq!(journal.next_episode("g").unwrap(), 0);
    for episode in [0, 1, 4] {
        drop(journal.begin(key("g", episode, "a"), RunMeta::default()).unwrap());
    }
    drop(journal.begin(key("g", 7, "b"), RunMeta::default()).unwrap());
    drop(journal.begin(key("other", 9, "a"), RunMeta::default()).unwrap());
    assert_eq!(journal.latest_episode("g", "a").unwrap(), Some(4));
    assert_eq!(journal.latest_episode("g", "b").unwrap(), Some(7));
    assert_eq!(journal.next_episode("g").unwrap(), 8);
    assert_eq!(journal.next_episode("new-goal").unwrap(), 0);
}

#[test]
fn typed_methods_refuse_what_the_fold_would_ignore_and_raw_appends_record_it_as_an_anomaly() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.handoff_sent(Handoff {
        id: "h1".into(),
        from: "a".into(),
        to: "b".into(),
        generation: 1,
        version: "1.0.0".into(),
        content_hash: "abcd".into(),
        timeout_ms: 10,
    })
    .unwrap();
    let error = run.handoff_acked("h1", "mallory").unwrap_err();
    assert!(
        matches!(&error, AppendError::Refused { anomaly, seq: 2, .. } if anomaly.kind == "wrong_agent"),
        "{error:?}"
    );
    run.task_claimed("t1", "b", 1, 0.9).unwrap();
    let error = run.task_completed("t1", "c", TaskResult::Success, None).unwrap_err();
    assert!(
        matches!(&error, AppendError::Refused { anomaly, .. } if anomaly.kind == "wrong_agent"),
        "{error:?}"
    );
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 3, "refusals wrote nothing");
    run.append(vec![Event::HandoffAcked {
        id: "h1".into(),
        by: "mallory".into(),
    }])
    .unwrap();
    let state = journal.state(&run_key).unwrap();
    assert_eq!(state.handoffs[0].status, HandoffStatus::Pending);
    assert_eq!(state.anomalies.len(), 1);
    assert_eq!(
        (state.anomalies[0].seq, state.anomalies[0].kind.as_str()),
        (3, "wrong_agent")
    );
    assert_eq!(state.tasks[0].status, TaskStatus::Claimed);
}

fn run_with_steps(journal: &Journal, run_key: &RunKey, steps: u64) {
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    for index in 0..steps {
        if index % 7 == 3 {
            run.compaction_started(CompactionSource::Structured, CompactionInfo::default())
                .unwrap();
            run.compaction_done(
                CompactionSource::Structured,
                CompactionInfo {
                    summary: Some(format!("summary {index}")),
                    ..CompactionInfo::default()
                },
            )
            .unwrap();
        }
        run.step(step(&format!("step {index}"))).unwrap();
    }
}

#[test]
fn snapshots_are_stored_every_n_events_and_resume_folds_only_the_tail_to_the_same_state() {
    let (_dir, path) = temp_db();
    let options = Options {
        snapshot_every: 10,
        durability: Durability::Buffered,
        ..Options::default()
    };
    let run_key = key("g", 0, "a");
    let live = {
        let journal = Journal::open(&path, options.clone()).unwrap();
        run_with_steps(&journal, &run_key, 40);
        journal.state(&run_key).unwrap()
    };
    // The test keeps its own handle on the store to look at what is stored;
    // it only reads through it.
    let store = Arc::new(SledStore::open(&path, OpenMode::MustExist).unwrap());
    let journal = Journal::with_store(store.clone(), options).unwrap();
    let record = journal.run_info(&run_key).unwrap();
    let snapshot = store.latest_snapshot(record.id, u64::MAX).unwrap().unwrap();
    assert!(
        snapshot.seq >= record.head.next_seq - 10,
        "a snapshot within the last 10 events"
    );
    let older = store.latest_snapshot(record.id, snapshot.seq - 1).unwrap();
    assert_eq!(older, None, "a run keeps only its newest snapshot");
    let full_fold = ResumeState::fold(run_key.clone(), &journal.history(&run_key).unwrap());
    assert_eq!(journal.state(&run_key).unwrap(), full_fold);
    assert_eq!(full_fold, live);
    for seq in [0, 5, 9, 10, 11, 25, record.head.next_seq - 1] {
        let history = journal.history(&run_key).unwrap();
        let expected = ResumeState::fold(run_key.clone(), &history[..=seq as usize]);
        assert_eq!(journal.state_at(&run_key, seq).unwrap(), expected, "state at seq {seq}");
    }
}

#[test]
fn a_snapshot_of_another_fold_version_is_ignored_and_rebuilt_on_resume() {
    let store = Arc::new(MemoryStore::new());
    let options = Options {
        snapshot_every: 0,
        ..Options::default()
    };
    let journal = Journal::with_store(store.clone(), options).unwrap();
    let run_key = key("g", 0, "a");
    run_with_steps(&journal, &run_key, 12);
    let record = journal.run_info(&run_key).unwrap();
    let mut wrong = journal.state(&run_key).unwrap();
    wrong.iteration = 999;
    store
        .replace_snapshots(
            record.id,
            Some(SnapshotRecord {
                seq: record.head.next_seq - 1,
                bytes: encode_snapshot_as(&wrong, 999),
            }),
        )
        .unwrap();
    assert_eq!(
        journal.state(&run_key).unwrap().iteration,
        12,
        "the foreign snapshot is ignored"
    );
    let (_, state) = journal.resume(&run_key).unwrap();
    assert_eq!(state.iteration, 12);
    let rebuilt = store.latest_snapshot(record.id, u64::MAX).unwrap().unwrap();
    let decoded = runjournal::core::snapshot::decode_snapshot(&rebuilt.bytes).unwrap();
    assert!(
        matches!(&decoded, runjournal::core::snapshot::DecodedSnapshot::Current(state) if state.iteration == 12),
        "rebuilt with this fold version: {decoded:?}"
    );
}

#[test]
fn state_at_a_seq_past_the_end_is_an_error_naming_the_last_seq() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    run_with_steps(&journal, &run_key, 2);
    let error = journal.state_at(&run_key, 50).unwrap_err();
    assert!(
        error.to_string().contains("has no seq 50 (its last seq is 2)"),
        "{error}"
    );
}

#[test]
fn buffered_appends_survive_a_clean_close() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    {
        let journal = Journal::open(&path, Options::with_durability(Durability::Buffered)).unwrap();
        run_with_steps(&journal, &run_key, 25);
    }
    let journal = Journal::open(&path, Options::default()).unwrap();
    assert_eq!(journal.state(&run_key).unwrap().iteration, 25);
}
