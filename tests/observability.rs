//! Tracing spans and write-path counters: appends and replays are
//! spans carrying the run and seq; the counters show group commit at work.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{key, step, temp_db};
use runjournal::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Metadata, Subscriber};

/// A span's name and its fields.
type SpanRecord = (String, BTreeMap<String, String>);

/// Records every span's name and fields.
#[derive(Clone, Default)]
struct Recorder {
    next: Arc<AtomicU64>,
    spans: Arc<Mutex<BTreeMap<u64, SpanRecord>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        self.spans
            .lock()
            .unwrap()
            .insert(id, (span.metadata().name().to_string(), fields));
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some((_, fields)) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &TracingEvent<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn appends_and_replays_are_spans_naming_the_run_and_seq() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let run_key = key("traced", 0, "a");
    let run = journal.begin(run_key.clone(), RunMeta::default()).unwrap();
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        run.step(step("one")).unwrap();
        run.append(vec![Event::TurnCompleted, Event::TurnCompleted]).unwrap();
        journal.verify(&run_key).unwrap();
    });
    let spans = recorder.spans.lock().unwrap();
    let appends: Vec<&BTreeMap<String, String>> = spans
        .values()
        .filter(|(name, _)| name == "append")
        .map(|(_, fields)| fields)
        .collect();
    assert_eq!(appends.len(), 2);
    assert_eq!(appends[0]["seq"], "1");
    assert_eq!(appends[1]["seq"], "2");
    assert_eq!(appends[1]["events"], "2");
    assert!(appends[0]["run"].contains("traced"), "{:?}", appends[0]);
    let replays: Vec<&BTreeMap<String, String>> = spans
        .values()
        .filter(|(name, _)| name == "replay")
        .map(|(_, fields)| fields)
        .collect();
    assert_eq!(replays.len(), 1);
    assert_eq!((replays[0]["from"].as_str(), replays[0]["end"].as_str()), ("0", "4"));
}

#[test]
fn the_counters_show_concurrent_durable_appends_sharing_syncs() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path, Options::default()).unwrap();
    let threads: Vec<_> = (0..16)
        .map(|writer| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                let run = journal.begin(key("counted", writer, "a"), RunMeta::default()).unwrap();
                for index in 0..20 {
                    run.step(step(&format!("{index}"))).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let metrics = journal.metrics();
    assert_eq!(metrics.batches, 16 * 20);
    assert_eq!(metrics.events, 16 * 21, "steps and run_started");
    assert!(
        metrics.bytes > metrics.events * 37,
        "every record has a 37-byte header and hash"
    );
    assert!(
        metrics.flushes < metrics.batches + 16,
        "concurrent durable appends share syncs: {metrics:?}"
    );
    assert!(metrics.flushes >= 1 && metrics.flush_micros_max > 0);
    assert!(metrics.flush_micros_total >= metrics.flush_micros_max);
}
