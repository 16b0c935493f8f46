//! Big runs and finding runs: `show --limit/--tail/--from/--to/--type/--grep/
//! --full/--with-prefix`, the pager rule, `state --transcript`, and `runs
//! --since/--until/--limit/--sort/--status/--parent`, each with `--json`.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;
use runjournal::{Message, Role, RunMeta};

/// The long message of seq 5: more than any summary's cut.
const LONG: &str = "the long message: the token expiry check compares seconds with milliseconds, so every \
session looks expired one hour early; the fix converts both to milliseconds before comparing";

/// A database with run `big`/0/`a`: `run_started`, then 20 steps (seq 1–20)
/// with a phase around them; seq 5's message is [`LONG`], seq 13 mentions "needle".
fn big_db(dir: &Path) -> (PathBuf, RunKey) {
    let db = dir.join("big.db");
    let key = RunKey::new("big", 0, "a").unwrap();
    let journal = Journal::open(&db, Options::default()).unwrap();
    let run = journal.begin(key.clone(), RunMeta::default()).unwrap();
    for index in 1..=20u64 {
        let text = match index {
            5 => LONG.to_owned(),
            13 => "found the needle in auth.rs".to_owned(),
            _ => format!("step {index}"),
        };
        run.step(vec![Message::new(Role::Assistant, text)]).unwrap();
    }
    run.phase_started(0, "wrap-up").unwrap();
    run.phase_completed(0, "wrap-up", "done").unwrap();
    (db, key)
}

/// The seqs of a timeline's lines (after the heading and the column header).
fn seqs(text: &str) -> Vec<u64> {
    text.lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The seqs of `show --json` lines.
fn json_seqs(text: &str) -> Vec<u64> {
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn show_limit_and_tail_cut_the_timeline_and_say_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = big_db(dir.path());
    let id = key.short_id();
    let first = ok(&rj(&db, &["show", &id, "--limit", "3"]));
    assert_eq!(seqs(&first), [0, 1, 2]);
    assert!(
        first.contains("… more events from 3 on (--limit 3; --from 3 continues)"),
        "{first}"
    );
    assert_eq!(
        json_seqs(&ok(&rj(&db, &["--json", "show", &id, "--limit", "3"]))),
        [0, 1, 2]
    );

    let last = ok(&rj(&db, &["show", &id, "--tail", "2"]));
    assert_eq!(seqs(&last), [21, 22]);
    assert!(
        last.contains("… 21 earlier matching events not shown (--tail 2)"),
        "{last}"
    );
    assert_eq!(
        json_seqs(&ok(&rj(&db, &["show", &id, "--tail", "2", "--json"]))),
        [21, 22]
    );

    let error = rj(&db, &["show", &id, "--limit", "1", "--tail", "1"]);
    assert_eq!(error.status.code(), Some(exit_code("usage")));
}

#[test]
fn show_from_to_type_and_grep_select_events() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = big_db(dir.path());
    let id = key.short_id();
    assert_eq!(
        seqs(&ok(&rj(&db, &["show", &id, "--from", "4", "--to", "6"]))),
        [4, 5, 6]
    );
    assert_eq!(
        json_seqs(&ok(&rj(&db, &["show", &id, "--from", "4", "--to", "6", "--json"]))),
        [4, 5, 6]
    );
    let phases = ok(&rj(
        &db,
        &["show", &id, "--type", "phase_started", "--type", "phase_completed"],
    ));
    assert_eq!(seqs(&phases), [21, 22]);
    let typed = ok(&rj(&db, &["--json", "show", &id, "--type", "run_started"]));
    assert_eq!(json_seqs(&typed), [0]);
    assert_eq!(seqs(&ok(&rj(&db, &["show", &id, "--grep", "needle"]))), [13]);
    assert_eq!(
        json_seqs(&ok(&rj(&db, &["show", &id, "--grep", "needle", "--json"]))),
        [13]
    );
    // Filters combine; a tail applies after them.
    assert_eq!(
        seqs(&ok(&rj(&db, &["show", &id, "--type", "step", "--tail", "2"]))),
        [19, 20]
    );
    let nothing = ok(&rj(&db, &["show", &id, "--grep", "no such text"]));
    assert!(nothing.contains("no events match"), "{nothing}");

    let unknown = rj(&db, &["show", &id, "--type", "stepp"]);
    assert_eq!(unknown.status.code(), Some(exit_code("usage")));
    assert!(
        stderr(&unknown).contains("unknown event type \"stepp\""),
        "{}",
        stderr(&unknown)
    );
    let past = fails_with(&rj(&db, &["show", &id, "--to", "99"]), "not_found");
    assert!(past.contains("has no seq 99 (its last seq is 22)"), "{past}");
    let message = fails_json(&rj(&db, &["show", &id, "--to", "99", "--json"]), "not_found");
    assert!(message.contains("has no seq 99"), "{message}");
    let reversed = fails_with(&rj(&db, &["show", &id, "--from", "6", "--to", "4"]), "usage");
    assert!(reversed.contains("--to 4 is before --from 6"), "{reversed}");
}

