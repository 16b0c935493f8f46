//! The key space of the sled store: one tree, partitioned by a leading byte.
//! Every integer in a key is big-endian so sled's byte order is numeric order.
//!
//! ```text
//! 0x00 ‖ name                     → meta record (format, next run id, events appended, write batches)
//! 0x01 ‖ run id u64 ‖ seq u64     → event record, or a chunk (format 2) or commit (format 3) of records from seq on
//! 0x02 ‖ run id u64               → run record (key, head, status, lineage)
//! 0x03 ‖ goal ‖ 0x00 ‖ agent ‖ 0x00 ‖ episode u32  → run id u64
//! 0x04 ‖ run id u64 ‖ seq u64     → snapshot record (store format ≤ 3; read, never written)
//! 0x05 ‖ parent id u64 ‖ child id u64 → empty (lineage index)
//! 0x06 ‖ run id u64               → empty (a purged run whose events and snapshots are still being removed)
//! ```
//!
//! From store format 4, snapshots are kept in a tree of their own,
//! [`SNAPSHOT_TREE`], under the same `0x04 ‖ run ‖ seq` keys. sled rewrites
//! a whole leaf every few changes to it, and a leaf holds the keys of a key
//! range: in the default tree, the snapshots (large, and growing with the
//! run's state) would share the leaf that a run's newest events go to, and be
//! rewritten with every few appends.

use runjournal_core::{RunId, RunKey};

/// Prefix of meta records.
pub const META: u8 = 0x00;
/// Prefix of event records.
pub const EVENT: u8 = 0x01;
/// Prefix of run records.
pub const RUN: u8 = 0x02;
/// Prefix of the key index.
pub const KEY_INDEX: u8 = 0x03;
/// Prefix of snapshot records.
pub const SNAPSHOT: u8 = 0x04;
/// The sled tree holding snapshot records (store format 4 on).
pub const SNAPSHOT_TREE: &str = "snapshots";
/// Prefix of the lineage index.
pub const CHILD: u8 = 0x05;
/// Prefix of purge tombstones: runs already invisible (no run record, key or
/// lineage entry) whose events and snapshots are removed in bounded batches.
pub const PURGING: u8 = 0x06;

/// `0x06 ‖ run`.
pub fn purging_key(run: RunId) -> [u8; 9] {
    run_prefix(PURGING, run)
}

/// The meta key holding the store's format record.
pub fn format_key() -> Vec<u8> {
    meta_key(b"format")
}

/// The meta key counting every event ever appended (see [`crate::guard`]).
pub fn appended_key() -> Vec<u8> {
    meta_key(b"appended")
}

/// The meta key counting every write batch ever applied (see [`crate::guard`]).
pub fn writes_key() -> Vec<u8> {
    meta_key(b"writes")
}

/// The meta key holding the next run id.
pub fn next_run_id_key() -> Vec<u8> {
    meta_key(b"next_run_id")
}

fn meta_key(name: &[u8]) -> Vec<u8> {
    let mut key = vec![META];
    key.extend_from_slice(name);
    key
}

/// `0x01 ‖ run ‖ seq`: the key of the event record at `seq`, or of the
/// chunk whose first record is at `seq` (see [`runjournal_core::chunk`]).
pub fn event_key(run: RunId, seq: u64) -> [u8; 17] {
    run_seq_key(EVENT, run, seq)
}

/// `0x04 ‖ run ‖ seq`.
pub fn snapshot_key(run: RunId, seq: u64) -> [u8; 17] {
    run_seq_key(SNAPSHOT, run, seq)
}

/// `0x02 ‖ run`.
pub fn run_key(run: RunId) -> [u8; 9] {
    run_prefix(RUN, run)
}

/// `0x03 ‖ canonical key bytes`.
pub fn key_index_key(key: &RunKey) -> Vec<u8> {
    prefixed(KEY_INDEX, &key.canonical_bytes())
}

/// `0x03 ‖ bytes`: the index prefix of a goal or a (goal, agent) pair.
pub fn key_index_prefix(canonical_prefix: &[u8]) -> Vec<u8> {
    prefixed(KEY_INDEX, canonical_prefix)
}

/// `0x05 ‖ parent ‖ child`.
pub fn child_key(parent: RunId, child: RunId) -> [u8; 17] {
    run_seq_key(CHILD, parent, child)
}

/// `prefix ‖ run`: the common prefix of a run's events, snapshots or children.
pub fn run_prefix(prefix: u8, run: RunId) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..9].copy_from_slice(&run.to_be_bytes());
    key
}

/// The trailing u64 of a 17-byte `prefix ‖ a ‖ b` key.
pub fn trailing_u64(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The trailing u32 of a key-index key (the episode).
pub fn trailing_u32(key: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = key.get(key.len().checked_sub(4)?..)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

fn run_seq_key(prefix: u8, run: RunId, seq: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = prefix;
    key[1..9].copy_from_slice(&run.to_be_bytes());
    key[9..17].copy_from_slice(&seq.to_be_bytes());
    key
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(rest.len() + 1);
    key.push(prefix);
    key.extend_from_slice(rest);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_are_big_endian_and_ordered_by_run_then_seq() {
        assert_eq!(event_key(1, 2), [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert!(event_key(1, 255) < event_key(1, 256));
        assert!(event_key(1, u64::MAX) < event_key(2, 0));
        assert!(
            event_key(u64::MAX, u64::MAX)[..] < run_key(0)[..],
            "events sort before run records"
        );
        assert_eq!(trailing_u64(&event_key(7, 300)), Some(300));
    }

    #[test]
    fn key_index_orders_episodes_numerically() {
        let two = key_index_key(&RunKey::new("g", 2, "a").unwrap());
        let ten = key_index_key(&RunKey::new("g", 10, "a").unwrap());
        assert!(two < ten);
        assert_eq!(trailing_u32(&ten), Some(10));
        assert!(ten.starts_with(&key_index_prefix(&RunKey::goal_agent_prefix("g", "a"))));
    }
}
