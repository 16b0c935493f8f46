//! Purging a live run (issue 11, item 7): its handles fail with
//! `AppendError::Deleted` naming the run and seq, its subscriptions end with
//! `SubscribeError::Purged`, and a new run begun under the same key never
//! feeds a subscription of the purged one.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::time::Duration;

use common::{key, step, temp_db};
use runjournal::*;

fn purge_explicit(journal: &Journal, run: &RunKey) {
    let report = journal
        .purge(
            &PurgePolicy {
                explicit: vec![run.clone()],
                ..PurgePolicy::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(report.purged.len(), 1);
}

fn journals() -> Vec<(&'static str, Option<tempfile::TempDir>, Journal)> {
    let (durable_dir, durable_path) = temp_db();
    let (buffered_dir, buffered_path) = temp_db();
    vec![
        ("memory", None, common::memory_journal()),
        (
            "sled",
            Some(durable_dir),
            Journal::open(&durable_path, Options::default()).unwrap(),
        ),
        (
            "sled buffered",
            Some(buffered_dir),
            Journal::open(&buffered_path, Options::with_durability(Durability::Buffered)).unwrap(),
        ),
    ]
}

#[test]
fn a_purged_runs_handle_fails_with_deleted_naming_run_and_seq() {
    for (name, _dir, journal) in journals() {
        let run_key = key("purge-live", 0, "handle");
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.step(step("one")).unwrap();
        purge_explicit(&journal, &run_key);
        let error = run.step(step("two")).unwrap_err();
        match &error {
            AppendError::Deleted { run, seq } => {
                assert_eq!(*run, run_key, "{name}");
                assert_eq!(*seq, 2, "{name}");
            }
            other => panic!("{name}: expected Deleted, got {other:?}"),
        }
        assert_eq!(error.code(), "deleted", "{name}");
        // It stays refused, and nothing came back.
        let again = run.step(step("three")).unwrap_err();
        assert!(
            matches!(again, AppendError::Deleted { seq: 2, .. }),
            "{name}: {again:?}"
        );
        assert!(
            matches!(journal.run_info(&run_key), Err(ReadError::NotFound { .. })),
            "{name}"
        );
    }
}

#[test]
fn a_purged_runs_subscription_ends_with_purged() {
    for (name, _dir, journal) in journals() {
        let run_key = key("purge-live", 0, "subscribed");
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.step(step("one")).unwrap();
        let mut subscription = journal.subscribe(&run_key, 0, 64).unwrap();
        assert_eq!(subscription.recv().unwrap().seq, 0, "{name}");
        assert_eq!(subscription.recv().unwrap().seq, 1, "{name}");
        purge_explicit(&journal, &run_key);
        let ended = subscription.recv_timeout(Duration::from_secs(10));
        match ended {
            Err(SubscribeError::Purged { run }) => assert_eq!(run, run_key, "{name}"),
            other => panic!("{name}: expected Purged, got {other:?}"),
        }
        assert_eq!(
            SubscribeError::Purged { run: run_key.clone() }.code(),
            "purged",
            "{name}"
        );
        // The iterator yields the notice once, then ends.
        assert!(subscription.next().is_none(), "{name}");
    }
}

#[test]
fn a_new_run_under_a_purged_key_never_feeds_an_old_subscription() {
    for (name, _dir, journal) in journals() {
        let run_key = key("purge-live", 0, "reused");
        let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        for index in 0..5 {
            run.step(step(&format!("old {index}"))).unwrap();
        }
        let mut subscription = journal.subscribe(&run_key, 0, 64).unwrap();
        let caught_up: Vec<u64> = (0..6).map(|_| subscription.recv().unwrap().seq).collect();
        assert_eq!(caught_up, vec![0, 1, 2, 3, 4, 5], "{name}");
        let mut all = journal.subscribe_all(64).unwrap();
        purge_explicit(&journal, &run_key);
        let reborn = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
        reborn.step(step("new")).unwrap();
        let mut seqs = Vec::new();
        let end = loop {
            match subscription.recv_timeout(Duration::from_secs(10)) {
                Ok(Some(envelope)) => seqs.push(envelope.seq),
                Ok(None) => panic!("{name}: the subscription neither ended nor delivered"),
                Err(error) => break error,
            }
        };
        assert_eq!(seqs, Vec::<u64>::new(), "{name}: nothing of the new run");
        assert!(matches!(end, SubscribeError::Purged { .. }), "{name}: {end:?}");
        // A subscription to every run sees the new run from its start.
        let seen: Vec<u64> = (0..2)
            .map(|_| all.recv_timeout(Duration::from_secs(10)).unwrap().unwrap().seq)
            .collect();
        assert_eq!(seen, vec![0, 1], "{name}: the new run's events reach subscribe_all");
        // A new subscription to the key follows the new run.
        let fresh: Vec<u64> = journal
            .subscribe(&run_key, 0, 64)
            .unwrap()
            .take(2)
            .map(|envelope| envelope.unwrap().seq)
            .collect();
        assert_eq!(fresh, vec![0, 1], "{name}");
    }
}
