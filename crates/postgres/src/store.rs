//! [`PostgresStore`]: the storage trait on PostgreSQL tables.
//!
//! Invariants (the statements are in `docs/postgres.md`):
//! - a head row changes only through a conditional `UPDATE … WHERE next_seq
//!   = $expected AND epoch <= $epoch`, in the transaction that inserts the
//!   batch's events, so a reader that sees a head sees every event before it;
//! - an `append` locks the heads it names in id order before changing any,
//!   then applies its batches in order; a rejected batch changes nothing and
//!   the others still apply;
//! - a key is unique (`key_bytes` UNIQUE): a create whose key exists, or is
//!   being created by a transaction that then commits, is `KeyExists`;
//! - a u64 of the trait is a `bigint` in the database: one that does not
//!   fit is refused before anything is written.

use std::collections::HashMap;

use postgres::{Row, Transaction};
use runjournal_core::{
    AppendBatch, AppendRejection, ChainHash, ForkBase, Head, KeyExists, NewRun, RunFilter, RunId, RunKey, RunRecord,
    RunStatus, ScanControl, SnapshotRecord, Store, StoreError,
};

use crate::connection::Connections;
use crate::failure::{self, corrupt, TxError};
use crate::schema;

/// Rows the first statement of a scan reads.
const SCAN_FIRST_PAGE: i64 = 256;

/// The most rows a scan reads per statement.
const SCAN_MAX_PAGE: i64 = 8192;

/// About how many bytes of records a scan reads per statement: later pages
/// are sized from the records seen so far, within the bounds above.
const SCAN_PAGE_BYTES: usize = 8 << 20;

/// The columns of a run row, in the order [`decode_run`] reads them.
const RUN_COLUMNS: &str = "id, goal, episode, agent, created_ts, next_seq, head_hash, epoch, last_ts, status, \
                           fork_parent, fork_goal, fork_episode, fork_agent, fork_seq, fork_hash";

/// The storage trait on PostgreSQL 15 or newer, shared by every process
/// that connects to the same database.
pub struct PostgresStore {
    connections: std::sync::Arc<Connections>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, or
    /// the key-value form such as `host=/run/postgresql dbname=journal`, a
    /// unix socket directory), creates or migrates its schema, and refuses a
    /// schema newer than this build knows.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let store = PostgresStore::connect(url)?;
        let database = store.connections.label.clone();
        store
            .connections
            .with_client("open", |client| schema::migrate(client, &database))?;
        Ok(store)
    }

    /// Connects to the database at `url` for a tool that must not create a
    /// journal: a database without the runjournal schema (or none at all) is
    /// [`StoreError::Missing`], and nothing is created in it. An existing
    /// schema of an older version is migrated, as [`PostgresStore::open`] does.
    pub fn open_existing(url: &str) -> Result<Self, StoreError> {
        let store = PostgresStore::connect(url)?;
        let database = store.connections.label.clone();
        let missing = || StoreError::Missing { path: database.clone() };
        let present = store.connections.with_client("open", |client| {
            schema::present(client).map_err(|error| failure::before_commit("look for the runjournal schema", &error))
        });
        match present {
            Ok(true) => {}
            Ok(false) => return Err(missing()),
            Err(StoreError::Disconnected { detail, .. }) if detail.contains("SQLSTATE 3D000") => return Err(missing()),
            Err(error) => return Err(error),
        }
        store
            .connections
            .with_client("open", |client| schema::migrate(client, &database))?;
        Ok(store)
    }

    fn connect(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config = url.parse().map_err(|error: postgres::Error| StoreError::Backend {
            operation: "parse the database URL",
            detail: failure::describe(&error),
        })?;
        Ok(PostgresStore {
            connections: std::sync::Arc::new(Connections::new(config)),
        })
    }

    /// The database, named without credentials.
    pub fn database(&self) -> &str {
        &self.connections.label
    }
}

impl Store for PostgresStore {
    fn create_runs(&self, runs: &[NewRun]) -> Result<Result<Vec<RunRecord>, KeyExists>, StoreError> {
        self.connections
            .transact("create runs", |transaction| create_in(transaction, runs))
    }

    fn reserve_run_id(&self) -> Result<RunId, StoreError> {
        let id: i64 = self.connections.with_client("reserve a run id", |client| {
            client
                .query_one("SELECT nextval(pg_get_serial_sequence('runjournal_runs', 'id'))", &[])
                .map(|row| row.get(0))
                .map_err(|error| failure::before_commit("reserve a run id", &error))
        })?;
        unsigned(id, "reserved run id", 0)
    }

