//! Fuzzes the served API's request handling: arbitrary bytes on a connection
//! (request lines, headers, bodies, pipelined requests, SSE `Last-Event-ID`s)
//! never panic the server; whatever it answers is HTTP/1.1, every error
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
        assert!(output.starts_with(b"HTTP/1.1 "), "every answer is HTTP/1.1");
    }
    let text = String::from_utf8_lossy(&output);
    for answer in text.split("HTTP/1.1 ").skip(1) {
        let status: u16 = answer.get(..3).and_then(|status| status.parse().ok()).unwrap_or(0);
        let json = answer.contains("content-type: application/json");
        if (400..600).contains(&status) && status != 431 && json {
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
            let parsed: Result<runjournal::wire::ErrorBody, _> = serde_json::from_str(body.trim_end());
            assert!(parsed.is_ok(), "an error answer has the JSON error body: {body:?}");
        }
    }
    for record in journal.runs(&RunFilter::default()).unwrap_or_default() {
        assert!(journal.verify(&record.key).is_ok(), "every stored run verifies");
    }
});
