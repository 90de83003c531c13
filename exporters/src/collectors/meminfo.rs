//! `meminfo`: memory statistics from `/proc/meminfo` (node_exporter compatible).
//!
//! Current upstream exposes a fixed set of fields (those procfs' `Meminfo` knows); fields the
//! kernel adds later are not reported until upstream names them.

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "meminfo",
    default_enabled: true,
    help: "Exposes memory statistics.",
    flags: &[],
    build: |ctx| Ok(Box::new(MemInfo { path: ctx.paths.proc("meminfo") })),
};

/// Metric name suffixes (after `node_memory_`) that current upstream reports.
const KNOWN: &[&str] = &[
    "Active_bytes",
    "Active_anon_bytes",
    "Active_file_bytes",
    "AnonHugePages_bytes",
    "AnonPages_bytes",
    "Bounce_bytes",
    "Buffers_bytes",
    "Cached_bytes",
    "CmaFree_bytes",
    "CmaTotal_bytes",
    "CommitLimit_bytes",
    "Committed_AS_bytes",
    "DirectMap1G_bytes",
    "DirectMap2M_bytes",
    "DirectMap4k_bytes",
    "Dirty_bytes",
    "HardwareCorrupted_bytes",
    "Hugepagesize_bytes",
    "Inactive_bytes",
    "Inactive_anon_bytes",
    "Inactive_file_bytes",
    "KernelStack_bytes",
    "Mapped_bytes",
    "MemAvailable_bytes",
    "MemFree_bytes",
    "MemTotal_bytes",
    "Mlocked_bytes",
    "NFS_Unstable_bytes",
    "PageTables_bytes",
    "Percpu_bytes",
    "SReclaimable_bytes",
    "SUnreclaim_bytes",
    "Shmem_bytes",
    "ShmemHugePages_bytes",
    "ShmemPmdMapped_bytes",
    "Slab_bytes",
    "SwapCached_bytes",
    "SwapFree_bytes",
    "SwapTotal_bytes",
    "Unevictable_bytes",
    "VmallocChunk_bytes",
    "VmallocTotal_bytes",
    "VmallocUsed_bytes",
    "Writeback_bytes",
    "WritebackTmp_bytes",
    "Zswap_bytes",
    "Zswapped_bytes",
    "HugePages_Free",
    "HugePages_Rsvd",
    "HugePages_Surp",
    "HugePages_Total",
];

/// Reports `node_memory_<field>[_bytes]` gauges.
struct MemInfo {
    path: PathBuf,
}

/// `(metric suffix, value)` for every known field of `/proc/meminfo` text.
fn parse(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, rest) = line.split_once(':').ok_or_else(|| format!("malformed line {line:?}"))?;
        let mut f = rest.split_ascii_whitespace();
        let value: u64 =
            f.next().ok_or_else(|| format!("{key}: missing value"))?.parse().map_err(|e| format!("{key}: {e}"))?;
        let key = key.replace("(anon)", "_anon").replace("(file)", "_file");
        let (name, value) = match f.next() {
            Some("kB") => (format!("{key}_bytes"), value as f64 * 1024.0),
            Some(unit) => return Err(format!("{key}: unknown unit {unit:?}")),
            None => (key, value as f64),
        };
        if KNOWN.contains(&name.as_str()) {
            out.push((name, value));
        }
    }
    Ok(out)
}

impl Collector for MemInfo {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        let fields = parse(&text).map_err(|e| CollectError::parse(&self.path, e))?;
        let mut name = String::new();
        let mut help = String::new();
        for (field, value) in fields {
            name.clear();
            name.push_str("node_memory_");
            name.push_str(&field);
            help.clear();
            help.push_str("Memory information field ");
            help.push_str(&field);
            help.push('.');
            out.gauge(&name, &help, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_renames_parenthesized_fields() {
        let f = parse("MemTotal:  3 kB\nActive(anon): 1 kB\nHugePages_Total: 2\nKReclaimable: 5 kB\n").unwrap();
        assert_eq!(
            f,
            vec![
                ("MemTotal_bytes".to_owned(), 3072.0),
                ("Active_anon_bytes".to_owned(), 1024.0),
                ("HugePages_Total".to_owned(), 2.0)
            ]
        );
        assert!(parse("MemTotal 3 kB\n").is_err());
        assert!(parse("MemTotal: x kB\n").unwrap_err().contains("MemTotal"));
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("meminfo", &|f| {
            f.strip_prefix("node_memory_").is_some_and(|rest| !rest.starts_with("numa_"))
        });
    }
}
