//! Helpers of the CLI tests: the binary run as a user would (without colour,
//! in a directory of its own), its output checked, and databases to run it on.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Output};

pub use runjournal::{Journal, Options, RunKey};
pub use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_runjournal");

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/example_session")
        .join(name)
}

/// Runs the binary with `--db db` and `args`, in `dir`, without colour.
pub fn run_in(dir: &Path, db: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env("NO_COLOR", "1");
    if let Some(db) = db {
        command.arg("--db").arg(db);
    }
    command.args(args).output().unwrap()
}

pub fn rj(db: &Path, args: &[&str]) -> Output {
    run_in(db.parent().unwrap(), Some(db), args)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts success; returns stdout.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "expected success, got {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// The exit status of each stable error code (docs/cli.md#output-exit-codes-and-errors).
pub const EXIT_CODES: [(&str, i32); 10] = [
    ("other", 1),
    ("usage", 2),
    ("not_found", 3),
    ("integrity", 4),
    ("locked", 5),
    ("fenced", 6),
    ("conflict", 7),
    ("finished", 8),
    ("invalid", 9),
    ("io", 10),
];

/// The exit status of the error code `code`.
pub fn exit_code(code: &str) -> i32 {
    EXIT_CODES
        .iter()
        .find(|(name, _)| *name == code)
        .map(|(_, status)| *status)
        .unwrap()
}

/// Asserts a failure with the exit status of error code `code`, reported as
/// one `runjournal: error:` line; returns it.
pub fn fails_with(output: &Output, code: &str) -> String {
    let line = fails(output);
    assert_eq!(output.status.code(), Some(exit_code(code)), "{line}");
    line
}

/// Asserts a failure under `--json`: exit status of `code`, and one JSON
/// line `{"error": {"code", "message"}}` on stderr; returns the message.
/// (Stdout may hold what was verified before the failure, as `show` streams.)
pub fn fails_json(output: &Output, code: &str) -> String {
    assert_eq!(output.status.code(), Some(exit_code(code)), "{}", stderr(output));
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "one line on stderr, got:\n{text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["error"]["code"], code, "{text}");
    value["error"]["message"].as_str().unwrap().to_owned()
}

/// Asserts a failure reported as exactly one `runjournal: error:` line; returns it.
pub fn fails(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected failure, got success\nstdout:\n{}",
        stdout(output)
    );
    let code = output.status.code().unwrap();
    assert!((1..=10).contains(&code), "exit status {code}: {}", stderr(output));
    let text = stderr(output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{text}");
    assert!(lines[0].starts_with("runjournal: error: "), "{text}");
    assert!(!text.contains("panicked") && !text.contains("RUST_BACKTRACE"), "{text}");
    lines[0].to_owned()
}

pub fn json(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).unwrap()
}

/// A fresh directory with a database path (not created) inside it.
pub fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    (dir, db)
}

pub fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

pub fn import(db: &Path, file: &Path) -> Output {
    rj(db, &["import", file.to_str().unwrap()])
}

/// A database holding the example session (`fix-login-bug`/0/`orchestrator-0`).
pub fn session_db() -> (tempfile::TempDir, PathBuf) {
    let (dir, db) = fresh();
    ok(&import(&db, &example("session.jsonl")));
    (dir, db)
}

pub const SESSION_RUN: [&str; 6] = ["--goal", "fix-login-bug", "--episode", "0", "--agent", "orchestrator-0"];

pub fn session_id() -> String {
    RunKey::new("fix-login-bug", 0, "orchestrator-0").unwrap().short_id()
}

