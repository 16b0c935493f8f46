//! `demo`: a crash mid-compaction and a resume in a new process, on a
//! database it leaves to explore; it never removes a directory that is not its own.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;

#[test]
fn demo_crashes_resumes_and_leaves_a_database_to_explore() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), None, &["demo"]);
    let text = ok(&output);
    for needle in [
        "the agent (process",
        "compaction ctx-e0 started",
        "runjournal.sock while process",
        "killed process",
        "signal 9, exit status 137",
        "attached in epoch 1",
        "compaction stranded by the crash, cleared by the resume (rule 5)",
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
    // The state read live through the agent's socket is the state the crash left.
    let live = format!(
        "live  │ running · epoch 0 · last seq {} · iteration {} · 2 phases done, active 2 \"test\" · compaction in flight",
        at_crash["last_seq"], at_crash["iteration"]
    );
    assert!(text.contains(&live), "{live:?} not in\n{text}");
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
fn demo_goes_on_unserved_and_says_so_when_its_socket_path_is_too_long() {
    let dir = tempfile::tempdir().unwrap();
    // Past the 108 bytes a Unix socket path may have.
    let db = dir.path().join("d".repeat(120));
    let output = run_in(dir.path(), Some(&db), &["demo", "--json"]);
    let state = json(&output);
    assert_eq!(state["status"], "completed");
    let narration = stderr(&output);
    assert!(
        narration.contains("not serving the database to other processes"),
        "{narration}"
    );
    assert!(narration.contains("no live state through"), "{narration}");
    assert!(narration.contains("killed process"), "{narration}");
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

/// The commands under the demo's "Try next", as printed.
fn hints(narration: &str) -> Vec<String> {
    narration
        .lines()
        .skip_while(|line| !line.starts_with("Try next"))
        .skip(1)
        .map(str::trim)
        .filter(|line| line.starts_with("runjournal "))
        .map(str::to_owned)
        .collect()
}

/// Runs a printed command line through `sh`, with this build first on PATH
/// (as after `cargo install`).
fn run_hint(dir: &Path, hint: &str) -> Output {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    Command::new("sh")
        .args(["-c", hint])
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("RUNJOURNAL_DB")
        .output()
        .unwrap()
}

#[test]
fn the_demos_closing_hints_work_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let narration = ok(&run_in(dir.path(), None, &["demo"]));
    let printed = hints(&narration);
    assert_eq!(printed.len(), 5, "{narration}");
    for hint in &printed {
        assert!(hint.starts_with("runjournal --db ./runjournal-demo.db "), "{hint}");
        let output = run_hint(dir.path(), hint);
        let text = ok(&output);
        assert!(!text.is_empty() || hint.contains(" -o "), "{hint} printed nothing");
        if hint.contains("--at") {
            assert!(text.contains("time travel"), "{hint}: {text}");
        }
    }
    assert!(
        dir.path().join("session.jsonl").exists(),
        "the export hint wrote its file"
    );

    // A --db path that needs quoting is printed quoted, and still works.
    let spaced = dir.path().join("my runs").join("demo db");
    std::fs::create_dir_all(spaced.parent().unwrap()).unwrap();
    let output = run_in(dir.path(), Some(&spaced), &["demo", "--json"]);
    let printed = hints(&stderr(&output));
    assert_eq!(printed.len(), 5, "{}", stderr(&output));
    for hint in &printed {
        assert!(hint.contains(&format!("--db '{}'", spaced.display())), "{hint}");
        ok(&run_hint(dir.path(), hint));
    }
}