    fn stage(&self, run: RunId, first_seq: u64, records: &[Vec<u8>]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let id = checked(run, "run id", run)?;
        let first = checked(first_seq, "seq", run)?;
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let outcome = self.connections.transact("stage events", |transaction| {
            transaction.execute(
                "INSERT INTO runjournal_staged_events (run, seq, record) \
                 SELECT $1, $2 + t.ordinality - 1, t.record FROM unnest($3::bytea[]) WITH ORDINALITY AS t(record, ordinality)",
                &[&id, &first, &slices],
            )?;
            Ok(())
        })?;
        outcome.map_err(|key| corrupt(format!("staging reported a taken key {}", key.0)))
    }

    fn publish_staged(&self, runs: &[RunRecord]) -> Result<Result<(), KeyExists>, StoreError> {
        if runs.is_empty() {
            return Ok(Ok(()));
        }
        self.connections
            .transact("publish staged runs", |transaction| publish_in(transaction, runs))
    }

    fn discard_staged(&self, runs: &[RunId]) -> Result<(), StoreError> {
        let ids: Vec<i64> = runs.iter().filter_map(|&id| id_param(id)).collect();
        let outcome = self.connections.transact("discard staged events", |transaction| {
            transaction.execute("DELETE FROM runjournal_staged_events WHERE run = ANY($1)", &[&ids])?;
            Ok(())
        })?;
        outcome.map_err(|key| corrupt(format!("discarding reported a taken key {}", key.0)))
    }

