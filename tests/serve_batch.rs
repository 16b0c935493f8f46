//! `POST /v1/appends` over the real Unix socket: every item is applied as its
//! own `POST /v1/runs/{k}/events?answer=receipts` would be (its receipts, or
//! the error body that append gets), a refused batch stores nothing, and the
//! rows of docs/http-api.md#bad-requests for the batch endpoint.
#![allow(clippy::unwrap_used, reason = "a failed call fails the test")]

#[path = "common/http.rs"]
mod http;
#[path = "common/served.rs"]
mod served;

use std::sync::Arc;
use std::time::Duration;

use http::{get, post, Reply};
use runjournal::core::testing::faulty::{Fault, FaultyStore, OpClass};
use runjournal::core::MemoryStore;
use runjournal::wire::{self, run_path};
use runjournal::{Durability, Event, Options, RunKey, ServeOptions};
use serde_json::{json, Value};
use served::{append, begin, key, key_json, serve, serve_store, serve_with, step, stored_next_seq, Served};

/// One item of a batch: an append of `events` to `key`.
fn item(key: &RunKey, epoch: u64, expected_seq: u64, events: &[Value]) -> Value {
    json!({"run": key_json(key), "epoch": epoch, "expected_seq": expected_seq, "events": events})
}

/// `POST /v1/appends` of `items`.
fn appends(served: &Served, items: &[Value]) -> Reply {
    post(&served.socket, "/v1/appends", &json!({"appends": items}))
}

/// The per-item results of a batch that was answered `200`.
fn results(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["results"].as_array().unwrap().clone()
}

