//! `verify`, corrupt snapshots and `export --salvage`: damage is named by run
//! and seq, and what still verifies can always be exported, the database untouched.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;

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
fn a_corrupt_snapshot_names_the_fix_and_rebuild_snapshots_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = parent_database(dir.path(), 12, 5);
    {
        let sled = sled::open(&db).unwrap();
        let snapshots = sled.open_tree(runjournal_sled::layout::SNAPSHOT_TREE).unwrap();
        let (snapshot_key, value) = snapshots.iter().next_back().unwrap().unwrap();
        let mut value = value.to_vec();
        let last = value.len() - 1;
        value[last] ^= 0xff;
        snapshots.insert(snapshot_key, value).unwrap();
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
fn export_salvage_exports_every_run_up_to_its_last_verified_event() {
    let (dir, db) = session_db();
    ok(&import(&db, &write(dir.path(), "rich.jsonl", &rich_run("intact"))));
    corrupt_event(&db, 0, 3);
    let error = fails(&rj(&db, &["export"]));
    assert!(error.contains("seq 3"), "{error}");
    let file = dir.path().join("salvaged.jsonl");
    let output = rj(&db, &["export", "--salvage", "-o", file.to_str().unwrap()]);
    // Events were lost: the export is written and the exit status says so.
    assert_eq!(output.status.code(), Some(exit_code("integrity")));
    let summary = stdout(&output);
    assert!(
        summary.contains("salvaged 2 runs") && summary.contains("1 run stopped at damage, losing 4 events and 0 ends"),
        "{summary}"
    );
    let warnings = stderr(&output);
    assert!(
        warnings.contains("\"fix-login-bug\"/0/\"orchestrator-0\": recovered 3 events of 7; 4 lost (seqs 3–6)")
            && warnings.contains("seq 3"),
        "{warnings}"
    );
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        lines.lines().count(),
        3 + 1 + 12,
        "the damaged run's first 3 events and its salvage mark, and the intact run whole"
    );
    let fresh = dir.path().join("fresh.db");
    ok(&rj(&fresh, &["import", file.to_str().unwrap()]));
    ok(&rj(&fresh, &["verify"]));
}

