//! Concurrent appenders never lose or duplicate an event; a subscriber sees
//! a run's stored then live events exactly once, in order, a lagging one is
//! told where it lagged, and the tokio API resolves once durable.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{key, step, temp_db};
use runjournal::*;

#[test]
fn concurrent_appenders_never_lose_or_duplicate_events_and_every_chain_verifies() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let threads: Vec<_> = (0..16)
        .map(|writer| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                let run = journal
                    .begin(key("fleet", writer, "agent"), RunMeta::default())
                    .unwrap();
                for index in 0..25 {
                    if index % 5 == 0 {
                        run.append(vec![
                            Event::Step {
                                messages: step(&format!("{writer}:{index}")),
                            },
                            Event::TurnCompleted,
                        ])
                        .unwrap();
                    } else {
                        run.step(step(&format!("{writer}:{index}"))).unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(journal);
    let journal = Journal::open(&path, Options::default()).unwrap();
    for writer in 0..16 {
        let run_key = key("fleet", writer, "agent");
        assert_eq!(journal.verify(&run_key).unwrap().events, 1 + 25 + 5);
        let contents: Vec<String> = journal
            .read(&run_key, 0)
            .unwrap()
            .into_iter()
            .filter_map(|envelope| match envelope.event {
                Event::Step { messages } => Some(messages[0].content.clone()),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = (0..25).map(|index| format!("{writer}:{index}")).collect();
        assert_eq!(contents, expected, "every step once, in order");
    }
}

#[test]
fn a_subscriber_that_joins_mid_stream_sees_every_event_exactly_once_in_order() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = Arc::new(journal.begin(run_key.clone(), RunMeta::default()).unwrap());
    for index in 0..50 {
        run.step(step(&format!("before {index}"))).unwrap();
    }
    // The writer is mid-stream (20 events in, 180 to go) when the subscriber joins.
    let mid_stream = Arc::new(Barrier::new(2));
    let writer = {
        let run = run.clone();
        let mid_stream = mid_stream.clone();
        std::thread::spawn(move || {
            for index in 0..200 {
                if index == 20 {
                    mid_stream.wait();
                }
                run.step(step(&format!("during {index}"))).unwrap();
            }
        })
    };
    mid_stream.wait();
    let mut subscription = journal.subscribe(&run_key, 10, 10_000).unwrap();
    writer.join().unwrap();
    let last = run.next_seq() - 1;
    let mut received = Vec::new();
    while received.last().map(|envelope: &Envelope| envelope.seq) != Some(last) {
        let envelope = subscription.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(envelope.run, run_key);
        received.push(envelope);
    }
    let seqs: Vec<u64> = received.iter().map(|envelope| envelope.seq).collect();
    assert_eq!(
        seqs,
        (10..=last).collect::<Vec<u64>>(),
        "from seq 10, no gap, no duplicate"
    );
    assert!(subscription.recv_timeout(Duration::from_millis(50)).unwrap().is_none());
    let stored = journal.read(&run_key, 10).unwrap();
    assert_eq!(received, stored, "what arrived live is what is stored, event and hash");
}

#[test]
fn a_lagging_subscriber_gets_lagged_while_writers_keep_going() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::with_durability(Durability::Buffered)).unwrap();
    let run_key = key("g", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let mut slow = journal.subscribe_all(8).unwrap();
    for index in 0..100 {
        run.step(step(&format!("step {index}"))).unwrap();
    }
    assert_eq!(
        journal.verify(&run_key).unwrap().events,
        101,
        "writers were never blocked"
    );
    let mut received = Vec::new();
    let lag = loop {
        match slow.recv() {
            Ok(envelope) => received.push(envelope.seq),
            Err(SubscribeError::Lagged(point)) => break point,
            Err(other) => panic!("expected Lagged, got {other:?}"),
        }
    };
    assert_eq!(
        received,
        (1..=8).collect::<Vec<u64>>(),
        "the buffered events arrive first"
    );
    assert_eq!(
        lag,
        LagPoint {
            run: run_key.clone(),
            seq: 9
        },
        "catch up from the first missed seq"
    );
    // Catching up from the lag point sees the rest exactly once.
    let mut catch_up = journal.subscribe(&lag.run, lag.seq, 1000).unwrap();
    let rest: Vec<u64> = (0..92).map(|_| catch_up.recv().unwrap().seq).collect();
    assert_eq!(rest, (9..=100).collect::<Vec<u64>>());
}

#[test]
fn subscribe_all_sees_every_run_and_ends_when_the_journal_closes() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let subscription = journal.subscribe_all(1000).unwrap();
    for agent in ["a", "b", "c"] {
        let run = journal.begin(key("g", 0, agent), RunMeta::default()).unwrap();
        run.step(step(agent)).unwrap();
        run.finish(Outcome::Success { output: None }).unwrap();
    }
    drop(journal);
    let mut per_run: HashMap<String, Vec<u64>> = HashMap::new();
    for envelope in subscription {
        let envelope = envelope.unwrap();
        per_run
            .entry(envelope.run.agent.clone())
            .or_default()
            .push(envelope.seq);
    }
    for agent in ["a", "b", "c"] {
        assert_eq!(
            per_run[agent],
            vec![0, 1, 2],
            "every event of {agent}, run_started included"
        );
    }
}

#[test]
fn a_subscription_to_a_missing_run_is_not_found() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let error = journal.subscribe(&key("g", 0, "nobody"), 0, 10).err().unwrap();
    assert!(
        matches!(error, SubscribeError::Read(ReadError::NotFound { .. })),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_appends_resolve_when_durable_and_the_async_stream_delivers_them() {
    use futures_core::Stream;
    use std::pin::Pin;

    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("g", 0, "a");
    let run = Arc::new(journal.begin_async(run_key.clone(), RunMeta::default()).await.unwrap());
    let mut stream = journal.subscribe_async(&run_key, 0, 1000).unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let run = run.clone();
            tokio::spawn(async move {
                for index in 0..10 {
                    run.step_async(step(&format!("{task}:{index}"))).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    run.phase_started_async(0, "plan").await.unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < 42 {
        let next = std::future::poll_fn(|context| Pin::new(&mut stream).poll_next(context)).await;
        seqs.push(next.unwrap().unwrap().seq);
    }
    assert_eq!(seqs, (0..42).collect::<Vec<u64>>());
    let state = journal.state_async(run_key.clone()).await.unwrap();
    assert_eq!(state.iteration, 40);
    let (resumed, _) = journal.resume_async(run_key.clone()).await.unwrap();
    resumed.finish_async(Outcome::Success { output: None }).await.unwrap();
    assert_eq!(journal.recoverable_async().await.unwrap().len(), 0);
    journal.sync_async().await.unwrap();
}