/// Resumes `key` through the server (a new epoch) and returns its handle.
fn resume(served: &Served, key: &RunKey) -> Value {
    let reply = post(&served.socket, &format!("{}/resume", run_path(key)), &json!({}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["handle"].clone()
}

/// The value of the plain metric `name` in a `/metrics` text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

/// Asserts `result` is the receipts of `events` written to `key` at `epoch`
/// from `expected_seq`, exactly as stored and as the single append's
/// `?answer=receipts` would give them.
fn assert_written(served: &Served, result: &Value, key: &RunKey, epoch: u64, expected_seq: u64, events: &[Value]) {
    assert!(result.get("error").is_none(), "{result}");
    let stored: Vec<_> = served
        .journal
        .read(key, expected_seq)
        .unwrap()
        .into_iter()
        .take(events.len())
        .collect();
    assert_eq!(stored.len(), events.len(), "{key:?} from {expected_seq}");
    let receipts: Vec<Value> = stored
        .iter()
        .map(|envelope| json!({"seq": envelope.seq, "ts": envelope.ts, "hash": envelope.hash}))
        .collect();
    assert_eq!(
        result["receipts"],
        Value::Array(receipts),
        "{key:?} from {expected_seq}"
    );
    for (envelope, event) in stored.iter().zip(events) {
        let sent: Event = serde_json::from_value(event.clone()).unwrap();
        assert_eq!(envelope.event, sent);
        assert_eq!(envelope.epoch, epoch);
    }
    let last = stored.last().unwrap();
    let handle = json!({"run": key_json(key), "epoch": epoch, "next_seq": last.seq + 1, "head": last.hash});
    assert_eq!(result["handle"], handle);
}

/// Asserts the chain of `key` verifies over exactly its stored events.
fn assert_chain_verifies(served: &Served, key: &RunKey) {
    let report = served.journal.verify(key).unwrap();
    assert_eq!(report.events, stored_next_seq(served, key));
    assert_eq!(report.head, served.journal.run_info(key).unwrap().head.hash);
}

/// Asserts a batch item's failure is the status and error body the single
/// append `single` was answered with.
fn assert_fails_as(result: &Value, single: &Reply) {
    assert!(single.status >= 400, "{}", single.text());
    assert_eq!(result["status"], single.status, "{result}");
    assert_eq!(result["error"], single.json()["error"], "{result}");
}

#[test]
fn a_batch_applies_each_item_as_its_own_append() {
    let served = serve();
    let (a, b, c) = (key("batch", 0), key("batch", 1), key("batch", 2));
    for run in [&a, &b, &c] {
        begin(&served, run);
    }
    let plan: Vec<(&RunKey, u64, Vec<Value>)> = vec![
        (&a, 1, vec![step("a1"), step("a2")]),
        (&b, 1, vec![step("b1")]),
        (&a, 3, vec![step("a3")]),
        (&c, 1, vec![step("c1"), step("c2"), step("c3")]),
        (&a, 4, vec![step("a4")]),
        (&b, 2, vec![step("b2")]),
    ];
    let items: Vec<Value> = plan
        .iter()
        .map(|(run, expected, events)| item(run, 0, *expected, events))
        .collect();
    let results = results(&appends(&served, &items));
    assert_eq!(results.len(), plan.len());
    for (result, (run, expected, events)) in results.iter().zip(&plan) {
        assert_written(&served, result, run, 0, *expected, events);
    }
    for (run, next) in [(&a, 5), (&b, 3), (&c, 4)] {
        assert_eq!(stored_next_seq(&served, run), next, "{run:?}");
        assert_chain_verifies(&served, run);
    }
    // The handle each item answers with goes on through the single endpoint.
    let after = append(
        &served,
        &a,
        0,
        results[4]["handle"]["next_seq"].as_u64().unwrap(),
        &[step("a5")],
    );
    assert_eq!(after.status, 200, "{}", after.text());
}

#[test]
fn a_batch_item_with_a_stale_expected_seq_fails_alone_with_conflict_and_one_with_a_stale_epoch_fails_alone_with_fenced()
{
    let served = serve();
    let (a, b, c) = (key("stale", 0), key("stale", 1), key("stale", 2));
    for run in [&a, &b, &c] {
        begin(&served, run);
    }
    assert_eq!(resume(&served, &b)["epoch"], 1);
    let items = [
        item(&a, 0, 1, &[step("a1")]),
        item(&b, 1, 2, &[step("b2")]),
        item(&b, 0, 3, &[step("b from the old epoch")]),
        item(&c, 0, 1, &[step("c1")]),
        item(&c, 0, 7, &[step("c from the wrong seq")]),
        item(&a, 0, 2, &[step("a2")]),
    ];
    let results = results(&appends(&served, &items));
    assert_eq!(results.len(), items.len());
    assert_written(&served, &results[0], &a, 0, 1, &[step("a1")]);
    assert_written(&served, &results[1], &b, 1, 2, &[step("b2")]);
    assert_written(&served, &results[3], &c, 0, 1, &[step("c1")]);
    assert_written(&served, &results[5], &a, 0, 2, &[step("a2")]);

    assert_eq!(results[2]["status"], 409);
    assert_eq!(results[2]["error"]["code"], "fenced");
    assert_eq!(results[2]["error"]["run"], key_json(&b));
    assert_eq!(results[2]["error"]["details"]["epoch"], 0);
    assert_eq!(results[2]["error"]["details"]["current"], 1);
    assert_eq!(results[4]["status"], 409);
    assert_eq!(results[4]["error"]["code"], "conflict");
    assert_eq!(results[4]["error"]["run"], key_json(&c));
    assert_eq!(results[4]["error"]["details"]["expected"], 7);
    assert_eq!(results[4]["error"]["details"]["actual"], 2);

    for (run, next) in [(&a, 3), (&b, 3), (&c, 2)] {
        assert_eq!(stored_next_seq(&served, run), next, "{run:?}");
        assert_chain_verifies(&served, run);
    }
    // The single endpoint answers the same appends, against the same stored
    // runs, with the same status and error body.
    assert_fails_as(&results[2], &append(&served, &b, 0, 3, &[step("b from the old epoch")]));
    assert_fails_as(&results[4], &append(&served, &c, 0, 7, &[step("c from the wrong seq")]));
    assert_eq!((stored_next_seq(&served, &b), stored_next_seq(&served, &c)), (3, 2));
}

#[test]
fn a_batch_hands_every_item_to_the_writer_before_awaiting_any() {
    let served = serve();
    let run = key("shared", 0);
    begin(&served, &run);
    let count = 32;
    let items: Vec<Value> = (0..count)
        .map(|index| item(&run, 0, 1 + index, &[step(&format!("{index}"))]))
        .collect();
    let before = served.journal.metrics();
    let results = results(&appends(&served, &items));
    assert!(results.iter().all(|result| result.get("error").is_none()));
    let after = served.journal.metrics();
    assert_eq!(after.batches - before.batches, count);
    // Awaiting each item before queueing the next would take one durable
    // commit per item; queued together, items share commits.
    assert!(
        after.groups - before.groups < count,
        "{} commits for {count} items",
        after.groups - before.groups
    );
    assert_chain_verifies(&served, &run);
}

/// The items are queued under one writer hold: the writer takes them all
/// into one group, one commit and one sync, however fast it wakes.
#[test]
fn a_batch_s_items_are_one_writer_group() {
    let served = serve();
    let runs: Vec<RunKey> = (0..8).map(|index| key("grouped", index)).collect();
    for run in &runs {
        begin(&served, run);
    }
    // Events large enough that checking and chaining each takes longer than
    // an unheld writer takes to wake and start a group after the first.
    let text = "x".repeat(100_000);
    let items: Vec<Value> = (0..2)
        .flat_map(|round| runs.iter().map(move |run| (round, run)))
        .map(|(round, run)| item(run, 0, 1 + round, &[step(&text)]))
        .collect();
    let before = served.journal.metrics();
    let results = results(&appends(&served, &items));
    assert!(
        results.iter().all(|result| result.get("error").is_none()),
        "{results:?}"
    );
    let after = served.journal.metrics();
    assert_eq!(after.batches - before.batches, 16);
    assert_eq!(after.groups - before.groups, 1, "one group for the batch's 16 items");
    for run in &runs {
        assert_chain_verifies(&served, run);
        assert_eq!(stored_next_seq(&served, run), 3);
    }
}

#[test]
fn a_batch_item_is_checked_against_the_earlier_items_on_its_run() {
    let served = serve();
    let (a, b) = (key("ordered", 0), key("ordered", 1));
    begin(&served, &a);
    begin(&served, &b);
    let sent = json!({"type": "handoff_sent", "id": "h1", "from": "agent-0", "to": "agent-1",
                      "generation": 1, "version": "1.0.0", "content_hash": "ab", "timeout_ms": 60_000});
    let acked = json!({"type": "handoff_acked", "id": "h1", "by": "agent-1"});
    let mut typed_ack = item(&a, 0, 2, std::slice::from_ref(&acked));
    typed_ack["checks"] = json!("typed");
    let completed = json!({"type": "run_completed", "output": null});
    let items = [
        item(&a, 0, 1, std::slice::from_ref(&sent)),
        item(&a, 0, 9, &[step("a at the wrong seq")]),
        typed_ack,
        item(&b, 0, 1, std::slice::from_ref(&completed)),
        item(&b, 0, 2, &[step("after b's outcome")]),
    ];
    let results = results(&appends(&served, &items));
    assert_eq!(results.len(), 5);
    assert_written(&served, &results[0], &a, 0, 1, &[sent]);
    assert_eq!(results[1]["error"]["code"], "conflict", "{}", results[1]);
    assert_eq!(results[1]["error"]["details"]["actual"], 2);
    // The typed ack is checked against the send queued before it.
    assert_written(&served, &results[2], &a, 0, 2, &[acked]);
    assert_written(&served, &results[3], &b, 0, 1, &[completed]);
    assert_eq!(results[4]["error"]["code"], "out_of_order", "{}", results[4]);
    assert_eq!(results[4]["error"]["seq"], 2);
    assert_eq!(stored_next_seq(&served, &a), 3);
    assert_eq!(stored_next_seq(&served, &b), 2);
    assert_eq!(
        served.journal.state(&a).unwrap().handoffs[0].status,
        runjournal::fold::HandoffStatus::Acknowledged
    );
    assert_chain_verifies(&served, &a);
    assert_chain_verifies(&served, &b);
}

#[test]
fn a_batch_item_for_an_unknown_or_finished_run_or_an_unopened_epoch_fails_alone_as_the_single_append_does() {
    let served = serve();
    let (live, done, missing) = (key("ends", 0), key("ends", 1), key("nobody", 9));
    begin(&served, &live);
    begin(&served, &done);
    let finish = post(
        &served.socket,
        &format!("{}/finish", run_path(&done)),
        &json!({"epoch": 0, "expected_seq": 1, "outcome": {"completed": {}}}),
    );
    assert_eq!(finish.status, 200, "{}", finish.text());
    let items = [
        item(&missing, 0, 1, &[step("to nobody")]),
        item(&done, 0, 2, &[step("after the end")]),
        item(&live, 5, 1, &[step("at an epoch never opened")]),
        item(&live, 0, 1, &[step("live")]),
    ];
    let results = results(&appends(&served, &items));
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["status"], 404);
    assert_eq!(results[0]["error"]["code"], "not_found");
    assert_eq!(results[0]["error"]["run"], key_json(&missing));
    // Nothing but teardown follows a run's outcome: the single append's
    // `out_of_order`, naming the seq (`finished` is what resuming it gets).
    assert_eq!(results[1]["status"], 400);
    assert_eq!(results[1]["error"]["code"], "out_of_order");
    assert_eq!(results[1]["error"]["run"], key_json(&done));
    assert_eq!(results[1]["error"]["seq"], 2);
    assert_eq!(results[2]["status"], 400);
    assert_eq!(results[2]["error"]["code"], "invalid_request");
    assert_written(&served, &results[3], &live, 0, 1, &[step("live")]);

    assert_fails_as(&results[0], &append(&served, &missing, 0, 1, &[step("to nobody")]));
    assert_fails_as(&results[1], &append(&served, &done, 0, 2, &[step("after the end")]));
    assert_fails_as(
        &results[2],
        &append(&served, &live, 5, 2, &[step("at an epoch never opened")]),
    );
    assert!(served.journal.run_info(&missing).is_err());
    assert_eq!(stored_next_seq(&served, &done), 2);
    assert_chain_verifies(&served, &done);
    assert_chain_verifies(&served, &live);
}

#[test]
fn a_batch_item_with_no_events_fails_alone_with_empty_batch() {
    let served = serve();
    let (a, b) = (key("empty", 0), key("empty", 1));
    begin(&served, &a);
    begin(&served, &b);
    let results = results(&appends(&served, &[item(&a, 0, 1, &[]), item(&b, 0, 1, &[step("b1")])]));
    assert_eq!(results[0]["status"], 400);
    assert_eq!(results[0]["error"]["code"], "empty_batch");
    assert_fails_as(&results[0], &append(&served, &a, 0, 1, &[]));
    assert_written(&served, &results[1], &b, 0, 1, &[step("b1")]);
    assert_eq!(stored_next_seq(&served, &a), 1);
}

#[test]
fn an_empty_batch_is_invalid_request() {
    let served = serve();
    let reply = appends(&served, &[]);
    assert_eq!(
        (reply.status, reply.code()),
        (400, "invalid_request".to_string()),
        "{}",
        reply.text()
    );
    assert!(served.stored_runs().is_empty());
    let text = get(&served.socket, "/metrics").text();
    assert_eq!(metric(&text, "runjournal_batch_append_requests_total"), 0);
}

#[test]
fn a_batch_over_the_item_limit_is_refused_and_stores_nothing() {
    let served = serve();
    let run = key("many", 0);
    begin(&served, &run);
    let over: Vec<Value> = (0..=wire::MAX_BATCH_APPENDS as u64)
        .map(|index| item(&run, 0, 1 + index, &[step("x")]))
        .collect();
    assert_eq!(over.len(), 1025);
    let reply = appends(&served, &over);
    assert_eq!(
        (reply.status, reply.code()),
        (413, "payload_too_large".to_string()),
        "{}",
        reply.text()
    );
    assert_eq!(stored_next_seq(&served, &run), 1);
    assert_eq!(served.journal.read(&run, 0).unwrap().len(), 1);

    // Exactly the limit is taken, every item applied in list order.
    let results = results(&appends(&served, &over[..wire::MAX_BATCH_APPENDS]));
    assert_eq!(results.len(), 1024);
    assert!(results.iter().all(|result| result.get("error").is_none()));
    assert_eq!(stored_next_seq(&served, &run), 1025);
    assert_chain_verifies(&served, &run);
}

#[test]
fn a_batch_over_the_body_limit_is_refused_and_stores_nothing() {
    let single_limit = 2048;
    let served = serve_with(ServeOptions {
        max_body_bytes: Some(single_limit),
        ..ServeOptions::default()
    });
    let run = key("big", 0);
    begin(&served, &run);
    let batch_limit = single_limit * wire::BATCH_BODY_FACTOR;
    let items = |count: u64| -> Value {
        let items: Vec<Value> = (0..count)
            .map(|index| item(&run, 0, 1 + index, &[step(&"x".repeat(400))]))
            .collect();
        json!({"appends": items})
    };

    let over = items(24);
    assert!(over.to_string().len() > batch_limit);
    let reply = post(&served.socket, "/v1/appends", &over);
    assert_eq!(
        (reply.status, reply.code()),
        (413, "payload_too_large".to_string()),
        "{}",
        reply.text()
    );
    assert_eq!(stored_next_seq(&served, &run), 1);

    // A body over the single append's limit but within the batch's is taken.
    let within = items(8);
    let length = within.to_string().len();
    assert!(length > single_limit && length <= batch_limit, "{length}");
    let results = results(&post(&served.socket, "/v1/appends", &within));
    assert_eq!(results.len(), 8);
    assert_eq!(stored_next_seq(&served, &run), 9);
}

#[test]
fn a_malformed_batch_is_refused_and_stores_nothing() {
    let served = serve();
    let run = key("malformed", 0);
    begin(&served, &run);
    let good = item(&run, 0, 1, &[step("good")]).to_string();
    let run_json = key_json(&run);
    for body in [
        format!("{{\"appends\": [{good},"),
        "not json".to_string(),
        format!("[{good}]"),
        format!("{{\"appends\": {good}}}"),
        format!("{{\"appends\": [{good}], \"extra\": 1}}"),
        format!("{{\"appends\": [{good}, {{\"epoch\": 0, \"expected_seq\": 2, \"events\": []}}]}}"),
        format!(
            "{{\"appends\": [{good}, {{\"run\": {run_json}, \"epoch\": 0, \"expected_seq\": 2, \"events\": [], \"bogus\": 1}}]}}"
        ),
        format!(
            "{{\"appends\": [{good}, {{\"run\": {run_json}, \"epoch\": 0, \"expected_seq\": 2, \"events\": [{{\"type\": \"step\", \"messages\": [], \"bogus\": 1}}]}}]}}"
        ),
        format!(
            "{{\"appends\": [{good}, {{\"run\": {run_json}, \"epoch\": 0, \"expected_seq\": 2, \"events\": [], \"checks\": \"strict\"}}]}}"
        ),
    ] {
        let reply = http::call(&served.socket, "POST", "/v1/appends", Some(&body));
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_request".to_string()),
            "{body}: {}",
            reply.text()
        );
    }
    assert_eq!(stored_next_seq(&served, &run), 1);
    let text = get(&served.socket, "/metrics").text();
    assert_eq!(metric(&text, "runjournal_batch_append_requests_total"), 0);
}

