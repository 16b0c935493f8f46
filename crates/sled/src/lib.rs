//! The sled store of runjournal: the embedded default.
//!
//! [`SledStore`] implements [`runjournal_core::Store`] on one sled 0.34 tree;
//! [`layout`] documents its key space, [`files`] the files of a database
//! directory. Durability comes from
//! [`Store::sync`](runjournal_core::Store::sync): sled's flush followed by
//! `fdatasync` of sled's files.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod files;
pub mod guard;
pub mod layout;
mod store;

pub use store::{OpenMode, SledStore};
