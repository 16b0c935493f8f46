//! A journal connected to its owner (`Journal::connect`, `Options::connect_if_held`)
//! has the embedded API: the same appends, states, reads and typed errors
//! (a fenced append is `Fenced`, a stale seq `Conflict`), subscriptions that
//! deliver each event once, and sync methods that work inside a runtime.
//! The owner serves on its own threads here; tests/… with real processes
//! live in crates/kill-harness/tests/remote_processes.rs.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::ops::ControlFlow;
use std::time::Duration;

use common::{key, step, temp_db};
use runjournal::*;

/// An owner serving `path`, and a connection to it.
fn served() -> (tempfile::TempDir, Journal, ServeHandle, Journal) {
    let (dir, path) = temp_db();
    let owner = Journal::open(&path, Options::default()).unwrap();
    let serving = owner.serve(ServeOptions::default()).unwrap();
    let client = Journal::connect(&path, ConnectOptions::default()).unwrap();
    (dir, owner, serving, client)
}

#[test]
fn a_connected_run_appends_and_its_state_is_the_owners() {
    let (_dir, owner, _serving, client) = served();
    assert!(client.is_remote());
    let run_key = key("connect", 0, "agent");
    let run = client.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.phase_started(0, "investigate").unwrap();
    run.step(step("reading auth.rs")).unwrap();
    let last = run
        .append(vec![Event::Step { messages: step("two") }, Event::TurnCompleted])
        .unwrap();
    assert_eq!(last, 4);
    assert_eq!(run.next_seq(), 5);
    assert_eq!(run.state(), owner.state(&run_key).unwrap());
    assert_eq!(client.state(&run_key).unwrap(), owner.state(&run_key).unwrap());
    assert_eq!(client.history(&run_key).unwrap(), owner.history(&run_key).unwrap());
    assert_eq!(client.run_info(&run_key).unwrap(), owner.run_info(&run_key).unwrap());
    assert_eq!(client.verify(&run_key).unwrap(), owner.verify(&run_key).unwrap());
    assert_eq!(
        client.state_at(&run_key, 2).unwrap(),
        owner.state_at(&run_key, 2).unwrap()
    );
    assert_eq!(
        client.runs(&RunFilter::default()).unwrap(),
        owner.runs(&RunFilter::default()).unwrap()
    );
    run.finish(Outcome::Success {
        output: Some("done".into()),
    })
    .unwrap();
    assert_eq!(owner.run_info(&run_key).unwrap().status, RunStatus::Completed);
}

#[test]
fn a_connected_append_with_an_older_epoch_is_fenced_and_a_stale_seq_is_a_conflict() {
    let (_dir, owner, _serving, client) = served();
    let run_key = key("fence", 0, "agent");
    let first = client.begin(run_key.clone(), RunMeta::default()).unwrap();
    first.step(step("one")).unwrap();
    let (second, state) = client.resume(&run_key).unwrap();
    assert_eq!(second.epoch(), 1);
    assert_eq!(state.last_seq, Some(2));
    let fenced = first.step(step("late")).unwrap_err();
    assert_eq!(fenced.code(), "fenced");
    assert!(
        matches!(
            fenced,
            AppendError::Fenced {
                epoch: 0,
                current: 1,
                ..
            }
        ),
        "{fenced:?}"
    );
    let conflict = second.append_at(1, vec![Event::TurnCompleted]).unwrap_err();
    assert!(
        matches!(
            conflict,
            AppendError::Conflict {
                expected: 1,
                actual: 3,
                ..
            }
        ),
        "{conflict:?}"
    );
    assert_eq!(second.append_at(3, vec![Event::TurnCompleted]).unwrap(), 3);
    assert_eq!(owner.run_info(&run_key).unwrap().head.next_seq, 4);
}

#[test]
fn connected_errors_are_the_embedded_typed_errors() {
    let (_dir, _owner, _serving, client) = served();
    let run_key = key("errors", 0, "agent");
    let missing = client.resume(&key("errors", 9, "agent")).unwrap_err();
    assert!(matches!(missing, ResumeError::NotFound { .. }), "{missing:?}");
    assert!(matches!(
        client.run_info(&key("errors", 9, "agent")).unwrap_err(),
        ReadError::NotFound { .. }
    ));
    let run = client.begin(run_key.clone(), RunMeta::default()).unwrap();
    let exists = client.begin(run_key.clone(), RunMeta::default()).unwrap_err();
    assert!(matches!(exists, BeginError::AlreadyExists { .. }), "{exists:?}");
    let out_of_order = run
        .append(vec![Event::RunStarted {
            meta: RunMeta::default(),
        }])
        .unwrap_err();
    assert_eq!(out_of_order.code(), "out_of_order");
    let refused = run.handoff_acked("h-1", "nobody").unwrap_err();
    assert_eq!(refused.code(), "refused");
    run.finish(Outcome::Success { output: None }).unwrap();
    let finished = client.resume(&run_key).unwrap_err();
    assert!(
        matches!(
            finished,
            ResumeError::Finished {
                status: RunStatus::Completed,
                ..
            }
        ),
        "{finished:?}"
    );
}

