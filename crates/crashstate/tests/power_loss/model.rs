//! The crash model: what the disk may hold after a power loss at a point of
//! the op log.
//!
//! A **crash point** `P` is a position in the op log: operations `0..P`
//! happened, none after. A **crash state** is the content of the files and
//! directories a disk may hold after a power loss at `P`:
//!
//! - **File content**, per file (an inode; every fd of it counts, so the
//!   store's separately opened fd that runs `fdatasync` syncs sled's own
//!   writes): every write, truncation or extension before the file's last
//!   `fsync`/`fdatasync` (or `sync`) before `P` is applied, in order. The
//!   writes after it are *pending*: a [`ContentPolicy`] picks which of them
//!   reached the disk, from none to all, including random subsets of writes,
//!   random subsets of 512-byte sectors, torn prefixes (some sectors of a
//!   write but not the rest) and reorderings (the newest writes without the
//!   older ones). Whatever is applied is applied in program order: a sector
//!   holds one of the versions it had, never an older one over a newer one.
//!   `sync_file_range` is not a barrier.
//! - **Directory entries**: a create, `mkdir`, rename or unlink is durable
//!   once its parent directory (both, for a rename) was fsynced after it.
//!   Pending ones may be missing: a [`NamePolicy`] picks none, all, a prefix
//!   (what an ordered metadata journal such as ext4's keeps) or any subset
//!   (what POSIX allows).
//!
//! Inode numbers that the file system reuses after an unlink start a new
//! file: files are told apart by creation, not by number.

use std::collections::{BTreeMap, HashMap};

use crate::oplog::{Inode, Op};

/// sled and the disks it runs on write in 512-byte sectors at least.
pub const SECTOR: u64 = 512;

/// Which pending content operations (after a file's last sync) reached the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentPolicy {
    /// None of them.
    None,
    /// All of them.
    All,
    /// Each operation with probability ½.
    Operations,
    /// Each 512-byte sector of each write (and each truncation) with probability ½.
    Sectors,
    /// A prefix of them, then a strict prefix of the next write's sectors.
    Torn,
    /// The newest `k` of them and none of the older ones.
    NewestFirst,
}

/// Which pending directory operations (not yet covered by a directory fsync) reached the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamePolicy {
    /// None of them.
    None,
    /// All of them.
    All,
    /// The pending operations before a random one (an ordered metadata journal).
    Prefix,
    /// Each with probability ½ (POSIX: no order between directories).
    Subset,
}

/// A crash point and the choices that make one crash state of it.
#[derive(Clone, Copy, Debug)]
pub struct Choice {
    pub point: usize,
    pub content: ContentPolicy,
    pub names: NamePolicy,
    pub seed: u64,
    /// Files under this path prefix are treated as synced: created, with all
    /// their content. (The counterfactual that tells which file a failure
    /// comes from.)
    pub settled: Option<&'static str>,
}

/// One entry of a materialized state, by path relative to the recorded root.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    Directory,
    File(Vec<u8>),
}

/// A crash state: every path (relative to the root) that exists in it.
pub type State = BTreeMap<String, Entry>;

type FileId = usize;

#[derive(Clone, Debug)]
enum ContentOp {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
    Extend(u64),
}

#[derive(Debug, Default)]
struct File {
    directory: bool,
    /// Content operations with their op index.
    content: Vec<(usize, ContentOp)>,
    /// Op indices of its syncs (`fsync`, `fdatasync`).
    syncs: Vec<usize>,
}

#[derive(Clone, Debug)]
enum NameAction {
    Create { path: String, file: FileId },
    Rename { from: String, to: String },
    Remove { path: String },
}

#[derive(Debug)]
struct NameOp {
    index: usize,
    /// The directories whose fsync makes it durable.
    parents: Vec<FileId>,
    action: NameAction,
}

/// An acknowledged write, as the workload's ack file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The op index of the write that completed the ack line.
    pub index: usize,
    pub agent: String,
    pub last_seq: u64,
    pub len: u64,
}

