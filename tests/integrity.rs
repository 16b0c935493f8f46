//! Every read verifies what it returns: a damaged stored event is a typed
//! error naming the run and the seq, from every read method, even a read that
//! starts after the damage; nothing is skipped.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::{key, rewrite_stored_event, stored_run, temp_db};
use runjournal::*;

#[test]
fn flipped_byte_in_stored_value_is_a_typed_error_naming_run_and_seq() {
    let (_dir, path) = temp_db();
    let run_key = key("fix-login-bug", 0, "orchestrator-0");
    let run_id = stored_run(
        &path,
        &run_key,
        &["message 0", "message 1", "message 2", "message 3", "message 4"],
    );
    rewrite_stored_event(&path, run_id, 3, |value| {
        let last = value.len() - 2;
        value[last] ^= 0x40;
    });
    let journal = Journal::open(&path, Options::default()).unwrap();
    for error in [
        journal.verify(&run_key).unwrap_err(),
        journal.read(&run_key, 0).unwrap_err(),
        journal.state(&run_key).unwrap_err(),
    ] {
        let ReadError::Integrity(integrity) = &error else {
            panic!("expected an integrity error, got {error:?}");
        };
        assert_eq!(integrity.run, run_key);
        assert_eq!(integrity.seq, 3);
        let message = error.to_string();
        assert!(
            message.contains("fix-login-bug") && message.contains("seq 3"),
            "{message}"
        );
    }
    let error = journal.resume(&run_key).unwrap_err();
    assert!(error.to_string().contains("seq 3"), "{error}");
    // Reading from after the damage still verifies the chain from seq 0.
    let error = journal.read(&run_key, 4).unwrap_err();
    assert!(error.to_string().contains("seq 3"), "{error}");
}

#[test]
fn header_damage_is_reported_not_skipped() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    let run_id = stored_run(&path, &run_key, &["one"]);
    // The run's last value is a commit, carrying the run's head: damage to
    // its version byte must not leave the run at the older stored head.
    rewrite_stored_event(&path, run_id, 1, |value| value[3] = 99);
    let journal = Journal::open(&path, Options::default()).unwrap();
    let error = journal.verify(&run_key).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("seq 1") && message.contains("past the run's head") && message.contains("not a commit"),
        "{message}"
    );
}

#[test]
fn damage_to_a_bare_event_header_is_reported_not_skipped() {
    let (_dir, path) = temp_db();
    let run_key = key("g", 0, "a");
    let run_id = stored_run(&path, &run_key, &["one", "two"]);
    // seq 0 (`run_started`) is stored bare, in the creation's batch.
    rewrite_stored_event(&path, run_id, 0, |value| value[3] = 99);
    let journal = Journal::open(&path, Options::default()).unwrap();
    let error = journal.verify(&run_key).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("seq 0") && message.contains("unknown format version 99"),
        "{message}"
    );
}
