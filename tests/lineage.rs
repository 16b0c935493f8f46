//! Lineage: a fork never changes its parent and replays the parent's prefix
//! then its own events; fanout creates distinct episodes at once; diff finds
//! the first divergence; purge never breaks a surviving fork and keeps what
//! its policy does not select.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{key, step, temp_db, ManualClock};
use runjournal::core::testing::faulty::FaultyStore;
use runjournal::core::{MemoryStore, Store};
use runjournal::*;
use runjournal_sled::{OpenMode, SledStore};

fn parent_with_steps(journal: &Journal, parent: &RunKey, steps: u64) {
    let run = journal
        .begin(
            parent.clone(),
            RunMeta {
                conflict_strategy: Some(ConflictStrategy::Escalate),
                ..RunMeta::default()
            },
        )
        .unwrap();
    run.phase_started(0, "plan").unwrap();
    for index in 0..steps {
        run.step(step(&format!("parent {index}"))).unwrap();
    }
}

fn export_lines(journal: &Journal, run: &RunKey) -> Vec<String> {
    journal
        .read(run, 0)
        .unwrap()
        .iter()
        .map(Envelope::to_json_line)
        .collect()
}

#[test]
fn a_forked_child_replays_the_parent_prefix_then_its_own_events_and_verifies_end_to_end() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let parent = key("g", 0, "a");
    parent_with_steps(&journal, &parent, 6);
    let parent_before = export_lines(&journal, &parent);
    let child_key = key("g", 1, "a");
    let child = journal.fork(&parent, 4, child_key.clone()).unwrap();
    child.step(step("child 0")).unwrap();
    child.step(step("child 1")).unwrap();
    let history = journal.history(&child_key).unwrap();
    let parent_events = journal.read(&parent, 0).unwrap();
    assert_eq!(history[..5], parent_events[..5], "the parent's events up to seq 4");
    let own: Vec<u64> = history[5..].iter().map(|envelope| envelope.seq).collect();
    assert_eq!(own, vec![0, 1, 2], "then the child's own log from seq 0");
    assert!(history[5..].iter().all(|envelope| envelope.run == child_key));
    let Event::RunStarted { meta } = &history[5].event else {
        panic!("child starts with run_started")
    };
    assert_eq!(
        meta.forked_from,
        Some(ForkPoint {
            run: parent.clone(),
            seq: 4
        })
    );
    assert_eq!(
        meta.conflict_strategy,
        Some(ConflictStrategy::Escalate),
        "the parent's meta carries over"
    );
    journal.verify(&child_key).unwrap();
    let state = journal.state(&child_key).unwrap();
    assert_eq!(state, ResumeState::fold(child_key.clone(), &history));
    assert_eq!(state.iteration, 3 + 2, "three parent steps (seqs 2..4), two own");
    assert_eq!(
        export_lines(&journal, &parent),
        parent_before,
        "the parent is unchanged"
    );
    assert_eq!(journal.parent(&child_key).unwrap(), Some(parent.clone()));
    assert_eq!(journal.children(&parent).unwrap(), vec![child_key]);
}