/// The op log, as files and directory operations.
#[derive(Debug)]
pub struct Model {
    files: Vec<File>,
    names: Vec<NameOp>,
    sync_all: Vec<usize>,
    /// The number of operations: the largest crash point.
    pub len: usize,
    /// Op indices of every durability barrier (`fsync`, `fdatasync`, `sync`).
    pub barriers: Vec<usize>,
    pub acks: Vec<Ack>,
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

impl Model {
    /// Builds the model; `ack_file` is the path (relative to the root) whose
    /// writes are the workload's acks. The root directory exists before the
    /// log starts, and nothing else does.
    #[expect(
        clippy::too_many_lines,
        reason = "one match arm per recorded operation; the model replays them top to bottom"
    )]
    pub fn build(ops: &[Op], ack_file: &str) -> Result<Model, String> {
        let mut model = Model {
            files: vec![File {
                directory: true,
                ..File::default()
            }],
            names: Vec::new(),
            sync_all: Vec::new(),
            len: ops.len(),
            barriers: Vec::new(),
            acks: Vec::new(),
        };
        let mut by_inode: HashMap<Inode, FileId> = HashMap::new();
        let mut live: HashMap<String, FileId> = HashMap::from([(String::new(), 0)]);
        let mut ack_bytes = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            match op {
                Op::Open {
                    inode,
                    created,
                    truncated,
                    directory,
                    path,
                } => {
                    let file = if *created {
                        let file = model.new_file(*directory);
                        let parents = vec![model.live_dir(&live, parent(path), index)?];
                        model.names.push(NameOp {
                            index,
                            parents,
                            action: NameAction::Create {
                                path: path.clone(),
                                file,
                            },
                        });
                        live.insert(path.clone(), file);
                        file
                    } else {
                        match live.get(path) {
                            Some(&file) => file,
                            None => return Err(format!("op {index}: {path:?} was opened but existed before the log")),
                        }
                    };
                    by_inode.insert(*inode, file);
                    if *truncated {
                        model.files[file].content.push((index, ContentOp::Truncate(0)));
                    }
                }
                Op::Write { inode, offset, data } => {
                    let file = model.file_of(&by_inode, inode, index)?;
                    if model.path_of(&live, file) == Some(ack_file) {
                        ack_bytes.extend_from_slice(data);
                        model.take_acks(&mut ack_bytes, index)?;
                    }
                    model.files[file].content.push((
                        index,
                        ContentOp::Write {
                            offset: *offset,
                            data: data.clone(),
                        },
                    ));
                }
                Op::Truncate { inode, len } => {
                    let file = model.file_of(&by_inode, inode, index)?;
                    model.files[file].content.push((index, ContentOp::Truncate(*len)));
                }
                Op::Fallocate {
                    inode,
                    mode,
                    offset,
                    len,
                } => {
                    let file = model.file_of(&by_inode, inode, index)?;
                    match *mode {
                        0 => model.files[file].content.push((index, ContentOp::Extend(offset + len))),
                        // FALLOC_FL_KEEP_SIZE: no visible change.
                        1 => {}
                        other => return Err(format!("op {index}: fallocate mode {other:#x} is not modelled")),
                    }
                }
                Op::Sync { inode } => {
                    let file = model.file_of(&by_inode, inode, index)?;
                    model.files[file].syncs.push(index);
                    model.barriers.push(index);
                }
                Op::StartWriteback { .. } => {}
                Op::Rename { from, to, .. } => {
                    let file = *live
                        .get(from)
                        .ok_or_else(|| format!("op {index}: rename of unknown {from:?}"))?;
                    let mut parents = vec![model.live_dir(&live, parent(from), index)?];
                    let to_parent = model.live_dir(&live, parent(to), index)?;
                    if !parents.contains(&to_parent) {
                        parents.push(to_parent);
                    }
                    model.names.push(NameOp {
                        index,
                        parents,
                        action: NameAction::Rename {
                            from: from.clone(),
                            to: to.clone(),
                        },
                    });
                    live.remove(from);
                    live.insert(to.clone(), file);
                }
                Op::Unlink { path, .. } | Op::Rmdir { path, .. } => {
                    let parents = vec![model.live_dir(&live, parent(path), index)?];
                    model.names.push(NameOp {
                        index,
                        parents,
                        action: NameAction::Remove { path: path.clone() },
                    });
                    live.remove(path);
                }
                Op::Mkdir { inode, path } => {
                    let file = model.new_file(true);
                    let parents = vec![model.live_dir(&live, parent(path), index)?];
                    model.names.push(NameOp {
                        index,
                        parents,
                        action: NameAction::Create {
                            path: path.clone(),
                            file,
                        },
                    });
                    live.insert(path.clone(), file);
                    by_inode.insert(*inode, file);
                }
                Op::SyncAll => {
                    model.sync_all.push(index);
                    model.barriers.push(index);
                }
                Op::Unsupported(what) => return Err(format!("op {index}: the recorder saw {what}")),
            }
        }
        Ok(model)
    }

    fn new_file(&mut self, directory: bool) -> FileId {
        self.files.push(File {
            directory,
            ..File::default()
        });
        self.files.len() - 1
    }

    fn live_dir(&self, live: &HashMap<String, FileId>, path: &str, index: usize) -> Result<FileId, String> {
        match live.get(path) {
            Some(&file) if self.files[file].directory => Ok(file),
            _ => Err(format!("op {index}: parent {path:?} is not a known directory")),
        }
    }

    #[expect(
        clippy::unused_self,
        reason = "kept a method of the model beside its siblings for reading"
    )]
    fn file_of(&self, by_inode: &HashMap<Inode, FileId>, inode: &Inode, index: usize) -> Result<FileId, String> {
        by_inode
            .get(inode)
            .copied()
            .ok_or_else(|| format!("op {index}: inode {inode:?} was never opened"))
    }

    #[expect(
        clippy::unused_self,
        reason = "kept a method of the model beside its siblings for reading"
    )]
    fn path_of<'a>(&self, live: &'a HashMap<String, FileId>, file: FileId) -> Option<&'a str> {
        live.iter().find(|(_, &id)| id == file).map(|(path, _)| path.as_str())
    }

    fn take_acks(&mut self, bytes: &mut Vec<u8>, index: usize) -> Result<(), String> {
        while let Some(end) = bytes.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = bytes.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            let parts: Vec<&str> = line.split(' ').collect();
            let ["ack", agent, last_seq, len] = parts.as_slice() else {
                return Err(format!("op {index}: bad ack line {line:?}"));
            };
            self.acks.push(Ack {
                index,
                agent: (*agent).to_string(),
                last_seq: last_seq.parse().map_err(|_| format!("bad ack line {line:?}"))?,
                len: len.parse().map_err(|_| format!("bad ack line {line:?}"))?,
            });
        }
        Ok(())
    }

    /// The index of the last barrier covering `file` before `point`, if any.
    fn last_sync(&self, file: FileId, point: usize) -> Option<usize> {
        let own = self.files[file]
            .syncs
            .iter()
            .copied()
            .filter(|&index| index < point)
            .max();
        let all = self.sync_all.iter().copied().filter(|&index| index < point).max();
        own.max(all)
    }

    fn name_durable(&self, name: &NameOp, point: usize) -> bool {
        name.parents
            .iter()
            .all(|&dir| self.last_sync(dir, point).is_some_and(|sync| sync > name.index))
    }

    /// The crash state `choice` describes, restricted to paths under `under` (and `under` itself).
    pub fn state(&self, choice: &Choice, under: &str) -> State {
        let names = self.names_chosen(choice);
        let mut namespace: BTreeMap<String, FileId> = BTreeMap::from([(String::new(), 0)]);
        for (name, applied) in names {
            if applied {
                apply_name(&mut namespace, &name.action, &self.files);
            }
        }
        let prefix = format!("{under}/");
        namespace
            .into_iter()
            .filter(|(path, _)| path == under || path.starts_with(&prefix))
            .map(|(path, file)| {
                let entry = if self.files[file].directory {
                    Entry::Directory
                } else {
                    // Each file draws from its own stream, so settling one file changes no other.
                    let mut file_rng = Rng::new(choice.seed ^ (file as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                    let policy = if choice.settled.is_some_and(|settled| path.starts_with(settled)) {
                        ContentPolicy::All
                    } else {
                        choice.content
                    };
                    Entry::File(self.content(file, choice.point, policy, &mut file_rng))
                };
                (path, entry)
            })
            .collect()
    }

    /// The pending directory operations that `choice` leaves out, described.
    pub fn dropped_names(&self, choice: &Choice) -> Vec<String> {
        self.names_chosen(choice)
            .into_iter()
            .filter(|(_, applied)| !applied)
            .map(|(name, _)| match &name.action {
                NameAction::Create { path, .. } => format!("create {path}"),
                NameAction::Rename { from, to } => format!("rename {from} -> {to}"),
                NameAction::Remove { path } => format!("remove {path}"),
            })
            .collect()
    }

    /// Every directory operation before the point, and whether the state has it.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
    )]
    fn names_chosen(&self, choice: &Choice) -> Vec<(&NameOp, bool)> {
        let mut rng = Rng::new(choice.seed ^ (choice.point as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let before: Vec<&NameOp> = self.names.iter().filter(|name| name.index < choice.point).collect();
        let pending = before
            .iter()
            .filter(|name| !self.name_durable(name, choice.point))
            .count();
        let cut = match choice.names {
            NamePolicy::Prefix => rng.below(pending as u64 + 1) as usize,
            _ => 0,
        };
        let mut seen_pending = 0;
        before
            .into_iter()
            .map(|name| {
                if self.name_durable(name, choice.point) {
                    return (name, true);
                }
                seen_pending += 1;
                let settled = match (&name.action, choice.settled) {
                    (NameAction::Create { path, .. }, Some(settled)) => path.starts_with(settled),
                    _ => false,
                };
                // Drawn whether or not settled, so settling changes no other choice.
                let drawn = match choice.names {
                    NamePolicy::None => false,
                    NamePolicy::All => true,
                    NamePolicy::Prefix => seen_pending <= cut,
                    NamePolicy::Subset => rng.below(2) == 0,
                };
                (name, drawn || settled)
            })
            .collect()
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
    )]
    fn content(&self, file: FileId, point: usize, policy: ContentPolicy, rng: &mut Rng) -> Vec<u8> {
        let sync = self.last_sync(file, point);
        let mut bytes = Vec::new();
        let mut pending = Vec::new();
        for (index, op) in &self.files[file].content {
            if *index >= point {
                break;
            }
            if sync.is_some_and(|sync| *index < sync) {
                apply(&mut bytes, op);
            } else {
                pending.push(op);
            }
        }
        match policy {
            ContentPolicy::None => {}
            ContentPolicy::All => pending.iter().for_each(|op| apply(&mut bytes, op)),
            ContentPolicy::Operations => {
                for op in pending {
                    if rng.below(2) == 0 {
                        apply(&mut bytes, op);
                    }
                }
            }
            ContentPolicy::Sectors => {
                for op in pending {
                    match op {
                        ContentOp::Write { offset, data } => {
                            for (at, piece) in sectors(*offset, data) {
                                if rng.below(2) == 0 {
                                    write_at(&mut bytes, at, piece);
                                }
                            }
                        }
                        other if rng.below(2) == 0 => apply(&mut bytes, other),
                        _ => {}
                    }
                }
            }
            ContentPolicy::Torn => {
                let cut = rng.below(pending.len() as u64 + 1) as usize;
                pending[..cut].iter().for_each(|op| apply(&mut bytes, op));
                if let Some(ContentOp::Write { offset, data }) = pending.get(cut) {
                    let pieces = sectors(*offset, data);
                    let kept = rng.below(pieces.len() as u64) as usize;
                    for (at, piece) in &pieces[..kept] {
                        write_at(&mut bytes, *at, piece);
                    }
                }
            }
            ContentPolicy::NewestFirst => {
                let newest = 1 + rng.below(pending.len().max(1) as u64) as usize;
                let from = pending.len().saturating_sub(newest);
                pending[from..].iter().for_each(|op| apply(&mut bytes, op));
            }
        }
        bytes
    }
}

