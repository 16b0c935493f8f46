//! The PostgreSQL store of runjournal: one database that every process (on
//! every machine) connects to itself, with fencing and expected seqs enforced
//! by the server.
//!
//! [`PostgresStore`] implements [`runjournal_core::Store`] on PostgreSQL 15 or
//! newer. The design, the schema and the statements are in `docs/postgres.md`;
//! the invariants it keeps:
//!
//! - **The head is never written blind.** Every batch of an `append` updates
//!   its run's head row only `WHERE next_seq = expected AND epoch <= batch
//!   epoch`; zero rows updated means the batch is rejected (`Fenced` before
//!   `Conflict`, exactly [`AppendBatch::check_against`] on the head as
//!   stored), and it writes nothing. Its events are then inserted under the
//!   `(run, seq)` primary key, a second guard: a duplicate there is reported
//!   as corruption, never overwritten.
//! - **One call, one transaction.** An `append` (the writer's group) is one
//!   READ COMMITTED transaction: every accepted batch of it commits together
//!   or none does; rejected batches are skipped inside it, as the memory and
//!   sled stores skip them. The heads it names are locked first, in id order,
//!   so two groups never deadlock on each other.
//! - **Durable once committed.** Each session sets `synchronous_commit = on`:
//!   a commit that returned is on the server's stable storage (given the
//!   server runs with `fsync = on`), so [`Store::sync`] has nothing left to do.
//! - **No success without knowing.** A serialization failure or deadlock
//!   (SQLSTATE 40001, 40P01) rolls the whole transaction back and it is
//!   retried a bounded number of times, then reported as
//!   [`StoreError::Contended`]; a connection lost before the commit is
//!   [`StoreError::Disconnected`] (nothing applied); one lost during the
//!   commit is [`StoreError::CommitOutcomeUnknown`], never success.
//! - **Versioned schema.** Opening applies the missing migrations, recorded
//!   in `runjournal_migrations`, and refuses a database that has a version
//!   this build does not know ([`StoreError::UnsupportedSchema`]).
//! - **Same bytes as sled.** Events are stored as the codec's record bytes
//!   (`bytea`), so a run's chain, and any export of it, is byte-identical on
//!   either store.
//!
//! The trait is synchronous, so is the driver: the `postgres` crate (a
//! blocking client over `tokio-postgres` with its own small runtime per
//! connection). A call made from inside a tokio runtime (where that client
//! would panic) runs on a scoped helper thread instead.
//!
//! With the `testing` feature, `testing` starts throwaway servers for tests.
//!
//! [`AppendBatch::check_against`]: runjournal_core::AppendBatch::check_against
//! [`Store::sync`]: runjournal_core::Store::sync
//! [`StoreError::Contended`]: runjournal_core::StoreError::Contended
//! [`StoreError::Disconnected`]: runjournal_core::StoreError::Disconnected
//! [`StoreError::CommitOutcomeUnknown`]: runjournal_core::StoreError::CommitOutcomeUnknown
//! [`StoreError::UnsupportedSchema`]: runjournal_core::StoreError::UnsupportedSchema
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod connection;
mod failure;
pub mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod watch;

pub use store::PostgresStore;
pub use watch::PostgresWatch;
