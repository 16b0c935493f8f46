//! A served journal used by several real processes (`remote-child`, this
//! crate's `src/bin/remote_child.rs`): an owner process holds the database
//! and serves it; clients in other processes use it only through its socket.
//!
//! - 8 processes append concurrently to 8 runs and, resuming in turn, to one
//!   shared run: there exactly the fenced and the conflicting appends (and
//!   resumes, which append `attached`) fail, with those codes; every
//!   acknowledged append is stored once at its seq; every chain verifies.
//! - A subscriber whose connection drops (its owner is killed and restarted)
//!   reconnects with `Last-Event-ID` and sees every event exactly once, in order.
//! - The owner is killed (SIGKILL) during durable appends from several
//!   clients: after a restart every acknowledged append is there, every
//!   client got an error for the append in flight (never a success it did
//!   not have), and every client reaches the restarted owner again.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runjournal::{Event, Journal, Options, RunFilter, RunKey};

const CHILD: &str = env!("CARGO_BIN_EXE_remote-child");
/// The longest any awaited line may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// A child process and the lines it printed, as they come.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(CHILD)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (with a deadline) for a line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(error) => panic!(
                    "no line {prefix:?} from {CHILD} within {PATIENCE:?} ({error}); saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Every line until the process exits, and its success.
    fn finish(mut self) -> (Vec<String>, bool) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (self.seen, status.success())
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Ends an owner cleanly: closing its stdin makes it stop serving and close.
    fn stop_owner(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            drop(stdin.flush());
        }
        assert!(
            self.child.wait().unwrap().success(),
            "the owner failed: {:?}",
            self.seen
        );
    }
}

fn owner(db: &Path) -> Proc {
    let mut owner = Proc::spawn(&["owner", db.to_str().unwrap()]);
    owner.wait_for("ready");
    owner
}

fn key(agent: &str) -> RunKey {
    RunKey::new("remote", 0, agent).unwrap()
}

/// The text of every step of the run, by seq.
fn steps(journal: &Journal, key: &RunKey) -> BTreeMap<u64, String> {
    journal
        .read(key, 0)
        .unwrap()
        .into_iter()
        .filter_map(|envelope| match envelope.event {
            Event::Step { messages } => Some((envelope.seq, messages[0].content.clone())),
            _ => None,
        })
        .collect()
}

/// `ack <seq> <text>` lines as (seq, text).
fn acks(lines: &[String]) -> Vec<(u64, String)> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("ack "))
        .map(|rest| {
            let (seq, text) = rest.split_once(' ').unwrap();
            (seq.parse().unwrap(), text.to_string())
        })
        .collect()
}

#[test]
fn eight_processes_append_through_the_socket_and_only_fenced_and_conflicting_appends_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let owner = owner(&db);
    let db_text = db.to_str().unwrap().to_string();
    // The shared run exists before the processes race to resume it.
    let mut creator = Proc::spawn(&["append", &db_text, "shared", "1"]);
    creator.wait_for("done");
    let appenders: Vec<Proc> = (0..8)
        .map(|id| Proc::spawn(&["append", &db_text, &format!("agent-{id}"), "40"]))
        .collect();
    let sharers: Vec<Proc> = (0..8)
        .map(|id| Proc::spawn(&["shared", &db_text, &id.to_string(), "6"]))
        .collect();
    let mut own_runs = Vec::new();
    for (id, appender) in appenders.into_iter().enumerate() {
        let (lines, success) = appender.finish();
        assert!(success, "appender {id}: {lines:?}");
        assert!(
            lines.contains(&"done".to_string()),
            "appender {id} did not finish: {lines:?}"
        );
        assert!(
            !lines.iter().any(|line| line.starts_with("error")),
            "appender {id}: {lines:?}"
        );
        own_runs.push((format!("agent-{id}"), acks(&lines)));
    }
    let mut shared_acks = Vec::new();
    let mut failures = BTreeMap::<String, u64>::new();
    for (id, sharer) in sharers.into_iter().enumerate() {
        let (lines, success) = sharer.finish();
        assert!(success, "sharer {id}: {lines:?}");
        for line in &lines {
            if let Some(rest) = line.strip_prefix("error ") {
                let (code, text) = rest.split_once(' ').unwrap();
                // A too-old seq is a conflict unless the handle was fenced first.
                let allowed: &[&str] = if text.ends_with("-stale") {
                    &["conflict", "fenced"]
                } else {
                    &["fenced"]
                };
                assert!(allowed.contains(&code), "sharer {id}: {text} failed with {code}");
                *failures.entry(code.to_string()).or_default() += 1;
            }
            // A resume is an append (`attached`): racing another resume, it is a conflict.
            if let Some(code) = line.strip_prefix("resume-error ") {
                assert!(["conflict", "fenced"].contains(&code), "sharer {id}: {line}");
                *failures.entry(code.to_string()).or_default() += 1;
            }
        }
        for (seq, text) in acks(&lines) {
            assert!(
                !text.ends_with("-stale"),
                "sharer {id}: a stale append succeeded at {seq}"
            );
            shared_acks.push((seq, text));
        }
    }
    assert!(failures.get("conflict").copied().unwrap_or(0) > 0, "{failures:?}");
    owner.stop_owner();

    let journal = Journal::open_existing(&db, Options::default()).unwrap();
    for record in journal.runs(&RunFilter::default()).unwrap() {
        journal.verify(&record.key).unwrap();
    }
    for (agent, acked) in own_runs {
        let stored = steps(&journal, &key(&agent));
        assert_eq!(acked.len(), 40);
        for (seq, text) in acked {
            assert_eq!(stored.get(&seq), Some(&text), "{agent} seq {seq}");
        }
    }
    let stored = steps(&journal, &key("shared"));
    let mut texts = BTreeSet::new();
    for (seq, text) in &shared_acks {
        assert_eq!(stored.get(seq), Some(text), "shared seq {seq}");
        assert!(texts.insert(text.clone()), "{text} acknowledged twice");
    }
    // Nothing stored that no process was told was stored (one step is the creator's).
    assert_eq!(stored.len(), shared_acks.len() + 1);
}