/// `export --salvage -o FILE` goes through the same writer as `export -o`:
/// the file is replaced only once the salvage is complete, and a failed one
/// leaves no partial file.
#[test]
fn a_salvage_to_a_file_replaces_it_only_when_complete() {
    let (dir, db) = session_db();
    let file = dir.path().join("salvaged.jsonl");
    std::fs::write(&file, "the previous export\n").unwrap();
    ok(&rj(&db, &["export", "--salvage", "-o", file.to_str().unwrap()]));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 7, "{exported}");
    let names = |path: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(dir.path()),
        ["journal.db", "salvaged.jsonl"],
        "no partial file is left"
    );

    let target = dir.path().join("no-such-dir").join("out.jsonl");
    let error = fails(&rj(&db, &["export", "--salvage", "-o", target.to_str().unwrap()]));
    assert!(error.contains("cannot create"), "{error}");
    assert_eq!(names(dir.path()), ["journal.db", "salvaged.jsonl"]);
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
    // sled's recovery at the refused open above cleared its log past the
    // damage: the salvage says how much of what the guard recorded it lost.
    assert_eq!(output.status.code(), Some(exit_code("integrity")));
    assert!(
        stdout(&output).contains("the loss guard recorded 453 events durable"),
        "{}",
        stdout(&output)
    );
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
    // sled's recovery at the refused open above cleared its log past the
    // damage: no run is left, and the loss guard says 153 events were durable.
    assert_eq!(output.status.code(), Some(exit_code("integrity")));
    assert!(
        stdout(&output).contains("the loss guard recorded 153 events durable, 153 more than any run record"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("salvage lost 153 events"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("without sled's snapshot and loss guard"),
        "{}",
        stderr(&output)
    );
    let fresh = dir.path().join("fresh.db");
    ok(&rj(&fresh, &["import", file.to_str().unwrap()]));
    ok(&rj(&fresh, &["verify"]));
}

/// A 30-event completed run (seqs 0–29) whose step at seq 24 holds `marker`.
fn completed_run_of_30(db: &Path, marker: &str) -> RunKey {
    let journal = Journal::open(db, Options::default()).unwrap();
    let key = RunKey::new("honest-salvage", 0, "a").unwrap();
    let run = journal.begin(key.clone(), runjournal::RunMeta::default()).unwrap();
    for seq in 1..29 {
        let content = if seq == 24 {
            marker.to_string()
        } else {
            format!("step at seq {seq}")
        };
        run.step(vec![runjournal::Message::new(runjournal::Role::Assistant, content)])
            .unwrap();
    }
    assert_eq!(run.finish(runjournal::Outcome::Success { output: None }).unwrap(), 29);
    key
}

/// Flips one byte of the first copy of `marker` in the database's files.
fn flip_byte_of(db: &Path, marker: &str) {
    for (path, mut bytes) in read_tree(db) {
        if let Some(at) = bytes
            .windows(marker.len())
            .position(|window| window == marker.as_bytes())
        {
            bytes[at + marker.len() / 2] ^= 0x01;
            std::fs::write(&path, bytes).unwrap();
            return;
        }
    }
    panic!("{marker} is in no file of {}", db.display());
}

#[test]
fn salvage_reports_the_events_and_the_end_a_damaged_run_lost_and_marks_it_unresumable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flipped.db");
    let marker = "the step at seq 24 that a flipped byte damages";
    let key = completed_run_of_30(&db, marker);
    flip_byte_of(&db, marker);
    let file = dir.path().join("salvaged.jsonl");
    let output = rj(&db, &["--json", "export", "--salvage", "-o", file.to_str().unwrap()]);
    // The salvage lost data: it says so in its exit status, with the export written.
    assert_eq!(output.status.code(), Some(exit_code("integrity")));
    let text = stderr(&output);
    assert!(text.contains("salvage lost 6 events of 1 run"), "{text}");
    let report: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(report["events"], 24, "{report}");
    assert_eq!(report["lost_events"], 6, "{report}");
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{report}");
    let run = &damaged[0];
    assert_eq!(run["goal"], "honest-salvage", "{report}");
    assert_eq!(run["id"], key.short_id(), "{report}");
    assert_eq!(run["events"], 24, "{report}");
    assert_eq!(run["existed"], 30, "{report}");
    assert_eq!(run["lost_events"], 6, "{report}");
    assert_eq!(run["lost_seqs"], serde_json::json!([24, 29]), "{report}");
    assert_eq!(run["end_lost"], true, "{report}");
    assert_eq!(run["lost_status"], "completed", "{report}");
    assert_eq!(run["marked"], true, "{report}");
    assert!(
        text.contains(&format!(
            "{key}: recovered 24 events of 30; 6 lost (seqs 24–29), including its end (completed)"
        )),
        "{text}"
    );
    // The export ends the run with the salvage's mark; imported, the run is
    // failed, says why, and resume refuses it.
    let lines = std::fs::read_to_string(&file).unwrap();
    let last: Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(last["seq"], 24, "{last}");
    assert_eq!(last["event"]["type"], "run_failed", "{last}");
    assert_eq!(last["event"]["error"]["kind"], "salvaged", "{last}");
    let fresh = dir.path().join("fresh.db");
    ok(&rj(&fresh, &["import", file.to_str().unwrap()]));
    ok(&rj(&fresh, &["verify"]));
    let state = json(&rj(&fresh, &["--json", "state", &key.short_id()]));
    assert_eq!(state["status"], "failed", "{state}");
    let refused = rj(&fresh, &["resume", &key.short_id()]);
    let refusal = fails_with(&refused, "finished");
    assert!(refusal.contains("failed"), "{refusal}");
    let recoverable = json(&rj(&fresh, &["--json", "runs", "--status", "running"]));
    assert_eq!(recoverable.as_array().map(Vec::len), Some(0), "{recoverable}");
}

#[test]
fn salvage_of_an_intact_database_loses_nothing_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("intact.db");
    let key = completed_run_of_30(&db, "nothing is damaged here");
    let file = dir.path().join("salvaged.jsonl");
    let output = rj(&db, &["--json", "export", "--salvage", "-o", file.to_str().unwrap()]);
    let report: Value = serde_json::from_str(ok(&output).trim()).unwrap();
    assert_eq!(report["events"], 30, "{report}");
    assert_eq!(report["lost_events"], 0, "{report}");
    assert_eq!(report["damaged"], serde_json::json!([]), "{report}");
    let fresh = dir.path().join("fresh.db");
    ok(&rj(&fresh, &["import", file.to_str().unwrap()]));
    let state = json(&rj(&fresh, &["--json", "state", &key.short_id()]));
    assert_eq!(state["status"], "completed", "{state}");
}

#[test]
fn salvage_of_a_fork_counts_only_the_prefix_it_needs_of_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let (db, parent) = parent_database(dir.path(), 6, 1000);
    ok(&rj(&db, &["fork", &parent.short_id(), "--at", "3"]));
    let child = RunKey::new("lineage-goal", 1, "solver").unwrap();
    let file = dir.path().join("child.jsonl");
    let output = rj(
        &db,
        &[
            "--json",
            "export",
            "--salvage",
            &child.short_id(),
            "-o",
            file.to_str().unwrap(),
        ],
    );
    let report: Value = serde_json::from_str(ok(&output).trim()).unwrap();
    assert_eq!(report["lost_events"], 0, "{report}");
    assert_eq!(report["damaged"], serde_json::json!([]), "{report}");
    let fresh = dir.path().join("fresh.db");
    ok(&rj(&fresh, &["import", file.to_str().unwrap()]));
    ok(&rj(&fresh, &["verify"]));
}
