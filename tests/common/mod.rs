//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use runjournal::*;

/// One event of every type of SPEC §2, with every optional field set in some
/// and absent in others.
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
