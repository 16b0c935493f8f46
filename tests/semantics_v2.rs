//! Library semantics added by contract v2 (docs/library.md): teardown after the
//! outcome, resume expectations, `resume_latest`, and a failed append that
//! leaves the handle's view as stored. Each test is named after the rule it
//! proves and runs on the memory store and on sled.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::Arc;

use common::{key, step, temp_db};
use runjournal::core::codec::DEFAULT_MAX_EVENT_SIZE;
use runjournal::core::testing::faulty::FaultyStore;
use runjournal::core::{AppendBatch, ChainWriter, MemoryStore, Store};
use runjournal::*;
use runjournal_sled::{OpenMode, SledStore};

/// Runs `test` on a fresh memory store and on a fresh sled store.
fn each_store(mut test: impl FnMut(&str, Arc<dyn Store>)) {
    test("memory", Arc::new(MemoryStore::new()));
    let (_dir, path) = temp_db();
    test(
        "sled",
        Arc::new(SledStore::open(&path, OpenMode::CreateIfMissing).unwrap()),
    );
}

/// Runs `test` on a fault-injecting wrapper of each store.
fn each_faulty_store(mut test: impl FnMut(&str, Arc<dyn Store>, &dyn Fn(u64))) {
    let memory = Arc::new(FaultyStore::new(MemoryStore::new()));
    let armed = memory.clone();
    test("memory", memory, &move |nth| armed.fail_nth_write(nth));
    let (_dir, path) = temp_db();
    let sled = Arc::new(FaultyStore::new(
        SledStore::open(&path, OpenMode::CreateIfMissing).unwrap(),
    ));
    let armed = sled.clone();
    test("sled", sled, &move |nth| armed.fail_nth_write(nth));
}

fn journal(store: &Arc<dyn Store>) -> Journal {
    Journal::with_store(store.clone(), Options::default()).unwrap()
}

fn types(journal: &Journal, run: &RunKey) -> Vec<&'static str> {
    journal
        .read(run, 0)
        .unwrap()
        .iter()
        .map(|envelope| envelope.event.type_name())
        .collect()
}

// ---------------------------------------------------------------------------
// Teardown after the outcome (docs/format.md).
// ---------------------------------------------------------------------------