#[test]
fn forks_of_forks_and_rewinds_work_and_survive_reopen() {
    let (_dir, path) = temp_db();
    let grandchild = key("g", 2, "a");
    let rewound = key("g", 3, "a");
    {
        let journal = Journal::open(&path, Options::default()).unwrap();
        let parent = key("g", 0, "a");
        parent_with_steps(&journal, &parent, 3);
        let child = journal.fork(&parent, 3, key("g", 1, "a")).unwrap();
        child.step(step("child")).unwrap();
        let grand = journal.fork(&key("g", 1, "a"), 1, grandchild.clone()).unwrap();
        grand.step(step("grandchild")).unwrap();
        // A fork at an earlier seq of the parent keeps the parent live (a
        // `rewind` would supersede it).
        drop(journal.fork(&parent, 1, rewound.clone()).unwrap());
    }
    let journal = Journal::open(&path, Options::default()).unwrap();
    let contents: Vec<String> = journal
        .history(&grandchild)
        .unwrap()
        .iter()
        .filter_map(|envelope| match &envelope.event {
            Event::Step { messages } => Some(messages[0].content.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(contents, vec!["parent 0", "parent 1", "child", "grandchild"]);
    journal.verify(&grandchild).unwrap();
    let (_, state) = journal.resume(&grandchild).unwrap();
    assert_eq!(state.iteration, 4);
    let rewound_state = journal.state(&rewound).unwrap();
    assert_eq!(
        (
            rewound_state.iteration,
            rewound_state.phases.active.clone().unwrap().index
        ),
        (0, 0)
    );
    assert_eq!(journal.descendants(&key("g", 0, "a")).unwrap().len(), 3);
}

#[test]
fn forking_past_the_end_or_onto_an_existing_key_creates_nothing() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let parent = key("g", 0, "a");
    parent_with_steps(&journal, &parent, 1);
    let error = journal.fork(&parent, 9, key("g", 1, "a")).unwrap_err();
    assert!(error.to_string().contains("its last seq is 2"), "{error}");
    let error = journal.fork(&parent, 0, parent.clone()).unwrap_err();
    assert!(matches!(error, ForkError::AlreadyExists { .. }), "{error:?}");
    assert_eq!(journal.runs(&RunFilter::default()).unwrap().len(), 1);
}

#[test]
fn fanout_creates_n_distinct_episodes_that_never_resume_each_other() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let parent = key("g", 0, "a");
    parent_with_steps(&journal, &parent, 2);
    let children = journal.fanout(&parent, 3, 3).unwrap();
    let episodes: Vec<u32> = children.iter().map(|run| run.key().episode).collect();
    assert_eq!(episodes, vec![1, 2, 3]);
    for (index, run) in children.iter().enumerate() {
        run.step(step(&format!("attempt {index}"))).unwrap();
    }
    drop(children);
    for index in 0..3u32 {
        let (_, state) = journal.resume(&key("g", index + 1, "a")).unwrap();
        let own = &state.transcript.last().unwrap().content;
        assert_eq!(
            own,
            &format!("attempt {index}"),
            "episode {} resumes itself only",
            index + 1
        );
    }
    assert_eq!(journal.children(&parent).unwrap().len(), 3);
}

#[test]
fn diff_finds_the_first_divergence_and_the_state_differences() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let parent = key("g", 0, "a");
    parent_with_steps(&journal, &parent, 2);
    let left = journal.fork(&parent, 3, key("g", 1, "a")).unwrap();
    let right = journal.fork(&parent, 3, key("g", 2, "a")).unwrap();
    left.step(step("left")).unwrap();
    right.step(step("right")).unwrap();
    right.step(step("more")).unwrap();
    let diff = journal.diff(left.key(), right.key()).unwrap();
    assert_eq!(
        diff.common, 4,
        "the parent prefix; the forks' run_started markers are not divergences"
    );
    assert_eq!(diff.a.unwrap().event, Event::Step { messages: step("left") });
    assert_eq!(
        diff.b.unwrap().event,
        Event::Step {
            messages: step("right")
        }
    );
    let fields: Vec<&str> = diff
        .state_differences
        .iter()
        .map(|(field, _, _)| field.as_str())
        .collect();
    assert!(
        fields.contains(&"iteration") && fields.contains(&"transcript"),
        "{fields:?}"
    );
    let against_parent = journal.diff(&parent, right.key()).unwrap();
    assert_eq!(against_parent.common, 4);
    assert_eq!(against_parent.a, None, "the parent ends at the fork point");
    assert_eq!(
        against_parent.b.unwrap().event,
        Event::Step {
            messages: step("right")
        }
    );
    let same = journal.diff(left.key(), left.key()).unwrap();
    assert_eq!((same.a, same.b, same.state_differences.len()), (None, None, 0));
}

