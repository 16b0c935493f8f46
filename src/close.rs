//! [`Journal::close`]: an explicit close with a typed result.
//!
//! Dropping the last handle closes the journal too (a final sync), but can
//! only report a failure through `tracing`. `close` returns it: after a
//! storage failure, at once and without waiting on the storage that failed,
//! what was applied but is not durable.

use crate::journal::Journal;
use runjournal_core::StoreError;

impl Journal {
    /// Closes the journal: waits for every queued write, makes everything
    /// durable and stops the store. After a storage failure (a poisoned
    /// journal) it returns promptly with what was not made durable: for the
    /// sled store, [`StoreError::NotDurable`] (how many write batches and
    /// events were applied after the last completed sync, and the failure).
    ///
    /// The store is closed for every clone of this journal and every run
    /// handle: their later writes fail (`Poisoned`, naming the close).
    pub fn close(self) -> Result<(), StoreError> {
        // Through the writer, so queued appends are applied first; a poisoned
        // journal answers at once. Its failure is the store's to report.
        let synced = self.sync();
        let closed = self.inner.store.close();
        match (synced, closed) {
            (_, Err(error)) => Err(error),
            (Err(error), Ok(())) => Err(StoreError::Backend {
                operation: "close",
                detail: error.to_string(),
            }),
            (Ok(()), Ok(())) => Ok(()),
        }
    }
}
