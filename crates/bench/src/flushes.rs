//! Device cache flushes: how many times the disk was asked to make its
//! write cache durable, counted by the kernel for the block device holding
//! the bench databases (`/sys/class/block/<device>/stat`, flush requests
//! completed). Every writer on that device counts, so a quiet machine reads
//! true. Only a device with a volatile write cache is asked to flush, so
//! only such a device gets a counter.

use std::path::{Path, PathBuf};

/// The flush counter of one block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FlushCounter {
    stat: PathBuf,
}

/// The index of "flush requests completed" among the fields of a block
/// device's `stat` file (Documentation/block/stat.rst, since Linux 5.5).
const FLUSHES_FIELD: usize = 15;

impl FlushCounter {
    /// The counter of the block device `device` (`/dev/vda`,
    /// `/dev/mapper/root`: links are followed), when the kernel has one and
    /// the device caches writes.
    pub(crate) fn of_device(device: &Path) -> Option<FlushCounter> {
        let device = device.canonicalize().ok()?;
        let sysfs = Path::new("/sys/class/block").join(device.file_name()?);
        // A partition's queue is its disk's, one level up.
        let caches_writes = [sysfs.join("queue/write_cache"), sysfs.join("../queue/write_cache")]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .is_some_and(|cache| cache.trim() == "write back");
        let counter = FlushCounter {
            stat: sysfs.join("stat"),
        };
        (caches_writes && counter.read().is_some()).then_some(counter)
    }

    /// Flushes completed so far; `None` when the counter cannot be read.
    pub(crate) fn read(&self) -> Option<u64> {
        parse_flushes(&std::fs::read_to_string(&self.stat).ok()?)
    }

    /// The `stat` file read.
    pub(crate) fn path(&self) -> &Path {
        &self.stat
    }
}

fn parse_flushes(stat: &str) -> Option<u64> {
    stat.split_whitespace().nth(FLUSHES_FIELD)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_are_the_sixteenth_field_of_a_block_device_s_stat() {
        let stat = " 5773213   164959 298871754 15405172 21759185  4077078 3291417848 22996733        0  3135176 \
                    39464469  2857906      473 2612988640   760530  3071609   302033\n";
        assert_eq!(parse_flushes(stat), Some(3_071_609));
    }

    #[test]
    fn a_stat_without_flush_fields_has_no_flush_count() {
        // Before Linux 5.5: eleven fields (four more since 4.18 for discards).
        let stat = " 5773213 164959 298871754 15405172 21759185 4077078 3291417848 22996733 0 3135176 39464469\n";
        assert_eq!(parse_flushes(stat), None);
    }
}
