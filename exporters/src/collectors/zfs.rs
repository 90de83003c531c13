//! `zfs`: ZFS kstats from `/proc/spl/kstat/zfs/` (node_exporter compatible).
//!
//! * Subsystem files (`arcstats`, `dmu_tx`, ...): each 64-bit kstat becomes an untyped
//!   `node_zfs_<subsystem>_<name>` with HELP `kstat.zfs.misc.<file>.<name>`.
//! * Per pool (`<pool>/io`, `<pool>/objset-*`, `<pool>/state`): `node_zfs_zpool_*`,
//!   `node_zfs_zpool_dataset_*` and `node_zfs_zpool_state`.

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "zfs",
    default_enabled: true,
    help: "Exposes ZFS performance statistics.",
    flags: &[],
    build: |ctx| Ok(Box::new(Zfs { base: ctx.paths.proc("spl/kstat/zfs") })),
};

/// Metric subsystem and kstat file of each exported subsystem.
const SUBSYSTEMS: [(&str, &str); 11] = [
    ("zfs_abd", "abdstats"),
    ("zfs_arc", "arcstats"),
    ("zfs_dbuf", "dbufstats"),
    ("zfs_dmu_tx", "dmu_tx"),
    ("zfs_dnode", "dnodestats"),
    ("zfs_fm", "fm"),
    ("zfs_vdev_cache", "vdev_cache_stats"),
    ("zfs_vdev_mirror", "vdev_mirror_stats"),
    ("zfs_xuio", "xuio_stats"),
    ("zfs_zfetch", "zfetchstats"),
    ("zfs_zil", "zil"),
];

/// Pool states, each reported as 0 or 1.
const POOL_STATES: [&str; 7] = ["online", "degraded", "faulted", "offline", "removed", "unavail", "suspended"];

/// Reads `/proc/spl/kstat/zfs`.
struct Zfs {
    base: PathBuf,
}

impl Collector for Zfs {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        if std::fs::metadata(&self.base).is_err() {
            return Err(CollectError::NoData);
        }
        for (subsystem, file) in SUBSYSTEMS {
            let path = self.base.join(file);
            // Files appear with ZFS features; absent (or unreadable) ones are skipped.
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let kstats = parse_kstats(&text).map_err(|m| CollectError::parse(&path, m))?;
            for (name, v) in kstats {
                out.untyped_with(
                    &format!("node_{subsystem}_{}", metric_name(name)),
                    &format!("kstat.zfs.misc.{file}.{name}"),
                    &[],
                    v,
                );
            }
        }
        self.pools(out)
    }
}

impl Zfs {
    /// Per-pool I/O, dataset and state metrics.
    fn pools(&self, out: &mut Sink) -> Result<(), CollectError> {
        let pools: Vec<String> = list_dir(&self.base)?;
        // A pool's files can vanish while it is exported: node_exporter then fails the scrape.
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|_| CollectError::Other("ZFS / ZFS statistics are not available".into()))
        };
        let exists = |p: &Path| p.is_file();
        for pool in &pools {
            let path = self.base.join(pool).join("io");
            if !exists(&path) {
                continue;
            }
            let text = read(&path)?;
            for (field, v) in parse_pool_io(&text).map_err(|m| CollectError::parse(&path, m))? {
                out.untyped_with(
                    &format!("node_zfs_zpool_{}", metric_name(field)),
                    &format!("kstat.zfs.misc.io.{field}"),
                    &[("zpool", pool)],
                    v as f64,
                );
            }
        }
        for pool in &pools {
            let dir = self.base.join(pool);
            let Ok(files) = list_dir(&dir) else { continue };
            for file in files.iter().filter(|f| f.starts_with("objset-")) {
                let path = dir.join(file);
                let text = read(&path)?;
                let objset = parse_objset(&text, pool).map_err(|m| CollectError::parse(&path, m))?;
                for (zpool, dataset, name, v) in objset {
                    out.untyped_with(
                        &format!("node_zfs_zpool_dataset_{}", metric_name(name)),
                        &format!("kstat.zfs.misc.objset.{name}"),
                        &[("zpool", zpool), ("dataset", dataset)],
                        v as f64,
                    );
                }
            }
        }
        for pool in &pools {
            let path = self.base.join(pool).join("state");
            if !exists(&path) {
                continue;
            }
            let state = read(&path)?;
            let state = state.lines().next().unwrap_or("").to_lowercase();
            for s in POOL_STATES {
                out.gauge_with(
                    "node_zfs_zpool_state",
                    "kstat.zfs.misc.state",
                    &[("zpool", pool), ("state", s)],
                    f64::from(u8::from(state == s)),
                );
            }
        }
        Ok(())
    }
}

