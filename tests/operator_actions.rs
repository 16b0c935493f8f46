//! Operator actions (`Journal::interrupt`, `fail_run`, `resume_as_operator`):
//! each opens a new epoch naming the operator, so the agent's handle is
//! fenced and writes nothing more; an outcome comes in the same batch as the
//! `attached`; what the ordering rules refuse writes nothing.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{memory_journal, step};
use runjournal::*;

fn key() -> RunKey {
    RunKey::new("g", 0, "agent").unwrap()
}

#[test]
fn interrupt_fences_the_agents_handle_and_ends_the_run_in_one_batch() {
    let journal = memory_journal();
    let agent = journal.begin(key(), RunMeta::default()).unwrap();
    agent.step(step("working")).unwrap();
    let report = journal.interrupt(&key(), "alice@host").unwrap();
    assert_eq!(
        (report.attached_seq, report.last_seq, report.epoch, report.status),
        (2, 3, 1, RunStatus::Interrupted)
    );
    let error = agent.step(step("still working")).unwrap_err();
    assert!(matches!(error, AppendError::Fenced { current: 1, .. }), "{error}");
    let history = journal.history(&key()).unwrap();
    assert_eq!(history.len(), 4, "the fenced append wrote nothing");
    assert_eq!(
        history[2].event,
        Event::Attached {
            owner: "alice@host (operator: interrupt)".into()
        }
    );
    assert_eq!(history[3].epoch, 1);
    assert!(matches!(history[3].event, Event::RunInterrupted { .. }));
    // The interrupted run is left for recovery.
    assert_eq!(journal.recoverable().unwrap().len(), 1);
}

#[test]
fn fail_run_records_the_reason_and_the_operator_and_refuses_a_second_time() {
    let journal = memory_journal();
    let agent = journal.begin(key(), RunMeta::default()).unwrap();
    journal.fail_run(&key(), "bob@ops", "looping").unwrap();
    assert!(matches!(agent.step(step("x")).unwrap_err(), AppendError::Fenced { .. }));
    let state = journal.state(&key()).unwrap();
    let failure = state.failure.unwrap();
    assert_eq!(failure.error.kind, OPERATOR_FAILURE_KIND);
    assert_eq!(failure.error.message, "looping (failed by bob@ops)");
    let refused = journal.interrupt(&key(), "bob@ops").unwrap_err();
    assert_eq!(
        refused.to_string(),
        "cannot interrupt run \"g\"/0/\"agent\": run is failed: nothing may follow run_failed \
         (docs/format.md#ordering-rules); nothing was written"
    );
    assert!(matches!(
        journal.resume_as_operator(&key(), "bob@ops"),
        Err(OperatorError::Refused { .. })
    ));
    assert_eq!(journal.history(&key()).unwrap().len(), 3, "refusals wrote nothing");
}

#[test]
fn resume_as_operator_hands_back_a_writing_handle_in_a_new_epoch() {
    let journal = memory_journal();
    let agent = journal.begin(key(), RunMeta::default()).unwrap();
    journal.interrupt(&key(), "alice@host").unwrap();
    assert!(matches!(
        journal.interrupt(&key(), "alice@host"),
        Err(OperatorError::Refused {
            status: RunStatus::Interrupted,
            ..
        })
    ));
    let (report, handle, state) = journal.resume_as_operator(&key(), "alice@host").unwrap();
    assert_eq!(
        (report.epoch, report.status, state.status),
        (2, RunStatus::Running, RunStatus::Running)
    );
    handle.step(step("the operator continues")).unwrap();
    assert!(agent.step(step("x")).is_err());
    assert!(matches!(
        journal.interrupt(&RunKey::new("nope", 0, "a").unwrap(), "alice@host"),
        Err(OperatorError::NotFound { .. })
    ));
}
