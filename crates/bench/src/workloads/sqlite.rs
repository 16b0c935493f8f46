//! SQLite (bundled, through rusqlite) in WAL mode: the embedded database an
//! agent runtime would otherwise reach for (`LangGraph`'s saver and the Python
//! swarm both use it), in the configuration a user would pick for each
//! journal workload: `synchronous=FULL` where the journal is durable,
//! `synchronous=NORMAL` where it is buffered.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::Bench;
use crate::error::{sqlite_error, BenchError};
use crate::measure::{flushes_between, Sample};

const INSERT: &str = "INSERT INTO events (run, seq, bytes) VALUES (?1, ?2, ?3)";

/// Logical bytes of one row: two 8-byte integers of key and the record.
#[expect(
    clippy::cast_precision_loss,
    reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
)]
fn row_bytes_per_event(records: &[Vec<u8>]) -> f64 {
    let total: usize = records.iter().map(|record| 16 + record.len()).sum();
    total as f64 / records.len().max(1) as f64
}

/// SQLite's `synchronous` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sync {
    /// The WAL is synced at every commit: durable.
    Full,
    /// The WAL is synced only at checkpoints: a crash may lose the last
    /// commits, never corrupt.
    Normal,
}

impl Sync {
    fn pragma(self) -> &'static str {
        match self {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        }
    }
}

fn open(path: &Path, sync: Sync) -> Result<Connection, BenchError> {
    let connection = connect(path, sync)?;
    connection
        .execute(
            "CREATE TABLE events (run INTEGER NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL, \
             PRIMARY KEY (run, seq))",
            [],
        )
        .map_err(sqlite_error("create table"))?;
    Ok(connection)
}

/// A connection in WAL mode with `sync`, waiting for the write lock as long
/// as it takes (concurrent writers are serialized by SQLite's lock).
fn connect(path: &Path, sync: Sync) -> Result<Connection, BenchError> {
    let connection = Connection::open(path).map_err(sqlite_error("open"))?;
    connection
        .busy_timeout(Duration::from_secs(60))
        .map_err(sqlite_error("set busy_timeout"))?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(sqlite_error("set journal_mode=WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(BenchError::Check {
            workload: "SQLite",
            detail: format!("journal_mode is {mode}, not wal"),
        });
    }
    connection
        .pragma_update(None, "synchronous", sync.pragma())
        .map_err(sqlite_error("set synchronous"))?;
    Ok(connection)
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "SQLite's page count times page size: a non-negative file size; 64-bit targets"
)]
fn check_rows(connection: &Connection, expected: usize) -> Result<(), BenchError> {
    let count: i64 = connection
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .map_err(sqlite_error("count rows"))?;
    if count as usize == expected {
        Ok(())
    } else {
        Err(BenchError::Check {
            workload: "SQLite",
            detail: format!("the table holds {count} rows, {expected} were written"),
        })
    }
}

/// One INSERT per commit (autocommit): with [`Sync::Full`] a sync per event.
pub(crate) fn per_commit(bench: &Bench, records: &[Vec<u8>], sync: Sync) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("sqlite-commit")?;
    let connection = open(&dir.path().join("bench.sqlite"), sync)?;
    let (elapsed, flushes) = {
        let mut insert = connection.prepare(INSERT).map_err(sqlite_error("prepare insert"))?;
        let flushes = bench.device_flushes();
        let started = Instant::now();
        for (seq, record) in (1i64..).zip(records) {
            insert
                .execute(params![0i64, seq, record.as_slice()])
                .map_err(sqlite_error("insert"))?;
        }
        (started.elapsed(), flushes_between(flushes, bench.device_flushes()))
    };
    check_rows(&connection, records.len())?;
    Ok(Sample::new(elapsed, row_bytes_per_event(records)).with_device_flushes(flushes))
}

/// Every INSERT in one transaction, one commit (`synchronous=NORMAL`): the
/// bulk insert an import compares with.
pub(crate) fn one_transaction(bench: &Bench, records: &[Vec<u8>]) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("sqlite-transaction")?;
    let mut connection = open(&dir.path().join("bench.sqlite"), Sync::Normal)?;
    let started = Instant::now();
    let transaction = connection.transaction().map_err(sqlite_error("begin"))?;
    {
        let mut insert = transaction.prepare(INSERT).map_err(sqlite_error("prepare insert"))?;
        for (seq, record) in (1i64..).zip(records) {
            insert
                .execute(params![0i64, seq, record.as_slice()])
                .map_err(sqlite_error("insert"))?;
        }
    }
    transaction.commit().map_err(sqlite_error("commit"))?;
    let elapsed = started.elapsed();
    check_rows(&connection, records.len())?;
    Ok(Sample::new(elapsed, row_bytes_per_event(records)))
}

