//! [`Machine`]: the hardware and system every number is measured on.

use std::path::Path;

use crate::flushes::FlushCounter;

/// The machine a report was measured on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Machine {
    /// The CPU model (`model name` of /proc/cpuinfo).
    pub cpu: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Total memory in bytes (`MemTotal` of /proc/meminfo; 0 when unknown).
    pub memory_bytes: u64,
    /// The operating system (`PRETTY_NAME` of /etc/os-release).
    pub os: String,
    /// The kernel release.
    pub kernel: String,
    /// The file system the databases were on: type, device and mount point.
    pub storage: String,
}

impl Machine {
    /// Reads what the system tells about itself; unknown parts say `unknown`.
    pub fn detect(dir: &Path) -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = field(&cpuinfo, "model name", ':').unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let memory_bytes = field(&read("/proc/meminfo"), "MemTotal", ':')
            .and_then(|value| value.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let os = field(&read("/etc/os-release"), "PRETTY_NAME", '=').map_or_else(
            || std::env::consts::OS.into(),
            |name| name.trim_matches('"').to_string(),
        );
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
        Machine {
            cpu,
            cores,
            memory_bytes,
            os,
            kernel: if kernel.is_empty() { "unknown".into() } else { kernel },
            storage: storage(dir),
        }
    }

    /// Memory in GiB.
    #[expect(
        clippy::cast_precision_loss,
        reason = "reporting statistics: counts, sizes and durations far below 2^52 become floats for display"
    )]
    pub fn memory_gib(&self) -> f64 {
        self.memory_bytes as f64 / f64::from(1u32 << 30)
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of the first `name<separator>value` line.
fn field(text: &str, name: &str, separator: char) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(separator)?;
        (key.trim() == name).then(|| value.trim().to_string())
    })
}

/// `fstype on device (mount point)` of the mount holding `dir`.
fn storage(dir: &Path) -> String {
    match mount_of(dir) {
        Some(mount) => format!("{} on {} ({})", mount.fstype, mount.device, mount.point),
        None => "unknown".into(),
    }
}

/// The flush counter of the block device holding `dir`, when it has one.
pub(crate) fn flush_counter(dir: &Path) -> Option<FlushCounter> {
    FlushCounter::of_device(Path::new(&mount_of(dir)?.device))
}

/// A mounted file system, as /proc/mounts lists it.
struct Mount {
    device: String,
    point: String,
    fstype: String,
}

/// The mount holding `dir`: the longest mount point it is under.
fn mount_of(dir: &Path) -> Option<Mount> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    read("/proc/mounts")
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let device = parts.next()?;
            let point = parts.next()?;
            let fstype = parts.next()?;
            dir.starts_with(point).then(|| Mount {
                device: device.into(),
                point: point.into(),
                fstype: fstype.into(),
            })
        })
        .max_by_key(|mount| mount.point.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_reads_both_separators() {
        assert_eq!(
            field("a: 1\nmodel name\t: Some CPU\n", "model name", ':'),
            Some("Some CPU".into())
        );
        assert_eq!(
            field("NAME=x\nPRETTY_NAME=\"Deb\"\n", "PRETTY_NAME", '='),
            Some("\"Deb\"".into())
        );
        assert_eq!(field("", "x", ':'), None);
    }
}
