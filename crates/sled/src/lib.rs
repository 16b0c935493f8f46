//! The sled store of runjournal: the embedded default.
//!
//! [`SledStore`] implements [`runjournal_core::Store`] on one sled 0.34 tree;
//! [`layout`] documents its key space, [`files`] the files of a database
//! directory. Durability comes from
//! [`Store::sync`](runjournal_core::Store::sync): sled's flush followed by
//! `fdatasync` of sled's files.
//!
//! What sled does not do for itself, the store does:
//! - **Lost writes are loud.** sled silently ends its log at damage; the
//!   [`guard`] counts every event and every write batch (creations, appends,
//!   purges, snapshot replacements) and an open that finds fewer than a sync
//!   made durable fails (`StoreError::Corrupt`, "sled lost … that were durable").
//! - **Fail-stop, and closing never hangs.** After a failed write, flush or
//!   sync the store refuses writes (`StoreError::Poisoned`) and never calls
//!   sled's flush again: after a failed write (a full disk) sled's flush can
//!   wait forever. [`SledStore::close`] then returns `StoreError::NotDurable`
//!   (what was applied after the last completed sync) at once; a drop logs
//!   the same as a `tracing` warning and leaves sled's own (possibly blocking)
//!   drop to a detached thread.
//! - **No panics on damaged files.** sled asserts on some damage (a blob file
//!   under another blob's name); every call into sled runs under
//!   `catch_unwind`, and a panic is `StoreError::BackendPanicked`, naming the
//!   run being read. A panic during a write poisons the store for reads too.
//! - **I/O errors are sentences.** `StoreError::File` names the operation and
//!   the database (or the file the store itself synced), with the OS error in
//!   words: `storage I/O failed during append on /data/j.db: no space left on
//!   device (os error 28)` (sled's clones of its I/O error keep only a `Debug`
//!   dump; the store turns them back into the OS error).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod commit;
pub mod files;
pub mod guard;
pub mod layout;
mod store;

pub use store::{OpenMode, SledStore, STORE_FORMAT};
