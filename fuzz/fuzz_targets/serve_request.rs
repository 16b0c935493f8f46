//! Fuzzes the served API's request handling: arbitrary bytes on a connection
//! (request lines, headers, bodies, pipelined requests, SSE `Last-Event-ID`s)
//! never panic the server; whatever it answers is HTTP/1.x, every error
//! answer carries the JSON error body of docs/http-api.md, and a refused
//! request leaves nothing half-written (every stored run verifies).
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use runjournal::{Journal, Options, RunFilter, RunKey, RunMeta, ServeOptions};
use runjournal_core::MemoryStore;

fuzz_target!(|bytes: &[u8]| {
    let Ok(journal) = Journal::with_store(Arc::new(MemoryStore::new()), Options::default()) else {
        return;
    };
    // A run to aim at: `/v1/runs/g/0/a`, epoch 0, next seq 1.
    let Ok(key) = RunKey::new("g", 0, "a") else { return };
    if journal.begin(key, RunMeta::default()).is_err() {
        return;
    }
    let options = ServeOptions {
        header_timeout: Duration::from_millis(100),
        body_timeout: Duration::from_millis(100),
        keep_alive: Duration::from_millis(50),
        max_body_bytes: Some(64 * 1024),
        max_import_bytes: 64 * 1024,
        ..ServeOptions::default()
    };
    let output = runjournal::serve_bytes(&journal, options, bytes);
    if !output.is_empty() {
        // HTTP/1.0 requests are answered in HTTP/1.0.
        assert!(output.starts_with(b"HTTP/1."), "every answer is HTTP/1.x");
    }
    check_answers(&output);
    for record in journal.runs(&RunFilter::default()).unwrap_or_default() {
        assert!(journal.verify(&record.key).is_ok(), "every stored run verifies");
    }
});

/// Walks the answers one after the other (by `content-length`; a chunked one
/// ends the walk): each error answer in JSON is the error body.
fn check_answers(mut output: &[u8]) {
    while !output.is_empty() {
        let Some(head_end) = output.windows(4).position(|window| window == b"\r\n\r\n") else {
            return;
        };
        let head = String::from_utf8_lossy(&output[..head_end]).to_ascii_lowercase();
        let status: u16 = head.get(9..12).and_then(|status| status.parse().ok()).unwrap_or(0);
        let Some(length) = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|length| length.trim().parse::<usize>().ok())
        else {
            return;
        };
        let body_start = head_end + 4;
        let Some(body) = output.get(body_start..body_start + length) else {
            return;
        };
        if (400..600).contains(&status) && head.contains("content-type: application/json") {
            let parsed: Result<runjournal::wire::ErrorBody, _> = serde_json::from_slice(body);
            assert!(
                parsed.is_ok(),
                "an error answer has the JSON error body: {:?}",
                String::from_utf8_lossy(body)
            );
        }
        output = &output[body_start + length..];
        if !output.is_empty() {
            assert!(output.starts_with(b"HTTP/1."), "answers follow each other");
        }
    }
}
