//! The served API over its real Unix socket: every endpoint, and the
//! bad-request table of docs/http-api.md (each refusal has its typed error
//! body and status, and changes nothing stored).
#![allow(clippy::unwrap_used, reason = "a failed call fails the test")]

#[path = "common/http.rs"]
mod http;
#[path = "common/served.rs"]
mod served;

use http::{get, post};
use runjournal::wire::{self, encode_key, run_path};
use runjournal::{RunKey, ServeOptions};
use serde_json::{json, Value};
use served::{append, begin, key, key_json, serve, serve_with, step, stored_next_seq};

#[test]
fn health_names_the_server_and_api_version() {
    let served = serve();
    let reply = get(&served.socket, "/v1/health");
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["server"], "runjournal");
    assert_eq!(body["api"], wire::API_VERSION);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn begin_append_read_state_and_finish_round_trip() {
    let served = serve();
    let key = key("fix/login bug", 0);
    let handle = begin(&served, &key);
    assert_eq!(handle["epoch"], 0);
    assert_eq!(handle["next_seq"], 1);

    let reply = append(&served, &key, 0, 1, &[step("one"), step("two")]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["envelopes"].as_array().unwrap().len(), 2);
    assert_eq!(body["envelopes"][1]["seq"], 2);
    assert_eq!(body["handle"]["next_seq"], 3);
    assert_eq!(body["handle"]["head"], body["envelopes"][1]["hash"]);
    let stored = served.journal.read(&key, 0).unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(serde_json::to_value(&stored[2]).unwrap(), body["envelopes"][1]);

    let page = get(&served.socket, &format!("{}/events?from=1&limit=1", run_path(&key))).json();
    assert_eq!(page["envelopes"].as_array().unwrap().len(), 1);
    assert_eq!(page["envelopes"][0]["seq"], 1);
    assert_eq!(page["next"], 2);
    let last = get(&served.socket, &format!("{}/events?from=2", run_path(&key))).json();
    assert_eq!(last["next"], Value::Null);

    let state = get(&served.socket, &format!("{}/state", run_path(&key))).json();
    assert_eq!(state["iteration"], 2);
    assert_eq!(state["transcript"].as_array().unwrap().len(), 2);
    let earlier = get(&served.socket, &format!("{}/state?at=1", run_path(&key))).json();
    assert_eq!(earlier["iteration"], 1);
    let parsed: runjournal::ResumeState = serde_json::from_value(state).unwrap();
    assert_eq!(parsed.iteration, served.journal.state(&key).unwrap().iteration);

    let finish = post(
        &served.socket,
        &format!("{}/finish", run_path(&key)),
        &json!({"epoch": 0, "expected_seq": 3, "outcome": {"completed": {"output": "done"}}}),
    );
    assert_eq!(finish.status, 200, "{}", finish.text());
    assert_eq!(finish.json()["envelopes"][0]["event"]["type"], "run_completed");
    let record = get(&served.socket, &run_path(&key)).json();
    assert_eq!(record["status"], "completed");
    assert_eq!(record["head"]["next_seq"], 4);
    let verify = get(&served.socket, &format!("{}/verify", run_path(&key))).json();
    assert_eq!(verify["events"], 4);
    assert_eq!(verify["head"], finish.json()["handle"]["head"]);
}