/// A buffered journal over a faulty in-memory store (which counts the append
/// batches applied before each successful sync), served; its flush interval
/// is an hour, so only a boundary or a durable request makes it sync.
fn serve_buffered_faulty() -> (Arc<FaultyStore<MemoryStore>>, Served) {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let options = Options {
        durability: Durability::Buffered,
        flush_interval: Duration::from_secs(3600),
        ..Options::default()
    };
    (store.clone(), serve_store(store, options))
}

fn durable(mut item: Value) -> Value {
    item["durability"] = json!("durable");
    item
}

#[test]
fn a_batch_with_durable_items_is_answered_only_after_a_sync() {
    let (store, served) = serve_buffered_faulty();
    let (a, b) = (key("durable", 0), key("durable", 1));
    begin(&served, &a);
    begin(&served, &b);
    assert_eq!(store.batches_synced(), store.batches_applied(), "begin is a boundary");
    let synced_before = store.batches_synced();

    let buffered = results(&appends(
        &served,
        &[item(&a, 0, 1, &[step("a1")]), item(&b, 0, 1, &[step("b1")])],
    ));
    assert_eq!(buffered.len(), 2);
    assert_eq!(
        store.batches_synced(),
        synced_before,
        "buffered items on a buffered journal wait for no sync"
    );

    let answered = results(&appends(
        &served,
        &[durable(item(&a, 0, 2, &[step("a2")])), item(&b, 0, 2, &[step("b2")])],
    ));
    assert_written(&served, &answered[0], &a, 0, 2, &[step("a2")]);
    assert_written(&served, &answered[1], &b, 0, 2, &[step("b2")]);
    assert_eq!(store.batches_applied(), synced_before + 4);
    assert_eq!(
        store.batches_synced(),
        store.batches_applied(),
        "the answer to a batch with a durable item comes after a sync of every item"
    );
}

