//! One place to point: `RUNJOURNAL_DB`, shell completions, `--color`,
//! `--time-format`, errors as JSON under `--json`, and distinct exit codes.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;

/// The binary with `args` and `env`, without `--db` or `NO_COLOR`.
fn bare(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("RUNJOURNAL_DB");
    for (name, value) in env {
        command.env(name, value);
    }
    command.args(args).output().unwrap()
}

#[test]
fn runjournal_db_names_the_database_and_db_wins_over_it() {
    let (dir, db) = session_db();
    let path = db.to_str().unwrap();
    let rows = json(&bare(dir.path(), &[("RUNJOURNAL_DB", path)], &["--json", "runs"]));
    assert_eq!(rows[0]["id"], session_id().as_str());
    let elsewhere = dir.path().join("missing.db");
    let error = fails_with(
        &bare(
            dir.path(),
            &[("RUNJOURNAL_DB", path)],
            &["--db", elsewhere.to_str().unwrap(), "runs"],
        ),
        "not_found",
    );
    assert!(error.contains("missing.db"), "{error}");
    let help = ok(&bare(dir.path(), &[], &["--help"]));
    assert!(help.contains("[env: RUNJOURNAL_DB=]"), "{help}");
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, needle) in [
        ("bash", "complete -F _runjournal"),
        ("zsh", "#compdef runjournal"),
        ("fish", "complete -c runjournal"),
    ] {
        let script = ok(&bare(dir.path(), &[], &["completions", shell]));
        assert!(script.contains(needle), "{shell}: {script}");
        assert!(
            script.contains("interrupt") && script.contains("time-format"),
            "{shell}"
        );
    }
    let bad = bare(dir.path(), &[], &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(exit_code("usage")));
    let json_error = bare(dir.path(), &[], &["--json", "completions", "tcsh"]);
    let message = fails_json(&json_error, "usage");
    assert!(message.contains("tcsh"), "{message}");
}

#[test]
fn color_is_chosen_by_flag_and_no_color_only_under_auto() {
    let (dir, db) = session_db();
    let path = db.to_str().unwrap();
    let show = |env: &[(&str, &str)], color: &str| {
        ok(&bare(
            dir.path(),
            env,
            &["--db", path, "--color", color, "show", &session_id()],
        ))
    };
    assert!(show(&[], "always").contains("\x1b["), "always colours into a pipe");
    assert!(
        show(&[("NO_COLOR", "1")], "always").contains("\x1b["),
        "a flag wins over NO_COLOR"
    );
    assert!(!show(&[], "never").contains("\x1b["));
    assert!(!show(&[], "auto").contains("\x1b["), "auto: not a terminal");
    let bad = bare(dir.path(), &[], &["--db", path, "--color", "sometimes", "runs"]);
    assert_eq!(bad.status.code(), Some(exit_code("usage")));
}

#[test]
fn time_format_prints_iso_relative_or_raw_times() {
    let (dir, db) = fresh();
    let lines = vec![line(
        "t",
        0,
        r#","ts":1763800000123"#,
        r#"{"type":"run_started","meta":{}}"#,
    )];
    ok(&import(&db, &write(dir.path(), "t.jsonl", &lines)));
    let id = RunKey::new("t", 0, "a").unwrap().short_id();
    let iso = ok(&rj(&db, &["show", &id]));
    assert!(
        iso.contains("TIME (UTC)") && iso.contains("2025-11-22 08:26:40.123"),
        "{iso}"
    );
    let raw = ok(&rj(&db, &["show", &id, "--time-format", "raw"]));
    assert!(raw.contains("TIME (UNIX MS)") && raw.contains("1763800000123"), "{raw}");
    let relative = ok(&rj(&db, &["--time-format", "relative", "show", &id]));
    assert!(relative.contains("d ago"), "{relative}");
    let runs = ok(&rj(&db, &["runs", "--time-format", "raw"]));
    assert!(
        runs.contains("LAST ACTIVITY (UNIX MS)") && runs.contains("1763800000123"),
        "{runs}"
    );
    let runs = ok(&rj(&db, &["runs", "--time-format", "relative"]));
    assert!(runs.contains("LAST ACTIVITY ") && runs.contains("d ago"), "{runs}");
    // --json keeps unix milliseconds whatever the format.
    let rows = json(&rj(&db, &["--json", "runs", "--time-format", "relative"]));
    assert_eq!(rows[0]["last_ts"], 1_763_800_000_123u64);
}

