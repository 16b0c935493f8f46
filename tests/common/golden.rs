//! The checks every golden database test makes. A sled database written by
//! one store format version is committed under `tests/fixtures/<name>/`, with
//! the fold of each of its runs in `tests/fixtures/<name>.states.jsonl`; every
//! later build must open it, verify and read every run, fold it to the
//! committed states and still append to it.
//!
//! `RUNJOURNAL_WRITE_GOLDEN=1` writes a database that is missing (only ever
//! for a new format version, in a new directory). The states are the fold's,
//! not the format's: when the fold's rules change (a new `FOLD_VERSION`),
//! `RUNJOURNAL_WRITE_GOLDEN_STATES=1` rewrites them from the committed
//! database, which it never changes.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared test helpers, each file uses a part; a failed call fails the test"
)]

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use runjournal::core::chunk;
use runjournal::core::codec::{decode_record, RecordKind};
use runjournal::{Event, Journal, Message, Options, Role, RunFilter, RunKey, RunStatus};
use runjournal_sled::{layout, OpenMode, SledStore};

/// The statuses a golden database holds a run of: a run finished each way
/// and one still running.
pub const FINISHED_AND_RUNNING: &[RunStatus] = &[
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::Interrupted,
    RunStatus::Running,
];

/// A committed golden database and what it must be found to hold.
pub struct GoldenDatabase {
    /// Its directory under `tests/fixtures/` (`golden_db_v1`).
    pub name: &'static str,
    /// Writes the database at the path given and returns the journal that
    /// wrote it (its states are written from that journal).
    pub write: fn(&Path) -> Journal,
    /// The store format version its format record holds.
    pub format: u8,
    /// How many event chunks it holds (commits included).
    pub chunks: RangeInclusive<usize>,
    /// How many of them are commits (store format 3).
    pub commits: RangeInclusive<usize>,
    /// The event types its runs hold between them.
    pub event_types: usize,
    /// The run statuses it holds a run of, each.
    pub statuses: &'static [RunStatus],
    /// The run this build resumes and appends to.
    pub writable_run: fn() -> RunKey,
    /// The steps appended to it, in one batch.
    pub writable_steps: usize,
}

impl GoldenDatabase {
    /// The committed database directory.
    pub fn path(&self) -> PathBuf {
        fixtures().join(self.name)
    }

    /// The committed states, one JSON line a run, in the order of the run list.
    pub fn states_path(&self) -> PathBuf {
        fixtures().join(format!("{}.states.jsonl", self.name))
    }

    /// A copy of the committed database in a temporary directory, so no test
    /// changes the committed files.
    pub fn copy(&self) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("golden.db");
        super::copy_dir(&self.path(), &copy);
        (dir, copy)
    }

    /// Writes the committed states from `journal`'s folds.
    pub fn write_states(&self, journal: &Journal) {
        let mut lines = String::new();
        for record in journal.runs(&RunFilter::default()).unwrap() {
            lines.push_str(&serde_json::to_string(&journal.state(&record.key).unwrap()).unwrap());
            lines.push('\n');
        }
        std::fs::write(self.states_path(), lines).unwrap();
    }

    fn expected_states(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.states_path())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Writes the database and its states when asked to and it is missing,
    /// or only its states when asked to; then makes every check on a copy:
    /// its format record and chunks, every run verifies, reads from every
    /// seq as its history's tail and folds to its committed state; it holds
    /// every event type, each status and a forked run; and this build
    /// resumes a run of it and appends to it.
    pub fn check(&self) {
        if std::env::var_os("RUNJOURNAL_WRITE_GOLDEN").is_some() && !self.path().exists() {
            let journal = (self.write)(&self.path());
            self.write_states(&journal);
        }
        let (_dir, copy) = self.copy();
        self.check_stored_layout(&copy);
        let journal = Journal::open_existing(&copy, Options::default()).unwrap();
        if std::env::var_os("RUNJOURNAL_WRITE_GOLDEN_STATES").is_some() {
            self.write_states(&journal);
        }
        self.check_runs(&journal);
        self.check_writable(&journal);
    }

    fn check_stored_layout(&self, copy: &Path) {
        let store = SledStore::open(copy, OpenMode::MustExist).unwrap();
        assert_eq!(stored_format(&store), self.format, "the store format of {}", self.name);
        let chunks = stored_chunks(&store);
        assert!(
            self.chunks.contains(&chunks),
            "{} holds {chunks} chunks, not {:?}",
            self.name,
            self.chunks
        );
        let (in_events_tree, in_snapshot_tree) = stored_snapshots(&store);
        if self.format >= 4 {
            assert!(
                in_snapshot_tree > 0 && in_events_tree == 0,
                "{}: snapshots in the snapshot tree",
                self.name
            );
        } else {
            assert!(
                in_events_tree > 0 && in_snapshot_tree == 0,
                "{}: snapshots in the default tree",
                self.name
            );
        }
        let commits = stored_commits(&store);
        assert!(
            self.commits.contains(&commits),
            "{} holds {commits} commits, not {:?}",
            self.name,
            self.commits
        );
    }

    fn check_runs(&self, journal: &Journal) {
        let expected = self.expected_states();
        let runs = journal.runs(&RunFilter::default()).unwrap();
        assert_eq!(runs.len(), expected.len());
        let mut types = BTreeSet::new();
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
            types.extend(history.iter().map(|envelope| envelope.event.type_name()));
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
        assert_eq!(
            types.len(),
            self.event_types,
            "every event type is in the golden database: {types:?}"
        );
        for status in self.statuses {
            assert!(
                runs.iter().any(|record| record.status == *status),
                "{status} run in the golden database"
            );
        }
        assert!(runs.iter().any(|record| record.fork.is_some()), "a forked run");
    }

    fn check_writable(&self, journal: &Journal) {
        let run_key = (self.writable_run)();
        let (resumed, _) = journal.resume(&run_key).unwrap();
        let steps = (0..self.writable_steps)
            .map(|index| Event::Step {
                messages: vec![Message::new(Role::Assistant, format!("good morning {index}"))],
            })
            .collect();
        resumed.append(steps).unwrap();
        journal.verify(&run_key).unwrap();
    }
}

