//! The server's own counters and the Prometheus text of `GET /metrics`
//! (the journal's write-path counters plus these). Relaxed atomics: each
//! counter is exact, a page of several is not one instant.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::MetricsSnapshot;

/// Connections, requests, rejections by code, subscribers.
#[derive(Default)]
pub(crate) struct Counters {
    connections_total: AtomicU64,
    connections_open: AtomicU64,
    requests: AtomicU64,
    append_requests: AtomicU64,
    batch_requests: AtomicU64,
    batch_items: AtomicU64,
    subscribers_open: AtomicU64,
    subscribers_total: AtomicU64,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    /// Items of batched appends answered with an error (the request itself
    /// succeeded), by code.
    batch_failures: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    pub(crate) fn connection_opened(&self) {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A `POST /v1/runs/{k}/events`.
    pub(crate) fn append(&self) {
        self.append_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A `POST /v1/appends` of `items` appends.
    pub(crate) fn batch(&self, items: usize) {
        self.batch_requests.fetch_add(1, Ordering::Relaxed);
        self.batch_items.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, code: &'static str) {
        count(&self.rejections, code);
    }

    /// An item of a batched append answered with the error `code`.
    pub(crate) fn batch_item_failed(&self, code: &'static str) {
        count(&self.batch_failures, code);
    }

    pub(crate) fn subscriber_opened(&self) {
        self.subscribers_total.fetch_add(1, Ordering::Relaxed);
        self.subscribers_open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn subscriber_closed(&self) {
        self.subscribers_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Each plain metric: its name, kind, help and value.
    fn rows(&self, journal: &MetricsSnapshot) -> [(&'static str, &'static str, &'static str, u64); 15] {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            (
                "runjournal_append_batches_total",
                "counter",
                "Append batches applied.",
                journal.batches,
            ),
            ("runjournal_events_total", "counter", "Events applied.", journal.events),
            (
                "runjournal_bytes_total",
                "counter",
                "Bytes of encoded records applied.",
                journal.bytes,
            ),
            (
                "runjournal_groups_total",
                "counter",
                "Groups the writer committed.",
                journal.groups,
            ),
            (
                "runjournal_syncs_total",
                "counter",
                "Syncs to stable storage.",
                journal.flushes,
            ),
            (
                "runjournal_sync_micros_total",
                "counter",
                "Time spent in syncs, in microseconds.",
                journal.flush_micros_total,
            ),
            (
                "runjournal_sync_micros_max",
                "gauge",
                "The longest sync, in microseconds.",
                journal.flush_micros_max,
            ),
            (
                "runjournal_connections_total",
                "counter",
                "Connections accepted.",
                load(&self.connections_total),
            ),
            (
                "runjournal_connections_open",
                "gauge",
                "Connections open now.",
                load(&self.connections_open),
            ),
            (
                "runjournal_requests_total",
                "counter",
                "Requests received.",
                load(&self.requests),
            ),
            (
                "runjournal_append_requests_total",
                "counter",
                "Single append requests (POST /v1/runs/{k}/events) received.",
                load(&self.append_requests),
            ),
            (
                "runjournal_batch_append_requests_total",
                "counter",
                "Batched append requests (POST /v1/appends) received within their bounds.",
                load(&self.batch_requests),
            ),
            (
                "runjournal_batch_append_items_total",
                "counter",
                "Appends carried by batched append requests.",
                load(&self.batch_items),
            ),
            (
                "runjournal_subscribers_total",
                "counter",
                "Subscriptions opened.",
                load(&self.subscribers_total),
            ),
            (
                "runjournal_subscribers_open",
                "gauge",
                "Subscriptions open now.",
                load(&self.subscribers_open),
            ),
        ]
    }

    /// The Prometheus text format (version 0.0.4) of `journal` and these counters.
    pub(crate) fn prometheus(&self, journal: &MetricsSnapshot) -> String {
        let mut text = String::new();
        for (name, kind, help, value) in self.rows(journal) {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        by_code(
            &mut text,
            "runjournal_rejections_total",
            "Requests answered with an error, by code.",
            &self.rejections,
        );
        by_code(
            &mut text,
            "runjournal_batch_append_failures_total",
            "Appends of batched append requests answered with an error, by code.",
            &self.batch_failures,
        );
        text
    }
}

fn count(counts: &Mutex<BTreeMap<&'static str, u64>>, code: &'static str) {
    let mut counts = counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *counts.entry(code).or_default() += 1;
}

/// A counter labelled by error code: its help, type and one line per code.
fn by_code(text: &mut String, name: &str, help: &str, counts: &Mutex<BTreeMap<&'static str, u64>>) {
    // Writing to a String cannot fail.
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter");
    let counts = counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for (code, count) in counts.iter() {
        let _ = writeln!(text, "{name}{{code=\"{code}\"}} {count}");
    }
}
