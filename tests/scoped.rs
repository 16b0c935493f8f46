//! Scoped runs (docs/library.md): `Journal::scoped` begins or resumes a run and
//! records its outcome on every exit; the README's program
//! (`examples/scoped_agent.rs`) works on a first start, a second start and
//! after a crash. Each test is named after the rule it proves.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

#[path = "../examples/scoped_agent.rs"]
mod example;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{key, step, temp_db};
use runjournal::core::{MemoryStore, Store};
use runjournal::*;
use runjournal_sled::{OpenMode, SledStore};

/// Runs `test` on a journal over a fresh memory store and over a fresh sled store.
fn each_store(mut test: impl FnMut(&str, Journal)) {
    test(
        "memory",
        Journal::with_store(Arc::new(MemoryStore::new()), Options::default()).unwrap(),
    );
    let (_dir, path) = temp_db();
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(&path, OpenMode::CreateIfMissing).unwrap());
    test("sled", Journal::with_store(sled, Options::default()).unwrap());
}

/// An error of the caller's, classified for the scoped run.
#[derive(Debug, PartialEq)]
enum WorkError {
    Backend(String),
    Stopping,
}

impl std::fmt::Display for WorkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkError::Backend(message) => write!(f, "backend said {message}"),
            WorkError::Stopping => f.write_str("stopping"),
        }
    }
}

impl ErrorOutcome for WorkError {
    fn is_shutdown(&self) -> bool {
        *self == WorkError::Stopping
    }

    fn kind(&self) -> String {
        "backend".into()
    }
}

impl From<AppendError> for WorkError {
    fn from(error: AppendError) -> Self {
        WorkError::Backend(error.to_string())
    }
}

fn last_type(journal: &Journal, run: &RunKey) -> &'static str {
    journal.read(run, 0).unwrap().last().unwrap().event.type_name()
}

#[test]
fn a_scoped_run_that_returns_ok_records_run_completed_with_its_output() {
    each_store(|name, journal| {
        let run_key = key("scoped", 0, "a");
        let output = journal
            .scoped(&run_key, RunMeta::default(), |run, state| {
                assert_eq!(state.epoch, 0, "a new run");
                run.step(step("working"))?;
                Ok::<_, WorkError>("done".to_string())
            })
            .unwrap();
        assert_eq!(output, "done", "{name}");
        let state = journal.state(&run_key).unwrap();
        assert_eq!(state.status, RunStatus::Completed, "{name}");
        assert_eq!(state.output.as_deref(), Some("done"), "{name}");
        assert_eq!(state.iteration, 1, "{name}");
    });
}

#[test]
fn a_scoped_run_left_by_an_early_error_return_records_run_failed_with_its_kind_and_message() {
    each_store(|name, journal| {
        let run_key = key("scoped", 0, "a");
        let error = journal
            .scoped(&run_key, RunMeta::default(), |run, _| {
                run.step(step("working"))?;
                Err::<(), _>(WorkError::Backend("503".into()))
            })
            .unwrap_err();
        match error {
            ScopedError::Run(error) => assert_eq!(error, WorkError::Backend("503".into()), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        let state = journal.state(&run_key).unwrap();
        assert_eq!(state.status, RunStatus::Failed, "{name}: never left running");
        let failure = state.failure.unwrap();
        assert_eq!(failure.error, ErrorInfo::new("backend", "backend said 503"), "{name}");
    });
}

#[test]
fn a_scoped_run_whose_error_is_a_shutdown_records_run_interrupted_and_the_next_call_resumes_it() {
    each_store(|name, journal| {
        let run_key = key("scoped", 0, "a");
        let error = journal
            .scoped(&run_key, RunMeta::default(), |run, _| {
                run.phase_started(0, "plan")?;
                run.phase_completed(0, "plan", "a plan")?;
                Err::<(), _>(WorkError::Stopping)
            })
            .unwrap_err();
        assert!(
            matches!(error, ScopedError::Run(WorkError::Stopping)),
            "{name}: {error:?}"
        );
        assert_eq!(
            journal.state(&run_key).unwrap().status,
            RunStatus::Interrupted,
            "{name}"
        );
        assert_eq!(last_type(&journal, &run_key), "run_interrupted", "{name}");
        // The next call resumes it, with the completed phase to skip.
        journal
            .scoped(&run_key, RunMeta::default(), |_, state| {
                assert_eq!(state.completed_phase_indices(), vec![0]);
                assert_eq!(state.epoch, 1);
                Ok::<_, WorkError>(())
            })
            .unwrap();
        assert_eq!(journal.state(&run_key).unwrap().status, RunStatus::Completed, "{name}");
    });
}

#[test]
fn a_scoped_run_that_panics_records_run_failed_kind_panic_and_the_panic_goes_on() {
    each_store(|name, journal| {
        let run_key = key("scoped", 0, "a");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            journal.scoped(&run_key, RunMeta::default(), |run, _| -> Result<(), WorkError> {
                run.step(step("working"))?;
                panic!("the model returned garbage");
            })
        }));
        let payload = panicked.unwrap_err();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the model returned garbage"),
            "{name}"
        );
        let state = journal.state(&run_key).unwrap();
        assert_eq!(state.status, RunStatus::Failed, "{name}");
        assert_eq!(
            state.failure.unwrap().error,
            ErrorInfo::new("panic", "the model returned garbage"),
            "{name}"
        );
    });
}

