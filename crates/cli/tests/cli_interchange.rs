//! `export` and `import`: JSON lines round-trip byte for byte, an export
//! file appears only whole, and a bad import file is refused whole, naming its line.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;

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

/// Waits, for at most a minute, until `condition` holds.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The id of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_refused_import_never_removes_a_database_another_import_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let mut big = vec![line("big", 0, "", r#"{"type":"run_started","meta":{}}"#)];
    big.extend((1..150_000).map(|seq| line("big", seq, "", r#"{"type":"turn_completed"}"#)));
    big.push("{not json".into());
    let big = write(dir.path(), "big.jsonl", &big);
    let good = write(dir.path(), "good.jsonl", &rich_run("good"));

    let first = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--db")
        .arg(&db)
        .args(["import", big.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first import has begun once it created something at or beside the target.
    wait_until("the first import created its database", || {
        std::fs::read_dir(dir.path()).unwrap().flatten().any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name == "new.db" || name.starts_with(".new.db.")
        })
    });
    ok(&import(&db, &good));
    let first = first.wait_with_output().unwrap();
    assert!(!first.status.success(), "the bad file is refused");
    assert!(stderr(&first).contains("line 150001"), "{}", stderr(&first));

    let runs = json(&rj(&db, &["runs", "--json"]));
    let goals: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["goal"].as_str().unwrap())
        .collect();
    assert_eq!(goals, ["good"], "the second import's run survives the first's refusal");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "no build directory is left: {names:?}");
}

#[test]
fn a_refused_import_into_a_new_path_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let bad = write(dir.path(), "bad.jsonl", &["{not json".to_string()]);
    fails(&import(&db, &bad));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bad.jsonl"]);
}

#[test]
fn leftovers_of_killed_exports_and_imports_are_removed_by_the_next_run() {
    let (dir, db) = session_db();
    let pid = dead_pid();
    let target = dir.path().join("out.jsonl");
    let stale_export = dir.path().join(format!(".out.jsonl.partial-{pid}"));
    std::fs::write(&stale_export, "half an export").unwrap();
    let fresh_db = dir.path().join("fresh.db");
    let stale_import = dir.path().join(format!(".fresh.db.importing-{pid}"));
    std::fs::create_dir(&stale_import).unwrap();
    std::fs::write(stale_import.join("db"), "half a database").unwrap();

    ok(&rj(&db, &["export", "-o", target.to_str().unwrap()]));
    assert!(
        !stale_export.exists(),
        "the next export to the target removes the partial file"
    );
    ok(&import(&fresh_db, &target));
    assert!(
        !stale_import.exists(),
        "the next import to the target removes the build directory"
    );
    assert_eq!(
        ok(&rj(&fresh_db, &["export"])),
        std::fs::read_to_string(&target).unwrap()
    );
}

#[test]
fn a_killed_export_leaves_no_partial_target_and_its_leftover_is_cleaned() {
    let (dir, db) = session_db();
    // A real kill: the export process is stopped as soon as its partial file exists.
    let mut lines = vec![line("many", 0, "", r#"{"type":"run_started","meta":{}}"#)];
    lines.extend((1..200_000).map(|seq| line("many", seq, "", r#"{"type":"turn_completed"}"#)));
    ok(&import(&db, &write(dir.path(), "many.jsonl", &lines)));
    let target = dir.path().join("out.jsonl");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--db")
        .arg(&db)
        .args(["export", "-o", target.to_str().unwrap()])
        .spawn()
        .unwrap();
    let partial = dir.path().join(format!(".out.jsonl.partial-{}", child.id()));
    wait_until("the export wrote its partial file", || {
        partial.exists() || target.exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    if target.exists() {
        // The export finished before the kill: it is whole.
        assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 200_000 + 7);
    }
    ok(&rj(&db, &["export", "-o", target.to_str().unwrap()]));
    assert!(!partial.exists(), "the killed export's partial file was removed");
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 200_000 + 7);
}