/// The metric name part of a kstat: `-` becomes `_`.
fn metric_name(kstat: &str) -> String {
    kstat.replace('-', "_")
}

/// Parses a kstat "named" file: after the `name type data` header, rows of 64-bit integers
/// (type 3 signed, 4 unsigned) are returned; other types are skipped.
fn parse_kstats(text: &str) -> Result<Vec<(&str, f64)>, String> {
    let mut out = Vec::new();
    let mut started = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if !started {
            started = f == ["name", "type", "data"];
            continue;
        }
        let [name, kind, value, ..] = f[..] else { continue };
        let v = match kind {
            "4" => value.parse::<u64>().map(|v| v as f64).map_err(|e| e.to_string()),
            "3" => value.parse::<i64>().map(|v| v as f64).map_err(|e| e.to_string()),
            _ => continue,
        };
        out.push((name, v.map_err(|e| format!("could not parse integer value for {name:?}: {e}"))?));
    }
    if !started {
        return Err("did not find the kstat header".into());
    }
    Ok(out)
}

/// Parses a pool's `io` kstat: a header row starting with `nread` (12+ columns) followed by
/// rows of unsigned values, paired with the header's column names.
fn parse_pool_io(text: &str) -> Result<Vec<(&str, u64)>, String> {
    let mut header: Option<Vec<&str>> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(h) = &header else {
            if f.len() >= 12 && f[0] == "nread" {
                header = Some(f);
            }
            continue;
        };
        for (i, name) in h.iter().enumerate() {
            let s = f.get(i).ok_or_else(|| format!("missing value for {name:?}"))?;
            out.push((*name, s.parse().map_err(|e| format!("could not parse integer value for {name:?}: {e}"))?));
        }
    }
    Ok(out)
}

/// Parses an `objset-*` kstat into (pool, dataset, kstat, value) for its unsigned 64-bit rows.
/// The pool and dataset come from the `dataset_name` row and apply to the rows after it.
fn parse_objset<'a>(text: &'a str, pool: &'a str) -> Result<Vec<(&'a str, &'a str, &'a str, u64)>, String> {
    let (mut zpool, mut dataset) = ("", "");
    let mut started = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if !started {
            started = f == ["name", "type", "data"];
            continue;
        }
        let [name, kind, value, ..] = f[..] else { continue };
        if name == "dataset_name" {
            zpool = pool;
            // node_exporter takes the line from the first occurrence of the value's first word
            // (so names with spaces are kept whole).
            dataset = line.find(value).map_or(value, |i| &line[i..]);
            continue;
        }
        if kind == "4" {
            let v = value.parse().map_err(|e| format!("could not parse integer value for {name:?}: {e}"))?;
            out.push((zpool, dataset, name, v));
        }
    }
    if !started {
        return Err(format!("did not parse a single {zpool} {dataset} metric"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_kstats() {
        let t = "6 1 0x01 91 4368 5266997922 97951858082072\nname type data\nhits 4 8772612\n\
                 c_min-x 3 -5\nstr 7 abc\nshort 4\n";
        assert_eq!(parse_kstats(t).unwrap(), [("hits", 8772612.0), ("c_min-x", -5.0)]);
        assert_eq!(metric_name("c_min-x"), "c_min_x");
        assert!(parse_kstats("no header\n").is_err());
        assert!(parse_kstats("name type data\nhits 4 x\n").is_err());
    }

    #[test]
    fn parses_pool_io() {
        let t = "12 3 0x00 1 80 79205351707403 395818011156865\n\
                 nread nwritten reads writes wtime wlentime wupdate rtime rlentime rupdate wcnt rcnt\n\
                 1 2 3 4 5 6 7 8 9 10 11 12\n";
        let io = parse_pool_io(t).unwrap();
        assert_eq!(io.len(), 12);
        assert_eq!(io[0], ("nread", 1));
        assert_eq!(io[11], ("rcnt", 12));
        assert!(parse_pool_io("nread a b c d e f g h i j k\n1 2\n").is_err());
    }

    #[test]
    fn parses_objset_with_dataset_name() {
        let t = "24 1 0x01 7 2160 221611904716 7145015038451\nname type data\n\
                 dataset_name 7 pool1/dataset 1\nwrites 4 4\nnwritten 4 12302\n";
        let o = parse_objset(t, "pool1").unwrap();
        assert_eq!(o, [("pool1", "pool1/dataset 1", "writes", 4), ("pool1", "pool1/dataset 1", "nwritten", 12302)]);
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("zfs", &|f| f.starts_with("node_zfs_"));
    }
}
