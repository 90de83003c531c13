//! `btrfs`: Btrfs allocation, commit and device statistics from `/sys/fs/btrfs/<uuid>/`
//! (node_exporter compatible).
//!
//! node_exporter additionally queries per-device sizes and error counters with btrfs ioctls
//! (`BTRFS_IOC_FS_INFO`, `DEV_INFO`, `GET_DEV_STATS`) on each mounted btrfs filesystem. Those
//! need raw `ioctl` calls (unsafe code, which this crate forbids), so we always take the path
//! node_exporter falls back to when the ioctls fail: `device_size_bytes` from sysfs, labelled by
//! `device` only, and no `device_unused_bytes` / `device_errors_total`.

use std::io::ErrorKind;

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "btrfs",
    default_enabled: true,
    help: "Exposes btrfs statistics.",
    flags: &[],
    build: |ctx| Ok(Box::new(Btrfs { root: ctx.paths.sys("fs/btrfs") })),
};

/// Sector size the `size` attribute of block devices counts in.
const SECTOR_SIZE: u64 = 512;

/// Reads every `/sys/fs/btrfs/<uuid>` directory.
struct Btrfs {
    root: PathBuf,
}

/// One block group type's allocation.
struct Allocation {
    /// `data`, `metadata` or `system`.
    kind: &'static str,
    /// `bytes_reserved`.
    reserved: u64,
    /// Per layout (`single`, `raid1`, ...): used and total bytes.
    layouts: Vec<(String, u64, u64)>,
}

/// What we export about one filesystem.
struct FsStats {
    /// Filesystem UUID (`metadata_uuid`, else the directory name).
    uuid: String,
    /// Filesystem label.
    label: String,
    /// `allocation/global_rsv_size`.
    global_rsv_size: u64,
    /// `commit_stats`: commits, last, max and total commit milliseconds.
    commits: [u64; 4],
    /// Data, metadata, system.
    allocations: Vec<Allocation>,
    /// Member devices and their sizes in bytes.
    devices: Vec<(String, u64)>,
}

impl Collector for Btrfs {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let entries = match list_dir(&self.root) {
            Err(e) if e.is_not_found() => return Ok(()),
            r => r?,
        };
        // As in node_exporter, an error on any filesystem fails the whole scrape.
        let stats = entries
            .into_iter()
            .filter(|n| n.contains('-'))
            .map(|n| read_fs(&self.root.join(&n), n))
            .collect::<Result<Vec<_>, _>>()?;
        for s in &stats {
            emit(out, s);
        }
        Ok(())
    }
}

/// Writes one filesystem's metrics.
fn emit(out: &mut Sink, s: &FsStats) {
    let uuid = s.uuid.as_str();
    let u = &[("uuid", uuid)];
    out.gauge_with("node_btrfs_info", "Filesystem information", &[("uuid", uuid), ("label", &s.label)], 1.0);
    out.gauge_with("node_btrfs_global_rsv_size_bytes", "Size of global reserve.", u, s.global_rsv_size as f64);
    let [commits, last, max, total] = s.commits;
    out.counter_with("node_btrfs_commits_total", "The total number of commits that have occurred.", u, commits as f64);
    out.gauge_with(
        "node_btrfs_last_commit_seconds",
        "Duration of the most recent commit, in seconds.",
        u,
        last as f64 / 1000.0,
    );
    out.gauge_with(
        "node_btrfs_max_commit_seconds",
        "Duration of the slowest commit, in seconds.",
        u,
        max as f64 / 1000.0,
    );
    out.counter_with(
        "node_btrfs_commit_seconds_total",
        "Sum of the duration of all commits, in seconds.",
        u,
        total as f64 / 1000.0,
    );
    for a in &s.allocations {
        out.gauge_with(
            "node_btrfs_reserved_bytes",
            "Amount of space reserved for a data type",
            &[("uuid", uuid), ("block_group_type", a.kind)],
            a.reserved as f64,
        );
        for (mode, used, total) in &a.layouts {
            let l = &[("uuid", uuid), ("block_group_type", a.kind), ("mode", mode.as_str())];
            out.gauge_with("node_btrfs_used_bytes", "Amount of used space by a layout/data type", l, *used as f64);
            out.gauge_with(
                "node_btrfs_size_bytes",
                "Amount of space allocated for a layout/data type",
                l,
                *total as f64,
            );
            out.gauge_with(
                "node_btrfs_allocation_ratio",
                "Data allocation ratio for a layout/data type",
                l,
                ratio(mode, s.devices.len()),
            );
        }
    }
    for (dev, size) in &s.devices {
        out.gauge_with(
            "node_btrfs_device_size_bytes",
            "Size of a device that is part of the filesystem.",
            &[("uuid", uuid), ("device", dev)],
            *size as f64,
        );
    }
}