#[test]
fn teardown_may_follow_the_outcome_in_its_epoch() {
    each_store(|name, store| {
        let journal = journal(&store);
        // Through the handle: conclude keeps it for the teardown.
        let concluded = key("teardown", 0, "a");
        let run = journal.begin(concluded.clone(), RunMeta::default()).unwrap();
        run.conclude(Outcome::failure("backend", "503")).unwrap();
        run.teardown("sandbox-1", None).unwrap();
        run.teardown("sandbox-2", Some("container busy".into())).unwrap();
        let error = run.step(step("late")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the run is failed in this epoch and nothing but teardown may follow"),
            "{name}: {error}"
        );
        assert_eq!(
            types(&journal, &concluded),
            vec!["run_started", "run_failed", "teardown", "teardown"],
            "{name}"
        );
        assert_eq!(journal.state(&concluded).unwrap().status, RunStatus::Failed, "{name}");
        drop(run);
        // A raw batch holding the outcome and its teardown.
        let raw = key("teardown", 1, "a");
        let run = journal.begin(raw.clone(), RunMeta::default()).unwrap();
        run.append(vec![
            Event::RunCompleted { output: None },
            Event::Teardown {
                resource: "sandbox".into(),
                error: None,
            },
        ])
        .unwrap();
        assert_eq!(journal.state(&raw).unwrap().status, RunStatus::Completed, "{name}");
        // Import accepts it too, and still refuses anything else after the outcome.
        let line = |seq: u64, event: &str| {
            format!(r#"{{"run":{{"goal":"imported","episode":0,"agent":"a"}},"seq":{seq},"event":{event}}}"#)
        };
        let good = [
            line(0, r#"{"type":"run_started","meta":{}}"#),
            line(1, r#"{"type":"run_interrupted","cause":"shutdown"}"#),
            line(2, r#"{"type":"teardown","resource":"sandbox"}"#),
        ]
        .join("\n");
        journal.import(good.as_bytes()).unwrap();
        let imported = key("imported", 0, "a");
        assert_eq!(
            types(&journal, &imported),
            vec!["run_started", "run_interrupted", "teardown"],
            "{name}"
        );
        let (_, state) = journal.resume(&imported).unwrap();
        assert_eq!(
            state.status,
            RunStatus::Running,
            "{name}: a resume may follow the teardown"
        );
        let bad = [
            line(0, r#"{"type":"run_started","meta":{}}"#).replace("imported", "refused"),
            line(1, r#"{"type":"run_completed"}"#).replace("imported", "refused"),
            line(2, r#"{"type":"teardown","resource":"sandbox"}"#).replace("imported", "refused"),
            line(3, r#"{"type":"turn_completed"}"#).replace("imported", "refused"),
        ]
        .join("\n");
        let error = journal.import(bad.as_bytes()).unwrap_err();
        assert_eq!(error.line(), Some(4), "{name}: {error}");
        assert!(error.to_string().contains("follows run_completed"), "{name}: {error}");
    });
}

// ---------------------------------------------------------------------------
// Resume expectations.
// ---------------------------------------------------------------------------

#[test]
fn a_resume_expecting_another_meta_is_a_mismatch_naming_the_field_and_both_values_and_appends_nothing() {
    each_store(|name, store| {
        let journal = journal(&store);
        let run_key = key("expect", 0, "a");
        let meta = RunMeta {
            backend: Some("claude-code".into()),
            model: Some("large".into()),
            ..RunMeta::default()
        };
        let run = journal.begin(run_key.clone(), meta).unwrap();
        run.step(step("working")).unwrap();
        let log = journal.read(&run_key, 0).unwrap();
        let record = journal.run_info(&run_key).unwrap();

        let error = journal
            .resume_expecting(&run_key, &Expect::new().backend("claude-code").model("small"))
            .unwrap_err();
        match &error {
            ResumeError::Mismatch {
                run,
                field,
                stored,
                expected,
            } => {
                assert_eq!((run, *field), (&run_key, "model"), "{name}");
                assert_eq!(stored.as_deref(), Some("large"), "{name}");
                assert_eq!(expected, "small", "{name}");
            }
            other => panic!("{name}: expected a mismatch, got {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            format!(
                "run {run_key}: meta.model is \"large\" but \"small\" was expected; the run was not resumed and \
                 nothing was appended"
            )
        );
        let error = journal
            .resume_expecting(&run_key, &Expect::new().agent_name("orchestrator-0"))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("meta.agent_name is not set but \"orchestrator-0\""),
            "{name}: {error}"
        );
        assert_eq!(journal.read(&run_key, 0).unwrap(), log, "{name}: the log is unchanged");
        assert_eq!(
            journal.run_info(&run_key).unwrap(),
            record,
            "{name}: the head is unchanged"
        );
        // The handle was not fenced by the refused resumes.
        run.step(step("still mine")).unwrap();

        let (resumed, state) = journal
            .resume_expecting(&run_key, &Expect::new().backend("claude-code").model("large"))
            .unwrap();
        assert_eq!((state.epoch, state.iteration), (1, 2), "{name}");
        assert_eq!(resumed.epoch(), 1, "{name}");
    });
}

// ---------------------------------------------------------------------------
// Episodes: resume_latest.
// ---------------------------------------------------------------------------

#[test]
fn resume_latest_resumes_the_newest_recoverable_episode_and_is_not_found_when_none_is() {
    each_store(|name, store| {
        let journal = journal(&store);
        let crashed = key("episodes", 0, "a");
        let completed = key("episodes", 1, "a");
        let run = journal.begin(crashed.clone(), RunMeta::default()).unwrap();
        run.phase_started(0, "plan").unwrap();
        drop(run); // a crash: the run stays running
        journal
            .begin(completed.clone(), RunMeta::default())
            .unwrap()
            .finish(Outcome::Success { output: None })
            .unwrap();
        drop(journal.begin(key("episodes", 5, "b"), RunMeta::default()).unwrap());

        assert_eq!(journal.latest_episode("episodes", "a").unwrap(), Some(1), "{name}");
        let error = journal.resume(&completed).unwrap_err();
        assert!(
            matches!(
                &error,
                ResumeError::Finished {
                    status: RunStatus::Completed,
                    ..
                }
            ),
            "{name}: {error:?}"
        );
        let (run, state) = journal.resume_latest("episodes", "a").unwrap();
        assert_eq!(run.key(), &crashed, "{name}");
        assert_eq!(state.phases.active.as_ref().map(|phase| phase.index), Some(0), "{name}");
        run.finish(Outcome::Success { output: None }).unwrap();

        let error = journal.resume_latest("episodes", "a").unwrap_err();
        match &error {
            ResumeError::NotFound { run } => {
                assert_eq!(run, &key("episodes", 2, "a"), "{name}: names the episode to begin");
            }
            other => panic!("{name}: expected NotFound, got {other:?}"),
        }
        let error = journal.resume_latest("episodes", "nobody").unwrap_err();
        match &error {
            ResumeError::NotFound { run } => assert_eq!(run, &key("episodes", 0, "nobody"), "{name}"),
            other => panic!("{name}: expected NotFound, got {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------
// A failed append leaves the handle's view as stored.
// ---------------------------------------------------------------------------

/// Another writer takes the run's next seq in the store, behind the handle.
fn intrude(store: &Arc<dyn Store>, journal: &Journal, run: &RunKey) {
    let record = journal.run_info(run).unwrap();
    let written = ChainWriter::new(run.clone(), record.head, DEFAULT_MAX_EVENT_SIZE)
        .append(record.head.epoch, record.head.last_ts, Event::TurnCompleted)
        .unwrap();
    let batch = AppendBatch {
        run: record.id,
        expected_seq: record.head.next_seq,
        epoch: record.head.epoch,
        records: vec![written.record],
        head_after: written.head,
        status_after: RunStatus::Running,
        snapshot: None,
    };
    assert_eq!(store.append(&[batch]).unwrap(), vec![Ok(())]);
}

#[test]
fn a_failed_append_leaves_the_handles_state_and_next_seq_as_stored() {
    // A storage failure: nothing of the append is stored.
    each_faulty_store(|name, store, fail_nth_write| {
        let journal = journal(&store);
        let run_key = key("view", 0, "a");
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.step(step("stored")).unwrap();
        let stored = run.state();
        fail_nth_write(1);
        let error = run.step(step("not stored")).unwrap_err();
        assert!(
            matches!(&error, AppendError::Storage { seq: 2, .. }),
            "{name}: {error:?}"
        );
        assert_eq!(run.next_seq(), 2, "{name}");
        assert_eq!(run.state(), stored, "{name}");
        assert_eq!(run.state(), journal.state(&run_key).unwrap(), "{name}");
        assert_eq!(run.state().iteration, 1, "{name}");
    });
    // A conflict in the store: the view is the store's, the other writer's event included.
    each_store(|name, store| {
        for durability in [Durability::Durable, Durability::Buffered] {
            let journal = Journal::with_store(store.clone(), Options::with_durability(durability)).unwrap();
            let episode = u32::from(durability != Durability::Durable);
            let run_key = key("conflict", episode, "a");
            let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
            run.step(step("stored")).unwrap();
            intrude(&store, &journal, &run_key);
            let lost = run.step(step("lost"));
            if durability == Durability::Durable {
                let error = lost.unwrap_err();
                assert!(
                    matches!(
                        &error,
                        AppendError::Conflict {
                            expected: 2,
                            actual: 3,
                            ..
                        }
                    ),
                    "{name}: {error:?}"
                );
            } else {
                assert_eq!(lost.unwrap(), 2, "{name}: a buffered append returns once queued");
                journal.sync().unwrap();
            }
            let view = run.state();
            assert_eq!(run.next_seq(), 3, "{name} {durability:?}");
            assert_eq!(view, journal.state(&run_key).unwrap(), "{name} {durability:?}");
            assert_eq!(
                view.iteration, 1,
                "{name} {durability:?}: the lost step is not in the view"
            );
            assert_eq!(view.last_seq, Some(2), "{name} {durability:?}");
            assert_eq!(
                types(&journal, &run_key),
                vec!["run_started", "step", "turn_completed"],
                "{name} {durability:?}"
            );
            let error = run.step(step("next")).unwrap_err();
            assert!(
                matches!(&error, AppendError::Abandoned { seq: 2, .. }),
                "{name} {durability:?}: {error:?}"
            );
            assert_eq!(run.next_seq(), 3, "{name} {durability:?}");
        }
    });
}
