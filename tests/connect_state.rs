//! A connected `state`, `state_at` and `resume` use the owner's fold (from
//! its snapshots, the whole fold as a snapshot record) and equal the
//! embedded results exactly, bookkeeping included: a connected handle goes
//! on folding its appends to the owner's state.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::owner_and_client;
use runjournal::core::{CompactionSource, Message, Role};
use runjournal::{CompactionInfo, Journal, Options, RunKey, RunMeta};

fn key() -> RunKey {
    RunKey::new("g", 0, "a").unwrap()
}

/// An owner with snapshots every 10 events and a clock that advances 7 ms
/// per reading, and a client connected to it.
fn served() -> (tempfile::TempDir, Journal, Journal) {
    let now = Arc::new(AtomicU64::new(1_700_000_000_000));
    let options = Options {
        snapshot_every: 10,
        ..Options::default()
    }
    .with_clock(move || now.fetch_add(7, Ordering::SeqCst));
    owner_and_client(options)
}

/// 45 events: phases, steps, a compaction in progress across snapshots.
fn write_run(owner: &Journal) {
    let run = owner.begin(key(), RunMeta::default()).unwrap();
    run.phase_started(0, "plan").unwrap();
    for index in 0..20 {
        run.step(vec![Message::new(Role::Assistant, format!("step {index}"))])
            .unwrap();
    }
    let info = CompactionInfo {
        id: Some("c1".into()),
        messages: Some(20),
        ..CompactionInfo::default()
    };
    run.compaction_started(CompactionSource::Structured, info).unwrap();
    for index in 20..42 {
        run.step(vec![Message::new(Role::User, format!("step {index}"))])
            .unwrap();
    }
    assert!(run.next_seq() > 40);
}

#[test]
fn connected_state_equals_the_embedded_state_past_several_snapshots() {
    let (_dir, owner, client) = served();
    write_run(&owner);
    assert_eq!(client.state(&key()).unwrap(), owner.state(&key()).unwrap());
    for seq in [0, 9, 10, 11, 23, 30, 44] {
        assert_eq!(
            client.state_at(&key(), seq).unwrap(),
            owner.state_at(&key(), seq).unwrap(),
            "state at seq {seq}"
        );
    }
    let error = client.state_at(&key(), 1_000).unwrap_err();
    assert_eq!(error.code(), "seq_out_of_range", "{error}");
}

#[test]
fn a_connected_resume_folds_on_from_the_owners_state() {
    let (_dir, owner, client) = served();
    write_run(&owner);
    let (run, resumed) = client.resume(&key()).unwrap();
    assert_eq!(resumed, owner.state(&key()).unwrap());
    // The resume cleared the stranded compaction (rule 5); a new one runs
    // through the connected handle, folded on from the owner's state.
    assert!(!resumed.compaction.active);
    let started = CompactionInfo {
        id: Some("c2".into()),
        messages: Some(22),
        ..CompactionInfo::default()
    };
    run.compaction_started(CompactionSource::Structured, started).unwrap();
    let done = CompactionInfo {
        id: Some("c2".into()),
        summary: Some("so far".into()),
        messages: Some(1),
        ..CompactionInfo::default()
    };
    run.compaction_done(CompactionSource::Structured, done).unwrap();
    run.step(vec![Message::new(Role::Assistant, "after")]).unwrap();
    let owners = owner.state(&key()).unwrap();
    assert_eq!(run.state(), owners);
    assert!(owners.anomalies.is_empty(), "{:?}", owners.anomalies);
    assert_eq!(client.state(&key()).unwrap(), owners);
}