#[test]
fn purge_never_breaks_a_child_and_a_dry_run_changes_nothing() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::at(1_763_800_000_000);
    let journal = Journal::open(&path, clock.options(Options::default())).unwrap();
    let parent = key("g", 0, "a");
    parent_with_steps(&journal, &parent, 2);
    let winner = journal.fork(&parent, 2, key("g", 1, "a")).unwrap();
    let loser = journal.fork(&parent, 2, key("g", 2, "a")).unwrap();
    winner
        .finish(Outcome::Success {
            output: Some("best".into()),
        })
        .unwrap();
    loser.finish(Outcome::Success { output: None }).unwrap();
    let failed = journal.begin(key("g", 0, "flaky"), RunMeta::default()).unwrap();
    failed.finish(Outcome::failure("x", "y")).unwrap();

    let error = journal
        .purge(
            &PurgePolicy {
                explicit: vec![parent.clone()],
                ..PurgePolicy::default()
            },
            false,
        )
        .unwrap_err();
    assert!(
        matches!(&error, PurgeError::HasLiveFork { run, child } if *run == parent && child.episode == 1),
        "{error:?}"
    );
    assert!(error.to_string().contains("fork parent of"), "{error}");

    let policy = PurgePolicy {
        completed_older_than: Some(Duration::ZERO),
        ..PurgePolicy::default()
    };
    // Every run's last event is now 5 ms old.
    clock.advance(5);
    let before = journal.runs(&RunFilter::default()).unwrap();
    let dry = journal.purge(&policy, true).unwrap();
    assert_eq!(
        journal.runs(&RunFilter::default()).unwrap(),
        before,
        "a dry run changes nothing"
    );
    assert_eq!(dry.freed_bytes, 0);
    let purged: Vec<u32> = dry.purged.iter().map(|(run, _)| run.episode).collect();
    assert_eq!(
        purged,
        vec![1, 2],
        "both completed forks; the running parent and the failed run stay"
    );
    assert!(
        dry.kept
            .iter()
            .any(|(run, why)| run.agent == "flaky" && why.contains("failed")),
        "{:?}",
        dry.kept
    );

    let report = journal
        .purge(
            &PurgePolicy {
                explicit: vec![key("g", 2, "a")],
                ..PurgePolicy::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(report.purged, vec![(key("g", 2, "a"), 2)]);
    assert!(report.freed_bytes > 0);
    assert!(matches!(
        journal.state(&key("g", 2, "a")),
        Err(ReadError::NotFound { .. })
    ));
    journal.verify(&key("g", 1, "a")).unwrap();
    journal.verify(&parent).unwrap();
    assert_eq!(journal.children(&parent).unwrap(), vec![key("g", 1, "a")]);
}

#[test]
fn purge_keeps_the_newest_episodes_of_each_goal_and_agent() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    for episode in 0..5 {
        let run = journal.begin(key("g", episode, "a"), RunMeta::default()).unwrap();
        run.finish(Outcome::Success { output: None }).unwrap();
    }
    let report = journal
        .purge(
            &PurgePolicy {
                keep_newest_episodes: Some(2),
                ..PurgePolicy::default()
            },
            false,
        )
        .unwrap();
    let purged: Vec<u32> = report.purged.iter().map(|(run, _)| run.episode).collect();
    assert_eq!(purged, vec![0, 1, 2]);
    let left: Vec<u32> = journal
        .runs(&RunFilter::default())
        .unwrap()
        .iter()
        .map(|record| record.key.episode)
        .collect();
    assert_eq!(left, vec![3, 4]);
}