    fn append(&self, batches: &[AppendBatch]) -> Result<Vec<Result<(), AppendRejection>>, StoreError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let outcome = self
            .connections
            .transact("append", |transaction| append_in(transaction, batches))?;
        outcome.map_err(|key| corrupt(format!("append reported a taken key {}", key.0)))
    }

    fn claim_epoch(&self, run: RunId, epoch: u64) -> Result<bool, StoreError> {
        let Some(id) = id_param(run) else {
            return Ok(false);
        };
        let epoch = checked(epoch, "epoch", run)?;
        let outcome = self.connections.transact("claim an epoch", |transaction| {
            let updated = transaction.execute(
                "UPDATE runjournal_runs SET epoch = $2 WHERE id = $1 AND epoch < $2",
                &[&id, &epoch],
            )?;
            Ok(updated == 1)
        })?;
        outcome.map_err(|key| corrupt(format!("claiming an epoch reported a taken key {}", key.0)))
    }

    fn watch(&self) -> Result<Option<Box<dyn runjournal_core::Watch>>, StoreError> {
        Ok(Some(Box::new(crate::watch::PostgresWatch::listen(
            self.connections.clone(),
        )?)))
    }

    /// Every commit already waited for the server's stable storage
    /// (`synchronous_commit = on`): nothing is left to make durable.
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let Some(id) = id_param(id) else {
            return Ok(None);
        };
        let query = format!("SELECT {RUN_COLUMNS} FROM runjournal_runs WHERE id = $1");
        self.query_runs("read a run", |client| client.query(&query, &[&id]))
            .map(|mut records| records.pop())
    }

    fn find(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        let key_bytes = key.canonical_bytes();
        let query = format!("SELECT {RUN_COLUMNS} FROM runjournal_runs WHERE key_bytes = $1");
        self.query_runs("find a run", |client| client.query(&query, &[&key_bytes]))
            .map(|mut records| records.pop())
    }

    fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let status = filter.status.map(RunStatus::as_str);
        let query = format!(
            "SELECT {RUN_COLUMNS} FROM runjournal_runs \
             WHERE ($1::text IS NULL OR goal = $1) AND ($2::text IS NULL OR agent = $2) \
               AND ($3::text IS NULL OR status = $3) \
             ORDER BY key_bytes"
        );
        self.query_runs("list runs", |client| {
            client.query(&query, &[&filter.goal, &filter.agent, &status])
        })
    }

    fn max_episode(&self, goal: &str, agent: Option<&str>) -> Result<Option<u32>, StoreError> {
        let max: Option<i64> = self.connections.with_client("read the newest episode", |client| {
            client
                .query_one(
                    "SELECT max(episode) FROM runjournal_runs WHERE goal = $1 AND ($2::text IS NULL OR agent = $2)",
                    &[&goal, &agent],
                )
                .map(|row| row.get(0))
                .map_err(|error| failure::before_commit("read the newest episode", &error))
        })?;
        max.map(|episode| {
            u32::try_from(episode).map_err(|_| corrupt(format!("goal {goal:?} has episode {episode}, not a u32")))
        })
        .transpose()
    }

    fn scan(
        &self,
        run: RunId,
        from_seq: u64,
        end_seq: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ScanControl,
    ) -> Result<(), StoreError> {
        let Some(id) = id_param(run) else {
            return Ok(());
        };
        let end = bigint_bound(end_seq);
        let fetch = |next: i64, limit: i64| -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
            self.connections.with_client("read events", |client| {
                client
                    .query(
                        "SELECT seq, record FROM runjournal_events \
                         WHERE run = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4",
                        &[&id, &next, &end, &limit],
                    )
                    .map(|rows| rows.iter().map(|row| (row.get(0), row.get(1))).collect())
                    .map_err(|error| failure::before_commit("read events", &error))
            })
        };
        let mut limit = SCAN_FIRST_PAGE;
        let next = bigint_bound(from_seq);
        if next >= end {
            return Ok(());
        }
        let mut page = fetch(next, limit)?;
        // While one page is visited, the next is read (on another session),
        // so verifying and reading overlap.
        loop {
            let full = i64::try_from(page.len()).is_ok_and(|len| len == limit);
            let bytes: usize = page.iter().map(|(_, record)| record.len()).sum();
            let per_row = (bytes / page.len().max(1)).max(1);
            limit = i64::try_from(SCAN_PAGE_BYTES / per_row)
                .unwrap_or(SCAN_MAX_PAGE)
                .clamp(SCAN_FIRST_PAGE, SCAN_MAX_PAGE);
            let after = page.last().map_or(end, |(seq, _)| seq.saturating_add(1));
            let more = full && after < end;
            let visited = std::thread::scope(|scope| {
                let prefetch = more.then(|| scope.spawn(|| fetch(after, limit)));
                for (seq, record) in &page {
                    let seq = unsigned(*seq, "event seq", run)?;
                    if visit(seq, record) == ScanControl::Stop {
                        return Ok(None);
                    }
                }
                match prefetch.map(std::thread::ScopedJoinHandle::join) {
                    None => Ok(None),
                    Some(Ok(next)) => next.map(Some),
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                }
            })?;
            match visited {
                Some(next) => page = next,
                None => return Ok(()),
            }
        }
    }

    fn latest_snapshot(&self, run: RunId, at_most_seq: u64) -> Result<Option<SnapshotRecord>, StoreError> {
        let Some(id) = id_param(run) else {
            return Ok(None);
        };
        let at_most = bigint_bound(at_most_seq);
        let found: Option<(i64, Vec<u8>)> = self.connections.with_client("read a snapshot", |client| {
            client
                .query_opt(
                    "SELECT seq, bytes FROM runjournal_snapshots WHERE run = $1 AND seq <= $2 \
                     ORDER BY seq DESC LIMIT 1",
                    &[&id, &at_most],
                )
                .map(|row| row.map(|row| (row.get(0), row.get(1))))
                .map_err(|error| failure::before_commit("read a snapshot", &error))
        })?;
        found
            .map(|(seq, bytes)| {
                Ok(SnapshotRecord {
                    seq: unsigned(seq, "snapshot seq", run)?,
                    bytes,
                })
            })
            .transpose()
    }

    fn children(&self, run: RunId) -> Result<Vec<RunId>, StoreError> {
        let Some(id) = id_param(run) else {
            return Ok(Vec::new());
        };
        let ids: Vec<i64> = self.connections.with_client("read lineage", |client| {
            client
                .query(
                    "SELECT id FROM runjournal_runs WHERE fork_parent = $1 ORDER BY id",
                    &[&id],
                )
                .map(|rows| rows.iter().map(|row| row.get(0)).collect())
                .map_err(|error| failure::before_commit("read lineage", &error))
        })?;
        ids.into_iter().map(|id| unsigned(id, "child id", run)).collect()
    }

    fn delete_runs(&self, runs: &[RunId]) -> Result<u64, StoreError> {
        let ids = sorted_ids(runs.iter().copied());
        if ids.is_empty() {
            return Ok(0);
        }
        let outcome = self.connections.transact("delete runs", |transaction| {
            transaction.query(
                "SELECT id FROM runjournal_runs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                &[&ids],
            )?;
            let freed: i64 = transaction
                .query_one(
                    "SELECT (SELECT COALESCE(sum(octet_length(record)), 0) FROM runjournal_events WHERE run = ANY($1))::bigint \
                          + (SELECT COALESCE(sum(octet_length(bytes)), 0) FROM runjournal_snapshots WHERE run = ANY($1))::bigint",
                    &[&ids],
                )?
                .get(0);
            transaction.execute("DELETE FROM runjournal_runs WHERE id = ANY($1)", &[&ids])?;
            Ok(freed)
        })?;
        let freed = outcome.map_err(|key| corrupt(format!("delete reported a taken key {}", key.0)))?;
        Ok(u64::try_from(freed).unwrap_or(0))
    }

    fn replace_snapshots(&self, run: RunId, snapshot: Option<SnapshotRecord>) -> Result<(), StoreError> {
        let Some(id) = id_param(run) else {
            return Ok(());
        };
        let seq = snapshot
            .as_ref()
            .map(|snapshot| checked(snapshot.seq, "snapshot seq", run))
            .transpose()?;
        let outcome = self.connections.transact("replace snapshots", |transaction| {
            let exists = transaction.query_opt("SELECT id FROM runjournal_runs WHERE id = $1 FOR UPDATE", &[&id])?;
            if exists.is_none() {
                return Ok(());
            }
            transaction.execute("DELETE FROM runjournal_snapshots WHERE run = $1", &[&id])?;
            if let (Some(snapshot), Some(seq)) = (&snapshot, seq) {
                transaction.execute(
                    "INSERT INTO runjournal_snapshots (run, seq, bytes) VALUES ($1, $2, $3)",
                    &[&id, &seq, &snapshot.bytes],
                )?;
            }
            Ok(())
        })?;
        outcome.map_err(|key| corrupt(format!("replace snapshots reported a taken key {}", key.0)))
    }
}

