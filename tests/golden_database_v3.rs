//! A sled database written by store format version 3 (commits) is committed
//! under `tests/fixtures/golden_db_v3/`: every event type, appended as
//! commits (one run's group in one value carrying the run's record, so the
//! stored run records are behind their runs' heads), some in multi-key
//! batches (with a snapshot), a resumed, a failed, an interrupted and a
//! forked run (forked from inside a commit), and snapshots. Every later build
//! must open it, verify every run, read from any seq and fold it to the
//! committed states. `RUNJOURNAL_WRITE_GOLDEN=1` writes it when it is missing
//! (only ever for a new format version, in a new directory);
//! `RUNJOURNAL_WRITE_GOLDEN_STATES=1` rewrites the states from the committed
//! database when the fold's rules change.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::path::{Path, PathBuf};

use common::{key, one_of_every_event, step};
use runjournal::core::chunk;
use runjournal::*;
use runjournal_sled::{layout, OpenMode, SledStore};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_db_v3")
}

fn expected_states() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_db_v3.states.jsonl")
}

fn steps(count: usize, what: &str) -> Vec<Event> {
    (0..count)
        .map(|index| Event::Step {
            messages: step(&format!("{what} {index}")),
        })
        .collect()
}

fn write_golden_database(path: &Path) {
    let journal = Journal::open(
        path,
        Options {
            snapshot_every: 8,
            ..Options::default()
        },
    )
    .unwrap();
    let resumed = key("golden", 0, "orchestrator-0");
    {
        let run = journal.begin(resumed.clone(), RunMeta::default()).unwrap();
        let body: Vec<Event> = one_of_every_event()
            .into_iter()
            .filter(|event| !event.is_terminal() && !matches!(event, Event::RunStarted { .. } | Event::Attached { .. }))
            .collect();
        let (first, second) = body.split_at(body.len() / 2);
        run.append(first.to_vec()).unwrap();
        run.append(second.to_vec()).unwrap();
        run.append(steps(30, "batched step")).unwrap();
    }
    let (run, _) = journal.resume(&resumed).unwrap();
    run.append(steps(5, "after the resume")).unwrap();
    run.finish(Outcome::Success {
        output: Some("golden v3".into()),
    })
    .unwrap();

    let failed = journal
        .begin(key("golden", 0, "failing-1"), RunMeta::default())
        .unwrap();
    failed.append(steps(3, "about to fail")).unwrap();
    failed
        .finish(Outcome::Failure {
            error: ErrorInfo::new("backend", "503"),
            cleanup_errors: vec![],
        })
        .unwrap();

    let interrupted = journal
        .begin(key("golden", 0, "sleeper-2"), RunMeta::default())
        .unwrap();
    interrupted.append(steps(2, "stopping for the night")).unwrap();
    for index in 0..4 {
        interrupted
            .append(steps(1, &format!("one more thing {index}")))
            .unwrap();
    }
    interrupted.finish(Outcome::Shutdown).unwrap();

    let forked = journal.fork(&resumed, 5, key("golden", 1, "orchestrator-0")).unwrap();
    forked.append(steps(4, "a different path")).unwrap();
    drop(forked);

    write_expected_states(&journal);
}

fn write_expected_states(journal: &Journal) {
    let mut lines = String::new();
    for record in journal.runs(&RunFilter::default()).unwrap() {
        lines.push_str(&serde_json::to_string(&journal.state(&record.key).unwrap()).unwrap());
        lines.push('\n');
    }
    std::fs::write(expected_states(), lines).unwrap();
}

/// A copy of the committed database, opened with a handle on its store.
fn open_copy() -> (tempfile::TempDir, std::sync::Arc<SledStore>, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("golden.db");
    common::copy_dir(&fixture(), &copy);
    let store = std::sync::Arc::new(SledStore::open(&copy, OpenMode::MustExist).unwrap());
    let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
    (dir, store, journal)
}

#[test]
fn the_format_v3_golden_database_opens_verifies_and_folds() {
    if std::env::var_os("RUNJOURNAL_WRITE_GOLDEN").is_some() && !fixture().exists() {
        write_golden_database(&fixture());
    }
    let (_dir, store, journal) = open_copy();
    if std::env::var_os("RUNJOURNAL_WRITE_GOLDEN_STATES").is_some() {
        write_expected_states(&journal);
    }
    let format = store.sled().get(layout::format_key()).unwrap().unwrap();
    let version: u8 =
        runjournal::core::codec::decode_record(runjournal::core::codec::RecordKind::Meta, &format).unwrap();
    assert_eq!(version, 3, "the golden database is store format 3");
    let commits = store
        .sled()
        .scan_prefix([layout::EVENT])
        .filter(|entry| chunk::is_commit(&entry.as_ref().unwrap().1))
        .count();
    assert!(commits >= 10, "the golden database holds commits ({commits})");
    let behind = journal
        .runs(&RunFilter::default())
        .unwrap()
        .iter()
        .filter(|record| {
            let stored = store.sled().get(layout::run_key(record.id)).unwrap().unwrap();
            let stored: RunRecord =
                runjournal::core::codec::decode_record(runjournal::core::codec::RecordKind::Run, &stored).unwrap();
            stored.head.next_seq < record.head.next_seq
        })
        .count();
    assert!(behind >= 3, "runs whose head is only in their last commit ({behind})");
    let expected: Vec<serde_json::Value> = std::fs::read_to_string(expected_states())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let runs = journal.runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), expected.len());
    let mut types = std::collections::BTreeSet::new();
    for (record, expected) in runs.iter().zip(&expected) {
        journal.verify(&record.key).unwrap();
        let state = journal.state(&record.key).unwrap();
        assert_eq!(
            &serde_json::to_value(&state).unwrap(),
            expected,
            "state of {}",
            record.key
        );
        let history = journal.history(&record.key).unwrap();
        for envelope in &history {
            types.insert(envelope.event.type_name());
        }
        // A read from every seq (inside a chunk or at its start) is the
        // history's tail.
        let own_start = history.len() as u64 - record.head.next_seq;
        for from in 0..record.head.next_seq {
            let tail = journal.read(&record.key, from).unwrap();
            assert_eq!(
                tail,
                history[usize::try_from(own_start + from).unwrap()..],
                "{} from {from}",
                record.key
            );
        }
    }
    assert_eq!(types.len(), 20, "every event type is in the golden database: {types:?}");
    assert!(runs.iter().any(|record| record.fork.is_some()), "a forked run");
    // It is still writable by this build.
    let (resumed, _) = journal.resume(&key("golden", 1, "orchestrator-0")).unwrap();
    resumed.append(steps(3, "good morning")).unwrap();
    journal.verify(&key("golden", 1, "orchestrator-0")).unwrap();
}
