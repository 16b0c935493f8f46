//! SQLite (bundled, through rusqlite) in WAL mode with `synchronous=FULL`:
//! the embedded database an agent runtime would otherwise reach for.

use std::path::Path;
use std::time::Instant;

use rusqlite::{params, Connection};

use super::Bench;
use crate::error::{sqlite_error, BenchError};
use crate::measure::Sample;

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

fn open(path: &Path) -> Result<Connection, BenchError> {
    let connection = Connection::open(path).map_err(sqlite_error("open"))?;
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
        .pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite_error("set synchronous=FULL"))?;
    connection
        .execute(
            "CREATE TABLE events (run INTEGER NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL, \
             PRIMARY KEY (run, seq))",
            [],
        )
        .map_err(sqlite_error("create table"))?;
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

/// One INSERT per commit (autocommit): a sync per event.
pub(crate) fn per_commit(bench: &Bench, records: &[Vec<u8>]) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("sqlite-commit")?;
    let connection = open(&dir.path().join("bench.sqlite"))?;
    let elapsed = {
        let mut insert = connection.prepare(INSERT).map_err(sqlite_error("prepare insert"))?;
        let started = Instant::now();
        for (seq, record) in (1i64..).zip(records) {
            insert
                .execute(params![0i64, seq, record.as_slice()])
                .map_err(sqlite_error("insert"))?;
        }
        started.elapsed()
    };
    check_rows(&connection, records.len())?;
    Ok(Sample {
        elapsed,
        bytes_per_event: row_bytes_per_event(records),
    })
}

/// Every INSERT in one transaction, one commit.
pub(crate) fn one_transaction(bench: &Bench, records: &[Vec<u8>]) -> Result<Sample, BenchError> {
    let dir = bench.fresh_dir("sqlite-transaction")?;
    let mut connection = open(&dir.path().join("bench.sqlite"))?;
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
    Ok(Sample {
        elapsed,
        bytes_per_event: row_bytes_per_event(records),
    })
}