impl PostgresStore {
    fn query_runs(
        &self,
        operation: &'static str,
        run_query: impl FnOnce(&mut postgres::Client) -> Result<Vec<Row>, postgres::Error> + Send,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.connections.with_client(operation, |client| {
            let rows = run_query(client).map_err(|error| failure::before_commit(operation, &error))?;
            rows.iter().map(decode_run).collect()
        })
    }
}

/// Creates `runs` in order; a taken key (stored, or named twice) refuses all.
fn create_in(transaction: &mut Transaction<'_>, runs: &[NewRun]) -> Result<Vec<RunRecord>, TxError> {
    crate::watch::notify(transaction, &[])?;
    let mut created = Vec::with_capacity(runs.len());
    let mut ids = HashMap::new();
    for run in runs {
        let fork = run.resolved_fork(&ids);
        let inserted = insert_run_row(transaction, None, run, fork.as_ref())?;
        let Some(id) = inserted else {
            return Err(TxError::KeyExists(KeyExists(run.key.clone())));
        };
        insert_events(transaction, id, 0, &run.records)?;
        ids.insert(run.key.clone(), id);
        created.push(RunRecord {
            id,
            key: run.key.clone(),
            created_ts: run.created_ts,
            head: run.head,
            status: run.status,
            fork,
        });
    }
    // A rewind: the run a creation supersedes is marked in the same
    // transaction, its epoch raised so that its old writers are fenced.
    for superseded in runs.iter().filter_map(|run| run.supersedes).filter_map(id_param) {
        transaction.execute(
            "UPDATE runjournal_runs SET status = 'superseded', epoch = epoch + 1 WHERE id = $1",
            &[&superseded],
        )?;
    }
    Ok(created)
}

/// Inserts a run's row with its head, status and fork base, under `id` or
/// (`None`) a fresh one; `None` back when its key is taken.
fn insert_run_row(
    transaction: &mut Transaction<'_>,
    id: Option<i64>,
    run: &NewRun,
    fork: Option<&ForkBase>,
) -> Result<Option<RunId>, TxError> {
    let values = RunValues::of(run, fork)?;
    let inserted = transaction.query_opt(
        "INSERT INTO runjournal_runs (id, key_bytes, goal, episode, agent, created_ts, next_seq, head_hash, \
             epoch, last_ts, status, fork_parent, fork_goal, fork_episode, fork_agent, fork_seq, fork_hash) \
         VALUES (COALESCE($1, nextval(pg_get_serial_sequence('runjournal_runs', 'id'))), \
             $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (key_bytes) DO NOTHING RETURNING id",
        &[
            &id,
            &values.key_bytes,
            &run.key.goal,
            &i64::from(run.key.episode),
            &run.key.agent,
            &values.created_ts,
            &values.head.next_seq,
            &run.head.hash.0.as_slice(),
            &values.head.epoch,
            &values.head.last_ts,
            &run.status.as_str(),
            &values.fork_parent,
            &fork.map(|fork| fork.parent_key.goal.as_str()),
            &fork.map(|fork| i64::from(fork.parent_key.episode)),
            &fork.map(|fork| fork.parent_key.agent.as_str()),
            &values.fork_seq,
            &fork.map(|fork| fork.hash.0.to_vec()),
        ],
    )?;
    inserted
        .map(|row| unsigned(row.get(0), "new run id", 0).map_err(TxError::Store))
        .transpose()
}

