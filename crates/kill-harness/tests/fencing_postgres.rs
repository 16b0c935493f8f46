//! Fencing across processes on PostgreSQL: writer processes resume the same
//! run in turn while the older ones keep appending. Exactly the appends of
//! the newest epoch land; every append of a stale writer is `Fenced`;
//! nothing acknowledged is lost, nothing lands twice, nothing unacknowledged
//! lands.
//!
//! Each writer is the `fence-child` binary of this crate
//! (`src/bin/fence_child.rs`): it resumes the run (a new epoch, `attached`)
//! and appends framed 3-event batches named `<writer>.<n>` until the parent
//! closes its stdin or it is fenced (then it tries 5 more appends, each of
//! which must be fenced, and exits). The parent starts writer k+1 once
//! writer k has three acknowledged batches, so writer k is appending when it
//! is fenced. The processes share nothing but the database.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runjournal::{Event, Journal, Options, RunKey, RunMeta};
use runjournal_kill_harness::FENCE_GOAL;
use runjournal_postgres::testing::{as_url, test_server_url, TestDatabase};

/// How many writers resume the run in turn.
const WRITERS: usize = 5;

/// Acknowledged batches a writer has before the next one resumes.
const ACKS_BEFORE_NEXT: usize = 3;

/// Appends a fenced writer tries in all: the first refusal and 5 more.
const REFUSALS: usize = 6;

struct Writer {
    tag: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Writer {
    fn spawn(db: &str, agent: &str, tag: &str) -> Writer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fence-child"))
            .args([db, agent, tag])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Writer {
            tag: tag.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until `count` of them start with `prefix` (bounded wait).
    fn wait_for(&mut self, prefix: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.seen.iter().filter(|line| line.starts_with(prefix)).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(error) => panic!(
                    "{}: waiting for {count} {prefix:?} lines: {error}; saw {:?}",
                    self.tag, self.seen
                ),
            }
        }
    }

    /// Waits for the process to end; returns everything it printed.
    fn finish(mut self) -> (String, Vec<String>) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{} failed: {status}", self.tag);
        self.seen.extend(self.lines.iter());
        (self.tag, self.seen)
    }
}

fn epoch_of_attached(lines: &[String], tag: &str) -> u64 {
    let attached: Vec<&String> = lines.iter().filter(|line| line.starts_with("attached ")).collect();
    assert_eq!(attached.len(), 1, "{tag}: {lines:?}");
    attached[0].split(' ').nth(2).unwrap().parse().unwrap()
}

