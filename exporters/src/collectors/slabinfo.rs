//! `slabinfo`: kernel slab allocator caches from `/proc/slabinfo` (node_exporter compatible;
//! disabled by default as there; the file is readable by root only).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "slabinfo",
    default_enabled: false,
    help: "Exposes slab statistics from `/proc/slabinfo`.",
    flags: &[
        Flag {
            name: "collector.slabinfo.slabs-include",
            help: "Regexp of slabs to include in slabinfo collector.",
            kind: FlagKind::Str(".*"),
        },
        Flag {
            name: "collector.slabinfo.slabs-exclude",
            help: "Regexp of slabs to exclude in slabinfo collector.",
            kind: FlagKind::Str(""),
        },
    ],
    build: |ctx| {
        // Unlike the device filters, both may be set (the include has a default).
        let filter = DeviceFilter {
            exclude: ctx.regex("collector.slabinfo.slabs-exclude")?,
            include: ctx.regex("collector.slabinfo.slabs-include")?,
        };
        Ok(Box::new(Slabinfo { path: ctx.paths.proc("slabinfo"), filter }))
    },
};

/// (metric suffix, HELP) for the five numeric columns after the name, in file order.
const COLUMNS: [(&str, &str); 5] = [
    ("active_objects", "The number of objects that are currently active (i.e., in use)."),
    ("objects", "The total number of allocated objects (i.e., objects that are both in use and not in use)."),
    ("object_size_bytes", "The size of objects in this slab, in bytes."),
    ("objects_per_slab", "The number of objects stored in each slab."),
    ("pages_per_slab", "The number of pages allocated for each slab."),
];

/// Reports `node_slabinfo_*{slab}`.
struct Slabinfo {
    path: PathBuf,
    filter: DeviceFilter,
}

impl Collector for Slabinfo {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        for line in text.lines().filter(|l| !l.starts_with("slabinfo") && !l.starts_with('#') && !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            if f.len() < 6 {
                return Err(CollectError::parse(&self.path, format!("expected a name and five numbers, got {line:?}")));
            }
            if self.filter.ignored(f[0]) {
                continue;
            }
            for ((suffix, help), v) in COLUMNS.iter().zip(&f[1..6]) {
                let v: i64 = v
                    .parse()
                    .map_err(|_| CollectError::parse(&self.path, format!("{v:?} is not a number in {line:?}")))?;
                out.gauge_with(&format!("node_slabinfo_{suffix}"), help, &[("slab", f[0])], v as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("slabinfo", &|f| f.starts_with("node_slabinfo_"));
    }
}