/// Inserts the staged runs' rows under their reserved ids and moves their
/// staged events into `runjournal_events`, in the caller's transaction: all
/// of them, or none when a key is taken.
fn publish_in(transaction: &mut Transaction<'_>, runs: &[RunRecord]) -> Result<(), TxError> {
    crate::watch::notify(transaction, &[])?;
    for record in runs {
        let as_new = NewRun {
            key: record.key.clone(),
            created_ts: record.created_ts,
            records: Vec::new(),
            head: record.head,
            status: record.status,
            fork: record.fork.clone(),
            supersedes: None,
        };
        let id = checked(record.id, "run id", record.id).map_err(TxError::Store)?;
        let inserted = insert_run_row(transaction, Some(id), &as_new, record.fork.as_ref())?;
        if inserted.is_none() {
            return Err(TxError::KeyExists(KeyExists(record.key.clone())));
        }
    }
    let ids: Vec<i64> = runs.iter().filter_map(|record| id_param(record.id)).collect();
    transaction.execute(
        "INSERT INTO runjournal_events (run, seq, record) \
         SELECT run, seq, record FROM runjournal_staged_events WHERE run = ANY($1)",
        &[&ids],
    )?;
    transaction.execute("DELETE FROM runjournal_staged_events WHERE run = ANY($1)", &[&ids])?;
    Ok(())
}

/// The bigint forms of a new run's numbers, checked before anything is written.
struct RunValues {
    key_bytes: Vec<u8>,
    created_ts: i64,
    head: HeadValues,
    fork_parent: Option<i64>,
    fork_seq: Option<i64>,
}

struct HeadValues {
    next_seq: i64,
    epoch: i64,
    last_ts: i64,
}

impl HeadValues {
    fn of(head: &Head, run: RunId) -> Result<Self, StoreError> {
        Ok(HeadValues {
            next_seq: checked(head.next_seq, "next seq", run)?,
            epoch: checked(head.epoch, "epoch", run)?,
            last_ts: checked(head.last_ts, "last ts", run)?,
        })
    }
}

impl RunValues {
    fn of(run: &NewRun, fork: Option<&ForkBase>) -> Result<Self, TxError> {
        let check = |value: u64, what: &str| {
            i64::try_from(value).map_err(|_| {
                TxError::Store(StoreError::Backend {
                    operation: "encode a value",
                    detail: format!("new run {}: {what} {value} does not fit PostgreSQL's bigint", run.key),
                })
            })
        };
        Ok(RunValues {
            key_bytes: run.key.canonical_bytes(),
            created_ts: check(run.created_ts, "created ts")?,
            head: HeadValues {
                next_seq: check(run.head.next_seq, "next seq")?,
                epoch: check(run.head.epoch, "epoch")?,
                last_ts: check(run.head.last_ts, "last ts")?,
            },
            fork_parent: fork.map(|fork| check(fork.parent, "fork parent")).transpose()?,
            fork_seq: fork.map(|fork| check(fork.seq, "fork seq")).transpose()?,
        })
    }
}

/// Applies `batches` in order; returns one outcome per batch.
fn append_in(
    transaction: &mut Transaction<'_>,
    batches: &[AppendBatch],
) -> Result<Vec<Result<(), AppendRejection>>, TxError> {
    // Lock every head the group names, in id order, before changing any: two
    // groups naming the same runs in different orders never deadlock.
    let ids = sorted_ids(batches.iter().map(|batch| batch.run));
    transaction.query(
        "SELECT id FROM runjournal_runs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&ids],
    )?;
    let one_batch_per_run = ids.len() == batches.len() && batches.iter().all(|batch| id_param(batch.run).is_some());
    if one_batch_per_run && batches.len() > 1 {
        append_together(transaction, batches)
    } else {
        append_each(transaction, batches)
    }
}

