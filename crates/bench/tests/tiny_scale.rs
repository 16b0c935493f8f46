//! The whole harness at a tiny scale: every row and every target is there,
//! with positive numbers, in the table and in the JSON.

use runjournal_bench::{run, BenchConfig, RatioOf};

/// Every row, in report order, by the start of its name.
const ROWS: [&str; 31] = [
    "raw sled insert, no flush",
    "journal append, buffered, snapshots off",
    "raw sled apply_batch per event (event + run record)",
    "journal append, buffered, in-memory store",
    "raw sled batch + one flush",
    "SQLite WAL sync=NORMAL, one transaction",
    "SQLite WAL sync=NORMAL, one INSERT per commit",
    "raw sled insert + flush + fdatasync per event",
    "SQLite WAL sync=FULL, one INSERT per commit",
    "journal append, durable, 1 writer",
    "journal append, durable, 16 writers",
    "journal append, durable, 64 writers",
    "journal append through the socket, durable, 1 client",
    "journal append through the socket, durable, 64 clients",
    "SQLite WAL sync=FULL, one INSERT per commit, 64 threads",
    "raw sled scan, one key per event",
    "SQLite SELECT scan in key order",
    "journal replay: read + verify + fold",
    "journal import of the exported run",
    "journal append, buffered, batches of 1000",
    "journal open, 2000-event db",
    "journal open, 20000-event db",
    "journal resume, 2000-event run",
    "journal resume, 20000-event run",
    "bytes per step: journal, stored key + value",
    "bytes per step: journal, sled file growth",
    "bytes per step: JSON checkpoint per step",
    "bytes per step: journal, stored key + value, ",
    "bytes per step: journal, sled file growth, ",
    "bytes per step: journal, stored key + value, ",
    "bytes per step: journal, sled file growth, ",
];

/// Every target of issue 18, each with its ratio in the JSON, and one more
/// (device flushes per durable append) where the device counts flushes.
const TARGETS: usize = 16;

/// The rows that count device flushes inside their clock.
const FLUSH_ROWS: [&str; 6] = [
    "raw sled insert + flush + fdatasync per event",
    "SQLite WAL sync=FULL, one INSERT per commit",
    "journal append, durable, 1 writer",
    "journal append, durable, 64 writers",
    "journal append through the socket, durable, 64 clients",
    "SQLite WAL sync=FULL, one INSERT per commit, 64 threads",
];

