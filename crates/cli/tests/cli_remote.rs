//! The CLI on a database another process holds and serves: every command
//! goes through the owner's socket (no lock error), `show --follow` tails the
//! live run until it ends, `runs --watch` prints one document per refresh.
//!
//! The owner is a real process: this test binary itself, started again with
//! `RUNJOURNAL_TEST_OWNER=<db>` (its `main` then opens the database, serves
//! it and appends to run `live/0/agent`, a step every few milliseconds, 150
//! steps, then completes the run and serves until its stdin closes). It has
//! no libtest harness (`harness = false` in Cargo.toml) so that it can be
//! that process.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{fresh, json, ok, rj, Command, Journal, Options, Path, RunKey, Value};
use runjournal::{Message, Outcome, Role, RunMeta, ServeOptions};

const OWNER: &str = "RUNJOURNAL_TEST_OWNER";
/// Steps the owner appends before it completes the run.
const STEPS: u64 = 150;
const RUN: [&str; 6] = ["--goal", "live", "--episode", "0", "--agent", "agent"];

fn main() {
    if let Ok(db) = std::env::var(OWNER) {
        owner(Path::new(&db));
        return;
    }
    let tests: [(&str, fn()); 3] = [
        (
            "every_command_reads_a_run_while_another_process_appends_to_it",
            every_command_reads_a_run_while_another_process_appends_to_it,
        ),
        (
            "show_follow_tails_the_live_run_until_it_completes",
            show_follow_tails_the_live_run_until_it_completes,
        ),
        (
            "runs_watch_prints_one_json_document_per_refresh",
            runs_watch_prints_one_json_document_per_refresh,
        ),
    ];
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|filter| !name.contains(filter)) {
            continue;
        }
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
    }
}

/// The owner process: serves `db` and appends to the live run.
fn owner(db: &Path) {
    let journal = Journal::open(db, Options::default()).unwrap();
    let serving = journal.serve(ServeOptions::default()).unwrap();
    let key = RunKey::new("live", 0, "agent").unwrap();
    let run = journal.begin(key, RunMeta::default()).unwrap();
    println!("ready");
    for index in 0..STEPS {
        run.step(vec![Message::new(Role::Assistant, format!("step {index}"))])
            .unwrap();
        // Paced so that readers overlap the appends (not a synchronisation).
        std::thread::sleep(Duration::from_millis(4));
    }
    run.finish(Outcome::Success {
        output: Some("done".into()),
    })
    .unwrap();
    println!("finished");
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
        line.clear();
    }
    drop(serving);
    journal.close().unwrap();
}

/// A running owner and its stdout.
struct Owner {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Owner {
    fn start(db: &Path) -> Owner {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(OWNER, db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        Owner { child, lines }
    }

    /// Waits for the owner's `finished` (its run completed).
    fn wait_finished(&mut self) {
        assert_eq!(self.lines.next().unwrap().unwrap(), "finished");
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

fn every_command_reads_a_run_while_another_process_appends_to_it() {
    let (_dir, db) = fresh();
    let mut owner = Owner::start(&db);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    // Read until the reads have seen the run grow (it is appended to meanwhile).
    while seen.len() < 2 || seen.first() == seen.last() {
        assert!(Instant::now() < deadline, "the run did not grow: {seen:?}");
        let state = json(&rj(&db, &[&["state", "--json"][..], &RUN[..]].concat()));
        seen.push(state["last_seq"].as_u64().unwrap());
        let runs = json(&rj(&db, &["runs", "--json"]));
        assert_eq!(runs[0]["goal"], "live");
        ok(&rj(&db, &[&["show", "--no-pager"][..], &RUN[..]].concat()));
        ok(&rj(&db, &[&["verify"][..], &RUN[..]].concat()));
    }
    owner.wait_finished();
    let state = json(&rj(&db, &[&["state", "--json"][..], &RUN[..]].concat()));
    assert_eq!(state["status"], "completed");
    assert_eq!(state["last_seq"].as_u64(), Some(STEPS + 1));
    owner.stop();
}

fn show_follow_tails_the_live_run_until_it_completes() {
    let (_dir, db) = fresh();
    let owner = Owner::start(&db);
    let output = rj(&db, &[&["--json", "show", "--follow"][..], &RUN[..]].concat());
    let text = ok(&output);
    let seqs: Vec<u64> = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..=STEPS + 1).collect::<Vec<u64>>());
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"]["type"], "run_completed");
    owner.stop();
}

fn runs_watch_prints_one_json_document_per_refresh() {
    let (_dir, db) = fresh();
    let owner = Owner::start(&db);
    let text = ok(&rj(
        &db,
        &["--json", "runs", "--watch", "--interval", "0.05", "--count", "3"],
    ));
    let documents: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(documents.len(), 3);
    for document in &documents {
        assert_eq!(document[0]["goal"], "live");
    }
    owner.stop();
}