/// A group whose batches name distinct runs: one conditional `UPDATE` of
/// every head (`FROM unnest(…)`, the same condition per row), one `INSERT`
/// of every accepted batch's events, one notification; the batches whose
/// head did not match are rejected by the head as stored, as in
/// [`append_each`]. Same outcome, a few statements per group instead of two
/// per batch.
fn append_together(
    transaction: &mut Transaction<'_>,
    batches: &[AppendBatch],
) -> Result<Vec<Result<(), AppendRejection>>, TxError> {
    let mut columns = HeadColumns::default();
    for batch in batches {
        columns.push(batch).map_err(TxError::Store)?;
    }
    let updated: std::collections::HashSet<i64> = transaction
        .query(
            "UPDATE runjournal_runs AS r \
             SET next_seq = b.next_seq, head_hash = b.hash, epoch = b.head_epoch, last_ts = b.last_ts, \
                 status = b.status \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bytea[], $6::bigint[], \
                         $7::bigint[], $8::text[]) \
                  AS b(id, expected, epoch, next_seq, hash, head_epoch, last_ts, status) \
             WHERE r.id = b.id AND r.next_seq = b.expected AND r.epoch <= b.epoch \
             RETURNING r.id",
            &[
                &columns.ids,
                &columns.expected,
                &columns.epochs,
                &columns.next_seqs,
                &columns.hashes,
                &columns.head_epochs,
                &columns.last_ts,
                &columns.statuses,
            ],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut outcomes = Vec::with_capacity(batches.len());
    let (mut runs, mut seqs, mut records) = (Vec::new(), Vec::new(), Vec::<&[u8]>::new());
    let mut moved = Vec::new();
    for (batch, &id) in batches.iter().zip(&columns.ids) {
        if !updated.contains(&id) {
            outcomes.push(Err(rejection(transaction, batch, id)?));
            continue;
        }
        let first = checked(batch.expected_seq, "expected seq", batch.run).map_err(TxError::Store)?;
        for (offset, record) in (0i64..).zip(&batch.records) {
            runs.push(id);
            seqs.push(first + offset);
            records.push(record);
        }
        moved.push(batch.run);
        outcomes.push(Ok(()));
    }
    if !records.is_empty() {
        let inserted = transaction.execute(
            "INSERT INTO runjournal_events (run, seq, record) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])",
            &[&runs, &seqs, &records],
        );
        match inserted {
            Ok(count) if count == records.len() as u64 => {}
            Ok(count) => {
                return Err(TxError::Store(corrupt(format!(
                    "runs {moved:?}: inserted {count} of {} events",
                    records.len()
                ))))
            }
            Err(error) if error.code().map(postgres::error::SqlState::code) == Some("23505") => {
                return Err(TxError::Store(corrupt(format!(
                    "one of runs {moved:?} already has an event stored at a seq its head said was free; \
                     nothing of the group was written"
                ))))
            }
            Err(error) => return Err(TxError::Sql(error)),
        }
    }
    for (batch, outcome) in batches.iter().zip(&outcomes) {
        if let (Some(snapshot), Ok(())) = (&batch.snapshot, outcome) {
            store_snapshot(transaction, batch.run, snapshot)?;
        }
    }
    if !moved.is_empty() {
        crate::watch::notify(transaction, &moved)?;
    }
    Ok(outcomes)
}

/// The heads of a group's batches as columns, for one `unnest`.
#[derive(Default)]
struct HeadColumns<'a> {
    ids: Vec<i64>,
    expected: Vec<i64>,
    epochs: Vec<i64>,
    next_seqs: Vec<i64>,
    hashes: Vec<&'a [u8]>,
    head_epochs: Vec<i64>,
    last_ts: Vec<i64>,
    statuses: Vec<&'static str>,
}

impl<'a> HeadColumns<'a> {
    fn push(&mut self, batch: &'a AppendBatch) -> Result<(), StoreError> {
        let head = HeadValues::of(&batch.head_after, batch.run)?;
        self.ids.push(checked(batch.run, "run id", batch.run)?);
        self.expected
            .push(checked(batch.expected_seq, "expected seq", batch.run)?);
        self.epochs.push(checked(batch.epoch, "epoch", batch.run)?);
        self.next_seqs.push(head.next_seq);
        self.hashes.push(batch.head_after.hash.0.as_slice());
        self.head_epochs.push(head.epoch);
        self.last_ts.push(head.last_ts);
        self.statuses.push(batch.status_after.as_str());
        Ok(())
    }
}