/// `threads` threads, each with its own connection, each inserting
/// `per_thread` records of its own run, one INSERT per commit with
/// `synchronous=FULL`: SQLite serializes the writers on its lock, each
/// commit with its own sync.
#[expect(clippy::cast_possible_wrap, reason = "thread indices and seqs are small counts")]
pub(crate) fn per_commit_threads(
    bench: &Bench,
    threads: usize,
    per_thread: u64,
    record: &[u8],
) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("sqlite-threads")?;
    let path = dir.path().join("bench.sqlite");
    drop(open(&path, Sync::Full)?);
    let start = Arc::new(Barrier::new(threads + 1));
    let mut elapsed = Duration::ZERO;
    let mut flushes = None;
    std::thread::scope(|scope| -> Result<(), BenchError> {
        let mut handles = Vec::with_capacity(threads);
        for thread in 0..threads {
            let (path, start) = (path.clone(), start.clone());
            handles.push(scope.spawn(move || -> Result<(), BenchError> {
                let connection = connect(&path, Sync::Full);
                start.wait();
                let connection = connection?;
                let mut insert = connection.prepare(INSERT).map_err(sqlite_error("prepare insert"))?;
                for seq in 0..per_thread as i64 {
                    insert
                        .execute(params![thread as i64, seq, record])
                        .map_err(sqlite_error("insert"))?;
                }
                Ok(())
            }));
        }
        start.wait();
        let before = bench.device_flushes();
        let started = Instant::now();
        for handle in handles {
            handle.join().map_err(|_| BenchError::Check {
                workload: "SQLite per-commit threads",
                detail: "a writer thread panicked".into(),
            })??;
        }
        elapsed = started.elapsed();
        flushes = flushes_between(before, bench.device_flushes());
        Ok(())
    })?;
    let connection = connect(&path, Sync::Full)?;
    check_rows(&connection, threads * usize::try_from(per_thread).unwrap_or(0))?;
    Ok(Sample::new(elapsed, row_bytes_per_event(&[record.to_vec()])).with_device_flushes(flushes))
}

/// A SQLite database at `path` holding `records` as run 0, seqs from 0.
pub(crate) fn filled(path: &Path, records: &[Vec<u8>]) -> Result<Connection, BenchError> {
    let mut connection = open(path, Sync::Normal)?;
    let transaction = connection.transaction().map_err(sqlite_error("begin"))?;
    {
        let mut insert = transaction.prepare(INSERT).map_err(sqlite_error("prepare insert"))?;
        for (seq, record) in (0i64..).zip(records) {
            insert
                .execute(params![0i64, seq, record.as_slice()])
                .map_err(sqlite_error("insert"))?;
        }
    }
    transaction.commit().map_err(sqlite_error("commit"))?;
    Ok(connection)
}

/// `SELECT` of run 0's rows in key order, touching every value: the time
/// and the rows seen.
pub(crate) fn scan(connection: &Connection) -> Result<(Duration, u64), BenchError> {
    let started = Instant::now();
    let mut select = connection
        .prepare_cached("SELECT bytes FROM events WHERE run = 0 ORDER BY seq")
        .map_err(sqlite_error("prepare select"))?;
    let mut rows = select.query([]).map_err(sqlite_error("select"))?;
    let (mut count, mut touched) = (0u64, 0u64);
    while let Some(row) = rows.next().map_err(sqlite_error("step"))? {
        let bytes = row.get_ref(0).map_err(sqlite_error("column"))?;
        let bytes = bytes.as_blob().map_err(|error| BenchError::Check {
            workload: "SQLite scan",
            detail: error.to_string(),
        })?;
        touched = touched.wrapping_add(bytes.len() as u64 + u64::from(bytes.last().copied().unwrap_or(0)));
        count += 1;
    }
    std::hint::black_box(touched);
    Ok((started.elapsed(), count))
}
