//! Subscriptions across processes on PostgreSQL: a subscriber in this
//! process receives the events writer processes append (two of them, the
//! second fencing the first), caught up from a seq and then live, with no
//! gap and no duplicate; `subscribe_all` receives the run created and
//! appended elsewhere after it subscribed.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runjournal::{Envelope, Journal, Options, RunKey, RunMeta};
use runjournal_kill_harness::FENCE_GOAL;
use runjournal_postgres::testing::{as_url, test_server_url, TestDatabase};

/// Runs a `fence-child` writer until it has `acks` acknowledged batches,
/// then stops it; returns its acknowledged last seqs.
fn write_batches(db: &str, agent: &str, tag: &str, acks: usize) -> Vec<u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fence-child"))
        .args([db, agent, tag])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < acks {
        let line = lines.next().unwrap().unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            acked.push(rest.split(' ').next().unwrap().parse().unwrap());
        }
    }
    drop(stdin);
    for line in lines {
        if let Some(rest) = line.unwrap().strip_prefix("ack ") {
            acked.push(rest.split(' ').next().unwrap().parse().unwrap());
        }
    }
    assert!(child.wait().unwrap().success());
    acked
}

/// Receives until the event at `last_seq` of `key` arrived (bounded wait).
fn receive_through(subscription: &mut runjournal::Subscription, key: &RunKey, last_seq: u64) -> Vec<Envelope> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = Vec::new();
    while !received
        .iter()
        .any(|envelope: &Envelope| envelope.run == *key && envelope.seq == last_seq)
    {
        assert!(
            Instant::now() < deadline,
            "seq {last_seq} never arrived; got {}",
            received.len()
        );
        if let Some(envelope) = subscription.recv_timeout(Duration::from_millis(500)).unwrap() {
            received.push(envelope);
        }
    }
    received
}

#[test]
fn a_subscriber_receives_what_other_processes_append_without_gap_or_duplicate() {
    let server = test_server_url().unwrap_or_else(|error| panic!("{error}"));
    let database = TestDatabase::create(&server).unwrap();
    let db = as_url(database.url());
    let journal = Journal::open(&db, Options::default()).unwrap();
    let key = RunKey::new(FENCE_GOAL, 0, "watched").unwrap();
    drop(journal.begin(key.clone(), RunMeta::default()).unwrap());
    let mut everything = journal.subscribe_all(16).unwrap();
    let mut from_zero = journal.subscribe(&key, 0, 16).unwrap();

    let first = write_batches(&db, &key.agent, "a", 5);
    let mut from_two = journal.subscribe(&key, 2, 16).unwrap();
    let second = write_batches(&db, &key.agent, "b", 5);
    let last = *second.last().unwrap();
    assert!(first.last().unwrap() < second.first().unwrap());

    let stored = journal.read(&key, 0).unwrap();
    assert_eq!(
        stored.last().unwrap().seq,
        last,
        "the last acknowledged batch ends the log"
    );
    let received = receive_through(&mut from_zero, &key, last);
    assert_eq!(received, stored, "from seq 0: every stored event once, in seq order");
    let received = receive_through(&mut from_two, &key, last);
    assert_eq!(received, stored[2..], "from seq 2: caught up from there, then live");
    let received = receive_through(&mut everything, &key, last);
    assert_eq!(
        received,
        stored[1..],
        "subscribe_all: everything appended after it subscribed"
    );

    // A run created by another process after the subscription: all of it.
    let other = RunKey::new(FENCE_GOAL, 0, "created-elsewhere").unwrap();
    {
        let elsewhere = Journal::open(&db, Options::default()).unwrap();
        drop(elsewhere.begin(other.clone(), RunMeta::default()).unwrap());
    }
    let acked = write_batches(&db, &other.agent, "c", 2);
    let received = receive_through(&mut everything, &other, *acked.last().unwrap());
    assert_eq!(received, journal.read(&other, 0).unwrap(), "a new run from seq 0");
    assert_eq!(
        everything.recv_timeout(Duration::from_millis(300)).unwrap(),
        None,
        "nothing is delivered twice"
    );
}
