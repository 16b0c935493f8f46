//! Notifications of changes, for subscribers in every process: each
//! transaction that moves heads or adds runs notifies the channel
//! [`CHANNEL`] (`pg_notify`, delivered only when it commits, so a notified
//! change is committed and durable); a [`PostgresWatch`] listens on its own
//! session.
//!
//! Invariants: a notification names the ids of the runs whose heads moved
//! (comma-separated), or is empty for runs whose ids the listener cannot
//! know yet (created, published); a lost session loses notifications, so
//! after one the next wait reports "look at every run" once it listens again.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Transaction};
use runjournal_core::{RunId, StoreError, Watch};

use crate::connection::{off_runtime, Connections};
use crate::failure;

/// The channel every change is notified on.
pub(crate) const CHANNEL: &str = "runjournal_changes";

/// Notifies, at commit, that the heads of `runs` moved (no ids: runs were
/// created or published).
pub(crate) fn notify(transaction: &mut Transaction<'_>, runs: &[RunId]) -> Result<(), postgres::Error> {
    let payload: Vec<String> = runs.iter().map(ToString::to_string).collect();
    transaction.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload.join(",")])?;
    Ok(())
}

/// A session listening on the `runjournal_changes` channel; reconnects after a lost session.
pub struct PostgresWatch {
    connections: std::sync::Arc<Connections>,
    client: Option<Client>,
}

impl PostgresWatch {
    pub(crate) fn listen(connections: std::sync::Arc<Connections>) -> Result<Self, StoreError> {
        let mut watch = PostgresWatch {
            connections,
            client: None,
        };
        watch.client = Some(watch.session()?);
        Ok(watch)
    }

    fn session(&self) -> Result<Client, StoreError> {
        let mut client = self.connections.connect("listen for changes")?;
        off_runtime(|| client.batch_execute(&format!("LISTEN {CHANNEL}")))
            .map_err(|error| failure::before_commit("listen for changes", &error))?;
        Ok(client)
    }
}

impl Watch for PostgresWatch {
    fn wait(&mut self, timeout: Duration) -> Result<Option<Vec<RunId>>, StoreError> {
        let Some(mut client) = self.client.take().filter(|client| !client.is_closed()) else {
            // Notifications sent while no session listened are lost: look at
            // every run once listening again.
            self.client = Some(self.session()?);
            return Ok(None);
        };
        let received = off_runtime(|| {
            let mut notifications = client.notifications();
            let mut payloads = Vec::new();
            let first = notifications.timeout_iter(timeout).next()?;
            if let Some(first) = first {
                payloads.push(first.payload().to_owned());
                let mut pending = notifications.iter();
                while let Some(next) = pending.next()? {
                    payloads.push(next.payload().to_owned());
                }
            }
            Ok::<_, postgres::Error>(payloads)
        });
        let payloads = match received {
            Ok(payloads) => payloads,
            Err(error) if client.is_closed() => {
                drop(error);
                return Ok(None);
            }
            Err(error) => return Err(failure::before_commit("listen for changes", &error)),
        };
        self.client = Some(client);
        if payloads.is_empty() {
            return Ok(None);
        }
        let mut runs = Vec::new();
        for payload in &payloads {
            if payload.is_empty() {
                return Ok(None);
            }
            for id in payload.split(',') {
                match id.parse() {
                    Ok(id) => runs.push(id),
                    Err(_) => return Ok(None),
                }
            }
        }
        runs.sort_unstable();
        runs.dedup();
        Ok(Some(runs))
    }
}
