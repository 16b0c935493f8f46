//! runjournal's throughput harness (issue 5): the journal measured side by
//! side with the engines it is built on and competes with, in one run, on one
//! machine, with one event payload.
//!
//! Competing engines (raw sled access, SQLite) live in this crate only, so the
//! product never compiles them. The command line's `runjournal bench` calls
//! [`run`].
//!
//! # What is measured
//!
//! Every workload writes the same event: a `step` with one assistant message
//! of 256 bytes of content, encoded as the journal stores it (the report gives
//! the encoded size). Each row is the median of several repetitions (three at
//! scale ≥ 0.05, five for the short durable rows), each on a fresh database in
//! a temporary directory under [`BenchConfig::dir`]. Rows that are compared
//! with each other run interleaved (one repetition of each per round) with the
//! file system synced before every repetition, so a disk still writing back
//! one workload's data does not slow the next one's syncs.
//!
//! | row (report order) | what is timed | baseline |
//! |---|---|---|
//! | raw sled insert, no flush | the encoded records inserted one by one under 17-byte big-endian keys | — |
//! | journal append, buffered, snapshots off | sequential `Run::step` in `Durability::Buffered` | raw sled insert |
//! | raw sled `apply_batch` per event | diagnostic: the journal's write pattern on raw sled, one batch of the record and the run record per event | raw sled insert |
//! | journal append, buffered, in-memory store | diagnostic: the buffered append over `MemoryStore`, the journal's own cost without sled | raw sled insert |
//! | raw sled batch + one flush | one `apply_batch` of every record, then one `flush` | raw sled insert |
//! | SQLite WAL sync=NORMAL, one transaction | every INSERT, one commit (the bulk insert an import compares with) | raw sled insert |
//! | SQLite WAL sync=NORMAL, one INSERT per commit | autocommit without a sync per commit: what a buffered user picks | raw sled insert |
//! | raw sled insert + flush + fdatasync per event | the cost of making each event durable on its own | — |
//! | SQLite WAL sync=FULL, one INSERT per commit | autocommit: one sync per event | per-event fdatasync |
//! | journal append, durable, N writers | N threads, one run each, `Durability::Durable` (group commit) | per-event fdatasync |
//! | journal append through the socket, durable, N clients | N threads, one run each, appending through one `Journal::connect` to the bench journal serving itself on its Unix socket (same process, same disk) | the embedded row with as many writers |
//! | SQLite WAL sync=FULL, one INSERT per commit, 64 threads | a connection per thread, SQLite serializing them on its lock | per-event fdatasync |
//! | raw sled scan, one key per event | the run's records copied one key per event (format 1's layout), its key range iterated touching every value | — |
//! | SQLite SELECT scan in key order | `SELECT bytes … ORDER BY seq` of the same records, touching every value | raw sled scan |
//! | journal replay | `Journal::for_each_event` (read, decode, verify the chain on every core) folded into a `ResumeState` | raw sled scan |
//! | journal import | `Journal::import` of the replayed run's JSON lines into a fresh database | SQLite one transaction |
//! | journal append, batches of 1000 | building the big resumed session: default snapshots, compactions | — |
//! | journal open / resume | `Journal::open`, then `Journal::resume`, of a run of S and of 100 × S events (at scale ≥ 1) | the small run |
//! | bytes per step | stored key + value bytes of 1,000 durable steps, and the growth of the disk space sled's files take (allocated blocks) | a JSON checkpoint of the whole transcript per step |
//! | bytes per step, long run | the same over 10,000 durable steps (the file-growth target's run) | the run's stored key + value bytes |
//!
//! The targets are issue 18's; `--json` carries each with its ratio, goal and
//! whether it was met.
//!
//! `bytes_per_event` is logical: the key and value bytes handed to the
//! storage engine per event, including the journal's run-record rewrite and
//! its periodic snapshots. `mb_per_s` is event payload (encoded records) per
//! second, except for the bytes-per-step rows where it is bytes written per
//! second.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod flushes;
mod machine;
mod measure;
mod payload;
mod postgres;
mod report;
mod sizes;
mod workloads;

use std::path::PathBuf;

pub use error::BenchError;
pub use machine::Machine;
pub use postgres::{run_postgres, PostgresBenchConfig, PostgresReport, PostgresRow, PostgresTarget};
pub use report::{BenchReport, Comparison, RatioOf, Row, Target};
pub use sizes::Sizes;

