//! The `runjournal` binary, run as a user would: every command on its success
//! and error paths, against databases in temporary directories.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runjournal::{Journal, Options, RunKey};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_runjournal");

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/example_session")
        .join(name)
}

/// Runs the binary with `--db db` and `args`, in `dir`, without colour.
fn run_in(dir: &Path, db: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env("NO_COLOR", "1");
    if let Some(db) = db {
        command.arg("--db").arg(db);
    }
    command.args(args).output().unwrap()
}

fn rj(db: &Path, args: &[&str]) -> Output {
    run_in(db.parent().unwrap(), Some(db), args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts success; returns stdout.
fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "expected success, got {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// Asserts a failure reported as exactly one `runjournal: error:` line; returns it.
fn fails(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected failure, got success\nstdout:\n{}",
        stdout(output)
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let text = stderr(output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{text}");
    assert!(lines[0].starts_with("runjournal: error: "), "{text}");
    assert!(!text.contains("panicked") && !text.contains("RUST_BACKTRACE"), "{text}");
    lines[0].to_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).unwrap()
}

/// A fresh directory with a database path (not created) inside it.
fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    (dir, db)
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

fn import(db: &Path, file: &Path) -> Output {
    rj(db, &["import", file.to_str().unwrap()])
}

/// A database holding the example session (`fix-login-bug`/0/`orchestrator-0`).
fn session_db() -> (tempfile::TempDir, PathBuf) {
    let (dir, db) = fresh();
    ok(&import(&db, &example("session.jsonl")));
    (dir, db)
}

const SESSION_RUN: [&str; 6] = ["--goal", "fix-login-bug", "--episode", "0", "--agent", "orchestrator-0"];

fn session_id() -> String {
    RunKey::new("fix-login-bug", 0, "orchestrator-0").unwrap().short_id()
}

fn line(goal: &str, seq: u64, extra: &str, event: &str) -> String {
    format!(r#"{{"run":{{"goal":"{goal}","episode":0,"agent":"a"}},"seq":{seq}{extra},"event":{event}}}"#)
}

/// A run through every epoch rule: interrupted, resumed, completed; handoffs and tasks.
fn rich_run(goal: &str) -> Vec<String> {
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

#[test]
fn import_of_the_example_session_gives_the_expected_state() {
    let (_dir, db) = session_db();
    let output = rj(&db, &[&["state", "--json"][..], &SESSION_RUN[..]].concat());
    let text = ok(&output);
    let state: Value = serde_json::from_str(&text).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(example("session.expected.json")).unwrap()).unwrap();
    let expected = expected.as_object().unwrap();
    assert!(!expected.is_empty());
    for (key, want) in expected {
        match key.split_once('.') {
            Some((field, "len")) => {
                let got = state[field].as_array().map(|array| array.len() as u64);
                assert_eq!(got, want.as_u64(), "{key}");
            }
            _ => assert_eq!(&state[key], want, "{key}"),
        }
    }
    // SPEC §3 key order, not sorted.
    let order = [
        "run",
        "status",
        "recoverable",
        "last_seq",
        "head",
        "epoch",
        "iteration",
        "segment",
        "transcript",
        "compaction",
        "phases",
        "handoffs",
        "handoff_success_rate",
        "tasks",
        "died",
        "output",
        "failure",
        "anomalies",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|key| {
            text.find(&format!("\n  \"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing"))
        })
        .collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
    assert_eq!(state.as_object().unwrap().len(), order.len());
    // The same run by its short id.
    let by_id = json(&rj(&db, &["state", "--json", &session_id()]));
    assert_eq!(by_id, state);
}

#[test]
fn state_prints_sections_and_time_travels() {
    let (_dir, db) = session_db();
    let text = ok(&rj(&db, &["state", &session_id()]));
    for needle in [
        "status      running",
        "Phases",
        "✔ 0 \"investigate\" → \"token expiry off by one\"",
        "▶ 1 \"patch\" active",
        "Compaction",
        "Died",
        "oom-killed (exit 137)",
        "Transcript (segment 0: 2 messages)",
        "reading auth.rs",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    // At seq 5 the compaction had started and the agent had not died yet.
    let at = json(&rj(&db, &["state", &session_id(), "--at", "5", "--json"]));
    assert_eq!(at["last_seq"], 5);
    assert_eq!(at["compaction"]["active"], true);
    assert_eq!(at["died"], Value::Null);
    let text = ok(&rj(&db, &["state", &session_id(), "--at", "5"]));
    assert!(text.contains("as of       seq 5 (time travel"), "{text}");
    assert!(text.contains("active (a compaction started"), "{text}");
    let error = fails(&rj(&db, &["state", &session_id(), "--at", "7"]));
    assert!(error.contains("has no seq 7 (its last seq is 6)"), "{error}");
}

#[test]
fn show_prints_a_timeline_and_json_lines() {
    let (_dir, db) = session_db();
    let text = ok(&rj(&db, &["show", &session_id()]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains(&session_id()) && lines[0].contains("running"),
        "{text}"
    );
    assert!(lines[1].starts_with("SEQ") && lines[1].contains("TIME (UTC)"), "{text}");
    assert_eq!(lines.len(), 2 + 7, "one line per event:\n{text}");
    assert!(
        lines[2].contains("run_started") && lines[2].contains("model m-large"),
        "{text}"
    );
    assert!(lines[3].contains("▶ phase 0 \"investigate\""), "{text}");
    assert!(lines[4].contains("user: \"fix the login bug\""), "{text}");
    assert!(
        lines[7].contains("⟳ compaction k1 started (structured, 2 messages)"),
        "{text}"
    );
    assert!(lines[8].contains("✖ agent died: oom-killed (exit 137)"), "{text}");
    // Times are UTC with milliseconds.
    let time = lines[2].split_whitespace().nth(1).unwrap();
    assert_eq!(time.len(), 10, "{time}");
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal");

    let from = ok(&rj(&db, &["show", &session_id(), "--from", "5"]));
    assert_eq!(from.lines().count(), 2 + 2, "{from}");
    assert!(from.lines().nth(2).unwrap().trim_start().starts_with("5 "), "{from}");

    let json_lines = ok(&rj(&db, &[&["show", "--json"][..], &SESSION_RUN[..]].concat()));
    let exported = ok(&rj(&db, &["export", &session_id()]));
    assert_eq!(json_lines, exported);
    for (seq, text) in json_lines.lines().enumerate() {
        let envelope: Value = serde_json::from_str(text).unwrap();
        assert_eq!(envelope["seq"], seq as u64);
        assert_eq!(envelope["epoch"], 0);
        assert_eq!(envelope["hash"].as_str().unwrap().len(), 64);
        assert!(envelope["ts"].as_u64().unwrap() > 1_600_000_000_000);
    }
    let error = fails(&rj(&db, &["show", &session_id(), "--from", "7"]));
    assert!(error.contains("has no seq 7"), "{error}");
}

#[test]
fn runs_lists_runs_with_filters_in_text_and_json() {
    let (dir, db) = session_db();
    let mut lines = rich_run("other");
    lines.push(
        r#"{"run":{"goal":"child","episode":3,"agent":"w"},"seq":0,"event":{"type":"run_started","meta":{"parent":{"goal":"other","episode":0,"agent":"a"}}}}"#
            .into(),
    );
    ok(&import(&db, &write(dir.path(), "more.jsonl", &lines)));

    let rows = json(&rj(&db, &["runs", "--json"]));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let keys: Vec<&str> = rows[0].as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["agent", "episode", "events", "goal", "id", "last_ts", "parent", "status"]
    );
    let child = rows.iter().find(|row| row["goal"] == "child").unwrap();
    assert_eq!(child["episode"], 3);
    assert_eq!(child["status"], "running");
    assert_eq!(child["events"], 1);
    assert_eq!(child["id"], RunKey::new("child", 3, "w").unwrap().short_id());
    assert_eq!(
        child["parent"],
        serde_json::json!({"goal": "other", "episode": 0, "agent": "a"})
    );
    let other = rows.iter().find(|row| row["goal"] == "other").unwrap();
    assert_eq!(other["status"], "failed");
    assert_eq!(other["events"], 12);
    assert_eq!(other["parent"], Value::Null);
    assert!(other["last_ts"].as_u64().unwrap() >= 1_763_800_000_123);

    let text = ok(&rj(&db, &["runs"]));
    assert!(text.starts_with("ID"), "{text}");
    assert!(
        text.contains("LAST ACTIVITY (UTC)") && text.contains("PARENT"),
        "{text}"
    );
    let parent_id = RunKey::new("other", 0, "a").unwrap().short_id();
    let child_line = text.lines().find(|line| line.contains("child")).unwrap();
    assert!(
        child_line.contains(&parent_id) && child_line.contains("running"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("3 runs"), "{text}");

    let failed = json(&rj(&db, &["runs", "--status", "failed", "--json"]));
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["goal"], "other");
    let by_goal = json(&rj(&db, &["runs", "--goal", "fix-login-bug", "--json"]));
    assert_eq!(by_goal.as_array().unwrap().len(), 1);
    assert_eq!(by_goal[0]["id"], session_id());
    let none = ok(&rj(&db, &["runs", "--goal", "nothing"]));
    assert!(none.contains("no runs match"), "{none}");

    let bad = rj(&db, &["runs", "--status", "sleeping"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("unknown status \"sleeping\""), "{}", stderr(&bad));
}

#[test]
fn read_commands_on_a_missing_database_fail_and_create_nothing() {
    let (_dir, db) = fresh();
    for args in [
        vec!["runs"],
        vec!["runs", "--json"],
        vec!["show", "abcd"],
        vec!["state", "abcd"],
        vec!["verify"],
        vec!["export"],
        vec!["recover"],
    ] {
        let error = fails(&rj(&db, &args));
        assert!(
            error.contains("no database at") && error.contains("never create"),
            "{args:?}: {error}"
        );
        assert!(!db.exists(), "{args:?} created the database");
    }
}

#[test]
fn missing_runs_and_bad_ids_are_one_line_errors() {
    let (dir, db) = session_db();
    let error = fails(&rj(&db, &["show", "ffff0000"]));
    assert!(error.contains("no run has id ffff0000"), "{error}");
    for bad in ["zz", "abc", "123456789", "xyzw"] {
        let error = fails(&rj(&db, &["state", bad]));
        assert!(error.contains(&format!("bad run id {bad:?}")), "{error}");
    }
    let error = fails(&rj(
        &db,
        &[
            "state",
            "--goal",
            "fix-login-bug",
            "--episode",
            "1",
            "--agent",
            "orchestrator-0",
        ],
    ));
    assert!(
        error.contains("run \"fix-login-bug\"/1/\"orchestrator-0\" not found"),
        "{error}"
    );
    let error = fails(&rj(&db, &["show"]));
    assert!(error.contains("name a run"), "{error}");
    let error = fails(&rj(&db, &["verify", "--goal", "", "--episode", "0", "--agent", "a"]));
    assert!(error.contains("goal is empty"), "{error}");
    // A partial key is a usage error.
    let output = rj(&db, &["show", "--goal", "fix-login-bug"]);
    assert_eq!(output.status.code(), Some(2));

    // Two runs whose short ids share 4 hex digits: that prefix is ambiguous.
    let mut by_prefix = std::collections::HashMap::new();
    let (first, second) = (0..)
        .find_map(|n| {
            let goal = format!("g{n}");
            let prefix = RunKey::new(goal.clone(), 0, "a").unwrap().short_id()[..4].to_owned();
            by_prefix.insert(prefix, goal.clone()).map(|other| (other, goal))
        })
        .unwrap();
    let lines = vec![
        line(&first, 0, "", r#"{"type":"run_started","meta":{}}"#),
        line(&second, 0, "", r#"{"type":"run_started","meta":{}}"#),
    ];
    ok(&import(&db, &write(dir.path(), "twins.jsonl", &lines)));
    let first_id = RunKey::new(first.clone(), 0, "a").unwrap().short_id();
    let second_id = RunKey::new(second.clone(), 0, "a").unwrap().short_id();
    let error = fails(&rj(&db, &["show", &first_id[..4]]));
    assert!(error.contains("ambiguous"), "{error}");
    assert!(error.contains(&first_id) && error.contains(&second_id), "{error}");
    // A longer prefix, or the whole id, in either case, is unique.
    ok(&rj(&db, &["show", &first_id.to_uppercase()]));
    assert_ne!(first_id, second_id);
}

#[test]
fn a_locked_database_is_reported_as_locked() {
    let (_dir, db) = session_db();
    let journal = Journal::open(&db, Options::default()).unwrap();
    for args in [
        vec!["runs"],
        vec!["show", "abcd"],
        vec!["verify"],
        vec!["recover"],
        vec!["demo"],
    ] {
        let error = fails(&rj(&db, &args));
        assert!(error.contains("is locked by another process"), "{args:?}: {error}");
        assert!(error.contains(&db.display().to_string()), "{error}");
    }
    let error = fails(&import(&db, &example("session.jsonl")));
    assert!(error.contains("locked"), "{error}");
    drop(journal);
    ok(&rj(&db, &["runs"]));
}

#[test]
fn export_import_export_is_byte_identical() {
    let (dir, db) = session_db();
    ok(&import(&db, &write(dir.path(), "rich.jsonl", &rich_run("rich"))));
    let first = dir.path().join("first.jsonl");
    let report = ok(&rj(&db, &["export", "-o", first.to_str().unwrap()]));
    assert!(report.contains("exported 2 runs (19 events)"), "{report}");
    let first_text = std::fs::read_to_string(&first).unwrap();
    assert_eq!(first_text, ok(&rj(&db, &["export"])), "-o FILE and stdout agree");
    assert_eq!(first_text.lines().count(), 19);
    // The given ts is kept; the resume's epoch is computed.
    let attached: Value = serde_json::from_str(first_text.lines().find(|l| l.contains("attached")).unwrap()).unwrap();
    assert_eq!(attached["ts"], 1_763_800_000_123u64);
    assert_eq!(attached["epoch"], 1);

    let copy = dir.path().join("copy.db");
    let report = json(&rj(&copy, &["import", first.to_str().unwrap(), "--json"]));
    assert_eq!(report["events"], 19);
    assert_eq!(report["runs"].as_array().unwrap().len(), 2);
    let second = ok(&rj(&copy, &["export"]));
    assert_eq!(first_text.as_bytes(), second.as_bytes());
    // One run alone, too.
    assert_eq!(
        ok(&rj(&db, &["export", &session_id()])),
        ok(&rj(&copy, &["export", &session_id()]))
    );
    let states = (
        ok(&rj(&db, &["state", "--json", &session_id()])),
        ok(&rj(&copy, &["state", "--json", &session_id()])),
    );
    assert_eq!(states.0, states.1);
}

#[test]
fn export_to_an_unwritable_place_fails_cleanly() {
    let (dir, db) = session_db();
    let target = dir.path().join("no-such-dir").join("out.jsonl");
    let error = fails(&rj(&db, &["export", "-o", target.to_str().unwrap()]));
    assert!(error.contains("cannot create"), "{error}");
}

#[test]
fn import_refuses_bad_files_naming_the_line_and_stores_nothing() {
    let (dir, db) = session_db();
    let before = ok(&rj(&db, &["export"]));
    let good = rich_run("fresh");
    let exported_rich = {
        let (_tmp, scratch) = fresh();
        ok(&import(&scratch, &write(dir.path(), "rich.jsonl", &good)));
        ok(&rj(&scratch, &["export"]))
    };
    let mut bad_hash: Vec<String> = exported_rich.lines().map(str::to_owned).collect();
    let tampered = bad_hash[4].replace(r#""by":"b""#, r#""by":"c""#);
    assert_ne!(tampered, bad_hash[4]);
    bad_hash[4] = tampered;

    let mut gap = good.clone();
    gap.remove(3);
    let mut unknown = good.clone();
    unknown[5] = line("fresh", 5, "", r#"{"type":"teleported","to":"mars"}"#);
    let mut after_completed = good[..3].to_vec();
    after_completed.push(line("fresh", 3, "", r#"{"type":"run_completed","output":"done"}"#));
    after_completed.push(line("fresh", 4, "", r#"{"type":"turn_completed"}"#));
    let mut unknown_field = good.clone();
    unknown_field[1] = line("fresh", 1, r#","colour":"red""#, r#"{"type":"turn_completed"}"#);
    let mut not_json = good.clone();
    not_json[2] = "{not json".into();

    let cases: Vec<(&str, Vec<String>, usize, &str)> = vec![
        ("gap", gap, 4, "seq 4 where seq 3 was expected"),
        ("hash", bad_hash, 5, "hash mismatch"),
        ("unknown type", unknown, 6, "teleported"),
        ("after run_completed", after_completed, 5, "follows run_completed"),
        ("unknown field", unknown_field, 2, "colour"),
        ("not json", not_json, 3, "not a valid event envelope"),
    ];
    for (name, lines, bad_line, needle) in cases {
        // A good run first: it must not be stored either.
        let mut file = vec![line("first-good", 0, "", r#"{"type":"run_started","meta":{}}"#)];
        file.extend(lines);
        let path = write(dir.path(), "bad.jsonl", &file);
        let error = fails(&import(&db, &path));
        assert!(error.contains(&format!("line {}: ", bad_line + 1)), "{name}: {error}");
        assert!(error.contains(needle), "{name}: {needle:?} not in {error}");
        assert!(error.contains("nothing was stored"), "{name}: {error}");
        assert_eq!(ok(&rj(&db, &["export"])), before, "{name}: something was stored");

        // Into a fresh path: no database is left behind.
        let (_tmp, scratch) = fresh();
        fails(&import(&scratch, &path));
        assert!(!scratch.exists(), "{name}: a refused import left a database");
    }
}

#[test]
fn import_refuses_an_existing_run_and_unreadable_files() {
    let (dir, db) = session_db();
    let error = fails(&import(&db, &example("session.jsonl")));
    assert!(
        error.contains("line 1: run \"fix-login-bug\"/0/\"orchestrator-0\" already exists"),
        "{error}"
    );
    let error = fails(&import(&db, &dir.path().join("missing.jsonl")));
    assert!(
        error.contains("cannot read") && error.contains("missing.jsonl"),
        "{error}"
    );
    let orphan = vec![line(
        "fork",
        0,
        "",
        r#"{"type":"run_started","meta":{"forked_from":{"run":{"goal":"absent-goal","episode":0,"agent":"orchestrator-0"},"seq":3}}}"#,
    )];
    let error = fails(&import(&db, &write(dir.path(), "orphan.jsonl", &orphan)));
    assert!(
        error.contains("line 1:") && error.contains("is neither earlier in the input nor in the database"),
        "{error}"
    );
    assert_eq!(json(&rj(&db, &["runs", "--json"])).as_array().unwrap().len(), 1);
    // A fork of a run already in the database attaches to it.
    let forked = vec![line(
        "fork",
        0,
        "",
        r#"{"type":"run_started","meta":{"forked_from":{"run":{"goal":"fix-login-bug","episode":0,"agent":"orchestrator-0"},"seq":3}}}"#,
    )];
    ok(&import(&db, &write(dir.path(), "fork.jsonl", &forked)));
    let runs = json(&rj(&db, &["runs", "--json"]));
    assert_eq!(runs.as_array().unwrap().len(), 2);
    ok(&rj(&db, &["verify"]));
}

#[test]
fn import_reads_stdin_and_reports_what_it_created() {
    let (_dir, db) = fresh();
    let output = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["import", "-"])
        .stdin(std::fs::File::open(example("session.jsonl")).unwrap())
        .output()
        .unwrap();
    let text = ok(&output);
    assert!(text.contains("imported 1 run (7 events)"), "{text}");
    assert!(text.contains(&session_id()) && text.contains("running"), "{text}");
}

/// Flips a byte near the end of the stored value of event `seq` of run id `run`.
fn corrupt_event(db: &Path, run: u64, seq: u64) {
    let sled = sled::open(db).unwrap();
    let mut key = vec![0x01];
    key.extend_from_slice(&run.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    let mut value = sled.get(&key).unwrap().unwrap().to_vec();
    let at = value.len() - 2;
    value[at] ^= 0x5a;
    sled.insert(key, value).unwrap();
    sled.flush().unwrap();
}

#[test]
fn verify_names_the_corrupted_run_and_seq() {
    let (dir, db) = session_db();
    ok(&import(&db, &write(dir.path(), "rich.jsonl", &rich_run("intact"))));
    let text = ok(&rj(&db, &["verify"]));
    assert!(
        text.contains("verified 2 runs (19 events): every chain is intact"),
        "{text}"
    );
    let one = ok(&rj(&db, &["verify", &session_id()]));
    assert!(one.contains("ok") && one.contains("7 events"), "{one}");

    // The session was imported first: it is run id 0.
    corrupt_event(&db, 0, 3);
    let output = rj(&db, &["verify"]);
    let error = fails(&output);
    assert!(error.contains("verification failed"), "{error}");
    assert!(error.contains("\"fix-login-bug\"/0/\"orchestrator-0\""), "{error}");
    assert!(error.contains(&session_id()) && error.contains("at seq 3"), "{error}");
    let text = stdout(&output);
    assert!(text.contains("BAD") && text.contains("seq 3"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("ok") && line.contains("intact")),
        "{text}"
    );

    let report: Value = serde_json::from_slice(&rj(&db, &["verify", "--json"]).stdout).unwrap();
    assert_eq!(report["ok"], false);
    let bad = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["ok"] == false)
        .unwrap();
    assert_eq!(bad["seq"], 3);
    assert_eq!(bad["id"], session_id());

    let error = fails(&rj(&db, &["verify", &session_id()]));
    assert!(error.contains("at seq 3"), "{error}");
    ok(&rj(
        &db,
        &["verify", &RunKey::new("intact", 0, "a").unwrap().short_id()],
    ));
    // Reading the corrupt run names the run and the seq too.
    for args in [
        vec!["state", session_id().as_str()],
        vec!["show", session_id().as_str()],
    ] {
        let error = fails(&rj(&db, &args));
        assert!(
            error.contains("corrupt event") && error.contains("seq 3"),
            "{args:?}: {error}"
        );
        assert!(error.contains("fix-login-bug"), "{error}");
    }
    let error = fails(&rj(&db, &["export"]));
    assert!(error.contains("seq 3"), "{error}");
}

#[test]
fn recover_lists_recoverable_runs_with_their_state() {
    let (dir, db) = session_db();
    ok(&import(&db, &write(dir.path(), "rich.jsonl", &rich_run("failed-run"))));
    let text = ok(&rj(&db, &["recover"]));
    assert!(text.starts_with("1 run to recover"), "{text}");
    assert!(text.contains(&session_id()), "{text}");
    assert!(text.contains("phases completed: 0 \"investigate\""), "{text}");
    assert!(text.contains("active: 1 \"patch\" (re-runs from its start)"), "{text}");
    assert!(text.contains("died: oom-killed, exit 137"), "{text}");
    assert!(text.contains("no compaction active"), "{text}");
    assert!(!text.contains("failed-run"), "{text}");

    let rows = json(&rj(&db, &["recover", "--json"]));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], session_id());
    assert_eq!(rows[0]["status"], "running");
    assert_eq!(rows[0]["iteration"], 1);
    assert_eq!(rows[0]["segment"], 0);
    assert_eq!(rows[0]["completed_phases"][0]["index"], 0);
    assert_eq!(rows[0]["active_phase"]["name"], "patch");
    assert_eq!(rows[0]["compaction_active"], false);
    assert_eq!(rows[0]["died"]["exit_code"], 137);

    let (_tmp, empty) = fresh();
    ok(&import(&empty, &write(dir.path(), "done.jsonl", &rich_run("done"))));
    let text = ok(&rj(&empty, &["recover"]));
    assert!(text.contains("nothing to recover"), "{text}");
    assert_eq!(json(&rj(&empty, &["recover", "--json"])), serde_json::json!([]));
}

#[test]
fn demo_crashes_resumes_and_leaves_a_database_to_explore() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), None, &["demo"]);
    let text = ok(&output);
    for needle in [
        "the agent (process",
        "compaction ctx-e0 started",
        "killed process",
        "signal 9, exit status 137",
        "attached in epoch 1",
        "compaction ACTIVE (stranded by the crash)",
        "recorded agent_died",
        "skip phase 0 \"plan\"",
        "skip phase 1 \"implement\"",
        "re-run phase 2 \"test\" from its start",
        "run completed",
        "✖ agent died: killed by SIGKILL",
        "Try next",
        "runjournal --db ./runjournal-demo.db runs",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    let db = dir.path().join("runjournal-demo.db");
    let rows = json(&rj(&db, &["runs", "--json"]));
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["status"], "completed");
    let id = rows[0]["id"].as_str().unwrap().to_owned();
    let timeline = ok(&rj(&db, &["show", &id]));
    let types: Vec<&str> = timeline
        .lines()
        .skip(2)
        .map(|line| line.split_whitespace().nth(4).unwrap())
        .collect();
    let crash = types.iter().position(|t| *t == "compaction_started").unwrap();
    assert_eq!(&types[crash + 1..crash + 3], ["attached", "agent_died"]);
    assert_eq!(types.first(), Some(&"run_started"));
    assert_eq!(types.last(), Some(&"run_completed"));
    let state = json(&rj(&db, &["state", "--json", &id]));
    assert_eq!(state["status"], "completed");
    assert_eq!(state["epoch"], 1);
    assert_eq!(state["died"]["exit_code"], 137);
    assert_eq!(state["compaction"]["count"], 1);
    assert_eq!(state["compaction"]["active"], false);
    assert_eq!(state["segment"], 1);
    assert_eq!(state["phases"]["completed"].as_array().unwrap().len(), 4);
    let at_crash = json(&rj(&db, &["state", "--json", &id, "--at", &crash.to_string()]));
    assert_eq!(at_crash["compaction"]["active"], true);
    assert_eq!(at_crash["phases"]["active"]["index"], 2);
    ok(&rj(&db, &["verify"]));
    // What the demo wrote survives export → import → export unchanged.
    let exported = ok(&rj(&db, &["export"]));
    let file = write(dir.path(), "demo.jsonl", &[exported.trim_end().to_owned()]);
    let copy = dir.path().join("copy.db");
    ok(&import(&copy, &file));
    assert_eq!(ok(&rj(&copy, &["export"])), exported);

    // Re-runnable: the default database starts fresh.
    ok(&run_in(dir.path(), None, &["demo", "--json"]));
    assert_eq!(json(&rj(&db, &["runs", "--json"])).as_array().unwrap().len(), 1);
}

#[test]
fn demo_keeps_an_explicit_database_and_refuses_foreign_directories() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mine.db");
    let output = run_in(dir.path(), Some(&db), &["demo", "--json"]);
    let state = json(&output);
    assert_eq!(state["status"], "completed");
    assert!(
        stderr(&output).contains("killed process"),
        "narration goes to stderr with --json"
    );
    ok(&run_in(dir.path(), Some(&db), &["demo", "--json"]));
    assert_eq!(json(&rj(&db, &["runs", "--json"])).as_array().unwrap().len(), 2);

    let foreign = dir.path().join("runjournal-demo.db");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let error = fails(&run_in(dir.path(), None, &["demo"]));
    assert!(error.contains("is not a runjournal database"), "{error}");
    assert!(foreign.join("notes.txt").exists());
}

#[test]
fn help_lists_the_commands_and_hides_the_demo_internals() {
    let dir = tempfile::tempdir().unwrap();
    let text = ok(&run_in(dir.path(), None, &["--help"]));
    for command in [
        "runs", "show", "state", "verify", "export", "import", "recover", "demo", "--db", "--json",
    ] {
        assert!(text.contains(command), "{command} not in\n{text}");
    }
    assert!(!text.contains("demo-agent") && !text.contains("demo-resume"), "{text}");
    let output = run_in(dir.path(), None, &["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unrecognized subcommand"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_refused_import_keeps_a_directory_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("existing");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("keep.txt"), "mine").unwrap();
    let bad = write(
        dir.path(),
        "bad.jsonl",
        &[line("g", 1, "", r#"{"type":"turn_completed"}"#)],
    );
    let error = fails(&import(&db, &bad));
    assert!(
        error.contains("line 1: ") && error.contains("seq 1 where seq 0"),
        "{error}"
    );
    assert!(db.join("keep.txt").exists());
}

/// A database with a parent run of `steps` steps (in `dir`), closed.
fn parent_database(dir: &Path, steps: u64, snapshot_every: u64) -> (PathBuf, RunKey) {
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

#[test]
fn fork_prints_the_child_and_runs_shows_the_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let (db, parent) = parent_database(dir.path(), 5, 1000);
    let text = ok(&rj(&db, &["fork", &parent.short_id(), "--at", "3"]));
    let child = RunKey::new("lineage-goal", 1, "solver").unwrap();
    assert!(text.contains(&format!("child id: {}", child.short_id())), "{text}");
    let forked = json(&rj(
        &db,
        &["--json", "fork", &parent.short_id(), "--at", "2", "--to-episode", "7"],
    ));
    assert_eq!(forked["episode"], 7);
    assert_eq!(forked["parent"]["id"], parent.short_id());
    assert_eq!(forked["at"], 2);
    let runs = ok(&rj(&db, &["runs"]));
    assert!(
        runs.contains(&format!("{} (fork at seq 3)", parent.short_id())),
        "{runs}"
    );
    let listed = json(&rj(&db, &["--json", "runs"]));
    assert_eq!(listed[1]["parent"]["episode"], 0);
    let show = ok(&rj(&db, &["show", &child.short_id()]));
    assert!(show.contains("forked from"), "{show}");
    ok(&rj(&db, &["verify", &child.short_id()]));
    let error = fails(&rj(&db, &["fork", &parent.short_id(), "--at", "99"]));
    assert!(error.contains("its last seq is 5"), "{error}");
}

#[test]
fn rewind_supersedes_the_run_and_recover_no_longer_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, original) = parent_database(dir.path(), 5, 1000);
    let before = json(&rj(&db, &["--json", "recover"]));
    assert_eq!(before.as_array().map(Vec::len), Some(1));
    let text = ok(&rj(&db, &["rewind", &original.short_id(), "--at", "3"]));
    let branch = RunKey::new("lineage-goal", 1, "solver").unwrap();
    assert!(text.contains(&format!("branch id: {}", branch.short_id())), "{text}");
    assert!(text.contains("is superseded"), "{text}");
    let listed = json(&rj(&db, &["--json", "runs"]));
    assert_eq!(listed[0]["id"], original.short_id());
    assert_eq!(listed[0]["status"], "superseded");
    assert_eq!(listed[1]["status"], "running");
    let recover = json(&rj(&db, &["--json", "recover"]));
    assert_eq!(recover.as_array().map(Vec::len), Some(1));
    assert_eq!(recover[0]["id"], branch.short_id());
    let state = json(&rj(&db, &["--json", "state", &original.short_id()]));
    assert_eq!(state["status"], "superseded");
    assert_eq!(state["recoverable"], false);
    // The branch's own log is its run_started (seq 0): rewind it there.
    let again = json(&rj(&db, &["--json", "rewind", &branch.short_id(), "--at", "0"]));
    assert_eq!(again["episode"], 2);
    assert_eq!(again["superseded"]["id"], branch.short_id());
    assert_eq!(again["at"], 0);
    let error = fails(&rj(&db, &["rewind", &original.short_id(), "--at", "99"]));
    assert!(error.contains("its last seq is 5"), "{error}");
}

#[test]
fn diff_names_the_first_divergence_and_the_state_differences() {
    let dir = tempfile::tempdir().unwrap();
    let (db, parent) = parent_database(dir.path(), 5, 1000);
    ok(&rj(&db, &["fork", &parent.short_id(), "--at", "2"]));
    let child = RunKey::new("lineage-goal", 1, "solver").unwrap();
    let text = ok(&rj(&db, &["diff", &parent.short_id(), &child.short_id()]));
    assert!(text.contains("shared history: 3 events"), "{text}");
    assert!(text.contains("A seq    3  step"), "{text}");
    assert!(text.contains("B (history ends)"), "{text}");
    assert!(text.contains("iteration"), "{text}");
    let value = json(&rj(&db, &["--json", "diff", &parent.short_id(), &child.short_id()]));
    assert_eq!(value["common"], 3);
    assert_eq!(value["a_event"]["seq"], 3);
    assert_eq!(value["b_event"], Value::Null);
}

#[test]
fn purge_dry_run_changes_nothing_and_purge_reports_what_it_freed() {
    let dir = tempfile::tempdir().unwrap();
    let (db, parent) = parent_database(dir.path(), 3, 1000);
    ok(&rj(&db, &["fork", &parent.short_id(), "--at", "1"]));
    let child = RunKey::new("lineage-goal", 1, "solver").unwrap();
    let before = ok(&rj(&db, &["--json", "runs"]));
    let error = fails(&rj(&db, &["purge", "--run", &parent.short_id()]));
    assert!(
        error.contains("fork parent of") && error.contains("\"solver\""),
        "{error}"
    );
    let dry = ok(&rj(&db, &["purge", "--dry-run", "--run", &child.short_id()]));
    assert!(
        dry.contains("would purge") && dry.contains("nothing was changed"),
        "{dry}"
    );
    assert_eq!(ok(&rj(&db, &["--json", "runs"])), before, "a dry run changes nothing");
    let report = json(&rj(&db, &["--json", "purge", "--run", &child.short_id()]));
    assert_eq!(report["purged"][0]["id"], child.short_id());
    assert!(report["freed_bytes"].as_u64().unwrap() > 0);
    let runs = json(&rj(&db, &["--json", "runs"]));
    assert_eq!(runs.as_array().unwrap().len(), 1);
    let error = fails(&rj(&db, &["purge"]));
    assert!(error.contains("say what to purge"), "{error}");
}

#[test]
fn a_corrupt_snapshot_names_the_fix_and_rebuild_snapshots_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = parent_database(dir.path(), 12, 5);
    {
        let sled = sled::open(&db).unwrap();
        let (snapshot_key, value) = sled.scan_prefix([0x04u8]).next_back().unwrap().unwrap();
        let mut value = value.to_vec();
        let last = value.len() - 1;
        value[last] ^= 0xff;
        sled.insert(snapshot_key, value).unwrap();
        sled.flush().unwrap();
    }
    let error = fails(&rj(&db, &["state", &key.short_id()]));
    assert!(
        error.contains("snapshot at seq") && error.contains("rebuild-snapshots"),
        "{error}"
    );
    let text = ok(&rj(&db, &["rebuild-snapshots", &key.short_id()]));
    assert!(text.contains("rebuilt the snapshot"), "{text}");
    let state = json(&rj(&db, &["--json", "state", &key.short_id()]));
    assert_eq!(state["iteration"], 12);
}

#[test]
fn an_exported_fork_imports_elsewhere_with_its_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let (db, parent) = parent_database(dir.path(), 6, 1000);
    ok(&rj(&db, &["fork", &parent.short_id(), "--at", "3"]));
    let child = RunKey::new("lineage-goal", 1, "solver").unwrap();
    ok(&rj(&db, &["fork", &child.short_id(), "--at", "0", "--to-episode", "5"]));
    let grandchild = RunKey::new("lineage-goal", 5, "solver").unwrap();
    let file = dir.path().join("grandchild.jsonl");
    ok(&rj(
        &db,
        &["export", &grandchild.short_id(), "-o", file.to_str().unwrap()],
    ));
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        lines.lines().count(),
        4 + 1 + 1,
        "parent prefix to seq 3, child to seq 0, grandchild"
    );

    let elsewhere = dir.path().join("elsewhere.db");
    ok(&rj(&elsewhere, &["import", file.to_str().unwrap()]));
    ok(&rj(&elsewhere, &["verify"]));
    let original = json(&rj(&db, &["--json", "state", &grandchild.short_id()]));
    let imported = json(&rj(&elsewhere, &["--json", "state", &grandchild.short_id()]));
    assert_eq!(imported, original, "the grandchild's state survives the move");
    let runs = json(&rj(&elsewhere, &["--json", "runs"]));
    assert_eq!(runs[2]["parent"]["episode"], 1, "the lineage is restored: {runs}");

    // A whole-database export round-trips with every fork.
    let all = dir.path().join("all.jsonl");
    ok(&rj(&db, &["export", "-o", all.to_str().unwrap()]));
    let copy = dir.path().join("copy.db");
    ok(&rj(&copy, &["import", all.to_str().unwrap()]));
    let again = dir.path().join("again.jsonl");
    ok(&rj(&copy, &["export", "-o", again.to_str().unwrap()]));
    assert_eq!(std::fs::read(&all).unwrap(), std::fs::read(&again).unwrap());

    // A child without its parent is refused, naming the line.
    let orphan: String = lines.lines().skip(4).map(|line| format!("{line}\n")).collect();
    let orphan_file = dir.path().join("orphan.jsonl");
    std::fs::write(&orphan_file, orphan).unwrap();
    let error = fails(&rj(
        &dir.path().join("orphan.db"),
        &["import", orphan_file.to_str().unwrap()],
    ));
    assert!(
        error.contains("line 1:") && error.contains("is forked from run"),
        "{error}"
    );
}

#[test]
fn export_salvage_exports_every_run_up_to_its_last_verified_event() {
    let (dir, db) = session_db();
    ok(&import(&db, &write(dir.path(), "rich.jsonl", &rich_run("intact"))));
    corrupt_event(&db, 0, 3);
    let error = fails(&rj(&db, &["export"]));
    assert!(error.contains("seq 3"), "{error}");
    let file = dir.path().join("salvaged.jsonl");
    let output = rj(&db, &["export", "--salvage", "-o", file.to_str().unwrap()]);
    let summary = ok(&output);
    assert!(
        summary.contains("salvaged 2 runs") && summary.contains("1 run stopped at damage"),
        "{summary}"
    );
    let warnings = stderr(&output);
    assert!(
        warnings.contains("\"fix-login-bug\"/0/\"orchestrator-0\": exported its first 3 events")
            && warnings.contains("seq 3"),
        "{warnings}"
    );
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        lines.lines().count(),
        3 + 12,
        "the damaged run's first 3 events and the intact run whole"
    );
    let fresh = dir.path().join("fresh.db");
    ok(&rj(&fresh, &["import", file.to_str().unwrap()]));
    ok(&rj(&fresh, &["verify"]));
}

fn read_tree(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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

#[test]
fn a_database_sled_cannot_open_is_one_line_and_salvage_recovers_a_verified_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("damaged.db");
    for episode in 0..3 {
        let journal = Journal::open(&db, Options::default()).unwrap();
        let run = journal
            .begin(
                RunKey::new("salvage", episode, "a").unwrap(),
                runjournal::RunMeta::default(),
            )
            .unwrap();
        for index in 0..150 {
            run.step(vec![runjournal::Message::new(
                runjournal::Role::Assistant,
                format!("step {index} of a long run"),
            )])
            .unwrap();
        }
    }
    // Damage sled's log where it holds data, until sled refuses to open it.
    let pristine = read_tree(&db);
    let log = db.join("db");
    let mut refused = None;
    for offset in [20_000u64, 10_000, 5_000, 1_000] {
        for (path, bytes) in &pristine {
            std::fs::write(path, bytes).unwrap();
        }
        let mut bytes = std::fs::read(&log).unwrap();
        let at = usize::try_from(offset).unwrap();
        bytes[at..at + 64].fill(0xaa);
        std::fs::write(&log, bytes).unwrap();
        let output = rj(&db, &["runs"]);
        if !output.status.success() {
            refused = Some(fails(&output));
            break;
        }
    }
    let error = refused.expect("sled refuses a database whose log is damaged where it holds data");
    assert!(error.contains("export --salvage"), "{error}");
    let damaged = read_tree(&db);
    let file = dir.path().join("salvaged.jsonl");
    let output = rj(&db, &["export", "--salvage", "-o", file.to_str().unwrap()]);
    ok(&output);
    assert!(stderr(&output).contains("salvaging from a copy"), "{}", stderr(&output));
    assert_eq!(read_tree(&db), damaged, "the damaged database is not changed");
    let lines = std::fs::read_to_string(&file).unwrap();
    assert!(!lines.is_empty(), "a prefix of the log is recovered");
    let fresh = dir.path().join("fresh.db");
    ok(&rj(&fresh, &["import", file.to_str().unwrap()]));
    ok(&rj(&fresh, &["verify"]));
}

#[test]
fn a_database_that_lost_durable_events_is_refused_and_salvage_exports_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lossy.db");
    {
        let journal = Journal::open(&db, Options::default()).unwrap();
        for episode in 0..3 {
            let run = journal
                .begin(
                    RunKey::new("lossy", episode, "a").unwrap(),
                    runjournal::RunMeta::default(),
                )
                .unwrap();
            for index in 0..50 {
                run.step(vec![runjournal::Message::new(
                    runjournal::Role::Assistant,
                    format!("step {index}"),
                )])
                .unwrap();
            }
        }
    }
    let mut log = std::fs::read(db.join("db")).unwrap();
    log[..64].fill(0xaa);
    std::fs::write(db.join("db"), log).unwrap();
    let error = fails(&rj(&db, &["runs"]));
    assert!(
        error.contains("sled lost events that were durable") && error.contains("--salvage"),
        "{error}"
    );
    let file = dir.path().join("left.jsonl");
    let output = rj(&db, &["export", "--salvage", "-o", file.to_str().unwrap()]);
    ok(&output);
    assert!(
        stderr(&output).contains("without sled's snapshot and loss guard"),
        "{}",
        stderr(&output)
    );
    let fresh = dir.path().join("fresh.db");
    ok(&rj(&fresh, &["import", file.to_str().unwrap()]));
    ok(&rj(&fresh, &["verify"]));
}
