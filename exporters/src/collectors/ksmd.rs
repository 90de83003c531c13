//! `ksmd`: kernel same-page merging statistics from `/sys/kernel/mm/ksm` (node_exporter
//! compatible; disabled by default as there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "ksmd",
    default_enabled: false,
    help: "Exposes kernel and system statistics from /sys/kernel/mm/ksm.",
    flags: &[],
    build: |ctx| Ok(Box::new(Ksmd { dir: ctx.paths.sys("kernel/mm/ksm") })),
};

/// (file, metric suffix, HELP, is counter, divisor) in output order.
const FILES: &[(&str, &str, &str, bool, f64)] = &[
    ("full_scans", "full_scans_total", "How many times all mergeable areas have been scanned.", true, 1.0),
    (
        "general_profit",
        "general_profit_bytes",
        "How effective is KSM. ksm_saved_pages * sizeof(page) - (all_rmap_items) * sizeof(rmap_item)",
        false,
        1.0,
    ),
    (
        "merge_across_nodes",
        "merge_across_nodes",
        "Specifies if pages from different NUMA nodes can be merged.",
        false,
        1.0,
    ),
    ("pages_shared", "pages_shared", "How many shared pages are being used.", false, 1.0),
    ("pages_sharing", "pages_sharing", "How many more sites are sharing them i.e. how much saved.", false, 1.0),
    ("pages_to_scan", "pages_to_scan", "How many pages to scan before ksmd goes to sleep.", false, 1.0),
    ("pages_unshared", "pages_unshared", "How many pages unique but repeatedly checked for merging.", false, 1.0),
    ("pages_volatile", "pages_volatile", "How many pages changing too fast to be placed in a tree.", false, 1.0),
    ("run", "run", "The status of ksmd. stopped = 0, running = 1", false, 1.0),
    ("sleep_millisecs", "sleep_seconds", "How many seconds ksmd should sleep before next scan.", false, 1000.0),
];

/// Reports one series per `ksm` file; a file the kernel lacks (older kernels have no
/// `general_profit`) is skipped.
struct Ksmd {
    dir: PathBuf,
}

impl Collector for Ksmd {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let mut found = false;
        for &(file, suffix, help, counter, div) in FILES {
            // `general_profit` is signed (it goes negative when KSM costs more than it saves).
            let v = match read_i64(&self.dir.join(file)) {
                Ok(v) => v as f64 / div,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            found = true;
            let name = format!("node_ksmd_{suffix}");
            if counter { out.counter(&name, help, v) } else { out.gauge(&name, help, v) }
        }
        if found { Ok(()) } else { Err(CollectError::NoData) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("ksmd", &|f| f.starts_with("node_ksmd_"));
    }
}
