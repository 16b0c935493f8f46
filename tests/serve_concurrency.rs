//! Many clients at once through the socket: 8 clients append to 8 runs and
//! to one shared run while a ninth resumes the shared run. On the shared run
//! exactly the conflicting and fenced appends fail, with those codes, and
//! nothing else; every chain verifies and holds exactly what was acknowledged.
#![allow(clippy::unwrap_used, reason = "a failed call fails the test")]

#[path = "common/http.rs"]
mod http;
#[path = "common/served.rs"]
mod served;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::{get, post};
use runjournal::wire::run_path;
use runjournal::RunKey;
use serde_json::json;
use served::{serve, step, Served};

const CLIENTS: u32 = 8;
const APPENDS: u64 = 25;

#[test]
fn eight_clients_append_to_their_runs_and_to_a_shared_one_and_only_fenced_and_conflict_fail() {
    let Served {
        dir: _dir,
        journal,
        server,
        socket,
    } = serve();
    let socket = Arc::new(socket);
    let shared = RunKey::new("shared", 0, "a").unwrap();
    assert_eq!(post(&socket, "/v1/runs", &json!({"run": shared})).status, 201);

    let acknowledged = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let fenced = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let socket = socket.clone();
        let shared = shared.clone();
        let (acknowledged, conflicts, fenced) = (acknowledged.clone(), conflicts.clone(), fenced.clone());
        clients.push(std::thread::spawn(move || {
            let own = RunKey::new("own", client, "a").unwrap();
            assert_eq!(post(&socket, "/v1/runs", &json!({"run": own})).status, 201);
            for index in 0..APPENDS {
                // Its own run: never refused.
                let reply = post(
                    &socket,
                    &format!("{}/events", run_path(&own)),
                    &json!({"epoch": 0, "expected_seq": index + 1, "events": [step("own")]}),
                );
                assert_eq!(reply.status, 200, "{}", reply.text());
                // The shared run: at what it last saw.
                let record = get(&socket, &run_path(&shared)).json();
                let (epoch, next) = (
                    record["head"]["epoch"].as_u64().unwrap(),
                    record["head"]["next_seq"].as_u64().unwrap(),
                );
                let reply = post(
                    &socket,
                    &format!("{}/events", run_path(&shared)),
                    &json!({"epoch": epoch, "expected_seq": next, "events": [step(&format!("{client}/{index}"))]}),
                );
                match (reply.status, reply.code().as_str()) {
                    (200, _) => drop(acknowledged.fetch_add(1, Ordering::SeqCst)),
                    (409, "conflict") => drop(conflicts.fetch_add(1, Ordering::SeqCst)),
                    (409, "fenced") => drop(fenced.fetch_add(1, Ordering::SeqCst)),
                    other => panic!("an append failed otherwise: {other:?} {}", reply.text()),
                }
            }
        }));
    }
    let mut resumes = 0;
    for _ in 0..3 {
        let reply = post(
            &socket,
            &format!("{}/resume", run_path(&shared)),
            &json!({"owner": "resumer"}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        resumes += 1;
    }
    for client in clients {
        client.join().unwrap();
    }
    let attempts = u64::from(CLIENTS) * APPENDS;
    let (acknowledged, conflicts, fenced) = (
        acknowledged.load(Ordering::SeqCst),
        conflicts.load(Ordering::SeqCst),
        fenced.load(Ordering::SeqCst),
    );
    assert_eq!(acknowledged + conflicts + fenced, attempts);
    assert!(acknowledged > 0);
    // The shared run holds run_started, every acknowledged append and the resumes' attached.
    assert_eq!(
        journal.run_info(&shared).unwrap().head.next_seq,
        1 + acknowledged + resumes
    );
    let steps = journal
        .read(&shared, 0)
        .unwrap()
        .iter()
        .filter(|envelope| matches!(envelope.event, runjournal::Event::Step { .. }))
        .count() as u64;
    assert_eq!(steps, acknowledged);
    for client in 0..CLIENTS {
        let own = RunKey::new("own", client, "a").unwrap();
        assert_eq!(journal.verify(&own).unwrap().events, 1 + APPENDS);
    }
    assert_eq!(journal.verify(&shared).unwrap().events, 1 + acknowledged + resumes);
    let metrics = get(&socket, "/metrics").text();
    assert!(
        metrics.contains(&format!("runjournal_rejections_total{{code=\"conflict\"}} {conflicts}")) || conflicts == 0,
        "{metrics}"
    );
    server.close();
}
