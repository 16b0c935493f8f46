//! Reading the recorder's op log (layout: `src/format.rs`).

#[path = "../../src/format.rs"]
#[allow(
    dead_code,
    reason = "the layout is shared with the recorder, which uses other constants"
)]
mod format;

pub use format::{LOG_ENV, ROOT_ENV};

/// An inode: `(dev, ino)`.
pub type Inode = (u64, u64);

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Open {
        inode: Inode,
        created: bool,
        truncated: bool,
        directory: bool,
        path: String,
    },
    Write {
        inode: Inode,
        offset: u64,
        data: Vec<u8>,
    },
    Truncate {
        inode: Inode,
        len: u64,
    },
    Fallocate {
        inode: Inode,
        mode: u32,
        offset: u64,
        len: u64,
    },
    /// `fsync` or `fdatasync`: a durability barrier for the inode.
    Sync {
        inode: Inode,
    },
    /// `sync_file_range`: starts writeback, makes nothing durable.
    StartWriteback {
        inode: Inode,
    },
    Rename {
        inode: Inode,
        from: String,
        to: String,
    },
    Unlink {
        inode: Inode,
        path: String,
    },
    Mkdir {
        inode: Inode,
        path: String,
    },
    Rmdir {
        inode: Inode,
        path: String,
    },
    SyncAll,
    Unsupported(String),
}

/// Decodes a whole op log. A log cut inside a record (the recorder died
/// mid-append) is an error: the workload always exits cleanly.
pub fn decode(bytes: &[u8]) -> Result<Vec<Op>, String> {
    let rest = bytes
        .strip_prefix(&format::MAGIC[..])
        .ok_or("not an op log (no magic)")?;
    let mut ops = Vec::new();
    let mut at = 0usize;
    while at < rest.len() {
        if rest.len() - at < 5 {
            return Err(format!("op log cut in a record header at byte {}", at + 8));
        }
        let kind = rest[at];
        let len = u32::from_be_bytes(rest[at + 1..at + 5].try_into().unwrap()) as usize;
        let payload = rest
            .get(at + 5..at + 5 + len)
            .ok_or_else(|| format!("op log cut in record {} at byte {}", ops.len(), at + 8))?;
        ops.push(decode_record(kind, payload).map_err(|error| format!("record {}: {error}", ops.len()))?);
        at += 5 + len;
    }
    Ok(ops)
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64, String> {
    bytes
        .get(at..at + 8)
        .map(|field| u64::from_be_bytes(field.try_into().unwrap()))
        .ok_or_else(|| "short record".to_string())
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a path that is not UTF-8".to_string())
}

fn decode_record(kind: u8, payload: &[u8]) -> Result<Op, String> {
    let inode = (u64_at(payload, 0)?, u64_at(payload, 8)?);
    let body = &payload[16..];
    Ok(match kind {
        format::OPEN => {
            let flags = *body.first().ok_or("short open record")?;
            Op::Open {
                inode,
                created: flags & format::OPEN_CREATED != 0,
                truncated: flags & format::OPEN_TRUNCATED != 0,
                directory: flags & format::OPEN_DIRECTORY != 0,
                path: text(&body[1..])?,
            }
        }
        format::WRITE => Op::Write {
            inode,
            offset: u64_at(body, 0)?,
            data: body[8..].to_vec(),
        },
        format::TRUNCATE => Op::Truncate {
            inode,
            len: u64_at(body, 0)?,
        },
        format::FALLOCATE => {
            let mode = u32::from_be_bytes(body.get(..4).ok_or("short fallocate record")?.try_into().unwrap());
            Op::Fallocate {
                inode,
                mode,
                offset: u64_at(body, 4)?,
                len: u64_at(body, 12)?,
            }
        }
        format::SYNC => match body.first() {
            Some(&format::SYNC_FSYNC | &format::SYNC_FDATASYNC) => Op::Sync { inode },
            Some(&format::SYNC_FILE_RANGE) => Op::StartWriteback { inode },
            other => return Err(format!("unknown sync kind {other:?}")),
        },
        format::RENAME => {
            let from_len = u32::from_be_bytes(body.get(..4).ok_or("short rename record")?.try_into().unwrap()) as usize;
            let names = &body[4..];
            if names.len() < from_len {
                return Err("short rename record".into());
            }
            Op::Rename {
                inode,
                from: text(&names[..from_len])?,
                to: text(&names[from_len..])?,
            }
        }
        format::UNLINK => Op::Unlink {
            inode,
            path: text(body)?,
        },
        format::MKDIR => Op::Mkdir {
            inode,
            path: text(body)?,
        },
        format::RMDIR => Op::Rmdir {
            inode,
            path: text(body)?,
        },
        format::SYNC_ALL => Op::SyncAll,
        format::UNSUPPORTED => Op::Unsupported(String::from_utf8_lossy(body).into_owned()),
        other => return Err(format!("unknown record kind {other}")),
    })
}
