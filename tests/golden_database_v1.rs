//! A sled database written by format version 1 is committed under
//! `tests/fixtures/golden_db_v1/`: every event type of v1, a resumed, a
//! failed, an interrupted and a forked run, and snapshots of fold version 1.
//! Every later build must open it, verify every run and fold it to the
//! committed states. `RUNJOURNAL_WRITE_GOLDEN=1` regenerates it (only ever for
//! a new format version, in a new directory). The states are the fold's, not
//! the format's: when the fold's rules change (a new `FOLD_VERSION`),
//! `RUNJOURNAL_WRITE_GOLDEN_STATES=1` rewrites them from the committed
//! database, which it never changes.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::path::{Path, PathBuf};

use common::{key, one_of_every_event, step};
use runjournal::*;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_db_v1")
}

fn expected_states() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_db_v1.states.jsonl")
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
        for event in body {
            run.append(vec![event]).unwrap();
        }
    }
    let (run, _) = journal.resume(&resumed).unwrap();
    run.step(step("after the resume")).unwrap();
    run.finish(Outcome::Success {
        output: Some("golden".into()),
    })
    .unwrap();

    let failed = journal
        .begin(key("golden", 0, "failing-1"), RunMeta::default())
        .unwrap();
    failed.step(step("about to fail")).unwrap();
    failed
        .finish(Outcome::Failure {
            error: ErrorInfo::new("backend", "503"),
            cleanup_errors: vec![ErrorInfo::new("stop", "busy")],
        })
        .unwrap();

    let interrupted = journal
        .begin(key("golden", 0, "sleeper-2"), RunMeta::default())
        .unwrap();
    interrupted.step(step("stopping for the night")).unwrap();
    interrupted.finish(Outcome::Shutdown).unwrap();

    let forked = journal.fork(&resumed, 5, key("golden", 1, "orchestrator-0")).unwrap();
    forked.step(step("a different path")).unwrap();
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

/// A read-only copy of the committed database, opened.
fn open_copy() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("golden.db");
    common::copy_dir(&fixture(), &copy);
    let journal = Journal::open_existing(&copy, Options::default()).unwrap();
    (dir, journal)
}

#[test]
fn the_format_v1_golden_database_opens_verifies_and_folds() {
    if std::env::var_os("RUNJOURNAL_WRITE_GOLDEN").is_some() && !fixture().exists() {
        write_golden_database(&fixture());
    }
    let (_dir, journal) = open_copy();
    if std::env::var_os("RUNJOURNAL_WRITE_GOLDEN_STATES").is_some() {
        write_expected_states(&journal);
    }
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
        for envelope in journal.history(&record.key).unwrap() {
            types.insert(envelope.event.type_name());
        }
    }
    assert_eq!(types.len(), 20, "every event type is in the golden database: {types:?}");
    let statuses: Vec<RunStatus> = runs.iter().map(|record| record.status).collect();
    for status in [
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Interrupted,
        RunStatus::Running,
    ] {
        assert!(statuses.contains(&status), "{status} run in the golden database");
    }
    assert!(runs.iter().any(|record| record.fork.is_some()), "a forked run");
    // It is still writable by this build.
    let (resumed, _) = journal.resume(&key("golden", 0, "sleeper-2")).unwrap();
    resumed.step(step("good morning")).unwrap();
    journal.verify(&key("golden", 0, "sleeper-2")).unwrap();
}

#[test]
fn fold_version_1_snapshots_of_the_golden_database_are_refolded_by_the_v2_rules() {
    use runjournal::core::snapshot::{decode_snapshot, DecodedSnapshot};

    use runjournal::core::Store;
    use runjournal_sled::{OpenMode, SledStore};

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("golden.db");
    common::copy_dir(&fixture(), &copy);
    // The test keeps its own handle on the store to look at what is stored;
    // it only reads through it.
    let store = std::sync::Arc::new(SledStore::open(&copy, OpenMode::MustExist).unwrap());
    let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
    let resumed = key("golden", 0, "orchestrator-0");
    let record = journal.run_info(&resumed).unwrap();
    let stored = store.latest_snapshot(record.id, u64::MAX).unwrap().unwrap();
    assert_eq!(
        decode_snapshot(&stored.bytes).unwrap(),
        DecodedSnapshot::OtherVersion(1),
        "the golden database holds a fold version 1 snapshot"
    );
    let full_fold = ResumeState::fold(resumed.clone(), &journal.history(&resumed).unwrap());
    let state = journal.state(&resumed).unwrap();
    assert_eq!(
        state, full_fold,
        "the v1 snapshot is ignored: the state is the v2 fold of the log"
    );
    assert!(state.wall_ms > 0 && state.active_ms <= state.wall_ms);
    assert_eq!(state.resources.len(), 1, "the v1 teardown is listed (rule 13)");

    journal.rebuild_snapshots(&resumed).unwrap();
    let rebuilt = store.latest_snapshot(record.id, u64::MAX).unwrap().unwrap();
    assert_eq!(
        decode_snapshot(&rebuilt.bytes).unwrap(),
        DecodedSnapshot::Current(Box::new(full_fold.clone()))
    );
    assert_eq!(journal.state(&resumed).unwrap(), full_fold);
}

#[test]
fn a_format_v1_database_takes_appends_and_becomes_format_3() {
    use runjournal::core::chunk;
    use runjournal::core::codec::{decode_record, RecordKind};
    use runjournal_sled::{layout, OpenMode, SledStore};

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("golden.db");
    common::copy_dir(&fixture(), &copy);
    let format = |store: &SledStore| -> u8 {
        decode_record(
            RecordKind::Meta,
            &store.sled().get(layout::format_key()).unwrap().unwrap(),
        )
        .unwrap()
    };
    let sleeper = key("golden", 0, "sleeper-2");
    {
        let store = std::sync::Arc::new(SledStore::open(&copy, OpenMode::MustExist).unwrap());
        assert_eq!(format(&store), 1, "the golden database is format 1");
        let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
        // The first append (the resume's `attached`) is a multi-key batch that
        // raises the format record, so later appends may be commits.
        let (run, _) = journal.resume(&sleeper).unwrap();
        assert_eq!(
            format(&store),
            3,
            "the first append raises the format record in its batch"
        );
        let commits = |store: &SledStore| {
            store
                .sled()
                .scan_prefix([layout::EVENT])
                .filter(|entry| chunk::is_commit(&entry.as_ref().unwrap().1))
                .count()
        };
        assert_eq!(commits(&store), 0, "the raising batch stores its event bare");
        let batch = (0..6)
            .map(|index| Event::Step {
                messages: step(&format!("batched {index}")),
            })
            .collect();
        run.append(batch).unwrap();
        assert_eq!(commits(&store), 1, "the batch of six is one commit");
    }
    let journal = Journal::open_existing(&copy, Options::default()).unwrap();
    let report = journal.verify(&sleeper).unwrap();
    let history = journal.history(&sleeper).unwrap();
    assert_eq!(history.len() as u64, journal.run_info(&sleeper).unwrap().head.next_seq);
    assert!(
        history.iter().any(
            |envelope| matches!(&envelope.event, Event::Step { messages } if messages[0].content.contains("batched 5"))
        ),
        "{report:?}"
    );
}