fn apply_name(namespace: &mut BTreeMap<String, FileId>, action: &NameAction, files: &[File]) {
    let parent_exists = |namespace: &BTreeMap<String, FileId>, path: &str| {
        namespace.get(parent(path)).is_some_and(|&dir| files[dir].directory)
    };
    match action {
        NameAction::Create { path, file } => {
            if parent_exists(namespace, path) {
                namespace.insert(path.clone(), *file);
            }
        }
        NameAction::Rename { from, to } => {
            if parent_exists(namespace, to) {
                if let Some(file) = namespace.remove(from) {
                    namespace.insert(to.clone(), file);
                }
            }
        }
        NameAction::Remove { path } => {
            namespace.remove(path);
        }
    }
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn apply(bytes: &mut Vec<u8>, op: &ContentOp) {
    match op {
        ContentOp::Write { offset, data } => write_at(bytes, *offset, data),
        ContentOp::Truncate(len) => bytes.resize(*len as usize, 0),
        ContentOp::Extend(len) => {
            if (*len as usize) > bytes.len() {
                bytes.resize(*len as usize, 0);
            }
        }
    }
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn write_at(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    if bytes.len() < start + data.len() {
        bytes.resize(start + data.len(), 0);
    }
    bytes[start..start + data.len()].copy_from_slice(data);
}

/// A write cut at 512-byte sector boundaries (of the file, not of the write).
#[expect(
    clippy::cast_possible_truncation,
    reason = "lengths, offsets and small bounded indices, far below the target type's range on the 64-bit targets this runs on"
)]
fn sectors(offset: u64, data: &[u8]) -> Vec<(u64, &[u8])> {
    let mut pieces = Vec::new();
    let mut at = offset;
    let mut rest = data;
    while !rest.is_empty() {
        let room = (SECTOR - at % SECTOR) as usize;
        let (piece, tail) = rest.split_at(room.min(rest.len()));
        pieces.push((at, piece));
        at += piece.len() as u64;
        rest = tail;
    }
    pieces
}

/// xorshift64: every choice is a function of the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}
