//! A sled database written by format version 1 is committed under
//! `tests/fixtures/golden_db_v1/`: every event type of v1, a resumed, a
//! failed, an interrupted and a forked run, and snapshots of fold version 1.
//! Every later build must open it, verify and read every run, fold it to the
//! committed states and append to it (the checks and the variables that
//! rewrite it are in tests/common/golden.rs).
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::path::Path;

use common::golden::{stored_commits, stored_format, GoldenDatabase, FINISHED_AND_RUNNING};
use common::{key, one_of_every_event, step};
use runjournal::*;

const GOLDEN: GoldenDatabase = GoldenDatabase {
    name: "golden_db_v1",
    write: write_golden_database,
    format: 1,
    chunks: 0..=0,
    commits: 0..=0,
    event_types: 20,
    statuses: FINISHED_AND_RUNNING,
    writable_run: || key("golden", 0, "sleeper-2"),
    writable_steps: 1,
};

fn write_golden_database(path: &Path) -> Journal {
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
    journal
}

#[test]
fn the_format_v1_golden_database_opens_verifies_and_folds() {
    GOLDEN.check();
}

#[test]
fn fold_version_1_snapshots_of_the_golden_database_are_refolded_by_the_v2_rules() {
    use runjournal::core::snapshot::{decode_snapshot, DecodedSnapshot};

    use runjournal::core::Store;
    use runjournal_sled::{OpenMode, SledStore};

    let (_dir, copy) = GOLDEN.copy();
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
fn a_format_v1_database_takes_appends_and_becomes_format_4() {
    use runjournal_sled::{OpenMode, SledStore};

    let (_dir, copy) = GOLDEN.copy();
    let sleeper = key("golden", 0, "sleeper-2");
    {
        let store = std::sync::Arc::new(SledStore::open(&copy, OpenMode::MustExist).unwrap());
        assert_eq!(stored_format(&store), 1, "the golden database is format 1");
        let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
        // The first append (the resume's `attached`) is a multi-key batch that
        // raises the format record, so later appends may be commits.
        let (run, _) = journal.resume(&sleeper).unwrap();
        assert_eq!(
            stored_format(&store),
            4,
            "the first append raises the format record in its batch"
        );
        assert_eq!(stored_commits(&store), 0, "the raising batch stores its event bare");
        let batch = (0..6)
            .map(|index| Event::Step {
                messages: step(&format!("batched {index}")),
            })
            .collect();
        run.append(batch).unwrap();
        assert_eq!(stored_commits(&store), 1, "the batch of six is one commit");
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