/// `count` steps saying `what 0`, `what 1`, ….
pub fn steps(count: usize, what: &str) -> Vec<Event> {
    (0..count)
        .map(|index| Event::Step {
            messages: super::step(&format!("{what} {index}")),
        })
        .collect()
}

/// The session the batched golden databases (format 2 and later) hold: every
/// event type in two batches and 30 steps in one, a resumed run completed
/// with `output`, a failed one, an interrupted one (after `single_steps`
/// one-step appends) and a fork from inside a batch, with snapshots every 8
/// events.
pub fn write_batched_session(path: &Path, output: &str, single_steps: usize) -> Journal {
    let journal = Journal::open(
        path,
        Options {
            snapshot_every: 8,
            ..Options::default()
        },
    )
    .unwrap();
    let resumed = super::key("golden", 0, "orchestrator-0");
    {
        let run = journal.begin(resumed.clone(), runjournal::RunMeta::default()).unwrap();
        let body: Vec<Event> = super::one_of_every_event()
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
    run.finish(runjournal::Outcome::Success {
        output: Some(output.into()),
    })
    .unwrap();

    let failed = journal
        .begin(super::key("golden", 0, "failing-1"), runjournal::RunMeta::default())
        .unwrap();
    failed.append(steps(3, "about to fail")).unwrap();
    failed
        .finish(runjournal::Outcome::Failure {
            error: runjournal::ErrorInfo::new("backend", "503"),
            cleanup_errors: vec![],
        })
        .unwrap();

    let interrupted = journal
        .begin(super::key("golden", 0, "sleeper-2"), runjournal::RunMeta::default())
        .unwrap();
    interrupted.append(steps(2, "stopping for the night")).unwrap();
    for index in 0..single_steps {
        interrupted
            .append(steps(1, &format!("one more thing {index}")))
            .unwrap();
    }
    interrupted.finish(runjournal::Outcome::Shutdown).unwrap();

    let forked = journal
        .fork(&resumed, 5, super::key("golden", 1, "orchestrator-0"))
        .unwrap();
    forked.append(steps(4, "a different path")).unwrap();
    drop(forked);
    journal
}

/// The store format version the sled database's format record holds.
pub fn stored_format(store: &SledStore) -> u8 {
    decode_record(
        RecordKind::Meta,
        &store.sled().get(layout::format_key()).unwrap().unwrap(),
    )
    .unwrap()
}

/// The event chunks stored in the sled database.
pub fn stored_chunks(store: &SledStore) -> usize {
    store
        .sled()
        .scan_prefix([layout::EVENT])
        .filter(|entry| chunk::is_chunk(&entry.as_ref().unwrap().1))
        .count()
}

/// The snapshots stored in the default tree (store format 3 and older) and in
/// the snapshot tree (format 4).
pub fn stored_snapshots(store: &SledStore) -> (usize, usize) {
    (
        store.sled().scan_prefix([layout::SNAPSHOT]).count(),
        store.sled_snapshots().iter().count(),
    )
}

/// The commits (store format 3 chunks with a header) stored in the sled database.
pub fn stored_commits(store: &SledStore) -> usize {
    store
        .sled()
        .scan_prefix([layout::EVENT])
        .filter(|entry| chunk::is_commit(&entry.as_ref().unwrap().1))
        .count()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