#[test]
fn every_row_and_target_is_reported_with_positive_numbers() {
    let config = BenchConfig::with_scale(0.01);
    let mut lines = Vec::new();
    let report = run(&config, &mut |line| lines.push(line.to_string())).expect("the bench runs");
    assert!(!lines.is_empty(), "progress was reported");
    assert!(report.event_bytes > 256, "the encoded step holds its 256-byte message");

    let names: Vec<&str> = report.rows.iter().map(|row| row.name.as_str()).collect();
    assert_eq!(names.len(), ROWS.len(), "{names:#?}");
    for (row, name) in report.rows.iter().zip(ROWS) {
        assert!(row.name.starts_with(name), "expected {name:?} in {names:#?}");
        assert!(row.events > 0 && row.seconds > 0.0, "{row:?}");
        assert!(row.events_per_s > 0.0 && row.mb_per_s > 0.0, "{row:?}");
        if !row.name.starts_with("bytes per step: journal, sled file growth") {
            assert!(row.bytes_per_event > 0.0, "{row:?}");
        }
        if let Some(ratio) = row.ratio {
            assert!(ratio > 0.0, "{row:?}");
        }
        assert!(row.repetitions >= 1, "{row:?}");
        if row.ratio_of != RatioOf::Throughput {
            assert!(
                row.name.starts_with("journal open")
                    || row.name.starts_with("journal resume")
                    || row.name.starts_with("bytes per step"),
                "{row:?}"
            );
        }
    }

    let counted = usize::from(report.flushes_from.is_some());
    assert_eq!(report.targets.len(), TARGETS + counted);
    for name in FLUSH_ROWS {
        let row = report
            .rows
            .iter()
            .find(|row| row.name.starts_with(name))
            .expect("the row");
        let flushes = row.device_flushes_per_event;
        assert_eq!(flushes.is_some(), report.flushes_from.is_some(), "{row:?}");
        // Every durable commit flushes the device at least once, whoever else writes.
        if let Some(flushes) = flushes.filter(|_| !row.name.contains("64")) {
            assert!(flushes >= 1.0, "{row:?}");
        }
    }
    for target in &report.targets {
        assert!(target.ratio > 0.0 && target.ratio.is_finite(), "{target:?}");
        assert!(target.goal > 0.0, "{target:?}");
    }

    socket_rows_are_against_the_embedded_ones(&report);
    growth_after_a_purge_is_against_the_live_run(&report);

    let table = report.to_table();
    let needles = [
        "machine:",
        "event: step",
        "durability:",
        "reps",
        "× events/s of raw sled insert",
        "targets",
        "journal replay",
    ];
    for needle in needles {
        assert!(table.contains(needle), "the table shows {needle:?}:\n{table}");
    }
    let json = report.to_json();
    assert!(
        json["machine"]["cores"].as_u64().is_some_and(|cores| cores > 0),
        "{json}"
    );
    assert_eq!(json["event_bytes"].as_u64(), Some(report.event_bytes as u64));
    assert!(json["durability"]["durable"].is_string());
    let rows = json["rows"].as_array().expect("rows is an array");
    assert_eq!(rows.len(), report.rows.len());
    for row in rows {
        for field in ["events_per_s", "mb_per_s", "bytes_per_event"] {
            assert!(row[field].is_number(), "{field} in {row}");
        }
        assert!(row["name"].is_string());
    }
    assert_eq!(
        json["machine"]["flushes_from"].is_string(),
        report.flushes_from.is_some()
    );
    let targets = json["targets"].as_array().expect("targets is an array");
    assert_eq!(targets.len(), TARGETS + counted);
    let socket = targets
        .iter()
        .find(|target| target["name"] == "durable, 64 socket clients ≥ 0.5 × 64 embedded writers")
        .expect("the socket target is in the JSON");
    assert_eq!(socket["goal"].as_f64(), Some(0.5), "{socket}");
    assert_eq!(socket["comparison"], ">=", "{socket}");
    for target in targets {
        assert!(target["ratio"].as_f64().is_some_and(|ratio| ratio > 0.0), "{target}");
        assert!(target["goal"].is_number() && target["met"].is_boolean(), "{target}");
        assert!(target["name"].is_string());
    }
}

/// The growth after a purge is measured against what is live at the end.
fn growth_after_a_purge_is_against_the_live_run(report: &runjournal_bench::BenchReport) {
    let purged = report
        .rows
        .iter()
        .find(|row| row.name.ends_with("run purged + another"))
        .expect("the growth after a purge");
    let live = report
        .rows
        .iter()
        .find(|row| row.name.ends_with("run after a purge"))
        .expect("the live run's stored bytes");
    assert_eq!(purged.baseline.as_deref(), Some(live.name.as_str()), "{purged:?}");
    assert!(purged.bytes_per_event > 0.0, "{purged:?}");
}

/// Each socket row is compared with the embedded writers it stands beside.
fn socket_rows_are_against_the_embedded_ones(report: &runjournal_bench::BenchReport) {
    for clients in ["1 client", "64 clients"] {
        let name = format!("journal append through the socket, durable, {clients}");
        let row = report.rows.iter().find(|row| row.name == name).expect("the socket row");
        let embedded = if clients == "1 client" {
            "journal append, durable, 1 writer"
        } else {
            "journal append, durable, 64 writers"
        };
        assert_eq!(row.baseline.as_deref(), Some(embedded), "{row:?}");
    }
}
