//! [`Journal::close`]: an explicit close with a typed result.
//!
//! Dropping the last handle closes the journal too (a final sync), but can
//! only report a failure through `tracing`. `close` returns it: after a
//! storage failure, at once and without waiting on the storage that failed,
//! what was applied but is not durable.

use crate::journal::Local;
use runjournal_core::StoreError;

impl Local {
    /// The embedded [`Journal::close`].
    pub(crate) fn close(self) -> Result<(), StoreError> {
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
