//! Connections: a small pool of sessions, each set up for durability, and
//! the one way a transaction is run (READ COMMITTED, retried on
//! serialization failures and deadlocks, its commit classified).
//!
//! Invariants:
//! - every session runs `SET synchronous_commit = on` (and `enable_bitmapscan
//!   = off`: its statements are key and key-range reads) before its first use;
//! - a session goes back to the pool only when it is open, did not just
//!   lose its connection, and is outside any transaction (a failed body's
//!   transaction is rolled back when dropped);
//! - driver calls never run on a thread that drives a tokio runtime (the
//!   blocking client would panic there): such a call moves to a scoped thread.

use std::sync::{Mutex, MutexGuard};

use postgres::{Client, Config, IsolationLevel, NoTls, Transaction};
use runjournal_core::StoreError;

use crate::failure::{self, TxError, Verdict};

/// How many times a transaction rolled back by concurrency control is tried.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// Idle sessions kept for reuse; more may be open while busy.
const MAX_IDLE: usize = 8;

/// A database to connect to, and the sessions open to it.
pub(crate) struct Connections {
    config: Config,
    /// The database, named without credentials (for errors).
    pub(crate) label: String,
    idle: Mutex<Vec<Client>>,
}

impl Connections {
    pub(crate) fn new(mut config: Config) -> Self {
        if config.get_application_name().is_none() {
            config.application_name("runjournal");
        }
        let label = label(&config);
        Connections {
            config,
            label,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn lock_idle(&self) -> Result<MutexGuard<'_, Vec<Client>>, StoreError> {
        self.idle.lock().map_err(|_| StoreError::Backend {
            operation: "connection pool",
            detail: "a thread panicked while holding the connection pool".into(),
        })
    }

    /// A new session, set up as every pooled one (not pooled).
    pub(crate) fn connect(&self, operation: &'static str) -> Result<Client, StoreError> {
        let lost = |error: postgres::Error| StoreError::Disconnected {
            operation,
            detail: format!("connecting to {}: {}", self.label, failure::describe(&error)),
        };
        let mut client = off_runtime(|| self.config.connect(NoTls)).map_err(lost)?;
        // Every statement of the store reads by key or by a key range of the
        // primary key, in its order: an index scan. With the statistics of a
        // run still being written (a few rows estimated, thousands there)
        // the planner otherwise picks a bitmap scan and sorts every remaining
        // event of the run for each page of a scan.
        off_runtime(|| client.batch_execute("SET synchronous_commit = on; SET enable_bitmapscan = off"))
            .map_err(lost)?;
        Ok(client)
    }

    /// Runs `op` on a session of the pool (a new one when none is idle).
    pub(crate) fn with_client<T: Send>(
        &self,
        operation: &'static str,
        op: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        let pooled = self.lock_idle()?.pop();
        let mut client = match pooled {
            Some(client) if !client.is_closed() => client,
            _ => self.connect(operation)?,
        };
        let outcome = off_runtime(|| op(&mut client));
        // A session that lost its connection may not know it yet: it is
        // never reused.
        let lost = matches!(
            outcome,
            Err(StoreError::Disconnected { .. } | StoreError::CommitOutcomeUnknown { .. })
        );
        if !lost && !client.is_closed() {
            let mut idle = self.lock_idle()?;
            if idle.len() < MAX_IDLE {
                idle.push(client);
            }
        }
        outcome
    }

    /// Runs `body` in one READ COMMITTED transaction and commits it; a
    /// serialization failure or deadlock (in the body or at the commit)
    /// rolls it back and runs it again, at most [`MAX_ATTEMPTS`] times.
    pub(crate) fn transact<T: Send>(
        &self,
        operation: &'static str,
        body: impl Fn(&mut Transaction<'_>) -> Result<T, TxError> + Sync,
    ) -> Result<Result<T, runjournal_core::KeyExists>, StoreError> {
        let mut last_code = String::new();
        for _ in 0..MAX_ATTEMPTS {
            let attempt = self.with_client(operation, |client| match attempt(client, operation, &body) {
                // As an error, so that the session is not reused.
                Attempt::Failed(
                    error @ (StoreError::Disconnected { .. } | StoreError::CommitOutcomeUnknown { .. }),
                ) => Err(error),
                other => Ok(other),
            })?;
            match attempt {
                Attempt::Done(value) => return Ok(Ok(value)),
                Attempt::KeyExists(key) => return Ok(Err(key)),
                Attempt::Failed(error) => return Err(error),
                Attempt::Retry(code) => last_code = code,
            }
        }
        Err(StoreError::Contended {
            operation,
            code: last_code,
            attempts: MAX_ATTEMPTS,
        })
    }
}

/// How one try of a transaction ended.
enum Attempt<T> {
    Done(T),
    KeyExists(runjournal_core::KeyExists),
    Retry(String),
    Failed(StoreError),
}

fn attempt<T>(
    client: &mut Client,
    operation: &'static str,
    body: &(impl Fn(&mut Transaction<'_>) -> Result<T, TxError> + Sync),
) -> Attempt<T> {
    let started = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start();
    let mut transaction = match started {
        Ok(transaction) => transaction,
        Err(error) => return before_commit(operation, &error),
    };
    let value = match body(&mut transaction) {
        Ok(value) => value,
        // Dropping the transaction rolls it back.
        Err(TxError::Sql(error)) => return before_commit(operation, &error),
        Err(TxError::Store(error)) => return Attempt::Failed(error),
        Err(TxError::KeyExists(key)) => return Attempt::KeyExists(key),
    };
    match transaction.commit() {
        Ok(()) => Attempt::Done(value),
        Err(error) if failure::verdict_of(&error) == Verdict::Retry => Attempt::Retry(code_of(&error)),
        Err(error) => Attempt::Failed(failure::at_commit(operation, &error)),
    }
}

fn before_commit<T>(operation: &'static str, error: &postgres::Error) -> Attempt<T> {
    match failure::verdict_of(error) {
        Verdict::Retry => Attempt::Retry(code_of(error)),
        _ => Attempt::Failed(failure::before_commit(operation, error)),
    }
}

fn code_of(error: &postgres::Error) -> String {
    error.code().map(|code| code.code().to_owned()).unwrap_or_default()
}

/// Runs `f` here, or on a scoped thread when this thread is inside a tokio
/// runtime (where the blocking driver would panic).
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// `user@host:port/dbname`, without the password.
fn label(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let port = config
                .get_ports()
                .get(index)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let user = config.get_user().unwrap_or("(default user)");
    let dbname = config.get_dbname().unwrap_or("(default database)");
    format!("postgres://{user}@{}/{dbname}", hosts.join(","))
}
