//! `export --format otlp-json` and `--otlp-endpoint` (docs/otlp.md): a run as
//! one `OpenTelemetry` trace in the `GenAI` conventions, built on the
//! `opentelemetry-proto` types.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;

const GOAL: &str = "otlp-goal";

/// A run with phases, a model step and its usage, a tool call, a
/// compaction, a handoff, a death, a resume and a failure.
fn traced_run() -> Vec<String> {
    let events = [
        r#"{"type":"run_started","meta":{"model":"m-large","agent_name":"solver-7"}}"#,
        r#"{"type":"phase_started","index":0,"name":"plan"}"#,
        r#"{"type":"step","messages":[{"role":"user","content":"secret prompt"},{"role":"assistant","content":"secret answer"}]}"#,
        r#"{"type":"usage","input_tokens":120,"output_tokens":30}"#,
        r#"{"type":"step","messages":[{"role":"tool","content":"secret listing","name":"sh","tool_call_id":"c1"}]}"#,
        r#"{"type":"compaction_started","id":"k1","source":"structured","messages_before":3}"#,
        r#"{"type":"compaction_done","id":"k1","source":"structured","summary":"secret summary"}"#,
        r#"{"type":"phase_completed","index":0,"name":"plan","output":"secret output"}"#,
        r#"{"type":"phase_started","index":1,"name":"patch"}"#,
        r#"{"type":"handoff_sent","id":"h1","from":"a","to":"b","generation":1,"version":"1.0.0","content_hash":"ab12","timeout_ms":50}"#,
        r#"{"type":"agent_died","reason":"oom-killed","exit_code":137}"#,
        r#"{"type":"attached","owner":"host/42"}"#,
        r#"{"type":"run_failed","error":{"kind":"backend","message":"model gone"},"cleanup_errors":[]}"#,
    ];
    (0u64..)
        .zip(events)
        .map(|(seq, event)| {
            line(
                GOAL,
                seq,
                &format!(r#","ts":{}"#, 1_763_800_000_000 + seq * 1000),
                event,
            )
        })
        .collect()
}

fn traced_db() -> (tempfile::TempDir, PathBuf, String) {
    let (dir, db) = fresh();
    let file = write(dir.path(), "run.jsonl", &traced_run());
    ok(&import(&db, &file));
    let id = RunKey::new(GOAL, 0, "a").unwrap().short_id();
    (dir, db, id)
}

fn parse(text: &str) -> ExportTraceServiceRequest {
    serde_json::from_str(text).unwrap()
}

fn spans(request: &ExportTraceServiceRequest) -> Vec<&Span> {
    request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .collect()
}

fn span<'a>(spans: &[&'a Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

fn attribute(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<any_value::Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.clone())
        .and_then(|value| value.value)
}

fn string(span: &Span, key: &str) -> String {
    match attribute(&span.attributes, key) {
        Some(any_value::Value::StringValue(text)) => text,
        other => panic!("{}: {key} is {other:?}", span.name),
    }
}

fn integer(span: &Span, key: &str) -> i64 {
    match attribute(&span.attributes, key) {
        Some(any_value::Value::IntValue(n)) => n,
        other => panic!("{}: {key} is {other:?}", span.name),
    }
}

const ACCEPTED: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";

/// A one-shot OTLP/HTTP receiver: reads one POST, answers `response` and
/// hands over its request line and body.
fn receiver(response: &'static [u8]) -> (u16, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut length = 0;
        let mut content_type = String::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => value.trim().clone_into(&mut content_type),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream.write_all(response).unwrap();
        assert_eq!(content_type, "application/json");
        sender
            .send((request_line.trim_end().to_owned(), String::from_utf8(body).unwrap()))
            .unwrap();
    });
    (port, received)
}