#[test]
fn a_subscriber_reconnects_with_last_event_id_and_sees_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let db_text = db.to_str().unwrap().to_string();
    let mut first_owner = owner(&db);
    let mut writer = Proc::spawn(&["append", &db_text, "followed", "20"]);
    writer.wait_for("done");
    // 1 run_started + 20 steps, then 1 attached + 20 more after the restart.
    let mut subscriber = Proc::spawn(&["subscribe", &db_text, "followed", "42"]);
    subscriber.wait_for("subscribed");
    subscriber.wait_for("seq 20");
    first_owner.kill();
    let second_owner = owner(&db);
    let mut writer = Proc::spawn(&["append", &db_text, "followed", "20"]);
    writer.wait_for("done");
    let (lines, success) = subscriber.finish();
    assert!(success, "{lines:?}");
    let seqs: Vec<u64> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("seq "))
        .map(|seq| seq.parse().unwrap())
        .collect();
    assert_eq!(seqs, (0..42).collect::<Vec<u64>>());
    second_owner.stop_owner();
}

#[test]
fn killing_the_owner_during_appends_loses_no_acknowledged_append_and_clients_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let db_text = db.to_str().unwrap().to_string();
    let mut first_owner = owner(&db);
    let mut clients: Vec<Proc> = (0..4)
        .map(|id| Proc::spawn(&["append", &db_text, &format!("client-{id}"), "100000"]))
        .collect();
    for client in &mut clients {
        client.wait_for("ack 5 ");
    }
    first_owner.kill();
    for client in &mut clients {
        client.wait_for("error ");
    }
    let second_owner = owner(&db);
    let mut outcomes = Vec::new();
    for (id, client) in clients.into_iter().enumerate() {
        let (lines, success) = client.finish();
        assert!(success, "client {id}: {lines:?}");
        let error = lines.iter().find(|line| line.starts_with("error ")).unwrap().clone();
        let code = error.split(' ').nth(1).unwrap().to_string();
        assert!(
            ["outcome_unknown", "unreachable"].contains(&code.as_str()),
            "client {id}: {error}"
        );
        assert!(
            lines.iter().any(|line| line.starts_with("reconnected ")),
            "client {id} did not reach the restarted owner: {lines:?}"
        );
        outcomes.push((id, acks(&lines), error));
    }
    second_owner.stop_owner();
    let journal = Journal::open_existing(&db, Options::default()).unwrap();
    for (id, acked, error) in outcomes {
        let run = key(&format!("client-{id}"));
        journal.verify(&run).unwrap();
        let stored = steps(&journal, &run);
        for (seq, text) in &acked {
            assert_eq!(
                stored.get(seq),
                Some(text),
                "client {id}: acknowledged seq {seq} is not stored"
            );
        }
        // At most the append in flight is stored beyond the acknowledged ones.
        let in_flight = error.split(' ').nth(2).unwrap();
        let unacknowledged: Vec<&String> = stored.values().skip(acked.len()).collect();
        assert!(
            unacknowledged.is_empty() || unacknowledged == [&in_flight.to_string()],
            "client {id}: stored beyond its acknowledgements: {unacknowledged:?}"
        );
    }
}
