//! Optimistic concurrency: an append naming a seq that is not the run's next
//! fails with `Conflict`, writes nothing, and leaves the handle usable.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, temp_db};
use runjournal::*;

#[test]
fn an_append_with_a_stale_expected_seq_is_a_conflict_and_writes_nothing() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.append_at(1, vec![Event::TurnCompleted]).unwrap();
    let error = run.append_at(1, vec![Event::TurnCompleted]).unwrap_err();
    assert!(
        matches!(&error, AppendError::Conflict { run, expected: 1, actual: 2 } if *run == run_key),
        "{error:?}"
    );
    assert_eq!(journal.read(&run_key, 0).unwrap().len(), 2);
    run.append_at(2, vec![Event::TurnCompleted]).unwrap();
}
