//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared test helpers, each file uses a part; a failed call fails the test"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use runjournal::core::{MemoryStore, Store};
use runjournal::*;
use runjournal_sled::{layout, OpenMode, SledStore};

pub mod counting;
pub mod golden;

/// One event of every type of docs/format.md, with every optional field set in some
/// and absent in others.
#[expect(clippy::too_many_lines, reason = "one literal list with every event type")]
pub fn one_of_every_event() -> Vec<Event> {
    let key = RunKey::new("parent-goal", 3, "planner-0").unwrap();
    vec![
        Event::RunStarted {
            meta: RunMeta {
                agent_name: Some("orchestrator-0-9c1e2a".into()),
                caller: Some("cli".into()),
                prompt: Some("fix the login bug".into()),
                model: Some("m-large".into()),
                backend: Some("local".into()),
                parent: Some(key.clone()),
                forked_from: Some(ForkPoint { run: key, seq: 7 }),
                conflict_strategy: Some(ConflictStrategy::HighestConfidence),
                labels: Some(BTreeMap::from([("team".to_string(), "auth".to_string())])),
            },
        },
        Event::Attached {
            owner: "host-a/4242".into(),
        },
        Event::Step {
            messages: vec![
                Message::new(Role::System, "you are careful"),
                Message::new(Role::User, "fix the login bug"),
                Message {
                    role: Role::Tool,
                    content: "ok".into(),
                    name: Some("grep".into()),
                    tool_call_id: Some("call-1".into()),
                },
                Message::new(Role::Assistant, "reading auth.rs — ünïcödé"),
            ],
        },
        Event::TurnCompleted,
        Event::PhaseStarted {
            index: 0,
            name: "plan".into(),
        },
        Event::PhaseCompleted {
            index: 0,
            name: "plan".into(),
            output: "token expiry off by one".into(),
        },
        Event::CompactionStarted {
            id: Some("k1".into()),
            source: CompactionSource::Structured,
            messages_before: Some(40),
            tokens_before: Some(120_000),
        },
        Event::CompactionDone {
            id: Some("k1".into()),
            source: CompactionSource::Scraped,
            summary: Some("we found the bug".into()),
            messages_after: Some(1),
            tokens_after: None,
        },
        Event::HandoffSent {
            id: "h1".into(),
            from: "a".into(),
            to: "b".into(),
            generation: 2,
            version: "3.1.0".into(),
            content_hash: "ab12cd".into(),
            timeout_ms: 30_000,
        },
        Event::HandoffAcked {
            id: "h1".into(),
            by: "b".into(),
        },
        Event::HandoffRejected {
            id: "h2".into(),
            by: "b".into(),
            reason: "busy".into(),
        },
        Event::HandoffTimedOut { id: "h3".into() },
        Event::TaskClaimed {
            task: "t1".into(),
            agent: "b".into(),
            priority: 1,
            confidence: 0.75,
        },
        Event::TaskCompleted {
            task: "t1".into(),
            agent: "b".into(),
            result: TaskResult::Partial,
            summary: None,
        },
        Event::AgentDied {
            reason: "oom-killed".into(),
            exit_code: Some(137),
        },
        Event::Teardown {
            resource: "sandbox".into(),
            error: Some("stop timed out".into()),
        },
        Event::RunCompleted {
            output: Some("patched".into()),
        },
        Event::RunFailed {
            error: ErrorInfo::new("backend", "503 from model"),
            cleanup_errors: vec![ErrorInfo::new("stop", "container busy")],
        },
        Event::RunInterrupted {
            cause: InterruptCause::Shutdown,
        },
        Event::Custom {
            kind: "note".into(),
            data: "{\"free\":\"form\"}".into(),
        },
    ]
}

/// A key for tests.
pub fn key(goal: &str, episode: u32, agent: &str) -> RunKey {
    RunKey::new(goal, episode, agent).unwrap()
}

/// A one-message step.
pub fn step(content: &str) -> Vec<Message> {
    vec![Message::new(Role::Assistant, content)]
}

/// A fresh temporary database directory.
pub fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    (dir, path)
}

/// Durable options with small snapshots for tests that want them.
pub fn options() -> Options {
    Options::default()
}

/// Copies a directory tree (a database) to `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A journal over a fresh in-memory store.
pub fn memory_journal() -> Journal {
    Journal::with_store(Arc::new(MemoryStore::new()), Options::default()).unwrap()
}

/// A run of `steps` steps (as [`run_with_steps`] writes them) in a journal
/// over `store` opened with `options`.
pub fn run_over(store: Arc<dyn Store>, options: Options, steps: u64) -> (Journal, RunKey) {
    let journal = Journal::with_store(store, options).unwrap();
    let run_key = key("g", 0, "a");
    run_with_steps(&journal, &run_key, steps);
    (journal, run_key)
}

