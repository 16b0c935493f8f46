//! `runs`, `show`, `state` and `recover` read a database as a user would, and
//! every read error is one line: a missing database, run or id, a locked one.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;

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
    // docs/resume-state.md key order, not sorted.
    let order = [
        "run",
        "status",
        "recoverable",
        "meta",
        "active_ms",
        "wall_ms",
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
        "usage",
        "segments",
        "provenance",
        "resources",
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
        let output = rj(&db, &args);
        let error = if args.contains(&"--json") {
            fails_json(&output, "not_found")
        } else {
            fails_with(&output, "not_found")
        };
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
        let error = fails_with(&rj(&db, &args), "locked");
        assert!(error.contains("is locked by another process"), "{args:?}: {error}");
        assert!(error.contains(&db.display().to_string()), "{error}");
    }
    let error = fails(&import(&db, &example("session.jsonl")));
    assert!(error.contains("locked"), "{error}");
    drop(journal);
    ok(&rj(&db, &["runs"]));
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