#[test]
fn an_append_asking_for_receipts_is_answered_with_each_events_seq_time_and_hash() {
    let served = serve();
    let key = key("receipts", 0);
    begin(&served, &key);
    let reply = post(
        &served.socket,
        &format!("{}/events?answer=receipts", run_path(&key)),
        &json!({"epoch": 0, "expected_seq": 1, "events": [step("one"), step("two")]}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert!(body.get("envelopes").is_none(), "{body}");
    let stored = served.journal.read(&key, 1).unwrap();
    let expected: Vec<Value> = stored
        .iter()
        .map(|envelope| json!({"seq": envelope.seq, "ts": envelope.ts, "hash": envelope.hash}))
        .collect();
    assert_eq!(body["receipts"], Value::Array(expected));
    assert_eq!(body["handle"]["next_seq"], 3);
    assert_eq!(body["handle"]["head"], body["receipts"][1]["hash"]);

    let envelopes = post(
        &served.socket,
        &format!("{}/events?answer=envelopes", run_path(&key)),
        &json!({"epoch": 0, "expected_seq": 3, "events": [step("three")]}),
    );
    assert_eq!(envelopes.json()["envelopes"][0]["seq"], 3, "{}", envelopes.text());
}

#[test]
fn bad_request_an_unknown_answer_form_is_invalid_request_and_stores_nothing() {
    let served = serve();
    let key = key("receipts", 1);
    begin(&served, &key);
    let reply = post(
        &served.socket,
        &format!("{}/events?answer=hashes", run_path(&key)),
        &json!({"epoch": 0, "expected_seq": 1, "events": [step("one")]}),
    );
    assert_eq!((reply.status, reply.code()), (400, "invalid_request".to_string()));
    assert_eq!(stored_next_seq(&served, &key), 1);
}

#[test]
fn resume_opens_a_new_epoch_and_returns_the_state() {
    let served = serve();
    let key = key("g", 0);
    begin(&served, &key);
    let reply = post(
        &served.socket,
        &format!("{}/resume", run_path(&key)),
        &json!({"owner": "client/1", "expect": {"model": "m"}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["handle"]["epoch"], 1);
    assert_eq!(body["handle"]["next_seq"], 2);
    assert_eq!(body["state"]["epoch"], 1);
    let attached = &served.journal.read(&key, 1).unwrap()[0];
    assert_eq!(serde_json::to_value(&attached.event).unwrap()["owner"], "client/1");

    let mismatch = post(
        &served.socket,
        &format!("{}/resume", run_path(&key)),
        &json!({"expect": {"model": "other"}}),
    );
    assert_eq!((mismatch.status, mismatch.code()), (400, "mismatch".to_string()));
    assert_eq!(mismatch.json()["error"]["details"]["field"], "model");
    assert_eq!(stored_next_seq(&served, &key), 2);

    let latest = post(
        &served.socket,
        "/v1/resume-latest",
        &json!({"goal": "g", "agent": "agent-0"}),
    );
    assert_eq!(latest.status, 200, "{}", latest.text());
    assert_eq!(latest.json()["handle"]["epoch"], 2);
}

// The bad-request table (docs/http-api.md#bad-requests), one test per row.

#[test]
fn bad_request_malformed_json_is_invalid_request_and_stores_nothing() {
    let served = serve();
    let key = key("g", 0);
    begin(&served, &key);
    for body in [
        "{\"epoch\": 0,",
        "[1,2]",
        "{\"epoch\":0,\"expected_seq\":1,\"events\":[],\"extra\":1}",
    ] {
        let reply = http::call(
            &served.socket,
            "POST",
            &format!("{}/events", run_path(&key)),
            Some(body),
        );
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_request".to_string()),
            "{body}"
        );
    }
    let unknown_event = append(
        &served,
        &key,
        0,
        1,
        &[json!({"type": "step", "messages": [], "bogus": 1})],
    );
    assert_eq!(unknown_event.code(), "invalid_request");
    assert_eq!(stored_next_seq(&served, &key), 1);
}

#[test]
fn bad_request_body_over_the_limit_is_payload_too_large_and_stores_nothing() {
    let served = serve_with(ServeOptions {
        max_body_bytes: Some(2048),
        ..ServeOptions::default()
    });
    let key = key("g", 0);
    begin(&served, &key);
    let reply = append(&served, &key, 0, 1, &[step(&"x".repeat(4096))]);
    assert_eq!((reply.status, reply.code()), (413, "payload_too_large".to_string()));
    assert_eq!(stored_next_seq(&served, &key), 1);
}

#[test]
fn bad_request_unknown_run_is_not_found() {
    let served = serve();
    let missing = key("nobody", 9);
    for reply in [
        get(&served.socket, &run_path(&missing)),
        get(&served.socket, &format!("{}/state", run_path(&missing))),
        append(&served, &missing, 0, 1, &[step("x")]),
        post(&served.socket, &format!("{}/resume", run_path(&missing)), &json!({})),
    ] {
        assert_eq!(
            (reply.status, reply.code()),
            (404, "not_found".to_string()),
            "{}",
            reply.text()
        );
        assert_eq!(reply.json()["error"]["run"], key_json(&missing));
    }
    assert!(served.stored_runs().is_empty());
}

#[test]
fn bad_request_stale_epoch_is_fenced_and_stores_nothing() {
    let served = serve();
    let key = key("g", 0);
    begin(&served, &key);
    let resumed = post(&served.socket, &format!("{}/resume", run_path(&key)), &json!({}));
    assert_eq!(resumed.status, 200);
    let reply = append(&served, &key, 0, 2, &[step("late")]);
    assert_eq!(
        (reply.status, reply.code()),
        (409, "fenced".to_string()),
        "{}",
        reply.text()
    );
    let error = &reply.json()["error"];
    assert_eq!(error["details"]["epoch"], 0);
    assert_eq!(error["details"]["current"], 1);
    assert_eq!(error["run"], key_json(&key));
    assert_eq!(stored_next_seq(&served, &key), 2);
}

#[test]
fn bad_request_expected_seq_too_old_or_too_new_is_conflict_and_stores_nothing() {
    let served = serve();
    let key = key("g", 0);
    begin(&served, &key);
    assert_eq!(append(&served, &key, 0, 1, &[step("one")]).status, 200);
    for expected in [1_u64, 7] {
        let reply = append(&served, &key, 0, expected, &[step("again")]);
        assert_eq!(
            (reply.status, reply.code()),
            (409, "conflict".to_string()),
            "{}",
            reply.text()
        );
        assert_eq!(reply.json()["error"]["details"]["expected"], expected);
        assert_eq!(reply.json()["error"]["details"]["actual"], 2);
        assert_eq!(stored_next_seq(&served, &key), 2);
    }
}

#[test]
fn bad_request_event_out_of_order_is_refused_and_stores_nothing() {
    let served = serve();
    let key = key("g", 0);
    begin(&served, &key);
    let reply = append(&served, &key, 0, 1, &[json!({"type": "run_started", "meta": {}})]);
    assert_eq!(
        (reply.status, reply.code()),
        (400, "out_of_order".to_string()),
        "{}",
        reply.text()
    );
    assert_eq!(reply.json()["error"]["seq"], 1);
    assert_eq!(stored_next_seq(&served, &key), 1);
}

#[test]
fn bad_request_unknown_route_and_method_are_typed() {
    let served = serve();
    let reply = get(&served.socket, "/v1/nothing-here");
    assert_eq!((reply.status, reply.code()), (404, "unknown_route".to_string()));
    let reply = http::call(&served.socket, "DELETE", "/v1/runs", None);
    assert_eq!((reply.status, reply.code()), (405, "method_not_allowed".to_string()));
    let reply = get(&served.socket, "/v1/runs/g/not-a-number/a");
    assert_eq!((reply.status, reply.code()), (400, "invalid_request".to_string()));
    let reply = get(&served.socket, "/v1/runs?limit=10001");
    assert_eq!((reply.status, reply.code()), (400, "invalid_request".to_string()));
}

#[test]
fn typed_checks_refuse_what_the_fold_would_ignore() {
    let served = serve();
    let key = key("g", 0);
    begin(&served, &key);
    let reply = post(
        &served.socket,
        &format!("{}/events", run_path(&key)),
        &json!({"epoch": 0, "expected_seq": 1, "checks": "typed",
                "events": [{"type": "handoff_acked", "id": "never-sent", "by": "agent-1"}]}),
    );
    assert_eq!(
        (reply.status, reply.code()),
        (400, "refused".to_string()),
        "{}",
        reply.text()
    );
    assert_eq!(stored_next_seq(&served, &key), 1);
}

#[test]
fn lineage_endpoints_fork_fanout_rewind_and_read_it_back() {
    let served = serve();
    let parent = key("tree", 0);
    begin(&served, &parent);
    assert_eq!(append(&served, &parent, 0, 1, &[step("a"), step("b")]).status, 200);
    let child = RunKey::new("tree", 5, "agent-0").unwrap();
    let fork = post(
        &served.socket,
        &format!("{}/fork", run_path(&parent)),
        &json!({"at_seq": 1, "child": key_json(&child)}),
    );
    assert_eq!(fork.status, 201, "{}", fork.text());
    assert_eq!(fork.json()["handle"]["run"], key_json(&child));
    // The child's handle appends through the server at epoch 0.
    let next = fork.json()["handle"]["next_seq"].as_u64().unwrap();
    assert_eq!(append(&served, &child, 0, next, &[step("child")]).status, 200);

    let fanout = post(
        &served.socket,
        &format!("{}/fanout", run_path(&parent)),
        &json!({"at_seq": 2, "n": 2}),
    );
    assert_eq!(fanout.status, 201, "{}", fanout.text());
    assert_eq!(fanout.json()["handles"].as_array().unwrap().len(), 2);

    let children = get(&served.socket, &format!("{}/children", run_path(&parent))).json();
    assert_eq!(children["runs"].as_array().unwrap().len(), 3);
    let descendants = get(&served.socket, &format!("{}/descendants", run_path(&parent))).json();
    assert_eq!(descendants["runs"].as_array().unwrap().len(), 3);
    let up = get(&served.socket, &format!("{}/parent", run_path(&child))).json();
    assert_eq!(up["run"]["key"], key_json(&parent));
    assert_eq!(
        get(&served.socket, &format!("{}/parent", run_path(&parent))).json()["run"],
        Value::Null
    );
    let filtered = get(&served.socket, &format!("/v1/runs?parent={}", encode_key(&parent))).json();
    assert_eq!(filtered["runs"].as_array().unwrap().len(), 3);

    let history = get(&served.socket, &format!("{}/history", run_path(&child))).json();
    let seqs: Vec<u64> = history["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|envelope| envelope["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![0, 1, 0, 1]);
    // A page of the history: positions count across the ancestor's prefix.
    let page = get(&served.socket, &format!("{}/history?from=1&limit=2", run_path(&child))).json();
    let page_seqs: Vec<u64> = page["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|envelope| envelope["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(page_seqs, vec![1, 0]);
    assert_eq!(page["next"], 3);
    let last = get(&served.socket, &format!("{}/history?from=3&limit=2", run_path(&child))).json();
    assert_eq!(last["envelopes"].as_array().unwrap().len(), 1);
    assert_eq!(last["next"], Value::Null);

    let diff = get(
        &served.socket,
        &format!("/v1/diff?a={}&b={}", encode_key(&parent), encode_key(&child)),
    )
    .json();
    assert_eq!(diff["common"], 2);

    let rewind = post(
        &served.socket,
        &format!("{}/rewind", run_path(&child)),
        &json!({"at_seq": 0}),
    );
    assert_eq!(rewind.status, 201, "{}", rewind.text());
    assert_eq!(
        served.journal.run_info(&child).unwrap().status,
        runjournal::RunStatus::Superseded
    );
}

#[test]
fn operator_endpoints_interrupt_resume_and_fail() {
    let served = serve();
    let key = key("ops", 0);
    begin(&served, &key);
    let interrupt = post(
        &served.socket,
        &format!("{}/interrupt", run_path(&key)),
        &json!({"operator": "me@host"}),
    );
    assert_eq!(interrupt.status, 200, "{}", interrupt.text());
    assert_eq!(interrupt.json()["status"], "interrupted");
    let again = post(
        &served.socket,
        &format!("{}/interrupt", run_path(&key)),
        &json!({"operator": "me@host"}),
    );
    assert_eq!((again.status, again.code()), (409, "not_allowed".to_string()));
    let resumed = post(
        &served.socket,
        &format!("{}/operator-resume", run_path(&key)),
        &json!({"operator": "me@host"}),
    );
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    let failed = post(
        &served.socket,
        &format!("{}/fail", run_path(&key)),
        &json!({"operator": "me@host", "reason": "stuck"}),
    );
    assert_eq!(failed.status, 200, "{}", failed.text());
    assert_eq!(
        served.journal.run_info(&key).unwrap().status,
        runjournal::RunStatus::Failed
    );
}

#[test]
fn run_lists_episodes_recoverable_sync_rebuild_and_metrics() {
    let served = serve();
    begin(&served, &key("list", 0));
    begin(&served, &key("list", 1));
    begin(&served, &key("other", 0));
    let runs = get(&served.socket, "/v1/runs?goal=list&status=running&limit=1").json();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    assert_eq!(runs["runs"][0]["key"]["goal"], "list");
    let latest = get(&served.socket, "/v1/episodes/latest?goal=list&agent=agent-0").json();
    assert_eq!(latest["episode"], 1);
    let none = get(&served.socket, "/v1/episodes/latest?goal=none&agent=agent-0").json();
    assert_eq!(none["episode"], Value::Null);
    assert_eq!(get(&served.socket, "/v1/episodes/next?goal=list").json()["episode"], 2);
    let recoverable = get(&served.socket, "/v1/recoverable").json();
    assert_eq!(recoverable["states"].as_array().unwrap().len(), 3);
    assert_eq!(post(&served.socket, "/v1/sync", &json!({})).status, 200);
    let rebuilt = post(
        &served.socket,
        &format!("{}/snapshots/rebuild", run_path(&key("list", 0))),
        &json!({}),
    );
    assert_eq!(rebuilt.status, 200, "{}", rebuilt.text());
    for path in ["/metrics", "/v1/metrics"] {
        let metrics = get(&served.socket, path);
        assert_eq!(metrics.status, 200);
        assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
        let text = metrics.text();
        assert!(text.contains("runjournal_events_total 3"), "{text}");
        assert!(text.contains("runjournal_requests_total"), "{text}");
    }
    get(&served.socket, "/v1/nothing");
    let text = get(&served.socket, "/metrics").text();
    assert!(
        text.contains("runjournal_rejections_total{code=\"unknown_route\"} 1"),
        "{text}"
    );
}

#[test]
fn purge_removes_runs_and_dry_run_keeps_them() {
    let served = serve();
    let key = key("purge", 0);
    begin(&served, &key);
    let policy = json!({"explicit": [key_json(&key)]});
    let dry = post(&served.socket, "/v1/purge", &json!({"policy": policy, "dry_run": true}));
    assert_eq!(dry.status, 200, "{}", dry.text());
    assert_eq!(dry.json()["purged"][0]["run"], key_json(&key));
    assert!(served.journal.run_info(&key).is_ok());
    let real = post(&served.socket, "/v1/purge", &json!({"policy": policy}));
    assert_eq!(real.status, 200, "{}", real.text());
    assert!(served.journal.run_info(&key).is_err());
}

#[test]
fn export_streams_json_lines_and_import_reads_them_into_another_database() {
    let served = serve();
    let key = key("move", 0);
    begin(&served, &key);
    assert_eq!(append(&served, &key, 0, 1, &[step("a")]).status, 200);
    let export = get(&served.socket, &format!("/v1/export?run={}", encode_key(&key)));
    assert_eq!(export.status, 200);
    assert_eq!(export.header("transfer-encoding"), Some("chunked"));
    let text = export.text();
    assert_eq!(text.lines().count(), 2);

    let other = serve();
    let reply = http::call(&other.socket, "POST", "/v1/import", Some(&text));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["events"], 2);
    assert_eq!(
        other.journal.read(&key, 0).unwrap(),
        served.journal.read(&key, 0).unwrap()
    );

    let again = http::call(&other.socket, "POST", "/v1/import", Some(&text));
    assert_eq!(
        (again.status, again.code()),
        (409, "already_exists".to_string()),
        "{}",
        again.text()
    );
}

#[test]
fn import_over_its_bound_is_payload_too_large_and_imports_nothing() {
    let served = serve_with(ServeOptions {
        max_import_bytes: 100,
        ..ServeOptions::default()
    });
    let line = json!({"run": {"goal": "g", "episode": 0, "agent": "a"}, "seq": 0,
                      "event": {"type": "run_started", "meta": {"prompt": "x".repeat(200)}}});
    let reply = http::call(&served.socket, "POST", "/v1/import", Some(&line.to_string()));
    assert_eq!((reply.status, reply.code()), (413, "payload_too_large".to_string()));
    assert!(served.stored_runs().is_empty());
}

#[test]
fn closing_the_server_removes_its_socket() {
    let served = serve();
    let socket = served.socket.clone();
    assert!(socket.exists());
    served.server.close();
    assert!(!socket.exists());
}