use measure::{interleaved, settle, Measurement};
use payload::Payload;
use workloads::{append, footprint, replay, resume, sqlite, Bench};

/// How much to measure and where.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Workload size: 1.0 takes about a minute on a 2-core machine; 0.01 a
    /// few seconds. Must be positive.
    pub scale: f64,
    /// Where the temporary databases go (default: the system temporary
    /// directory). Durable rows measure the file system under it.
    pub dir: Option<PathBuf>,
    /// Repetitions of each timed workload; `None` picks 3, and 5 for the
    /// durable rows (1 below scale 0.05).
    pub repetitions: Option<usize>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            scale: 1.0,
            dir: None,
            repetitions: None,
        }
    }
}

impl BenchConfig {
    /// The default configuration at `scale`.
    pub fn with_scale(scale: f64) -> Self {
        BenchConfig {
            scale,
            ..BenchConfig::default()
        }
    }
}

/// Runs every workload and returns the report. `progress` receives one line
/// as each workload starts.
pub fn run(config: &BenchConfig, progress: &mut dyn FnMut(&str)) -> Result<BenchReport, BenchError> {
    let sizes = Sizes::for_config(config)?;
    let parent = config.dir.clone().unwrap_or_else(std::env::temp_dir);
    let root = tempfile::Builder::new()
        .prefix("runjournal-bench-")
        .tempdir_in(&parent)
        .map_err(error::io_error("create the bench directory"))?;
    let machine = Machine::detect(root.path());
    let flushes = machine::flush_counter(root.path());
    let flushes_from = flushes.as_ref().map(|counter| counter.path().display().to_string());
    let bench = Bench::new(root.path().to_path_buf(), sizes.repetitions, Payload::new(), flushes);
    let measured = measure_all(&bench, &sizes, progress)?;
    let (rows, targets) = measured.rows_and_targets(&sizes, bench.payload.record_len());
    Ok(BenchReport {
        scale: config.scale,
        sizes,
        machine,
        event_bytes: bench.payload.record_len(),
        key_bytes: payload::KEY_BYTES,
        content_bytes: payload::CONTENT_BYTES,
        rows,
        targets,
        flushes_from,
    })
}

/// Device flushes per durable append with one writer: one, and what other
/// writers on a quiet machine's device add (the file system's periodic
/// journal commit, logs).
const DURABLE_FLUSHES_GOAL: f64 = 1.02;

/// The numbers of concurrent writers of the durable rows.
const WRITERS: [usize; 3] = [1, 16, 64];

