//! The bench on PostgreSQL (`runjournal bench --db postgres://…`, or
//! `--postgres` for a throwaway server started by the bench): durable append
//! with 1, 16 and 64 writers, replay and resume through the journal, side by
//! side with one `INSERT` per commit and `COPY` of the same record bytes,
//! and a plain `SELECT` of the same rows, on the same server in the same run.
//!
//! Invariants: every workload is checked after it is timed (a bench that
//! measures a wrong answer measures nothing); each is the median of
//! [`ROUNDS`] rounds; the raw tables are the bench's own (`bench_raw_*`),
//! created and dropped by it; the journal's runs are under a goal unique to
//! the invocation.
#![expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts far below 2^52 become floats for display"
)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use ::postgres::{Client, NoTls};
use runjournal::{Durability, Event, Journal, Options, RunKey, RunMeta};
use serde::Serialize;

use crate::error::{journal_error, BenchError};
use crate::measure::timed_writers;
use crate::payload::Payload;

/// Rounds of each workload; the median is reported.
const ROUNDS: usize = 3;

/// The writer counts of the durable append.
const WRITERS: [usize; 3] = [1, 16, 64];

/// What to run against.
#[derive(Clone, Debug)]
pub struct PostgresBenchConfig {
    /// The database (a `postgres://` URL); `None` starts a throwaway server.
    pub url: Option<String>,
    /// Workload size: 1.0 takes about a minute on a 2-core machine.
    pub scale: f64,
}

/// One measured workload.
#[derive(Clone, Debug, Serialize)]
pub struct PostgresRow {
    /// What was measured.
    pub name: String,
    /// Events (rows) per round.
    pub events: u64,
    /// Median seconds per round.
    pub seconds: f64,
    /// Events per second.
    pub events_per_second: f64,
}

/// A target of issue 15 and whether this run met it.
#[derive(Clone, Debug, Serialize)]
pub struct PostgresTarget {
    /// The target, in words.
    pub name: String,
    /// The measured ratio.
    pub ratio: f64,
    /// The ratio required.
    pub required: f64,
    /// Whether the ratio met it.
    pub met: bool,
}

/// The PostgreSQL bench's result.
#[derive(Clone, Debug, Serialize)]
pub struct PostgresReport {
    /// The database, without its password.
    pub database: String,
    /// The server's version string.
    pub server: String,
    /// The scale.
    pub scale: f64,
    /// Every workload, in run order.
    pub rows: Vec<PostgresRow>,
    /// The targets.
    pub targets: Vec<PostgresTarget>,
}

fn sql_error(operation: &'static str) -> impl FnOnce(::postgres::Error) -> BenchError {
    move |error| BenchError::Config(format!("PostgreSQL failed during {operation}: {error}"))
}

fn check(workload: &'static str, ok: bool, detail: impl FnOnce() -> String) -> Result<(), BenchError> {
    if ok {
        Ok(())
    } else {
        Err(BenchError::Check {
            workload,
            detail: detail(),
        })
    }
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "workload sizes: small positive counts"
)]
fn sized(base: f64, scale: f64) -> u64 {
    ((base * scale).round() as u64).max(1)
}