pub fn line(goal: &str, seq: u64, extra: &str, event: &str) -> String {
    format!(r#"{{"run":{{"goal":"{goal}","episode":0,"agent":"a"}},"seq":{seq}{extra},"event":{event}}}"#)
}

/// A run through every epoch rule: interrupted, resumed, completed; handoffs and tasks.
pub fn rich_run(goal: &str) -> Vec<String> {
    vec![
        line(
            goal,
            0,
            "",
            r#"{"type":"run_started","meta":{"model":"m","conflict_strategy":"highest_confidence","labels":{"k":"v"}}}"#,
        ),
        line(goal, 1, "", r#"{"type":"phase_started","index":0,"name":"plan"}"#),
        line(
            goal,
            2,
            "",
            r#"{"type":"step","messages":[{"role":"user","content":"go"},{"role":"tool","content":"x","name":"sh","tool_call_id":"c1"}]}"#,
        ),
        line(
            goal,
            3,
            "",
            r#"{"type":"handoff_sent","id":"h1","from":"a","to":"b","generation":1,"version":"1.2.3","content_hash":"ab12","timeout_ms":50}"#,
        ),
        line(goal, 4, "", r#"{"type":"handoff_acked","id":"h1","by":"b"}"#),
        line(
            goal,
            5,
            "",
            r#"{"type":"task_claimed","task":"t","agent":"a","priority":1,"confidence":0.5}"#,
        ),
        line(goal, 6, "", r#"{"type":"run_interrupted","cause":"shutdown"}"#),
        line(
            goal,
            7,
            r#","ts":1763800000123"#,
            r#"{"type":"attached","owner":"host/42"}"#,
        ),
        line(
            goal,
            8,
            "",
            r#"{"type":"compaction_done","id":"k1","source":"structured","summary":"so far"}"#,
        ),
        line(
            goal,
            9,
            "",
            r#"{"type":"phase_completed","index":0,"name":"plan","output":"ok"}"#,
        ),
        line(goal, 10, "", r#"{"type":"custom","kind":"note","data":"d"}"#),
        line(
            goal,
            11,
            "",
            r#"{"type":"run_failed","error":{"kind":"backend","message":"503"},"cleanup_errors":[{"kind":"stop","message":"gone"}]}"#,
        ),
    ]
}

/// Flips a byte near the end of the stored record of event `seq` of run id
/// `run`: its own value, or its part of the chunk holding it (store format
/// 2: `"RJC" 2 0 ‖ count u32 BE ‖ (length u32 BE ‖ record)*`, keyed by the
/// chunk's first seq).
pub fn corrupt_event(db: &Path, run: u64, seq: u64) {
    let sled = sled::open(db).unwrap();
    let event_key = |seq: u64| {
        let mut key = vec![0x01];
        key.extend_from_slice(&run.to_be_bytes());
        key.extend_from_slice(&seq.to_be_bytes());
        key
    };
    let (key, value) = sled.range(event_key(0)..=event_key(seq)).next_back().unwrap().unwrap();
    let mut value = value.to_vec();
    let end = if value.starts_with(b"RJC\x02\x00") {
        let first = u64::from_be_bytes(key[9..17].try_into().unwrap());
        let mut at = 9;
        for _ in first..seq {
            at += 4 + u32::from_be_bytes(value[at..at + 4].try_into().unwrap()) as usize;
        }
        at + 4 + u32::from_be_bytes(value[at..at + 4].try_into().unwrap()) as usize
    } else {
        assert_eq!(key, event_key(seq), "seq {seq} is stored");
        value.len()
    };
    value[end - 2] ^= 0x5a;
    sled.insert(key, value).unwrap();
    sled.flush().unwrap();
}

/// A database with a parent run of `steps` steps (in `dir`), closed.
pub fn parent_database(dir: &Path, steps: u64, snapshot_every: u64) -> (PathBuf, RunKey) {
    let db = dir.join("lineage.db");
    let key = RunKey::new("lineage-goal", 0, "solver").unwrap();
    let journal = Journal::open(
        &db,
        Options {
            snapshot_every,
            ..Options::default()
        },
    )
    .unwrap();
    let run = journal.begin(key.clone(), runjournal::RunMeta::default()).unwrap();
    for index in 0..steps {
        run.step(vec![runjournal::Message::new(
            runjournal::Role::Assistant,
            format!("step {index}"),
        )])
        .unwrap();
    }
    (db, key)
}

pub fn read_tree(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            files.extend(read_tree(&entry.path()));
        } else {
            files.push((entry.path(), std::fs::read(entry.path()).unwrap()));
        }
    }
    files.sort();
    files
}