/// Every workload's measurement.
struct Measured {
    raw_insert: Measurement,
    buffered: Measurement,
    raw_batch: Measurement,
    raw_batch_each: Measurement,
    in_memory: Measurement,
    sqlite_one: Measurement,
    sqlite_normal: Measurement,
    fsync_each: Measurement,
    sqlite_commit: Measurement,
    sqlite_commit_64: Measurement,
    durable: [Measurement; 3],
    /// Durable appends through the owner's socket, 1 and 64 clients.
    socket: [Measurement; 2],
    replayed: replay::Replayed,
    resumed: resume::Resumed,
    journal_bytes: footprint::JournalFootprint,
    checkpoint_bytes: Measurement,
    long_run_bytes: footprint::JournalFootprint,
    /// A run written, purged, and another as long written after it.
    purged_run_bytes: footprint::JournalFootprint,
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "the synced prefix is at most the workload size, a small count; 64-bit targets"
)]
#[expect(
    clippy::too_many_lines,
    reason = "one interleaved group of workloads after another, in report order"
)]
fn measure_all(bench: &Bench, sizes: &Sizes, progress: &mut dyn FnMut(&str)) -> Result<Measured, BenchError> {
    let records = bench.payload.records(sizes.append_events);
    let synced = &records[..sizes.synced_events as usize];
    let (events, synced_events) = (sizes.append_events, sizes.synced_events);
    let root = bench.root();
    // SQLite serializes its 64 writers, a sync each: a tenth of the
    // journal's events per writer measures its rate in a tenth of the time.
    let sqlite_per_thread = (sizes.events_per_writer_64 / 10).max(1);
    progress(&format!(
        "durable: per-event flush + fdatasync, SQLite per commit, journal with 1 writer ({synced_events} events), \
         {} writers × {} and {} writers × {} events, through the socket with 1 and {} clients; {} rounds",
        WRITERS[1],
        sizes.events_per_writer_16,
        WRITERS[2],
        sizes.events_per_writer_64,
        WRITERS[2],
        sizes.durable_repetitions
    ));
    let [fsync_each, sqlite_commit, sqlite_commit_64, durable_1, durable_16, durable_64, socket_1, socket_64] =
        interleaved(
            root,
            sizes.durable_repetitions,
            [
                (synced_events, Box::new(|| append::raw_sled_fsync_each(bench, synced))),
                (
                    synced_events,
                    Box::new(|| sqlite::per_commit(bench, synced, sqlite::Sync::Full)),
                ),
                (
                    WRITERS[2] as u64 * sqlite_per_thread,
                    Box::new(|| sqlite::per_commit_threads(bench, WRITERS[2], sqlite_per_thread, &records[0])),
                ),
                (
                    synced_events,
                    Box::new(|| append::journal_durable(bench, WRITERS[0], synced_events)),
                ),
                (
                    WRITERS[1] as u64 * sizes.events_per_writer_16,
                    Box::new(|| append::journal_durable(bench, WRITERS[1], sizes.events_per_writer_16)),
                ),
                (
                    WRITERS[2] as u64 * sizes.events_per_writer_64,
                    Box::new(|| append::journal_durable(bench, WRITERS[2], sizes.events_per_writer_64)),
                ),
                (
                    synced_events,
                    Box::new(|| append::socket_durable(bench, WRITERS[0], synced_events)),
                ),
                (
                    WRITERS[2] as u64 * sizes.events_per_writer_64,
                    Box::new(|| append::socket_durable(bench, WRITERS[2], sizes.events_per_writer_64)),
                ),
            ],
        )?;
    progress(&format!(
        "sequential: raw sled insert, journal buffered append, diagnostics, raw batch, SQLite one transaction \
         ({events} events); {} rounds",
        sizes.repetitions
    ));
    let [raw_insert, buffered, raw_batch_each, in_memory, raw_batch, sqlite_one, sqlite_normal] = interleaved(
        root,
        sizes.repetitions,
        [
            (events, Box::new(|| append::raw_sled_insert(bench, &records))),
            (events, Box::new(|| append::journal_buffered(bench, events))),
            (events, Box::new(|| append::raw_sled_batch_per_event(bench, &records))),
            (events, Box::new(|| append::journal_buffered_in_memory(bench, events))),
            (events, Box::new(|| append::raw_sled_batch(bench, &records))),
            (events, Box::new(|| sqlite::one_transaction(bench, &records))),
            (
                events,
                Box::new(|| sqlite::per_commit(bench, &records, sqlite::Sync::Normal)),
            ),
        ],
    )?;
    drop(records);
    progress(&format!("replay of a {events}-event run"));
    settle(root)?;
    let replayed = replay::measure(bench, events)?;
    progress(&format!(
        "resume of a {}-event and a {}-event run",
        sizes.resume_small, sizes.resume_big
    ));
    settle(root)?;
    let resumed = resume::measure(bench, sizes.resume_small, sizes.resume_big, progress)?;
    progress(&format!(
        "bytes per step: {} durable journal steps vs {} JSON checkpoints",
        sizes.footprint_steps, sizes.footprint_steps
    ));
    settle(root)?;
    let journal_bytes = footprint::journal(bench, sizes.footprint_steps)?;
    settle(root)?;
    let checkpoint_bytes = footprint::checkpoint(bench, sizes.footprint_steps)?;
    progress(&format!(
        "sled file growth over a {}-step durable run",
        sizes.long_run_steps
    ));
    settle(root)?;
    let long_run_bytes = footprint::journal(bench, sizes.long_run_steps)?;
    progress(&format!(
        "sled file growth over a {}-step durable run purged and another written after it",
        sizes.long_run_steps
    ));
    settle(root)?;
    let purged_run_bytes = footprint::after_purge(bench, sizes.long_run_steps)?;
    Ok(Measured {
        raw_insert,
        buffered,
        raw_batch,
        raw_batch_each,
        in_memory,
        sqlite_one,
        sqlite_normal,
        fsync_each,
        sqlite_commit,
        sqlite_commit_64,
        durable: [durable_1, durable_16, durable_64],
        socket: [socket_1, socket_64],
        replayed,
        resumed,
        journal_bytes,
        long_run_bytes,
        purged_run_bytes,
        checkpoint_bytes,
    })
}