/// A file's trimmed content; `None` when it does not exist.
fn read_opt(path: &Path) -> Result<Option<String>, CollectError> {
    match read_trimmed(path) {
        Err(e) if e.is_not_found() => Ok(None),
        r => r.map(Some),
    }
}

/// A numeric attribute; missing or unparsable values count as 0 (as in procfs).
fn value(path: &Path) -> Result<u64, CollectError> {
    Ok(read_opt(path)?.and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// Directory entry names (optionally only directories, not following symlinks); a missing
/// directory has none.
fn entries(path: &Path, dirs_only: bool) -> Result<Vec<String>, CollectError> {
    let rd = match std::fs::read_dir(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        r => r.map_err(|e| CollectError::io(path, e))?,
    };
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(|e| CollectError::io(path, e))?;
        if !dirs_only || e.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Reads one filesystem's directory.
fn read_fs(dir: &Path, dir_name: String) -> Result<FsStats, CollectError> {
    let mut devices = Vec::new();
    for d in entries(&dir.join("devices"), false)? {
        let size = SECTOR_SIZE * value(&dir.join("devices").join(&d).join("size"))?;
        devices.push((d, size));
    }
    let uuid = read_opt(&dir.join("metadata_uuid"))?.filter(|u| !u.is_empty()).unwrap_or(dir_name);
    let label = read_opt(&dir.join("label"))?.unwrap_or_default();
    let global_rsv_size = value(&dir.join("allocation/global_rsv_size"))?;
    let mut allocations = Vec::new();
    for kind in ["data", "metadata", "system"] {
        let adir = dir.join("allocation").join(kind);
        let reserved = value(&adir.join("bytes_reserved"))?;
        let mut layouts = Vec::new();
        for mode in entries(&adir, true)? {
            let used = value(&adir.join(&mode).join("used_bytes"))?;
            let total = value(&adir.join(&mode).join("total_bytes"))?;
            layouts.push((mode, used, total));
        }
        allocations.push(Allocation { kind, reserved, layouts });
    }
    let path = dir.join("commit_stats");
    let commits = match read_opt_raw(&path)? {
        // Kernels before 6.0 have no commit_stats.
        None => [0; 4],
        Some(text) => parse_commit_stats(&text).map_err(|m| CollectError::parse(&path, m))?,
    };
    Ok(FsStats { uuid, label, global_rsv_size, commits, allocations, devices })
}

/// A file's content; `None` when it does not exist.
fn read_opt_raw(path: &Path) -> Result<Option<String>, CollectError> {
    match read_string(path) {
        Err(e) if e.is_not_found() => Ok(None),
        r => r.map(Some),
    }
}

/// Parses `commit_stats` (`<key> <value>` lines) into commits and last/max/total commit ms.
fn parse_commit_stats(text: &str) -> Result<[u64; 4], String> {
    let mut out = [0; 4];
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(key), Some(v), None) = (f.next(), f.next(), f.next()) else {
            return Err(format!("invalid commit_stats line {line:?}"));
        };
        let v: u64 = v.parse().map_err(|e| format!("line {line:?}: {e}"))?;
        match key {
            "commits" => out[0] = v,
            "last_commit_ms" => out[1] = v,
            "max_commit_ms" => out[2] = v,
            "total_commit_ms" => out[3] = v,
            _ => {}
        }
    }
    Ok(out)
}

/// Bytes on disk per byte of data for a layout across `devices` member devices.
fn ratio(mode: &str, devices: usize) -> f64 {
    let n = devices as f64;
    match mode {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid1c3" => 3.0,
        "raid1c4" => 4.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commit_stats() {
        let t = "commits 258051\nlast_commit_ms 1000\nmax_commit_ms 51462\ntotal_commit_ms 47836090\nnew 1\n";
        assert_eq!(parse_commit_stats(t).unwrap(), [258051, 1000, 51462, 47836090]);
        assert!(parse_commit_stats("commits 1 2\n").is_err());
        assert!(parse_commit_stats("commits x\n").is_err());
    }

    #[test]
    fn ratios_follow_layout_and_device_count() {
        assert_eq!(ratio("raid0", 4), 1.0);
        assert_eq!(ratio("dup", 1), 2.0);
        assert_eq!(ratio("raid1c4", 4), 4.0);
        assert_eq!(ratio("raid5", 4), 4.0 / 3.0);
        assert_eq!(ratio("raid6", 4), 2.0);
        assert_eq!(ratio("weird", 4), 0.0);
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("btrfs", &|f| f.starts_with("node_btrfs_"));
    }
}
