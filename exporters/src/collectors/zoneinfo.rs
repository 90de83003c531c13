//! `zoneinfo`: per-zone memory statistics from `/proc/zoneinfo` (node_exporter compatible;
//! disabled by default as there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "zoneinfo",
    default_enabled: false,
    help: "Exposes NUMA memory zone metrics.",
    flags: &[],
    build: |ctx| Ok(Box::new(Zoneinfo { path: ctx.paths.proc("zoneinfo") })),
};

/// (`/proc/zoneinfo` key, metric suffix, HELP, is counter) for every value node_exporter reads.
const FIELDS: &[(&str, &str, &str, bool)] = &[
    ("nr_free_pages", "nr_free_pages", "Total number of free pages in the zone", false),
    ("min", "min_pages", "Zone watermark pages_min", false),
    ("low", "low_pages", "Zone watermark pages_low", false),
    ("high", "high_pages", "Zone watermark pages_high", false),
    ("scanned", "scanned_pages", "Pages scanned since last reclaim", false),
    ("spanned", "spanned_pages", "Total pages spanned by the zone, including holes", false),
    ("present", "present_pages", "Physical pages existing within the zone", false),
    ("managed", "managed_pages", "Present pages managed by the buddy system", false),
    ("nr_active_anon", "nr_active_anon_pages", "Number of anonymous pages recently more used", false),
    ("nr_inactive_anon", "nr_inactive_anon_pages", "Number of anonymous pages recently less used", false),
    ("nr_isolated_anon", "nr_isolated_anon_pages", "Temporary isolated pages from anon lru", false),
    ("nr_anon_pages", "nr_anon_pages", "Number of anonymous pages currently used by the system", false),
    (
        "nr_anon_transparent_hugepages",
        "nr_anon_transparent_hugepages",
        "Number of anonymous transparent huge pages currently used by the system",
        false,
    ),
    ("nr_active_file", "nr_active_file_pages", "Number of active pages with file-backing", false),
    ("nr_inactive_file", "nr_inactive_file_pages", "Number of inactive pages with file-backing", false),
    ("nr_isolated_file", "nr_isolated_file_pages", "Temporary isolated pages from file lru", false),
    ("nr_file_pages", "nr_file_pages", "Number of file pages", false),
    ("nr_slab_reclaimable", "nr_slab_reclaimable_pages", "Number of reclaimable slab pages", false),
    ("nr_slab_unreclaimable", "nr_slab_unreclaimable_pages", "Number of unreclaimable slab pages", false),
    ("nr_mlock_stack", "nr_mlock_stack_pages", "mlock()ed pages found and moved off LRU", false),
    ("nr_kernel_stack", "nr_kernel_stacks", "Number of kernel stacks", false),
    ("nr_mapped", "nr_mapped_pages", "Number of mapped pages", false),
    ("nr_dirty", "nr_dirty_pages", "Number of dirty pages", false),
    ("nr_writeback", "nr_writeback_pages", "Number of writeback pages", false),
    ("nr_unevictable", "nr_unevictable_pages", "Number of unevictable pages", false),
    ("nr_shmem", "nr_shmem_pages", "Number of shmem pages (included tmpfs/GEM pages)", false),
    ("nr_dirtied", "nr_dirtied_total", "Page dirtyings since bootup", true),
    ("nr_written", "nr_written_total", "Page writings since bootup", true),
    ("numa_hit", "numa_hit_total", "Allocated in intended node", true),
    ("numa_miss", "numa_miss_total", "Allocated in non intended node", true),
    ("numa_foreign", "numa_foreign_total", "Was intended here, hit elsewhere", true),
    ("numa_interleave", "numa_interleave_total", "Interleaver preferred this zone", true),
    ("numa_local", "numa_local_total", "Allocation from local node", true),
    ("numa_other", "numa_other_total", "Allocation from other node", true),
];