#[test]
fn a_connected_subscription_sees_stored_then_live_events_once_in_order() {
    let (_dir, _owner, _serving, client) = served();
    let run_key = key("subscribe", 0, "agent");
    let run = client.begin(run_key.clone(), RunMeta::default()).unwrap();
    run.step(step("stored")).unwrap();
    let mut subscription = client.subscribe(&run_key, 0, 64).unwrap();
    for index in 0..20 {
        run.step(step(&format!("live {index}"))).unwrap();
    }
    let seqs: Vec<u64> = (0..22)
        .map(|_| subscription.recv_timeout(Duration::from_secs(10)).unwrap().unwrap().seq)
        .collect();
    assert_eq!(seqs, (0..22).collect::<Vec<u64>>());
    assert_eq!(subscription.recv_timeout(Duration::from_millis(100)).unwrap(), None);
}

#[test]
fn open_connects_to_the_owner_of_a_held_database_when_asked() {
    let (dir, path) = temp_db();
    let owner = Journal::open(&path, Options::default()).unwrap();
    let refused = Journal::open(&path, Options::default()).unwrap_err();
    assert_eq!(refused.code(), "locked");
    let _serving = owner.serve(ServeOptions::default()).unwrap();
    let options = Options {
        connect_if_held: true,
        ..Options::default()
    };
    let client = Journal::open_existing(&path, options).unwrap();
    assert!(client.is_remote());
    let run = client.begin(key("held", 0, "agent"), RunMeta::default()).unwrap();
    run.step(step("through the socket")).unwrap();
    let mut seen = 0;
    owner
        .for_each_event(&key("held", 0, "agent"), 0, |_| {
            seen += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, 2);
    drop(dir);
}

#[test]
fn connected_sync_methods_work_inside_a_runtime_and_async_ones_await() {
    let (_dir, _owner, _serving, client) = served();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let run_key = key("async", 0, "agent");
        let run = client.begin(run_key.clone(), RunMeta::default()).unwrap();
        run.step_async(step("awaited")).await.unwrap();
        assert_eq!(run.append_at_async(2, vec![Event::TurnCompleted]).await.unwrap(), 2);
        assert_eq!(client.state_async(run_key.clone()).await.unwrap().last_seq, Some(2));
    });
}

#[test]
fn a_blocking_append_after_the_owner_served_again_reconnects_and_writes_once() {
    let (_dir, owner, serving, client) = served();
    let run_key = key("reconnect", 0, "agent");
    let run = client.begin(run_key.clone(), RunMeta::default()).unwrap();
    assert_eq!(run.step(step("before")).unwrap(), 1);
    // The pooled connection of the first append is closed with the server.
    serving.close();
    let _serving = owner.serve(ServeOptions::default()).unwrap();
    assert_eq!(run.step(step("after")).unwrap(), 2);
    assert_eq!(owner.run_info(&run_key).unwrap().head.next_seq, 3);
    assert_eq!(run.state(), owner.state(&run_key).unwrap());
}

#[test]
fn connecting_where_nothing_serves_is_unreachable() {
    let (_dir, path) = temp_db();
    let error = Journal::connect(&path, ConnectOptions::default()).unwrap_err();
    assert_eq!(error.code(), "unreachable");
}

#[test]
fn a_connected_journal_over_tcp_sends_its_bearer_token_and_a_wrong_one_is_unauthorized() {
    let (dir, path) = temp_db();
    let owner = Journal::open(&path, Options::default()).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let serving = owner
        .serve(ServeOptions::default().with_tcp("127.0.0.1:0".parse().unwrap(), &token_file))
        .unwrap();
    let address = format!("http://{}", serving.tcp_addr().unwrap());
    let client = Journal::connect(&address, ConnectOptions::default().with_token("s3cret-token")).unwrap();
    let run = client.begin(key("tcp", 0, "agent"), RunMeta::default()).unwrap();
    assert_eq!(run.step(step("over tcp")).unwrap(), 1);
    let refused = match Journal::connect(&address, ConnectOptions::default().with_token("wrong")) {
        Ok(journal) => journal.run_info(&key("tcp", 0, "agent")).unwrap_err().code(),
        Err(error) => error.code(),
    };
    assert_eq!(refused, "unauthorized");
    assert_eq!(owner.run_info(&key("tcp", 0, "agent")).unwrap().head.next_seq, 2);
}

#[test]
fn a_connected_subscription_to_every_run_sees_live_events_of_each() {
    let (_dir, _owner, _serving, client) = served();
    // Once subscribe_all returns, the owner delivers every event written after it.
    let mut all = client.subscribe_all(64).unwrap();
    let first = client.begin(key("all", 0, "a"), RunMeta::default()).unwrap();
    let second = client.begin(key("all", 1, "b"), RunMeta::default()).unwrap();
    first.step(step("a")).unwrap();
    second.step(step("b")).unwrap();
    let mut seen: Vec<(String, u64)> = (0..4)
        .map(|_| {
            let envelope = all.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
            (envelope.run.agent, envelope.seq)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![("a".into(), 0), ("a".into(), 1), ("b".into(), 0), ("b".into(), 1)]
    );
}
