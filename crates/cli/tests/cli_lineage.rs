//! `fork`, `rewind`, `diff` and `purge`: lineage shown, compared, kept through export
//! and import, and never broken by retention.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;

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
    let runs = json(&rj(&elsewhere, &["--json", "runs", "--sort", "key"]));
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
    let orphan: String = lines.lines().skip(4).flat_map(|line| [line, "\n"]).collect();
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
fn rewind_supersedes_the_run_and_recover_no_longer_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, original) = parent_database(dir.path(), 5, 1000);
    let before = json(&rj(&db, &["--json", "recover"]));
    assert_eq!(before.as_array().map(Vec::len), Some(1));
    let text = ok(&rj(&db, &["rewind", &original.short_id(), "--at", "3"]));
    let branch = RunKey::new("lineage-goal", 1, "solver").unwrap();
    assert!(text.contains(&format!("branch id: {}", branch.short_id())), "{text}");
    assert!(text.contains("is superseded"), "{text}");
    let listed = json(&rj(&db, &["--json", "runs", "--sort", "key"]));
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