#[test]
fn otlp_json_export_deserializes_into_an_export_trace_service_request() {
    let (_dir, db, id) = traced_db();
    let request = parse(&ok(&rj(&db, &["export", &id, "--format", "otlp-json"])));
    let spans = spans(&request);
    // The root, two phases, one chat and one tool span.
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let trace = &spans[0].trace_id;
    assert_eq!(trace.len(), 16);
    assert!(spans
        .iter()
        .all(|span| &span.trace_id == trace && span.span_id.len() == 8));
}

#[test]
fn otlp_endpoint_posts_the_trace_with_spans_parents_and_attributes() {
    let (_dir, db, id) = traced_db();
    let (port, received) = receiver(ACCEPTED);
    let endpoint = format!("http://127.0.0.1:{port}");
    let text = ok(&rj(&db, &["export", &id, "--otlp-endpoint", &endpoint]));
    assert!(text.contains("posted 1 trace (5 spans)"), "{text}");
    let (request_line, body) = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(request_line, "POST /v1/traces HTTP/1.1");
    let request = parse(&body);
    let spans = spans(&request);

    let root = span(&spans, "invoke_agent a");
    assert!(root.parent_span_id.is_empty());
    assert_eq!(string(root, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(string(root, "gen_ai.agent.name"), "solver-7");
    assert_eq!(string(root, "gen_ai.request.model"), "m-large");
    assert_eq!(integer(root, "gen_ai.usage.input_tokens"), 120);
    let status = root.status.clone().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "backend: model gone");
    assert_eq!(root.start_time_unix_nano, 1_763_800_000_000 * 1_000_000);
    assert_eq!(root.end_time_unix_nano, 1_763_800_012_000 * 1_000_000);

    let plan = span(&spans, "phase plan");
    let patch = span(&spans, "phase patch");
    assert_eq!(plan.parent_span_id, root.span_id);
    assert_eq!(patch.parent_span_id, root.span_id);
    assert_eq!(plan.end_time_unix_nano, 1_763_800_007_000 * 1_000_000);
    assert_eq!(patch.status.clone().unwrap().code, StatusCode::Error as i32);

    let chat = span(&spans, "chat m-large");
    assert_eq!(chat.parent_span_id, plan.span_id);
    assert_eq!(string(chat, "gen_ai.operation.name"), "chat");
    assert_eq!(integer(chat, "gen_ai.usage.input_tokens"), 120);
    assert_eq!(integer(chat, "gen_ai.usage.output_tokens"), 30);
    assert_eq!(chat.start_time_unix_nano, 1_763_800_001_000 * 1_000_000);
    assert_eq!(chat.end_time_unix_nano, 1_763_800_002_000 * 1_000_000);

    let tool = span(&spans, "execute_tool sh");
    assert_eq!(tool.parent_span_id, plan.span_id);
    assert_eq!(string(tool, "gen_ai.tool.name"), "sh");
    assert_eq!(string(tool, "gen_ai.tool.call.id"), "c1");

    let plan_events: Vec<&str> = plan.events.iter().map(|event| event.name.as_str()).collect();
    assert_eq!(
        plan_events,
        ["runjournal.compaction_started", "runjournal.compaction_done"]
    );
    let patch_events: Vec<&str> = patch.events.iter().map(|event| event.name.as_str()).collect();
    assert_eq!(
        patch_events,
        [
            "runjournal.handoff_sent",
            "runjournal.agent_died",
            "runjournal.attached",
            "exception"
        ]
    );
    let exception = &patch.events[3];
    assert_eq!(
        attribute(&exception.attributes, "exception.type"),
        Some(any_value::Value::StringValue("backend".to_owned()))
    );
}

#[test]
fn otlp_ids_are_derived_from_the_run_so_a_reexport_is_identical() {
    let (dir, db, id) = traced_db();
    let first = dir.path().join("first.json");
    let second = dir.path().join("second.json");
    ok(&rj(
        &db,
        &["export", &id, "--format", "otlp-json", "-o", first.to_str().unwrap()],
    ));
    ok(&rj(
        &db,
        &["export", &id, "--format", "otlp-json", "-o", second.to_str().unwrap()],
    ));
    let first = std::fs::read_to_string(first).unwrap();
    assert_eq!(first, std::fs::read_to_string(second).unwrap());
    // Another run of the same shape gets other ids.
    let other: Vec<String> = traced_run()
        .iter()
        .map(|line| line.replace(GOAL, "otlp-other"))
        .collect();
    ok(&import(&db, &write(dir.path(), "other.jsonl", &other)));
    let other_id = RunKey::new("otlp-other", 0, "a").unwrap().short_id();
    let other = parse(&ok(&rj(&db, &["export", &other_id, "--format", "otlp-json"])));
    let first = parse(&first);
    let (first, other) = (spans(&first), spans(&other));
    assert_ne!(first[0].trace_id, other[0].trace_id);
    assert_ne!(first[1].span_id, other[1].span_id);
    let ids: std::collections::BTreeSet<&Vec<u8>> = first.iter().map(|span| &span.span_id).collect();
    assert_eq!(ids.len(), first.len(), "span ids are unique");
}

#[test]
fn otlp_message_content_is_omitted_unless_include_content() {
    let (_dir, db, id) = traced_db();
    let plain = ok(&rj(&db, &["export", &id, "--format", "otlp-json"]));
    assert!(!plain.contains("secret"), "{plain}");
    let full = ok(&rj(&db, &["export", &id, "--format", "otlp-json", "--include-content"]));
    let request = parse(&full);
    let spans = spans(&request);
    let chat = span(&spans, "chat m-large");
    let output: Value = serde_json::from_str(&string(chat, "gen_ai.output.messages")).unwrap();
    assert_eq!(output[0]["parts"][0]["content"], "secret answer");
    assert_eq!(
        string(span(&spans, "execute_tool sh"), "gen_ai.tool.call.result"),
        "secret listing"
    );
    assert_eq!(
        string(span(&spans, "phase plan"), "runjournal.phase.output"),
        "secret output"
    );
}

#[test]
fn otlp_endpoint_refusal_is_an_io_error_naming_the_status() {
    let (_dir, db, id) = traced_db();
    let (port, _received) =
        receiver(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy");
    let endpoint = format!("http://127.0.0.1:{port}/v1/traces");
    let line = fails_with(&rj(&db, &["export", &id, "--otlp-endpoint", &endpoint]), "io");
    assert!(line.contains("answered 503: busy"), "{line}");
}

#[test]
fn otlp_trace_of_a_fork_holds_the_parents_prefix_and_names_its_fork_point() {
    let (_dir, db, id) = traced_db();
    ok(&rj(&db, &["fork", &id, "--at", "3"]));
    let child = RunKey::new(GOAL, 1, "a").unwrap().short_id();
    let request = parse(&ok(&rj(&db, &["export", &child, "--format", "otlp-json"])));
    let spans = spans(&request);
    let root = span(&spans, "invoke_agent a");
    assert_eq!(string(root, "runjournal.forked_from"), "otlp-goal/0/a");
    assert_eq!(integer(root, "runjournal.forked_at"), 3);
    assert_eq!(integer(root, "runjournal.episode"), 1);
    // The inherited model step and its usage are part of the child's trace.
    let chat = span(&spans, "chat m-large");
    assert_eq!(integer(chat, "gen_ai.usage.input_tokens"), 120);
    let plan = span(&spans, "phase plan");
    assert_eq!(plan.parent_span_id, root.span_id);
    // The fork's own trace: other ids than the parent's.
    let parent = parse(&ok(&rj(&db, &["export", &id, "--format", "otlp-json"])));
    assert_ne!(spans[0].trace_id, parse_first_trace(&parent));
}

fn parse_first_trace(request: &ExportTraceServiceRequest) -> Vec<u8> {
    spans(request)[0].trace_id.clone()
}
