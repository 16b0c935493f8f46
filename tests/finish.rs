//! `finish` records the outcome: success → `run_completed`, shutdown →
//! `run_interrupted` (left for recovery), failure → `run_failed` with the
//! primary error and the cleanup errors apart. A handle dropped during a panic
//! records `run_failed` with kind `panic`; one dropped otherwise stays running.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, memory_journal, step};
use runjournal::*;

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
