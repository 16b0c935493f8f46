//! The op log's layout, shared by the recorder (which writes it) and the
//! checker (which reads it; the tests include this file with `#[path]`).
//!
//! The log starts with [`MAGIC`], then one record per file operation, in the
//! order the operations took effect (the recorder holds one mutex across the
//! real call and the append, so the log order is the order of the calls):
//!
//! ```text
//! kind u8 ‖ payload length u32 BE ‖ payload
//! ```
//!
//! Every payload starts with the inode the operation concerns, `dev u64 BE ‖
//! ino u64 BE`; then, per kind:
//!
//! | kind | after the inode |
//! |---|---|
//! | [`OPEN`] | flags u8 ([`OPEN_CREATED`], [`OPEN_TRUNCATED`], [`OPEN_DIRECTORY`]) ‖ path |
//! | [`WRITE`] | offset u64 ‖ bytes |
//! | [`TRUNCATE`] | length u64 |
//! | [`FALLOCATE`] | mode u32 ‖ offset u64 ‖ length u64 |
//! | [`SYNC`] | how u8 ([`SYNC_FSYNC`] …) |
//! | [`RENAME`] | old path length u32 ‖ old path ‖ new path (the inode is the one renamed) |
//! | [`UNLINK`], [`MKDIR`], [`RMDIR`] | path |
//! | [`SYNC_ALL`] | nothing (`sync()`/`syncfs()`: the inode is zero) |
//! | [`UNSUPPORTED`] | a description of an operation the checker cannot model |
//!
//! Paths are relative to the recorded root, without a leading `/` (the root
//! itself is the empty path). Only operations on the root and below are logged.

/// The first bytes of an op log.
pub const MAGIC: &[u8; 8] = b"RJCSLOG1";

/// A successful open of a file or directory under the root.
pub const OPEN: u8 = 1;
/// Bytes written at an offset (`write`, `pwrite`, `writev`, …; one record per buffer).
pub const WRITE: u8 = 2;
/// `ftruncate`.
pub const TRUNCATE: u8 = 3;
/// `fallocate` / `posix_fallocate`.
pub const FALLOCATE: u8 = 4;
/// A sync of one inode (`fsync`, `fdatasync`, `sync_file_range`).
pub const SYNC: u8 = 5;
/// `rename`, `renameat`, `renameat2`.
pub const RENAME: u8 = 6;
/// `unlink`, `unlinkat`.
pub const UNLINK: u8 = 7;
/// `mkdir`, `mkdirat`.
pub const MKDIR: u8 = 8;
/// `rmdir`, `unlinkat(AT_REMOVEDIR)`.
pub const RMDIR: u8 = 9;
/// Something the checker cannot model (a shared writable mapping, a rename across the root's edge).
pub const UNSUPPORTED: u8 = 10;
/// `sync()` or `syncfs()`: every inode.
pub const SYNC_ALL: u8 = 11;

/// [`OPEN`] flag: the open created the file.
pub const OPEN_CREATED: u8 = 1;
/// [`OPEN`] flag: the open truncated an existing file (`O_TRUNC`).
pub const OPEN_TRUNCATED: u8 = 2;
/// [`OPEN`] flag: the opened inode is a directory.
pub const OPEN_DIRECTORY: u8 = 4;

/// [`SYNC`]: `fsync` (data and metadata).
pub const SYNC_FSYNC: u8 = 1;
/// [`SYNC`]: `fdatasync` (data, and the metadata needed to read it, such as the size).
pub const SYNC_FDATASYNC: u8 = 2;
/// [`SYNC`]: `sync_file_range`: starts or waits for writeback, no durability barrier.
pub const SYNC_FILE_RANGE: u8 = 3;

/// The environment variable naming the directory to record (absolute, canonical).
pub const ROOT_ENV: &str = "CRASHSTATE_ROOT";
/// The environment variable naming the op log to write (outside the root).
pub const LOG_ENV: &str = "CRASHSTATE_LOG";