impl Measured {
    #[expect(clippy::too_many_lines, reason = "one row and target after another, in report order")]
    fn rows_and_targets(&self, sizes: &Sizes, event_bytes: usize) -> (Vec<Row>, Vec<Target>) {
        let throughput = |name: &str, measured: &Measurement, baseline: Option<&Row>| {
            Row::throughput(name, measured, event_bytes, baseline)
        };
        let raw_insert = throughput("raw sled insert, no flush", &self.raw_insert, None);
        let buffered = throughput(
            "journal append, buffered, snapshots off",
            &self.buffered,
            Some(&raw_insert),
        );
        let raw_batch = throughput("raw sled batch + one flush", &self.raw_batch, Some(&raw_insert));
        let raw_batch_each = throughput(
            "raw sled apply_batch per event (event + run record)",
            &self.raw_batch_each,
            Some(&raw_insert),
        );
        let in_memory = throughput(
            "journal append, buffered, in-memory store",
            &self.in_memory,
            Some(&raw_insert),
        );
        let sqlite_one = throughput(
            "SQLite WAL sync=NORMAL, one transaction",
            &self.sqlite_one,
            Some(&raw_insert),
        );
        let sqlite_normal = throughput(
            "SQLite WAL sync=NORMAL, one INSERT per commit",
            &self.sqlite_normal,
            Some(&raw_insert),
        );
        let fsync_each = throughput("raw sled insert + flush + fdatasync per event", &self.fsync_each, None);
        let sqlite_commit = throughput(
            "SQLite WAL sync=FULL, one INSERT per commit",
            &self.sqlite_commit,
            Some(&fsync_each),
        );
        let sqlite_commit_64 = throughput(
            &format!("SQLite WAL sync=FULL, one INSERT per commit, {} threads", WRITERS[2]),
            &self.sqlite_commit_64,
            Some(&fsync_each),
        );
        let [durable_1, durable_16, durable_64] = [0, 1, 2].map(|index| {
            let writers = WRITERS[index];
            let name = format!(
                "journal append, durable, {writers} writer{}",
                if writers == 1 { "" } else { "s" }
            );
            throughput(&name, &self.durable[index], Some(&fsync_each))
        });
        let [socket_1, socket_64] = [(0, &durable_1), (2, &durable_64)].map(|(index, embedded)| {
            let clients = WRITERS[index];
            let name = format!(
                "journal append through the socket, durable, {clients} client{}",
                if clients == 1 { "" } else { "s" }
            );
            throughput(&name, &self.socket[index / 2], Some(embedded))
        });
        let scan = throughput("raw sled scan, one key per event", &self.replayed.raw, None);
        let sqlite_scan = throughput("SQLite SELECT scan in key order", &self.replayed.sqlite, Some(&scan));
        let replay = throughput(
            "journal replay: read + verify + fold",
            &self.replayed.journal,
            Some(&scan),
        );
        let import = throughput(
            "journal import of the exported run (JSON lines)",
            &self.replayed.import,
            Some(&sqlite_one),
        );
        let resume_rows = self.resumed.rows(event_bytes);
        let checkpoint = Row::footprint("bytes per step: JSON checkpoint per step", &self.checkpoint_bytes, None);
        let journal_logical = Row::footprint(
            "bytes per step: journal, stored key + value",
            &self.journal_bytes.logical,
            Some(&checkpoint),
        );
        let journal_disk = Row::footprint(
            "bytes per step: journal, sled file growth",
            &self.journal_bytes.on_disk,
            Some(&checkpoint),
        );
        let long_steps = self.long_run_bytes.logical.events;
        let long_logical = Row::footprint(
            &format!("bytes per step: journal, stored key + value, {long_steps}-step run"),
            &self.long_run_bytes.logical,
            None,
        );
        let long_disk = Row::footprint(
            &format!("bytes per step: journal, sled file growth, {long_steps}-step run"),
            &self.long_run_bytes.on_disk,
            Some(&long_logical),
        );
        let purged_logical = Row::footprint(
            &format!("bytes per step: journal, stored key + value, {long_steps}-step run after a purge"),
            &self.purged_run_bytes.logical,
            None,
        );
        let purged_disk = Row::footprint(
            &format!("bytes per step: journal, sled file growth, {long_steps}-step run purged + another"),
            &self.purged_run_bytes.on_disk,
            Some(&purged_logical),
        );
        let ratio = |row: &Row, baseline: &Row| row.events_per_s / baseline.events_per_s;

        let mut targets = vec![
            Target::at_least(
                "buffered append ≥ 2 × raw sled insert",
                ratio(&buffered, &raw_insert),
                2.0,
            ),
            Target::at_least(
                "buffered append ≥ 1 × SQLite WAL NORMAL, one transaction",
                ratio(&buffered, &sqlite_one),
                1.0,
            ),
            Target::at_least(
                "buffered append ≥ 1 × SQLite WAL NORMAL, one INSERT per commit",
                ratio(&buffered, &sqlite_normal),
                1.0,
            ),
            Target::at_least(
                "durable, 1 writer ≥ 0.9 × per-event flush + fdatasync",
                ratio(&durable_1, &fsync_each),
                0.9,
            ),
            Target::at_least(
                "durable, 1 writer ≥ 1 × SQLite FULL per commit",
                ratio(&durable_1, &sqlite_commit),
                1.0,
            ),
            Target::at_least(
                "durable, 64 writers ≥ 20 × per-event flush + fdatasync",
                ratio(&durable_64, &fsync_each),
                20.0,
            ),
            Target::at_least(
                "durable, 64 writers ≥ 1 × SQLite FULL per commit, 64 threads",
                ratio(&durable_64, &sqlite_commit_64),
                1.0,
            ),
            Target::at_least(
                &format!(
                    "durable, {} socket clients ≥ 0.5 × {} embedded writers",
                    WRITERS[2], WRITERS[2]
                ),
                ratio(&socket_64, &durable_64),
                0.5,
            ),
            Target::at_least("replay ≥ 0.5 × raw sled scan", ratio(&replay, &scan), 0.5),
            Target::at_least("replay ≥ 1 × SQLite scan", ratio(&replay, &sqlite_scan), 1.0),
            Target::at_least(
                "import ≥ 1 × SQLite bulk INSERT (one transaction)",
                ratio(&import, &sqlite_one),
                1.0,
            ),
            Target::at_most(
                &format!(
                    "open of a {}-event db ≤ 2 × open of a {}-event one",
                    sizes.resume_big, sizes.resume_small
                ),
                resume_rows.big_open.seconds / resume_rows.small_open.seconds,
                2.0,
            ),
            Target::at_most(
                &format!(
                    "resume of {} events ≤ 2 × resume of {} events",
                    sizes.resume_big, sizes.resume_small
                ),
                resume_rows.big_resume.seconds / resume_rows.small_resume.seconds,
                2.0,
            ),
            Target::at_most(
                &format!("sled file growth over a {long_steps}-step run ≤ 2 × stored key + value bytes"),
                long_disk.bytes_per_event / long_logical.bytes_per_event,
                2.0,
            ),
            Target::at_most(
                &format!(
                    "sled file growth over a {long_steps}-step run purged and another written ≤ 2 × the live run's stored bytes"
                ),
                purged_disk.bytes_per_event / purged_logical.bytes_per_event,
                2.0,
            ),
            Target::at_most(
                "journal bytes per step ≤ 1/50 of JSON checkpointing",
                journal_logical.bytes_per_event / checkpoint.bytes_per_event,
                0.02,
            ),
        ];
        // Issue 18's "one device flush per durable commit", where the device counts them.
        if let Some(flushes) = durable_1.device_flushes_per_event {
            targets.push(Target::at_most(
                "durable, 1 writer ≤ 1 device flush per append (+2 % for other writers on the device)",
                flushes,
                DURABLE_FLUSHES_GOAL,
            ));
        }
        let mut rows = vec![
            raw_insert,
            buffered,
            raw_batch_each,
            in_memory,
            raw_batch,
            sqlite_one,
            sqlite_normal,
            fsync_each,
            sqlite_commit,
            durable_1,
            durable_16,
            durable_64,
            socket_1,
            socket_64,
            sqlite_commit_64,
            scan,
            sqlite_scan,
            replay,
            import,
        ];
        rows.extend(resume_rows.all);
        rows.extend([
            journal_logical,
            journal_disk,
            checkpoint,
            long_logical,
            long_disk,
            purged_logical,
            purged_disk,
        ]);
        (rows, targets)
    }
}