#[test]
fn a_scoped_run_of_a_finished_run_is_finished_and_runs_nothing() {
    each_store(|name, journal| {
        let run_key = key("scoped", 0, "a");
        journal
            .begin(run_key.clone(), RunMeta::default())
            .unwrap()
            .finish(Outcome::Success { output: None })
            .unwrap();
        let before = journal.read(&run_key, 0).unwrap();
        let error = journal
            .scoped(&run_key, RunMeta::default(), |_, _| -> Result<(), WorkError> {
                panic!("the work of a finished run never runs")
            })
            .unwrap_err();
        match &error {
            ScopedError::Finished { run, status } => {
                assert_eq!((run, *status), (&run_key, RunStatus::Completed), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            error.to_string().contains("a new attempt is a new episode"),
            "{name}: {error}"
        );
        assert_eq!(journal.read(&run_key, 0).unwrap(), before, "{name}: nothing appended");
    });
}

#[test]
fn a_scoped_resume_expects_the_meta_backend_and_model() {
    each_store(|name, journal| {
        let run_key = key("scoped", 0, "a");
        let meta = RunMeta {
            backend: Some("claude-code".into()),
            ..RunMeta::default()
        };
        drop(journal.begin(run_key.clone(), meta).unwrap());
        let other = RunMeta {
            backend: Some("codex".into()),
            ..RunMeta::default()
        };
        let error = journal
            .scoped(&run_key, other, |_, _| Ok::<_, WorkError>(()))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("meta.backend is \"claude-code\" but \"codex\" was expected"),
            "{name}: {error}"
        );
        assert_eq!(journal.read(&run_key, 0).unwrap().len(), 1, "{name}: nothing appended");
    });
}

#[test]
fn scoped_async_records_the_outcome_of_every_exit() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    each_store(|name, journal| {
        runtime.block_on(async {
            let completed = key("async", 0, "a");
            let output = journal
                .scoped_async(
                    completed.clone(),
                    RunMeta::default(),
                    async |run: &Run, _: &ResumeState| {
                        run.step_async(step("working")).await?;
                        Ok::<_, WorkError>("done".to_string())
                    },
                )
                .await
                .unwrap();
            assert_eq!(output, "done", "{name}");
            assert_eq!(
                journal.state(&completed).unwrap().status,
                RunStatus::Completed,
                "{name}"
            );

            let failed = key("async", 1, "a");
            let error = journal
                .scoped_async(failed.clone(), RunMeta::default(), async |_: &Run, _: &ResumeState| {
                    Err::<(), _>(WorkError::Backend("timeout".into()))
                })
                .await
                .unwrap_err();
            assert!(
                matches!(error, ScopedError::Run(WorkError::Backend(_))),
                "{name}: {error:?}"
            );
            assert_eq!(journal.state(&failed).unwrap().status, RunStatus::Failed, "{name}");

            let stopped = key("async", 2, "a");
            journal
                .scoped_async(stopped.clone(), RunMeta::default(), async |_: &Run, _: &ResumeState| {
                    Err::<(), _>(WorkError::Stopping)
                })
                .await
                .unwrap_err();
            assert_eq!(
                journal.state(&stopped).unwrap().status,
                RunStatus::Interrupted,
                "{name}"
            );
        });
        let panicked_key = key("async", 3, "a");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(journal.scoped_async(
                panicked_key.clone(),
                RunMeta::default(),
                async |_: &Run, _: &ResumeState| -> Result<(), WorkError> { panic!("async work panicked") },
            ))
        }));
        assert!(panicked.is_err(), "{name}: the panic goes on");
        let failure = journal.state(&panicked_key).unwrap().failure.unwrap();
        assert_eq!(failure.error, ErrorInfo::new("panic", "async work panicked"), "{name}");
    });
}