/// Reports `node_zoneinfo_*{node,zone}` and `node_zoneinfo_protection_<i>{node,zone}`.
struct Zoneinfo {
    path: PathBuf,
}

/// One `Node N, zone NAME` block: its values by [`FIELDS`] index and its protection array.
#[derive(Debug, Default, PartialEq)]
struct Zone<'a> {
    node: &'a str,
    name: &'a str,
    values: Vec<Option<i64>>,
    protection: Vec<i64>,
}

impl Collector for Zoneinfo {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        for z in parse(&text) {
            let labels = [("node", z.node), ("zone", z.name)];
            for ((_, suffix, help, counter), v) in FIELDS.iter().zip(&z.values) {
                let Some(v) = v else { continue };
                let kind = if *counter { MetricType::Counter } else { MetricType::Gauge };
                out.add(&format!("node_zoneinfo_{suffix}"), help, kind, &labels, *v as f64);
            }
            for (i, v) in z.protection.iter().enumerate() {
                out.gauge_with(
                    &format!("node_zoneinfo_protection_{i}"),
                    &format!("Protection array {i}. field"),
                    &labels,
                    *v as f64,
                );
            }
        }
        Ok(())
    }
}

/// Splits the file into zone blocks (each starts at a line beginning `Node`) and reads the
/// known `key value` lines of each, as node_exporter's procfs library does: the last
/// occurrence of a key in a block wins, unparsable values and unknown keys are skipped, and
/// node-level stats printed inside a node's first zone count for that zone.
fn parse(text: &str) -> Vec<Zone<'_>> {
    let mut zones: Vec<Zone<'_>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("Node") || zones.is_empty() {
            zones.push(Zone { values: vec![None; FIELDS.len()], ..Zone::default() });
        }
        let z = zones.last_mut().expect("pushed above");
        if let Some((node, name)) = node_zone(line) {
            (z.node, z.name) = (node, name);
            continue;
        }
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("protection:") {
            let inner = rest.trim().trim_start_matches('(').trim_end_matches(')');
            if let Ok(p) = inner.split(", ").map(|v| v.trim().parse::<i64>()).collect::<Result<Vec<_>, _>>() {
                z.protection = p;
            }
            continue;
        }
        let mut f = t.split_ascii_whitespace();
        let (Some(key), Some(value)) = (f.next(), f.next()) else { continue };
        if let Some(i) = FIELDS.iter().position(|(k, ..)| *k == key) {
            z.values[i] = value.parse().ok();
        }
    }
    zones
}

/// `Node 0, zone   Normal` → (`0`, `Normal`).
fn node_zone(line: &str) -> Option<(&str, &str)> {
    let (node, rest) = line.strip_prefix("Node ")?.split_once(',')?;
    let name = rest.trim_start().strip_prefix("zone")?.split_ascii_whitespace().next()?;
    node.bytes().all(|b| b.is_ascii_digit()).then_some((node, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks_protection_and_skips_bad_values() {
        let text = "Node 0, zone      DMA\n  per-node stats\n      nr_inactive_anon 10\n  pages free     2949\n        min      x\n        low      3\n        protection: (0, 2877, 7826)\nNode 1, zone   Normal\n        high      4\n";
        let z = parse(text);
        assert_eq!(z.len(), 2);
        assert_eq!((z[0].node, z[0].name, z[1].node, z[1].name), ("0", "DMA", "1", "Normal"));
        let at = |k: &str| FIELDS.iter().position(|f| f.0 == k).unwrap();
        assert_eq!(z[0].values[at("nr_inactive_anon")], Some(10));
        assert_eq!(z[0].values[at("min")], None);
        assert_eq!(z[0].values[at("low")], Some(3));
        assert_eq!(z[0].protection, vec![0, 2877, 7826]);
        assert_eq!(z[1].values[at("high")], Some(4));
        assert!(z[1].protection.is_empty());
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("zoneinfo", &|f| f.starts_with("node_zoneinfo_"));
    }
}