#[test]
fn a_durable_batch_item_whose_sync_fails_gets_the_sync_error_and_the_others_their_receipts() {
    let (store, served) = serve_buffered_faulty();
    let (a, b) = (key("unsynced", 0), key("unsynced", 1));
    begin(&served, &a);
    begin(&served, &b);
    store.arm(OpClass::Sync, Fault::nth(1));
    let results = results(&appends(
        &served,
        &[durable(item(&a, 0, 1, &[step("a1")])), item(&b, 0, 1, &[step("b1")])],
    ));
    assert_eq!(store.injected(OpClass::Sync), 1);
    assert!(results[0]["status"].as_u64().unwrap() >= 500, "{}", results[0]);
    assert_eq!(results[0]["error"]["code"], "storage", "{}", results[0]);
    assert_written(&served, &results[1], &b, 0, 1, &[step("b1")]);
}

#[test]
fn the_metrics_count_one_batch_request_and_its_items() {
    let served = serve();
    let runs: Vec<RunKey> = (0..3).map(|episode| key("counted", episode)).collect();
    for run in &runs {
        begin(&served, run);
    }
    let items: Vec<Value> = runs
        .iter()
        .flat_map(|run| [item(run, 0, 1, &[step("one")]), item(run, 0, 2, &[step("two")])])
        .collect();
    let before = get(&served.socket, "/metrics").text();
    let results = results(&appends(&served, &items));
    assert_eq!(results.len(), 6);
    let text = get(&served.socket, "/metrics").text();
    assert_eq!(metric(&text, "runjournal_batch_append_requests_total"), 1, "{text}");
    assert_eq!(metric(&text, "runjournal_batch_append_items_total"), 6, "{text}");
    assert_eq!(
        metric(&text, "runjournal_events_total") - metric(&before, "runjournal_events_total"),
        6
    );
    assert_eq!(metric(&text, "runjournal_append_requests_total"), 0, "{text}");
    assert!(!text.contains("runjournal_batch_append_failures_total{"), "{text}");
}

#[test]
fn the_metrics_count_a_batch_s_failed_items_by_code() {
    let served = serve();
    let run = key("failing", 0);
    begin(&served, &run);
    let items = [
        item(&run, 0, 1, &[step("one")]),
        item(&run, 0, 1, &[step("stale")]),
        item(&run, 0, 9, &[step("ahead")]),
        item(&key("failing", 1), 0, 1, &[step("unknown run")]),
    ];
    let results = results(&appends(&served, &items));
    assert_eq!(results.len(), 4);
    let text = get(&served.socket, "/metrics").text();
    assert_eq!(
        metric(&text, "runjournal_batch_append_failures_total{code=\"conflict\"}"),
        2,
        "{text}"
    );
    assert_eq!(
        metric(&text, "runjournal_batch_append_failures_total{code=\"not_found\"}"),
        1,
        "{text}"
    );
    // The request itself succeeded: no rejection is counted for it.
    assert!(!text.contains("runjournal_rejections_total{"), "{text}");
}