fn custom<'a>(event: &'a Event, wanted: &str) -> Option<&'a str> {
    match event {
        Event::Custom { kind, data } if kind == wanted => Some(data),
        _ => None,
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: the writers in turn, what each printed, then the log against it"
)]
fn writers_resuming_in_turn_across_processes_fence_every_stale_append() {
    let server = test_server_url().unwrap_or_else(|error| panic!("{error}"));
    let database = TestDatabase::create(&server).unwrap();
    let db = as_url(database.url());
    let key = RunKey::new(FENCE_GOAL, 0, "shared").unwrap();
    {
        let journal = Journal::open(&db, Options::default()).unwrap();
        journal.begin(key.clone(), RunMeta::default()).unwrap();
    }

    let mut running: Vec<Writer> = Vec::new();
    for k in 0..WRITERS {
        let mut writer = Writer::spawn(&db, &key.agent, &format!("w{k}"));
        writer.wait_for("attached ", 1);
        writer.wait_for("ack ", ACKS_BEFORE_NEXT);
        running.push(writer);
    }
    // The stale writers stop by themselves once fenced; the newest is told to.
    let outputs: Vec<(String, Vec<String>)> = running.into_iter().map(Writer::finish).collect();

    let mut epochs = Vec::new();
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused = 0;
    for (k, (tag, lines)) in outputs.iter().enumerate() {
        let epoch = epoch_of_attached(lines, tag);
        epochs.push(epoch);
        let fenced: Vec<&String> = lines.iter().filter(|line| line.starts_with("fenced ")).collect();
        if k + 1 < WRITERS {
            assert_eq!(
                fenced.len(),
                REFUSALS,
                "{tag}: every append after the first refusal is refused: {lines:?}"
            );
            for line in &fenced {
                let parts: Vec<u64> = line.split(' ').skip(1).map(|n| n.parse().unwrap()).collect();
                assert_eq!(parts[0], epoch, "{tag}: {line}");
                assert!(parts[1] > epoch, "{tag}: fenced by a newer epoch: {line}");
            }
            let first_fenced = lines.iter().position(|line| line.starts_with("fenced ")).unwrap();
            assert!(
                lines[first_fenced..].iter().all(|line| !line.starts_with("ack ")),
                "{tag}: nothing is acknowledged once fenced: {lines:?}"
            );
        } else {
            assert!(fenced.is_empty(), "the newest writer is never fenced: {lines:?}");
        }
        refused += fenced.len();
        for line in lines.iter().filter(|line| line.starts_with("ack ")) {
            let mut parts = line.split(' ').skip(1);
            let last: u64 = parts.next().unwrap().parse().unwrap();
            let id = parts.next().unwrap().to_owned();
            assert!(id.starts_with(&format!("{tag}.")), "{line}");
            assert!(acked.insert(id, last).is_none(), "{line} acknowledged twice");
        }
        assert_eq!(lines.last().map(String::as_str), Some("done"), "{tag}: {lines:?}");
    }
    assert!(
        epochs.windows(2).all(|pair| pair[0] < pair[1]),
        "each resume is a newer epoch: {epochs:?}"
    );

    // The log: run_started, then per writer its attached and its batches, in
    // its epoch, and exactly the acknowledged batches.
    let journal = Journal::open_existing(&db, Options::default()).unwrap();
    journal.verify(&key).unwrap();
    let events = journal.read(&key, 0).unwrap();
    assert!(matches!(events[0].event, Event::RunStarted { .. }), "{:?}", events[0]);
    let mut writer: Option<usize> = None;
    let mut attached_epochs = Vec::new();
    let mut landed: BTreeMap<String, u64> = BTreeMap::new();
    let mut seq = 1;
    while seq < events.len() {
        let envelope = &events[seq];
        if let Event::Attached { .. } = envelope.event {
            attached_epochs.push(envelope.epoch);
            writer = Some(attached_epochs.len() - 1);
            seq += 1;
            continue;
        }
        let frame = custom(&envelope.event, "batch-begin").unwrap_or_else(|| panic!("seq {seq}: {envelope:?}"));
        let id = frame.strip_prefix("n=3 id=").unwrap().to_owned();
        let owner = writer.unwrap_or_else(|| panic!("batch {id} at seq {seq} before any resume"));
        assert!(
            id.starts_with(&format!("w{owner}.")),
            "batch {id} at seq {seq} landed after writer w{owner} resumed (a stale append landed)"
        );
        for inner in &events[seq..seq + 3] {
            assert_eq!(
                inner.epoch, epochs[owner],
                "{id}: seq {} in writer w{owner}'s epoch",
                inner.seq
            );
        }
        assert_eq!(
            custom(&events[seq + 2].event, "batch-end"),
            Some(frame),
            "{id} is whole"
        );
        assert!(
            landed.insert(id.clone(), (seq + 2) as u64).is_none(),
            "{id} landed twice"
        );
        seq += 3;
    }
    assert_eq!(attached_epochs, epochs, "one attached per writer, in turn");
    assert_eq!(
        landed, acked,
        "exactly the acknowledged batches landed, each at its acknowledged seq"
    );
    println!(
        "fencing across processes: {WRITERS} writers, {} batches landed, {refused} stale appends fenced",
        landed.len()
    );
}
