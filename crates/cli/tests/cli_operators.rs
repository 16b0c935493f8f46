//! Operator actions: `interrupt`, `fail --reason` and `resume` write events
//! naming the operator (`user@host`) in a new epoch, and refuse what the
//! ordering rules refuse, naming the rule; each with `--json` and its exit code.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;

/// The example session (running, died) as the operator `alice`.
fn as_alice(db: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .current_dir(db.parent().unwrap())
        .env("NO_COLOR", "1")
        .env("USER", "alice")
        .arg("--db")
        .arg(db)
        .args(args);
    command.output().unwrap()
}

/// The host part of `user@host` as the CLI finds it.
fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| {
            let output = Command::new("uname").arg("-n").output().unwrap();
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        })
}

/// The run's events' types and the `attached` owners.
fn events(db: &Path) -> Vec<Value> {
    ok(&rj(db, &["--json", "show", &session_id()]))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn interrupt_opens_an_epoch_naming_the_operator_and_ends_in_run_interrupted() {
    let (_dir, db) = session_db();
    let report = json(&as_alice(&db, &["--json", "interrupt", &session_id()]));
    let operator = format!("alice@{}", host());
    assert_eq!(report["action"], "interrupt");
    assert_eq!(report["operator"], operator.as_str());
    assert_eq!(report["attached_seq"], 7);
    assert_eq!(report["epoch"], 1);
    assert_eq!(report["last_seq"], 8);
    assert_eq!(report["status"], "interrupted");
    let events = events(&db);
    assert_eq!(events[7]["event"]["type"], "attached");
    assert_eq!(
        events[7]["event"]["owner"],
        format!("{operator} (operator: interrupt)").as_str()
    );
    assert_eq!(events[7]["epoch"], 1);
    assert_eq!(
        events[8]["event"],
        serde_json::json!({"type": "run_interrupted", "cause": "shutdown"})
    );
    assert_eq!(events[8]["epoch"], 1, "in the operator's epoch, the agent's is fenced");
    ok(&rj(&db, &["verify"]));

    // Interrupting it again is refused, naming the rule; nothing is written.
    let again = fails_with(&as_alice(&db, &["interrupt", &session_id()]), "finished");
    assert!(
        again.contains("run is interrupted already: after run_interrupted only a resume may follow (docs/format.md#ordering-rules)"),
        "{again}"
    );
    assert_eq!(json(&rj(&db, &["--json", "state", &session_id()]))["last_seq"], 8);
}

#[test]
fn resume_records_attached_for_the_operator_and_leaves_the_run_running() {
    let (_dir, db) = session_db();
    ok(&as_alice(&db, &["interrupt", &session_id()]));
    let text = ok(&as_alice(&db, &["resume", &session_id()]));
    assert!(text.starts_with(&format!("resumed {} ", session_id())), "{text}");
    assert!(
        text.contains("as alice@") && text.contains("epoch 2 from seq 9"),
        "{text}"
    );
    let state = json(&rj(&db, &["--json", "state", &session_id()]));
    assert_eq!(
        (state["status"].as_str(), state["epoch"].as_u64()),
        (Some("running"), Some(2))
    );
    let report = json(&as_alice(&db, &["resume", "--json", &session_id()]));
    assert_eq!(
        (report["action"].as_str(), report["epoch"].as_u64()),
        (Some("resume"), Some(3))
    );
    assert_eq!(report["status"], "running");
    let owner = &events(&db)[10]["event"]["owner"];
    assert!(owner.as_str().unwrap().ends_with("(operator: resume)"), "{owner}");
}

#[test]
fn fail_records_run_failed_with_the_reason_and_the_operator() {
    let (_dir, db) = session_db();
    let report = json(&as_alice(
        &db,
        &["--json", "fail", &session_id(), "--reason", "stuck in a loop"],
    ));
    assert_eq!(
        (report["action"].as_str(), report["status"].as_str()),
        (Some("fail"), Some("failed"))
    );
    let state = json(&rj(&db, &["--json", "state", &session_id()]));
    assert_eq!(state["status"], "failed");
    assert_eq!(state["failure"]["error"]["kind"], "operator");
    let message = state["failure"]["error"]["message"].as_str().unwrap();
    assert_eq!(message, format!("stuck in a loop (failed by alice@{})", host()));

    // Nothing may follow run_failed: every action is refused, naming the rule.
    let id = session_id();
    for args in [
        vec![
            "interrupt",
            "--goal",
            "fix-login-bug",
            "--episode",
            "0",
            "--agent",
            "orchestrator-0",
        ],
        vec!["resume", id.as_str()],
        vec!["fail", id.as_str(), "--reason", "again"],
    ] {
        let error = fails_with(&as_alice(&db, &args), "finished");
        assert!(
            error.contains("run is failed: nothing may follow run_failed (docs/format.md#ordering-rules)"),
            "{args:?}: {error}"
        );
        let mut json_args = vec!["--json"];
        json_args.extend(&args);
        let message = fails_json(&as_alice(&db, &json_args), "finished");
        assert!(message.contains("nothing may follow run_failed"), "{message}");
    }
    let missing = rj(&db, &["fail", &session_id()]);
    assert_eq!(missing.status.code(), Some(exit_code("usage")), "--reason is required");
}

#[test]
fn operator_actions_on_a_completed_run_are_refused_naming_the_rule() {
    let (dir, db) = fresh();
    let lines = vec![
        line("done", 0, "", r#"{"type":"run_started","meta":{}}"#),
        line("done", 1, "", r#"{"type":"run_completed","output":"ok"}"#),
    ];
    ok(&import(&db, &write(dir.path(), "done.jsonl", &lines)));
    let id = RunKey::new("done", 0, "a").unwrap().short_id();
    let error = fails_with(&as_alice(&db, &["interrupt", &id]), "finished");
    assert_eq!(
        error,
        format!(
            "runjournal: error: cannot interrupt run \"done\"/0/\"a\": run is completed: nothing may follow \
             run_completed (docs/format.md#ordering-rules); nothing was written"
        )
    );
    fails_with(&as_alice(&db, &["resume", &id]), "finished");
    let unknown = fails_json(&as_alice(&db, &["--json", "interrupt", "ffff"]), "not_found");
    assert!(unknown.contains("no run has id ffff"), "{unknown}");
}

#[test]
fn operator_actions_on_a_locked_database_fail_as_locked() {
    let (_dir, db) = session_db();
    let journal = Journal::open(&db, Options::default()).unwrap();
    let error = fails_with(&as_alice(&db, &["interrupt", &session_id()]), "locked");
    assert!(error.contains("is locked by another process"), "{error}");
    fails_json(&as_alice(&db, &["--json", "resume", &session_id()]), "locked");
    drop(journal);
}
