//! `xfs`: per-filesystem XFS statistics from `/sys/fs/xfs/<device>/stats/stats`
//! (node_exporter compatible).

use std::collections::HashMap;
use std::io::ErrorKind;

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "xfs",
    default_enabled: true,
    help: "Exposes XFS runtime statistics.",
    flags: &[],
    build: |ctx| Ok(Box::new(Xfs { root: ctx.paths.sys("fs/xfs") })),
};

/// One exported counter: metric suffix, HELP, stats line key and column.
struct Counter {
    /// Name after `node_xfs_`.
    name: &'static str,
    /// HELP text.
    help: &'static str,
    /// Key of the stats line.
    key: &'static str,
    /// Column (0-based, after the key).
    col: usize,
}

/// Shorthand constructor for [`COUNTERS`].
const fn c(name: &'static str, help: &'static str, key: &'static str, col: usize) -> Counter {
    Counter { name, help, key, col }
}

/// The counters node_exporter exports (names and help from its XFS runtime stats table).
const COUNTERS: &[Counter] = &[
    c("extent_allocation_extents_allocated_total", "Number of extents allocated for a filesystem.", "extent_alloc", 0),
    c("extent_allocation_blocks_allocated_total", "Number of blocks allocated for a filesystem.", "extent_alloc", 1),
    c("extent_allocation_extents_freed_total", "Number of extents freed for a filesystem.", "extent_alloc", 2),
    c("extent_allocation_blocks_freed_total", "Number of blocks freed for a filesystem.", "extent_alloc", 3),
    c("allocation_btree_lookups_total", "Number of allocation B-tree lookups for a filesystem.", "abt", 0),
    c("allocation_btree_compares_total", "Number of allocation B-tree compares for a filesystem.", "abt", 1),
    c(
        "allocation_btree_records_inserted_total",
        "Number of allocation B-tree records inserted for a filesystem.",
        "abt",
        2,
    ),
    c(
        "allocation_btree_records_deleted_total",
        "Number of allocation B-tree records deleted for a filesystem.",
        "abt",
        3,
    ),
    c("block_mapping_reads_total", "Number of block map for read operations for a filesystem.", "blk_map", 0),
    c("block_mapping_writes_total", "Number of block map for write operations for a filesystem.", "blk_map", 1),
    c("block_mapping_unmaps_total", "Number of block unmaps (deletes) for a filesystem.", "blk_map", 2),
    c("block_mapping_extent_list_insertions_total", "Number of extent list insertions for a filesystem.", "blk_map", 3),
    c("block_mapping_extent_list_deletions_total", "Number of extent list deletions for a filesystem.", "blk_map", 4),
    c("block_mapping_extent_list_lookups_total", "Number of extent list lookups for a filesystem.", "blk_map", 5),
    c("block_mapping_extent_list_compares_total", "Number of extent list compares for a filesystem.", "blk_map", 6),
    c("block_map_btree_lookups_total", "Number of block map B-tree lookups for a filesystem.", "bmbt", 0),
    c("block_map_btree_compares_total", "Number of block map B-tree compares for a filesystem.", "bmbt", 1),
    c(
        "block_map_btree_records_inserted_total",
        "Number of block map B-tree records inserted for a filesystem.",
        "bmbt",
        2,
    ),
    c(
        "block_map_btree_records_deleted_total",
        "Number of block map B-tree records deleted for a filesystem.",
        "bmbt",
        3,
    ),
    c(
        "directory_operation_lookup_total",
        "Number of file name directory lookups which miss the operating systems directory name lookup cache.",
        "dir",
        0,
    ),
    c(
        "directory_operation_create_total",
        "Number of times a new directory entry was created for a filesystem.",
        "dir",
        1,
    ),
    c(
        "directory_operation_remove_total",
        "Number of times an existing directory entry was created for a filesystem.",
        "dir",
        2,
    ),
    c(
        "directory_operation_getdents_total",
        "Number of times the directory getdents operation was performed for a filesystem.",
        "dir",
        3,
    ),
    c("inode_operation_attempts_total", "Number of times the OS looked for an XFS inode in the inode cache.", "ig", 0),
    c(
        "inode_operation_found_total",
        "Number of times the OS looked for and found an XFS inode in the inode cache.",
        "ig",
        1,
    ),
    c(
        "inode_operation_recycled_total",
        "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled.",
        "ig",
        2,
    ),
    c(
        "inode_operation_missed_total",
        "Number of times the OS looked for an XFS inode in the cache, but did not find it.",
        "ig",
        3,
    ),
    c(
        "inode_operation_duplicates_total",
        "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process.",
        "ig",
        4,
    ),
    c(
        "inode_operation_reclaims_total",
        "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose.",
        "ig",
        5,
    ),
    c(
        "inode_operation_attribute_changes_total",
        "Number of times the OS explicitly changed the attributes of an XFS inode.",
        "ig",
        6,
    ),
    // The kernel's `rw` line is "write read".
    c("read_calls_total", "Number of read(2) system calls made to files in a filesystem.", "rw", 1),
    c("write_calls_total", "Number of write(2) system calls made to files in a filesystem.", "rw", 0),
    c("vnode_active_total", "Number of vnodes not on free lists for a filesystem.", "vnodes", 0),
    c("vnode_allocate_total", "Number of times vn_alloc called for a filesystem.", "vnodes", 1),
    c("vnode_get_total", "Number of times vn_get called for a filesystem.", "vnodes", 2),
    c("vnode_hold_total", "Number of times vn_hold called for a filesystem.", "vnodes", 3),
    c("vnode_release_total", "Number of times vn_rele called for a filesystem.", "vnodes", 4),
    c("vnode_reclaim_total", "Number of times vn_reclaim called for a filesystem.", "vnodes", 5),
    c("vnode_remove_total", "Number of times vn_remove called for a filesystem.", "vnodes", 6),
];