/// [`run_over`] a fresh in-memory store that snapshots every `snapshot_every`
/// events.
pub fn memory_run(snapshot_every: u64, steps: u64) -> (Arc<MemoryStore>, Journal, RunKey) {
    let store = Arc::new(MemoryStore::new());
    let options = Options {
        snapshot_every,
        ..Options::default()
    };
    let (journal, run_key) = run_over(store.clone(), options, steps);
    (store, journal, run_key)
}

/// An owner that opened a fresh database (`db` in the returned directory)
/// with `options` to be served, and a client connected to it.
pub fn owner_and_client(options: Options) -> (tempfile::TempDir, Journal, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let owner = Journal::open(&db, options.with_serve(ServeOptions::default())).unwrap();
    let client = Journal::connect(&db, ConnectOptions::default()).unwrap();
    assert!(client.is_remote());
    (dir, owner, client)
}

/// `events` export lines (docs/format.md) of run `goal` (episode 0, agent
/// `a`): a `run_started` (forked from `fork`, if given), then steps of 200
/// bytes of content. Each line has a time (a fixed instant plus its seq), so
/// the same lines imported twice chain to the same hashes.
pub fn run_lines(goal: &str, events: u64, fork: Option<(&str, u64)>) -> String {
    let meta = fork.map_or_else(
        || "{}".to_string(),
        |(parent, seq)| {
            format!(r#"{{"forked_from":{{"run":{{"goal":"{parent}","episode":0,"agent":"a"}},"seq":{seq}}}}}"#)
        },
    );
    let content = "x".repeat(200);
    let mut text = String::new();
    for seq in 0..events {
        let event = if seq == 0 {
            format!(r#"{{"type":"run_started","meta":{meta}}}"#)
        } else {
            format!(r#"{{"type":"step","messages":[{{"role":"user","content":"{content}"}}]}}"#)
        };
        writeln!(
            text,
            r#"{{"run":{{"goal":"{goal}","episode":0,"agent":"a"}},"seq":{seq},"ts":{ts},"event":{event}}}"#,
            ts = 1_763_800_000_000 + seq
        )
        .unwrap();
    }
    text
}

/// The export lines of `runs` runs (goals `g0`, `g1`, …), each a
/// `run_started` and `steps` steps ([`run_lines`]).
pub fn runs_lines(runs: u32, steps: u64) -> String {
    (0..runs)
        .map(|run| run_lines(&format!("g{run}"), steps + 1, None))
        .collect()
}

/// Begins `run_key` and appends `steps` steps, with a compaction (started and
/// done, with a summary) before every seventh from the fourth on.
pub fn run_with_steps(journal: &Journal, run_key: &RunKey, steps: u64) {
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    for index in 0..steps {
        if index % 7 == 3 {
            run.compaction_started(CompactionSource::Structured, CompactionInfo::default())
                .unwrap();
            run.compaction_done(
                CompactionSource::Structured,
                CompactionInfo {
                    summary: Some(format!("summary {index}")),
                    ..CompactionInfo::default()
                },
            )
            .unwrap();
        }
        run.step(step(&format!("step {index}"))).unwrap();
    }
}

/// Creates the sled database at `path` holding `run_key` with one step per
/// text, closes it, and returns the run's internal id (for raw damage).
pub fn stored_run(path: &Path, run_key: &RunKey, steps: &[&str]) -> u64 {
    let journal = Journal::open(path, Options::default()).unwrap();
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    for text in steps {
        run.step(step(text)).unwrap();
    }
    journal.run_info(run_key).unwrap().id
}

/// Rewrites the stored value of one event directly in the closed sled
/// database at `path`.
pub fn rewrite_stored_event(path: &Path, run_id: u64, seq: u64, damage: impl FnOnce(&mut Vec<u8>)) {
    let store = SledStore::open(path, OpenMode::MustExist).unwrap();
    let event_key = layout::event_key(run_id, seq);
    let mut value = store.sled().get(event_key).unwrap().unwrap().to_vec();
    damage(&mut value);
    store.sled().insert(event_key, value).unwrap();
    store.sled().flush().unwrap();
}

/// A handoff from `a` to `b`, generation 1.
pub fn handoff(id: &str, version: &str, content_hash: &str, timeout_ms: u64) -> Handoff {
    Handoff {
        id: id.into(),
        from: "a".into(),
        to: "b".into(),
        generation: 1,
        version: version.into(),
        content_hash: content_hash.into(),
        timeout_ms,
    }
}

/// A clock the test sets: time passes only when the test says so.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `now` (unix milliseconds).
    pub fn at(now: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(now)))
    }

    /// Moves the clock `millis` forward.
    pub fn advance(&self, millis: u64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    /// `options` reading this clock.
    pub fn options(&self, options: Options) -> Options {
        let now = self.0.clone();
        options.with_clock(move || now.load(Ordering::SeqCst))
    }
}