/// Replaces the run's snapshots with `snapshot`.
fn store_snapshot(transaction: &mut Transaction<'_>, run: RunId, snapshot: &SnapshotRecord) -> Result<(), TxError> {
    let id = checked(run, "run id", run).map_err(TxError::Store)?;
    let seq = checked(snapshot.seq, "snapshot seq", run).map_err(TxError::Store)?;
    transaction.execute("DELETE FROM runjournal_snapshots WHERE run = $1", &[&id])?;
    transaction.execute(
        "INSERT INTO runjournal_snapshots (run, seq, bytes) VALUES ($1, $2, $3)",
        &[&id, &seq, &snapshot.bytes],
    )?;
    Ok(())
}

/// A group applied batch by batch, in order (a run named by several
/// batches sees the earlier ones).
fn append_each(
    transaction: &mut Transaction<'_>,
    batches: &[AppendBatch],
) -> Result<Vec<Result<(), AppendRejection>>, TxError> {
    let mut outcomes = Vec::with_capacity(batches.len());
    for batch in batches {
        let Some(id) = id_param(batch.run) else {
            outcomes.push(Err(AppendRejection::UnknownRun));
            continue;
        };
        let head = HeadValues::of(&batch.head_after, batch.run).map_err(TxError::Store)?;
        let expected = checked(batch.expected_seq, "expected seq", batch.run).map_err(TxError::Store)?;
        let epoch = checked(batch.epoch, "epoch", batch.run).map_err(TxError::Store)?;
        let updated = transaction.execute(
            "UPDATE runjournal_runs SET next_seq = $4, head_hash = $5, epoch = $6, last_ts = $7, status = $8 \
             WHERE id = $1 AND next_seq = $2 AND epoch <= $3",
            &[
                &id,
                &expected,
                &epoch,
                &head.next_seq,
                &batch.head_after.hash.0.as_slice(),
                &head.epoch,
                &head.last_ts,
                &batch.status_after.as_str(),
            ],
        )?;
        if updated == 0 {
            outcomes.push(Err(rejection(transaction, batch, id)?));
            continue;
        }
        insert_events(transaction, batch.run, batch.expected_seq, &batch.records)?;
        if let Some(snapshot) = &batch.snapshot {
            let seq = checked(snapshot.seq, "snapshot seq", batch.run).map_err(TxError::Store)?;
            transaction.execute("DELETE FROM runjournal_snapshots WHERE run = $1", &[&id])?;
            transaction.execute(
                "INSERT INTO runjournal_snapshots (run, seq, bytes) VALUES ($1, $2, $3)",
                &[&id, &seq, &snapshot.bytes],
            )?;
        }
        outcomes.push(Ok(()));
    }
    let moved: Vec<RunId> = batches
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(batch, _)| batch.run)
        .collect();
    if !moved.is_empty() {
        crate::watch::notify(transaction, &moved)?;
    }
    Ok(outcomes)
}

/// Why the conditional update of `batch` matched no row: the head as stored
/// (locked by this transaction) decides, by the trait's own rule.
fn rejection(transaction: &mut Transaction<'_>, batch: &AppendBatch, id: i64) -> Result<AppendRejection, TxError> {
    let query = format!("SELECT {RUN_COLUMNS} FROM runjournal_runs WHERE id = $1");
    let Some(row) = transaction.query_opt(&query, &[&id])? else {
        return Ok(AppendRejection::UnknownRun);
    };
    let record = decode_run(&row).map_err(TxError::Store)?;
    match batch.check_against(&record) {
        Err(rejection) => Ok(rejection),
        Ok(()) => Err(TxError::Store(corrupt(format!(
            "run {} seq {}: the conditional head update matched no row, yet the stored head (next seq {}, epoch {}) \
             admits the batch",
            batch.run, batch.expected_seq, record.head.next_seq, record.head.epoch
        )))),
    }
}

/// Inserts `records` at seqs `first_seq..` of run `run`; an event already
/// stored at one of them is corruption (the head said it was free).
fn insert_events(
    transaction: &mut Transaction<'_>,
    run: RunId,
    first_seq: u64,
    records: &[Vec<u8>],
) -> Result<(), TxError> {
    if records.is_empty() {
        return Ok(());
    }
    let id = checked(run, "run id", run).map_err(TxError::Store)?;
    let first = checked(first_seq, "seq", run).map_err(TxError::Store)?;
    let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let inserted = transaction.execute(
        "INSERT INTO runjournal_events (run, seq, record) \
         SELECT $1, $2 + t.ordinality - 1, t.record FROM unnest($3::bytea[]) WITH ORDINALITY AS t(record, ordinality)",
        &[&id, &first, &slices],
    );
    match inserted {
        Ok(count) if count == records.len() as u64 => Ok(()),
        Ok(count) => Err(TxError::Store(corrupt(format!(
            "run {run} seq {first_seq}: inserted {count} of {} events",
            records.len()
        )))),
        Err(error) if error.code().map(postgres::error::SqlState::code) == Some("23505") => {
            Err(TxError::Store(corrupt(format!(
            "run {run}: an event is already stored at a seq in {first_seq}..{} although the run's head said it was \
             free; nothing of the append was written",
            first_seq + records.len() as u64
        ))))
        }
        Err(error) => Err(TxError::Sql(error)),
    }
}