/// Reads every `/sys/fs/xfs/<device>/stats/stats`.
struct Xfs {
    root: PathBuf,
}

impl Collector for Xfs {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let devices = match list_dir(&self.root) {
            Err(e) if e.is_not_found() => return Ok(()),
            r => r?,
        };
        // Parse every device first: like node_exporter, one bad file fails the whole scrape.
        let mut parsed = Vec::new();
        for dev in devices {
            let path = self.root.join(&dev).join("stats/stats");
            // Not a glob match: no such file, or `dev` is a file (the global `/sys/fs/xfs/stats`
            // directory holds a file named `stats`, so `stats/stats/stats` is ENOTDIR).
            let text = match std::fs::read_to_string(&path) {
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => continue,
                r => r.map_err(|e| CollectError::io(&path, e))?,
            };
            let stats = parse(&text).map_err(|m| CollectError::parse(&path, m))?;
            let values: Vec<u64> = COUNTERS
                .iter()
                .map(|m| stats.get(m.key).and_then(|vals| vals.get(m.col)).copied().unwrap_or(0))
                .collect();
            parsed.push((dev, values));
        }
        for (dev, values) in parsed {
            for (m, v) in COUNTERS.iter().zip(values) {
                out.counter_with(&format!("node_xfs_{}", m.name), m.help, &[("device", &dev)], v as f64);
            }
        }
        Ok(())
    }
}

/// How many values a known stats line must have: exactly `lo` (when `lo == hi`), or a
/// range (`hi == usize::MAX`: at least `lo`).
fn expected_len(key: &str) -> Option<(usize, usize)> {
    Some(match key {
        "extent_alloc" | "abt" | "bmbt" | "dir" | "attr" => (4, 4),
        "blk_map" | "ig" => (7, 7),
        "trans" | "icluster" | "xpc" => (3, 3),
        "log" => (5, 5),
        "push_ail" => (10, 10),
        "xstrat" | "rw" => (2, 2),
        "vnodes" => (7, 8),
        "buf" => (9, 9),
        "abtb2" | "abtc2" | "bmbt2" | "ibt2" | "fibt2" | "rmapbt" | "refcntbt" | "rmapbt_mem" | "rcbagbt"
        | "rtrmapbt" | "rtrmapbt_mem" | "rtrefcntbt" => (15, 15),
        "qm" => (8, 9),
        "debug" | "defer_relog" | "gc xpc" => (1, 1),
        "zoned" => (3, usize::MAX),
        "metafile" => (1, usize::MAX),
        _ => return None,
    })
}

/// Parses an XFS stats file into its lines' values by key, validating what procfs validates:
/// value counts of known lines, and 32-bit values except on the 64-bit `xpc`, `defer_relog`
/// and `gc xpc` lines. Lines with no values are skipped.
fn parse(text: &str) -> Result<HashMap<&str, Vec<u64>>, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 2 {
            continue;
        }
        let key = if f[0] == "gc" && f.len() >= 3 && f[1] == "xpc" {
            f.drain(..2);
            "gc xpc"
        } else {
            f.remove(0)
        };
        let wide = matches!(key, "xpc" | "defer_relog" | "gc xpc");
        let values = f
            .iter()
            .map(|s| {
                if wide { s.parse::<u64>().ok() } else { s.parse::<u32>().ok().map(u64::from) }
                    .ok_or_else(|| format!("line {key:?}: invalid value {s:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some((lo, hi)) = expected_len(key)
            && !(lo..=hi).contains(&values.len())
        {
            return Err(format!("incorrect number of values for XFS {key} stats: {}", values.len()));
        }
        out.insert(key, values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates_lines() {
        let s = parse("extent_alloc 1 872 0 0\nrw 28 3\nvnodes 4 0 0 0 1 1 1\nxpc 3571712 8589934592 0\ngc xpc 5\nx\n")
            .unwrap();
        assert_eq!(s["extent_alloc"], [1, 872, 0, 0]);
        assert_eq!(s["rw"], [28, 3]);
        assert_eq!(s["vnodes"].len(), 7);
        assert_eq!(s["xpc"][1], 8589934592);
        assert_eq!(s["gc xpc"], [5]);
        assert!(parse("abt 1 2 3\n").is_err());
        assert!(parse("abt 1 2 3 4294967296\n").is_err(), "32-bit only");
        assert!(parse("dir 1 2 x 4\n").is_err());
        assert!(parse("newline_from_future_kernel 1 2 3\n").is_ok());
    }
}

#[cfg(test)]
mod conformance {
    /// The global stats file sits beside the per-device directories and must be skipped.
    #[test]
    fn global_stats_dir_is_not_a_device() {
        let dir = std::env::temp_dir().join(format!("osprey-xfs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("stats")).unwrap();
        std::fs::write(dir.join("stats/stats"), "rw 1 2\n").unwrap();
        std::fs::create_dir_all(dir.join("vda1/stats")).unwrap();
        std::fs::write(dir.join("vda1/stats/stats"), "rw 5 7\n").unwrap();
        let mut sink = agent_core::Sink::new();
        agent_core::Collector::collect(&super::Xfs { root: dir.clone() }, &mut sink).unwrap();
        let fams = sink.into_families();
        let read = fams.iter().find(|f| f.name == "node_xfs_read_calls_total").unwrap();
        assert_eq!(read.samples.len(), 1);
        assert_eq!(read.samples[0].label("device"), Some("vda1"));
        assert_eq!(read.samples[0].value, 7.0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("xfs", &|f| f.starts_with("node_xfs_"));
    }
}