#[test]
fn errors_have_stable_codes_exit_statuses_and_json_on_stderr() {
    let (dir, db) = session_db();
    // not_found: no database, no run, no seq.
    let missing = dir.path().join("none.db");
    fails_with(&rj(&missing, &["runs"]), "not_found");
    fails_json(&rj(&missing, &["--json", "runs"]), "not_found");
    fails_with(&rj(&db, &["show", "ffff"]), "not_found");
    fails_with(&rj(&db, &["state", &session_id(), "--at", "99"]), "not_found");
    let message = fails_json(&rj(&db, &["--json", "state", &session_id(), "--at", "99"]), "not_found");
    assert!(message.contains("has no seq 99"), "{message}");
    // usage: clap's refusals (text: its usage message; --json: one JSON line), and a bad id.
    let unknown = rj(&db, &["frobnicate"]);
    assert_eq!(unknown.status.code(), Some(exit_code("usage")));
    assert!(stderr(&unknown).contains("Usage:"), "{}", stderr(&unknown));
    let message = fails_json(&rj(&db, &["--json", "frobnicate"]), "usage");
    assert!(message.contains("frobnicate"), "{message}");
    fails_with(&rj(&db, &["show", "xy"]), "usage");
    fails_json(&rj(&db, &["--json", "show"]), "usage");
    // integrity: a corrupt event.
    corrupt_event(&db, 0, 3);
    let corrupt = fails_with(&rj(&db, &["verify"]), "integrity");
    assert!(corrupt.contains("seq 3"), "{corrupt}");
    fails_json(&rj(&db, &["--json", "show", &session_id()]), "integrity");
    // locked.
    let journal = Journal::open(&db, Options::default()).unwrap();
    let message = fails_json(&rj(&db, &["--json", "runs"]), "locked");
    assert!(message.contains("is locked by another process"), "{message}");
    drop(journal);
}

#[test]
fn help_documents_the_exit_statuses_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let help = ok(&bare(dir.path(), &[], &["--help"]));
    for needle in [
        "Exit status: 0 ok, 1 other error, 2 usage, 3 not found, 4 integrity failure, 5 locked, 6 fenced",
        "RUNJOURNAL_DB sets --db",
        "--color <WHEN>",
        "--time-format <FORMAT>",
        "completions",
        "interrupt",
    ] {
        assert!(help.contains(needle), "{needle:?} not in\n{help}");
    }
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md")).unwrap();
    for (code, status) in EXIT_CODES {
        assert!(
            docs.contains(&format!("| {status} | `{code}` |")),
            "docs/cli.md lacks exit {status} `{code}`"
        );
    }
}

#[test]
fn import_refusals_use_code_invalid_and_exit_9() {
    let (dir, db) = fresh();
    let mut lines = rich_run("bad-import");
    lines.push("{not json".to_owned());
    let bad = write(dir.path(), "bad.jsonl", &lines);
    let error = fails_with(&import(&db, &bad), "invalid");
    assert!(
        error.contains(&format!("line {}", lines.len())),
        "the line is named: {error}"
    );
    let message = fails_json(&rj(&db, &["--json", "import", bad.to_str().unwrap()]), "invalid");
    assert!(message.contains("nothing was stored"), "{message}");
    assert!(!db.exists() || json(&rj(&db, &["--json", "runs"])) == Value::Array(Vec::new()));
    ok(&import(&db, &example("session.jsonl")));
    let again = fails_with(&import(&db, &example("session.jsonl")), "conflict");
    assert!(again.contains("already exists"), "{again}");
}