/// Runs the PostgreSQL bench.
#[expect(clippy::too_many_lines, reason = "one workload after another, in report order")]
pub fn run_postgres(
    config: &PostgresBenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<PostgresReport, BenchError> {
    if !(config.scale > 0.0 && config.scale.is_finite()) {
        return Err(BenchError::Config(format!(
            "scale must be positive, not {}",
            config.scale
        )));
    }
    let server;
    let url = if let Some(url) = &config.url {
        url.clone()
    } else {
        progress("starting a throwaway PostgreSQL server");
        server =
            runjournal_postgres::testing::TempServer::start().map_err(|error| BenchError::Config(error.to_string()))?;
        runjournal_postgres::testing::as_url(server.url())
    };
    let database = runjournal::location::redacted(std::path::Path::new(&url));
    let mut admin = Client::connect(&url, NoTls).map_err(sql_error("connect"))?;
    let version: String = admin
        .query_one("SHOW server_version", &[])
        .map_err(sql_error("read the version"))?
        .get(0);
    let payload = Payload::new();
    let goal = format!(
        "bench-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis())
    );
    let journal = Journal::open(&url, Options::with_durability(Durability::Durable)).map_err(journal_error("open"))?;
    let mut rows = Vec::new();
    let mut round = 0usize;

    let per_commit = sized(400.0, config.scale);
    progress(&format!("one INSERT per commit, {per_commit} rows"));
    let records = payload.records(per_commit);
    let insert = median(|| {
        round += 1;
        insert_per_commit(&mut admin, &records, round)
    })?;
    rows.push(row(
        "one INSERT per commit (autocommit, same record bytes)",
        per_commit,
        insert,
    ));

    let mut durable = Vec::new();
    for (writers, per_writer) in [
        (WRITERS[0], per_commit),
        (WRITERS[1], sized(60.0, config.scale)),
        (WRITERS[2], sized(30.0, config.scale)),
    ] {
        let events = writers as u64 * per_writer;
        progress(&format!(
            "journal durable append, {writers} writers × {per_writer} events"
        ));
        let seconds = median(|| {
            round += 1;
            append_durable(&journal, &goal, round, writers, per_writer, &payload)
        })?;
        durable.push(events as f64 / seconds);
        rows.push(row(
            &format!("journal durable append, {writers} writer(s), one run each"),
            events,
            seconds,
        ));
    }

    let replay_events = sized(20_000.0, config.scale);
    progress(&format!("COPY of {replay_events} rows"));
    let copy_records = payload.records(replay_events);
    let copy = median(|| {
        round += 1;
        copy_in(&mut admin, &copy_records, round)
    })?;
    rows.push(row(
        "COPY … FROM STDIN, one transaction (same record bytes)",
        replay_events,
        copy,
    ));
    drop(copy_records);

    progress(&format!("a {replay_events}-event run for replay and resume"));
    let key = RunKey::new(goal.clone(), 0, "replay").map_err(journal_error("key"))?;
    fill_run(&url, &key, replay_events, &payload)?;
    let record = journal.run_info(&key).map_err(journal_error("read the run"))?;
    let stored = record.head.next_seq;
    let replay = median(|| {
        let started = Instant::now();
        let events = journal.read(&key, 0).map_err(journal_error("replay"))?;
        let elapsed = started.elapsed().as_secs_f64();
        check("replay", events.len() as u64 == stored, || {
            format!("read {} events of {stored}", events.len())
        })?;
        Ok(elapsed)
    })?;
    rows.push(row("journal replay (read, verified), one run", stored, replay));
    let id = i64::try_from(record.id).map_err(|_| BenchError::Config("run id past i64".into()))?;
    let select = median(|| {
        let started = Instant::now();
        let found = admin
            .query(
                "SELECT seq, record FROM runjournal_events WHERE run = $1 ORDER BY seq",
                &[&id],
            )
            .map_err(sql_error("select"))?;
        let bytes: usize = found.iter().map(|row| row.get::<_, &[u8]>(1).len()).sum();
        let elapsed = started.elapsed().as_secs_f64();
        check("select", found.len() as u64 == stored && bytes > 0, || {
            format!("selected {} rows of {stored}", found.len())
        })?;
        Ok(elapsed)
    })?;
    rows.push(row("plain SELECT of the same rows (no verification)", stored, select));
    let resume = median(|| {
        let started = Instant::now();
        let (run, state) = journal.resume(&key).map_err(journal_error("resume"))?;
        let elapsed = started.elapsed().as_secs_f64();
        check("resume", state.last_seq == Some(run.next_seq() - 1), || {
            format!("resumed at {:?}, next seq {}", state.last_seq, run.next_seq())
        })?;
        Ok(elapsed)
    })?;
    rows.push(row("journal resume (attached + resume state)", 1, resume));
    admin
        .batch_execute("DROP TABLE IF EXISTS bench_raw_inserts, bench_raw_copy")
        .map_err(sql_error("drop the raw tables"))?;
    let insert_rate = per_commit as f64 / insert;
    let targets = vec![
        target(
            "journal 64 writers vs one INSERT per commit",
            durable[2] / insert_rate,
            5.0,
        ),
        target("journal replay vs plain SELECT (throughput)", select / replay, 0.5),
    ];
    Ok(PostgresReport {
        database,
        server: version,
        scale: config.scale,
        rows,
        targets,
    })
}

fn row(name: &str, events: u64, seconds: f64) -> PostgresRow {
    PostgresRow {
        name: name.to_owned(),
        events,
        seconds,
        events_per_second: events as f64 / seconds,
    }
}

fn target(name: &str, ratio: f64, required: f64) -> PostgresTarget {
    PostgresTarget {
        name: name.to_owned(),
        ratio,
        required,
        met: ratio >= required,
    }
}

/// The median of [`ROUNDS`] runs of `round` (seconds).
fn median(mut round: impl FnMut() -> Result<f64, BenchError>) -> Result<f64, BenchError> {
    let mut seconds = (0..ROUNDS).map(|_| round()).collect::<Result<Vec<f64>, _>>()?;
    seconds.sort_by(f64::total_cmp);
    Ok(seconds[ROUNDS / 2])
}

/// One autocommitted `INSERT` per record (each commit waits for the WAL flush).
fn insert_per_commit(client: &mut Client, records: &[Vec<u8>], round: usize) -> Result<f64, BenchError> {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS bench_raw_inserts; \
             CREATE TABLE bench_raw_inserts (run bigint, seq bigint, record bytea NOT NULL, PRIMARY KEY (run, seq))",
        )
        .map_err(sql_error("create the insert table"))?;
    let statement = client
        .prepare("INSERT INTO bench_raw_inserts (run, seq, record) VALUES ($1, $2, $3)")
        .map_err(sql_error("prepare"))?;
    let run = i64::try_from(round).unwrap_or(i64::MAX);
    let started = Instant::now();
    for (seq, record) in (0i64..).zip(records) {
        client
            .execute(&statement, &[&run, &seq, record])
            .map_err(sql_error("insert"))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count: i64 = client
        .query_one("SELECT count(*) FROM bench_raw_inserts", &[])
        .map_err(sql_error("count"))?
        .get(0);
    check(
        "one INSERT per commit",
        usize::try_from(count).ok() == Some(records.len()),
        || format!("{count} rows of {}", records.len()),
    )?;
    Ok(elapsed)
}

/// Every record in one `COPY` (text format, bytea as hex), one commit.
fn copy_in(client: &mut Client, records: &[Vec<u8>], round: usize) -> Result<f64, BenchError> {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS bench_raw_copy; \
             CREATE TABLE bench_raw_copy (run bigint, seq bigint, record bytea NOT NULL, PRIMARY KEY (run, seq))",
        )
        .map_err(sql_error("create the copy table"))?;
    let started = Instant::now();
    let mut text = String::with_capacity(records.len() * (records.first().map_or(0, Vec::len) * 2 + 24));
    for (seq, record) in records.iter().enumerate() {
        let _ = write!(text, "{round}\t{seq}\t\\\\x");
        for byte in record {
            let _ = write!(text, "{byte:02x}");
        }
        text.push('\n');
    }
    let mut writer = client
        .copy_in("COPY bench_raw_copy (run, seq, record) FROM STDIN")
        .map_err(sql_error("copy"))?;
    writer
        .write_all(text.as_bytes())
        .map_err(crate::error::io_error("write the copy data"))?;
    writer.finish().map_err(sql_error("finish the copy"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let count: i64 = client
        .query_one("SELECT count(*) FROM bench_raw_copy", &[])
        .map_err(sql_error("count"))?
        .get(0);
    check("COPY", usize::try_from(count).ok() == Some(records.len()), || {
        format!("{count} rows of {}", records.len())
    })?;
    Ok(elapsed)
}

/// `writers` threads, each appending `per_writer` steps to its own run,
/// durable; timed from a common start to the last writer's end.
fn append_durable(
    journal: &Journal,
    goal: &str,
    round: usize,
    writers: usize,
    per_writer: u64,
    payload: &Payload,
) -> Result<f64, BenchError> {
    let runs = (0..writers)
        .map(|index| {
            let key = RunKey::new(
                goal.to_owned(),
                u32::try_from(round).unwrap_or(u32::MAX),
                format!("w{index}"),
            )
            .map_err(journal_error("key"))?;
            journal.begin(key, RunMeta::default()).map_err(journal_error("begin"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let elapsed = timed_writers(writers, "durable append", |index| {
        let run = &runs[index];
        Ok(move || -> Result<(), BenchError> {
            for _ in 0..per_writer {
                run.step(vec![payload.message()])
                    .map_err(journal_error("durable append"))?;
            }
            Ok(())
        })
    })?;
    for run in &runs {
        check("durable append", run.next_seq() == per_writer + 1, || {
            format!("{}: next seq {}", run.key(), run.next_seq())
        })?;
    }
    Ok(elapsed.as_secs_f64())
}

/// Appends `events` steps to `key` in batches (not timed).
fn fill_run(url: &str, key: &RunKey, events: u64, payload: &Payload) -> Result<(), BenchError> {
    let journal = Journal::open(url, Options::with_durability(Durability::Buffered)).map_err(journal_error("open"))?;
    let run = journal
        .begin(key.clone(), RunMeta::default())
        .map_err(journal_error("begin"))?;
    let mut left = events.saturating_sub(1);
    while left > 0 {
        let n = left.min(500);
        let batch: Vec<Event> = (0..n).map(|_| payload.step()).collect();
        run.append(batch).map_err(journal_error("fill the replay run"))?;
        left -= n;
    }
    journal.sync().map_err(journal_error("sync"))?;
    Ok(())
}

impl PostgresReport {
    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The report as a text table.
    pub fn to_table(&self) -> String {
        let mut text = format!(
            "runjournal bench on PostgreSQL {} at {} (scale {}; median of {ROUNDS} rounds)\n\n",
            self.server, self.database, self.scale
        );
        let _ = writeln!(
            text,
            "{:<62} {:>8} {:>10} {:>12}",
            "workload", "events", "seconds", "events/s"
        );
        for row in &self.rows {
            let _ = writeln!(
                text,
                "{:<62} {:>8} {:>10.4} {:>12.0}",
                row.name, row.events, row.seconds, row.events_per_second
            );
        }
        text.push('\n');
        for target in &self.targets {
            let _ = writeln!(
                text,
                "target: {}: {:.2}× (needs ≥ {}×) {}",
                target.name,
                target.ratio,
                target.required,
                if target.met { "met" } else { "NOT met" }
            );
        }
        text
    }
}
