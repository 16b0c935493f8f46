//! `begin` creates a run only under a new, valid key and writes nothing
//! otherwise; `resume` never starts a missing run (no silent fresh start) and
//! never reopens a completed or failed one.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, memory_journal, temp_db};
use runjournal::*;

#[test]
fn begin_twice_is_already_exists() {
    let journal = memory_journal();
    let run_key = key("g", 0, "a");
    journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let error = journal.begin(run_key.clone(), RunMeta::default()).unwrap_err();
    assert!(
        matches!(&error, BeginError::AlreadyExists { run } if *run == run_key),
        "{error:?}"
    );
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 1, "nothing more was written");
}

#[test]
fn bad_keys_are_refused_with_messages_that_name_the_problem() {
    let journal = memory_journal();
    let cases = [
        (
            RunKey {
                goal: String::new(),
                episode: 0,
                agent: "a".into(),
            },
            "goal is empty",
        ),
        (
            RunKey {
                goal: "g".into(),
                episode: 0,
                agent: String::new(),
            },
            "agent is empty",
        ),
        (
            RunKey {
                goal: "g".repeat(300),
                episode: 0,
                agent: "a".into(),
            },
            "goal is 300 bytes long",
        ),
        (
            RunKey {
                goal: "g".into(),
                episode: 0,
                agent: "a\tb".into(),
            },
            "agent holds control character",
        ),
    ];
    for (bad, expected) in cases {
        let error = journal.begin(bad, RunMeta::default()).unwrap_err();
        assert!(matches!(error, BeginError::InvalidKey(_)), "{error:?}");
        assert!(
            error.to_string().contains(expected),
            "{error} should contain {expected}"
        );
    }
    assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
}

#[test]
fn resume_of_a_missing_key_is_not_found_and_creates_nothing() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let error = journal.resume(&run_key).unwrap_err();
    assert!(
        matches!(&error, ResumeError::NotFound { run } if *run == run_key),
        "{error:?}"
    );
    assert!(journal.runs(&RunFilter::default()).unwrap().is_empty());
}

#[test]
fn resume_of_a_completed_or_failed_run_is_finished() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let completed = key("g", 0, "done");
    let failed = key("g", 0, "broken");
    journal
        .begin(completed.clone(), RunMeta::default())
        .unwrap()
        .finish(Outcome::Success { output: None })
        .unwrap();
    journal
        .begin(failed.clone(), RunMeta::default())
        .unwrap()
        .finish(Outcome::failure("backend", "503"))
        .unwrap();
    for (run_key, status) in [(completed, RunStatus::Completed), (failed, RunStatus::Failed)] {
        let error = journal.resume(&run_key).unwrap_err();
        assert!(
            matches!(&error, ResumeError::Finished { run, status: found } if *run == run_key && *found == status),
            "{error:?}"
        );
    }
}
