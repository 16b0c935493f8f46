//! Every append is checked before anything is written: field ranges, the
//! ordering rules (nothing after an outcome in its epoch, no raw `run_started`
//! or `attached`), and typed methods refusing what the fold would ignore
//! (raw appends store it and the fold records the anomaly). A refusal writes
//! nothing and leaves the handle usable.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{handoff, key, memory_journal, step};
use runjournal::fold::{HandoffStatus, TaskStatus};
use runjournal::*;

#[test]
fn invalid_event_fields_are_refused_and_write_nothing() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let error = run.task_claimed("t", "a", 9, 0.5).unwrap_err();
    assert!(matches!(&error, AppendError::InvalidEvent { seq: 1, .. }), "{error:?}");
    assert!(error.to_string().contains("priority is 9"), "{error}");
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 1);
}

#[test]
fn nothing_may_follow_a_terminal_event_in_its_epoch() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let error = run
        .append(vec![Event::RunCompleted { output: None }, Event::TurnCompleted])
        .unwrap_err();
    assert!(matches!(&error, AppendError::OutOfOrder { seq: 2, .. }), "{error:?}");
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 1);
    run.append(vec![Event::RunInterrupted {
        cause: InterruptCause::Shutdown,
    }])
    .unwrap();
    let error = run.step(step("late")).unwrap_err();
    assert!(error.to_string().contains("interrupted in this epoch"), "{error}");
    // A resume opens a new epoch after an interruption.
    let (resumed, state) = journal.resume(&run_key).unwrap();
    assert_eq!(state.status, RunStatus::Running);
    resumed.step(step("continues")).unwrap();
}

#[test]
fn run_started_and_attached_cannot_be_appended_raw() {
    let journal = memory_journal();
    let run = journal.begin(key("g", 0, "a"), RunMeta::default()).unwrap();
    let error = run
        .append(vec![Event::RunStarted {
            meta: RunMeta::default(),
        }])
        .unwrap_err();
    assert!(error.to_string().contains("run_started is only ever seq 0"), "{error}");
    let error = run.append(vec![Event::Attached { owner: "x".into() }]).unwrap_err();
    assert!(error.to_string().contains("written by resume"), "{error}");
}

#[test]
fn typed_methods_refuse_what_the_fold_would_ignore_and_raw_appends_record_it_as_an_anomaly() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.handoff_sent(handoff("h1", "1.0.0", "abcd", 10)).unwrap();
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