/// Rewind (docs/library.md): the original is superseded in the same atomic step as
/// the fork: never recoverable, never resumed, its open handles fenced; a
/// plain fork keeps both runs live.
#[test]
fn rewind_supersedes_the_original_in_the_same_step_and_a_plain_fork_keeps_both() {
    let (_dir, path) = temp_db();
    let stores: Vec<(&str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sled",
            Arc::new(SledStore::open(&path, OpenMode::CreateIfMissing).unwrap()),
        ),
    ];
    for (name, store) in stores {
        let journal = Journal::with_store(store, Options::default()).unwrap();
        let original = key("g", 0, "a");
        parent_with_steps(&journal, &original, 3);
        let forked = journal.fork(&original, 2, key("g", 1, "a")).unwrap();
        let live: Vec<RunKey> = journal
            .recoverable()
            .unwrap()
            .into_iter()
            .map(|state| state.run)
            .collect();
        assert_eq!(
            live,
            vec![original.clone(), key("g", 1, "a")],
            "{name}: a plain fork keeps both"
        );
        drop(forked);

        let (handle, _) = journal.resume(&original).unwrap();
        let branch = journal.rewind(&original, 2).unwrap();
        assert_eq!(branch.key(), &key("g", 2, "a"), "{name}: the goal's next episode");
        branch.step(step("the branch goes on")).unwrap();
        let history: Vec<&str> = journal
            .history(branch.key())
            .unwrap()
            .iter()
            .map(|envelope| envelope.event.type_name())
            .collect();
        assert_eq!(
            history,
            vec!["run_started", "phase_started", "step", "run_started", "step"],
            "{name}"
        );
        let state = journal.state(&original).unwrap();
        assert_eq!(
            (state.status, state.recoverable),
            (RunStatus::Superseded, false),
            "{name}"
        );
        assert_eq!(
            journal.run_info(&original).unwrap().status,
            RunStatus::Superseded,
            "{name}"
        );
        let live: Vec<RunKey> = journal
            .recoverable()
            .unwrap()
            .into_iter()
            .map(|state| state.run)
            .collect();
        assert_eq!(
            live,
            vec![key("g", 1, "a"), key("g", 2, "a")],
            "{name}: never the superseded run"
        );
        let error = journal.resume(&original).unwrap_err();
        assert!(
            matches!(&error, ResumeError::Superseded { run } if *run == original),
            "{name}: {error:?}"
        );
        assert!(error.to_string().contains("is superseded"), "{name}: {error}");
        let error = handle.step(step("abandoned branch")).unwrap_err();
        assert!(matches!(&error, AppendError::Fenced { .. }), "{name}: {error:?}");
        let events = journal.read(&original, 0).unwrap().len();
        assert_eq!(events, 6, "{name}: the original keeps its events (and nothing more)");
        journal.verify(&original).unwrap();
        let superseded = journal
            .runs(&RunFilter {
                status: Some(RunStatus::Superseded),
                ..RunFilter::default()
            })
            .unwrap();
        assert_eq!(superseded.len(), 1, "{name}");
    }
    // The status survives a reopen.
    let journal = Journal::open(&path, Options::default()).unwrap();
    assert_eq!(journal.state(&key("g", 0, "a")).unwrap().status, RunStatus::Superseded);
    assert_eq!(journal.recoverable().unwrap().len(), 2);
}

#[test]
fn a_rewind_that_fails_to_store_creates_and_supersedes_nothing() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let journal = Journal::with_store(store.clone(), Options::default()).unwrap();
    let original = key("g", 0, "a");
    parent_with_steps(&journal, &original, 2);
    store.fail_nth_write(1);
    let error = journal.rewind(&original, 1).unwrap_err();
    assert!(error.to_string().contains("storage failed"), "{error}");
    assert_eq!(journal.run_info(&original).unwrap().status, RunStatus::Running);
    assert_eq!(journal.runs(&RunFilter::default()).unwrap().len(), 1);
    drop(journal);
    // What the store holds: the original as it was, and no branch.
    let reopened = Journal::with_store(store.inner().clone(), Options::default()).unwrap();
    let runs = reopened.runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Running);
    assert_eq!(reopened.recoverable().unwrap().len(), 1);
}