#[test]
fn show_full_prints_whole_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = big_db(dir.path());
    let id = key.short_id();
    let cut = ok(&rj(&db, &["show", &id, "--from", "5", "--to", "5"]));
    assert!(!cut.contains(LONG) && cut.contains('…'), "{cut}");
    let full = ok(&rj(&db, &["show", &id, "--from", "5", "--to", "5", "--full"]));
    assert!(full.contains(LONG), "{full}");
    // --json always carries the whole event.
    let json = ok(&rj(&db, &["show", &id, "--from", "5", "--to", "5", "--full", "--json"]));
    assert!(json.contains(LONG), "{json}");
}

#[test]
fn show_never_pages_into_a_pipe_or_with_no_pager() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = big_db(dir.path());
    let marker = dir.path().join("paged");
    let pager = dir.path().join("pager.sh");
    std::fs::write(&pager, format!("#!/bin/sh\ncat > {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&pager, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = Command::new(BIN)
        .args(["--db", db.to_str().unwrap(), "show", &key.short_id()])
        .env("PAGER", &pager)
        .output()
        .unwrap();
    assert!(
        stdout(&output).contains("run_started"),
        "not a terminal: straight to stdout"
    );
    assert!(!marker.exists(), "the pager ran into a pipe");
}

#[test]
#[expect(clippy::similar_names, reason = "the paired names mirror the values they stand for")]
fn show_pages_on_a_terminal_unless_told_not_to() {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: util-linux `script` (a pseudo-terminal) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = big_db(dir.path());
    let marker = dir.path().join("paged");
    let pager = dir.path().join("pager.sh");
    std::fs::write(&pager, format!("#!/bin/sh\ncat > {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&pager, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let on_terminal = |extra: &str| {
        let command = format!("{BIN} --db {} show {} {extra}", db.display(), key.short_id());
        Command::new("/usr/bin/script")
            .args(["-qec", &command, "/dev/null"])
            .env("PAGER", &pager)
            .output()
            .unwrap()
    };
    ok(&on_terminal("--no-pager"));
    assert!(!marker.exists(), "--no-pager paged");
    ok(&on_terminal("--json"));
    assert!(!marker.exists(), "--json paged");
    ok(&on_terminal(""));
    let paged = std::fs::read_to_string(&marker).unwrap();
    assert!(
        paged.contains("run_started") && paged.contains("phase_completed"),
        "{paged}"
    );
}

#[test]
fn show_with_prefix_includes_the_inherited_history_and_its_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = parent_database(dir.path(), 5, 0);
    let forked = json(&rj(&db, &["--json", "fork", &key.short_id(), "--at", "3"]));
    let child = forked["id"].as_str().unwrap().to_owned();
    let own = ok(&rj(&db, &["show", &child]));
    assert_eq!(seqs(&own), [0]);
    assert!(own.contains("--with-prefix shows it"), "{own}");
    let whole = ok(&rj(&db, &["show", &child, "--with-prefix"]));
    assert_eq!(
        seqs(&whole),
        [0, 1, 2, 3, 4],
        "parent seqs 0–3, then the fork's run_started"
    );
    let runs: Vec<&str> = whole
        .lines()
        .skip(2)
        .map(|line| line.split_whitespace().nth(1).unwrap())
        .collect();
    let parent = key.short_id();
    assert_eq!(runs, [parent.as_str(), &parent, &parent, &parent, &child]);
    // The prefix's seqs are accepted.
    assert_eq!(
        seqs(&ok(&rj(
            &db,
            &["show", &child, "--with-prefix", "--from", "2", "--to", "3"]
        ))),
        [2, 3]
    );
    let fails_without = fails_with(&rj(&db, &["show", &child, "--from", "2"]), "not_found");
    assert!(fails_without.contains("has no seq 2"), "{fails_without}");
    let lines = ok(&rj(&db, &["--json", "show", &child, "--with-prefix"]));
    let parents = lines
        .lines()
        .filter(|line| line.starts_with(r#"{"run":{"goal":"lineage-goal","episode":0,"#))
        .count();
    assert_eq!((lines.lines().count(), parents), (5, 4), "{lines}");
}

#[test]
fn state_transcript_shows_n_or_all_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = big_db(dir.path());
    let id = key.short_id();
    let default = ok(&rj(&db, &["state", &id]));
    assert!(
        default.contains("… 12 messages earlier (--transcript all shows them)") && default.contains("step 20"),
        "{default}"
    );
    let three = ok(&rj(&db, &["state", &id, "--transcript", "3"]));
    assert!(
        three.contains("… 17 messages earlier") && !three.contains("step 17"),
        "{three}"
    );
    let all = ok(&rj(&db, &["state", &id, "--transcript", "all"]));
    assert!(!all.contains("messages earlier") && all.contains("step 1\n"), "{all}");
    let state = json(&rj(&db, &["--json", "state", &id, "--transcript", "3"]));
    assert_eq!(
        state["transcript"].as_array().unwrap().len(),
        20,
        "--json has the whole transcript"
    );
    let bad = rj(&db, &["state", &id, "--transcript", "some"]);
    assert_eq!(bad.status.code(), Some(exit_code("usage")));
}

/// A database of three runs written at known times: `a`/0 (3 events, oldest),
/// `b`/0 (1 event), and `a`/1, a fork of `a`/0 (newest activity).
fn runs_db(dir: &Path) -> (PathBuf, [String; 3]) {
    let db = dir.join("runs.db");
    let lines = [
        line("a", 0, r#","ts":1700000000000"#, r#"{"type":"run_started","meta":{}}"#),
        line("a", 1, r#","ts":1700000001000"#, r#"{"type":"turn_completed"}"#),
        line("a", 2, r#","ts":1700000002000"#, r#"{"type":"run_completed"}"#),
        line("b", 0, r#","ts":1750000000000"#, r#"{"type":"run_started","meta":{}}"#),
    ];
    let file = write(dir, "runs.jsonl", &lines);
    ok(&import(&db, &file));
    let a = RunKey::new("a", 0, "a").unwrap().short_id();
    let b = RunKey::new("b", 0, "a").unwrap().short_id();
    let child = json(&rj(&db, &["--json", "fork", &a, "--at", "1"]));
    (db, [a, b, child["id"].as_str().unwrap().to_owned()])
}

fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn runs_sort_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [a, b, child]) = runs_db(dir.path());
    let newest_first = json(&rj(&db, &["--json", "runs"]));
    assert_eq!(ids(&newest_first), [child.clone(), b.clone(), a.clone()]);
    assert_eq!(
        ids(&json(&rj(&db, &["--json", "runs", "--sort", "events"])))[0],
        a,
        "the most events first"
    );
    let by_key = ids(&json(&rj(&db, &["--json", "runs", "--sort", "key"])));
    assert_eq!(by_key, [a.clone(), child.clone(), b.clone()]);
    let created = ids(&json(&rj(&db, &["--json", "runs", "--sort", "created"])));
    assert_eq!(created[0], child, "the fork was created last");
    assert_eq!(
        ids(&json(&rj(&db, &["--json", "runs", "--limit", "1"]))),
        std::slice::from_ref(&child)
    );
    let text = ok(&rj(&db, &["runs", "--limit", "2"]));
    let listed: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(listed, [child.as_str(), b.as_str(), "2"], "{text}");
    let bad = rj(&db, &["runs", "--sort", "size"]);
    assert_eq!(bad.status.code(), Some(exit_code("usage")));
}

#[test]
fn runs_filter_by_time_status_and_parent() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [a, b, child]) = runs_db(dir.path());
    // a's last activity is 2023-11-14T22:13:22Z, b's 2025-06-15T14:13:20Z, the fork's now.
    let since = json(&rj(
        &db,
        &["--json", "runs", "--since", "2025-01-01T00:00:00Z", "--sort", "key"],
    ));
    assert_eq!(ids(&since), [child.clone(), b.clone()]);
    let until = json(&rj(&db, &["--json", "runs", "--until", "1750000000000"]));
    assert_eq!(ids(&until), [b.clone(), a.clone()]);
    let recent = json(&rj(&db, &["--json", "runs", "--since", "10m"]));
    assert_eq!(ids(&recent), std::slice::from_ref(&child));
    let window = json(&rj(
        &db,
        &[
            "--json",
            "runs",
            "--since",
            "3000d",
            "--until",
            "2024-01-01T00:00:00+01:00",
        ],
    ));
    assert_eq!(ids(&window), std::slice::from_ref(&a));

    let completed = json(&rj(&db, &["--json", "runs", "--status", "completed"]));
    assert_eq!(ids(&completed), std::slice::from_ref(&a));
    let either = json(&rj(
        &db,
        &[
            "--json",
            "runs",
            "--status",
            "completed",
            "--status",
            "running",
            "--sort",
            "key",
        ],
    ));
    assert_eq!(ids(&either), [a.clone(), child.clone(), b.clone()]);

    let children = json(&rj(&db, &["--json", "runs", "--parent", &a]));
    assert_eq!(ids(&children), std::slice::from_ref(&child));
    let none = ok(&rj(&db, &["runs", "--parent", &b]));
    assert!(none.starts_with("no runs match the filters"), "{none}");
    let unknown = fails_with(&rj(&db, &["runs", "--parent", "ffff"]), "not_found");
    assert!(unknown.contains("no run has id ffff"), "{unknown}");
    let bad = rj(&db, &["runs", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(exit_code("usage")));
    assert!(stderr(&bad).contains("is not a time"), "{}", stderr(&bad));
}