// ---------------------------------------------------------------------------
// The README's program, run as a process three ways.
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "RUNJOURNAL_SCOPED_EXAMPLE_CHILD";

/// Runs `examples/scoped_agent.rs`'s `main` when `RUNJOURNAL_SCOPED_EXAMPLE_CHILD`
/// is set (the test re-executes itself to run the program as a process); a
/// no-op otherwise.
#[test]
fn example_child() {
    if std::env::var_os(CHILD_ENV).is_some() {
        example::main().unwrap();
    }
}

/// Runs the example program on `db` as a process; its exit success and the
/// lines it printed (without the test harness's own).
fn run_example(db: &Path, crash_after_phase: Option<u32>) -> (bool, Vec<String>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["example_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("AGENT_DB", db)
        .env_remove("AGENT_STOP_BEFORE_PHASE")
        .env_remove("AGENT_CRASH_AFTER_PHASE");
    if let Some(phase) = crash_after_phase {
        command.env("AGENT_CRASH_AFTER_PHASE", phase.to_string());
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = stdout
        .lines()
        // libtest prints `test example_child ... ` before the program's first line.
        .map(|line| line.trim_start_matches("test example_child ... ").to_string())
        .filter(|line| {
            !(line.is_empty()
                || line.starts_with("running ")
                || line.starts_with("test result:")
                || line == "ok"
                || line.starts_with("successes:")
                || line.starts_with("    example_child"))
        })
        .collect();
    (output.status.success(), lines)
}

#[test]
fn the_scoped_agent_example_works_on_a_first_start_a_second_start_and_after_a_crash() {
    let (_dir, db) = temp_db();
    let run = |episode: u32| RunKey::new("fix-login-bug", episode, "orchestrator-0").unwrap();
    let phases = ["phase 0 investigate", "phase 1 patch", "phase 2 test"];

    let (ok, lines) = run_example(&db, None);
    assert!(ok, "{lines:?}");
    let mut expected = vec![format!("began run {}", run(0))];
    expected.extend(phases.iter().map(std::string::ToString::to_string));
    expected.push("done: PR ready: token expiry fixed".into());
    assert_eq!(lines, expected, "first start");

    let (ok, lines) = run_example(&db, None);
    assert!(ok, "{lines:?}");
    let mut expected = vec![
        format!("run {} is completed; starting episode 1", run(0)),
        format!("began run {}", run(1)),
    ];
    expected.extend(phases.iter().map(std::string::ToString::to_string));
    expected.push("done: PR ready: token expiry fixed".into());
    assert_eq!(
        lines, expected,
        "second start: the run is finished, the next episode begins"
    );

    let (ok, lines) = run_example(&db, Some(0));
    assert!(!ok, "the crash aborts the process: {lines:?}");
    assert_eq!(
        lines,
        vec![
            format!("run {} is completed; starting episode 2", run(1)),
            format!("began run {}", run(2)),
            "phase 0 investigate".into(),
            "crashing after phase 0".into(),
        ],
        "a start that crashes mid-run"
    );

    let (ok, lines) = run_example(&db, None);
    assert!(ok, "{lines:?}");
    assert_eq!(
        lines,
        vec![
            format!("resumed run {}", run(2)),
            "phase 0 investigate: completed before, skipped".into(),
            "phase 1 patch".into(),
            "phase 2 test".into(),
            "done: PR ready: token expiry fixed".into(),
        ],
        "the start after the crash skips the completed phase"
    );

    let journal = Journal::open_existing(&db, Options::default()).unwrap();
    let statuses: Vec<(u32, RunStatus)> = journal
        .runs(&RunFilter::default())
        .unwrap()
        .iter()
        .map(|record| (record.key.episode, record.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (0, RunStatus::Completed),
            (1, RunStatus::Completed),
            (2, RunStatus::Completed)
        ]
    );
    let resumed = journal.state(&run(2)).unwrap();
    assert_eq!((resumed.epoch, resumed.completed_phase_indices()), (1, vec![0, 1, 2]));
}

#[test]
fn the_readme_library_example_is_the_scoped_agent_example() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scoped_agent.rs")).unwrap();
    let section = readme.split("## The library").nth(1).unwrap();
    let snippet = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .unwrap();
    assert_eq!(
        format!("{snippet}\n"),
        example,
        "README.md's library snippet is examples/scoped_agent.rs"
    );
}