fn decode_run(row: &Row) -> Result<RunRecord, StoreError> {
    let raw_id: i64 = row.try_get(0).map_err(|error| decode_error(0, &error))?;
    let id = unsigned(raw_id, "run id", 0)?;
    let get_err = |error: postgres::Error| decode_error(id, &error);
    let goal: String = row.try_get(1).map_err(get_err)?;
    let episode: i64 = row.try_get(2).map_err(get_err)?;
    let agent: String = row.try_get(3).map_err(get_err)?;
    let key = decode_key(id, goal, episode, agent)?;
    let head_hash: Vec<u8> = row.try_get(6).map_err(get_err)?;
    let status: String = row.try_get(9).map_err(get_err)?;
    let status: RunStatus = status
        .parse()
        .map_err(|reason| corrupt(format!("run {id}: status {status:?}: {reason}")))?;
    let fork_parent: Option<i64> = row.try_get(10).map_err(get_err)?;
    let fork = match fork_parent {
        None => None,
        Some(parent) => {
            let goal: String = row.try_get(11).map_err(get_err)?;
            let episode: i64 = row.try_get(12).map_err(get_err)?;
            let agent: String = row.try_get(13).map_err(get_err)?;
            let seq: i64 = row.try_get(14).map_err(get_err)?;
            let hash: Vec<u8> = row.try_get(15).map_err(get_err)?;
            Some(ForkBase {
                parent: unsigned(parent, "fork parent", id)?,
                parent_key: decode_key(id, goal, episode, agent)?,
                seq: unsigned(seq, "fork seq", id)?,
                hash: decode_hash(id, "fork hash", &hash)?,
            })
        }
    };
    Ok(RunRecord {
        id,
        key,
        created_ts: unsigned(row.try_get(4).map_err(get_err)?, "created ts", id)?,
        head: Head {
            next_seq: unsigned(row.try_get(5).map_err(get_err)?, "next seq", id)?,
            hash: decode_hash(id, "head hash", &head_hash)?,
            epoch: unsigned(row.try_get(7).map_err(get_err)?, "epoch", id)?,
            last_ts: unsigned(row.try_get(8).map_err(get_err)?, "last ts", id)?,
        },
        status,
        fork,
    })
}

fn decode_key(id: RunId, goal: String, episode: i64, agent: String) -> Result<RunKey, StoreError> {
    let episode = u32::try_from(episode).map_err(|_| corrupt(format!("run {id}: episode {episode} is not a u32")))?;
    RunKey::new(goal, episode, agent).map_err(|error| corrupt(format!("run {id}: invalid key: {error}")))
}

fn decode_hash(id: RunId, what: &str, bytes: &[u8]) -> Result<ChainHash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupt(format!("run {id}: {what} is {} bytes, not 32", bytes.len())))?;
    Ok(ChainHash(bytes))
}

fn decode_error(id: RunId, error: &postgres::Error) -> StoreError {
    corrupt(format!("run {id}: unreadable run row: {}", failure::describe(error)))
}

/// A stored bigint as the trait's u64; negative is corruption.
fn unsigned(value: i64, what: &str, run: RunId) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("run {run}: {what} is {value}, negative")))
}

/// The trait's u64 as a bigint to store; one that does not fit is refused.
fn checked(value: u64, what: &str, run: RunId) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Backend {
        operation: "encode a value",
        detail: format!("run {run}: {what} {value} does not fit PostgreSQL's bigint"),
    })
}

/// A run id as a query parameter; one above bigint names no stored run.
fn id_param(id: RunId) -> Option<i64> {
    i64::try_from(id).ok()
}

/// A seq bound as a query parameter, saturating (no seq exceeds bigint).
fn bigint_bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn sorted_ids(runs: impl Iterator<Item = RunId>) -> Vec<i64> {
    let mut ids: Vec<i64> = runs.filter_map(id_param).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
