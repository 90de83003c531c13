//! `rapl`: RAPL energy counters from `/sys/class/powercap` (node_exporter compatible).

use std::collections::HashMap;
use std::io;

use crate::prelude::*;
use crate::sysfs::ATTR_BUF;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "rapl",
    default_enabled: true,
    help: "Exposes various statistics from /sys/class/powercap.",
    flags: &[Flag {
        name: "collector.rapl.enable-zone-label",
        help: "Report all zones as node_rapl_joules_total with a rapl_zone label instead of one metric per zone.",
        kind: FlagKind::Bool(false),
    }],
    build: |ctx| {
        Ok(Box::new(Rapl {
            dir: ctx.paths.sys("class/powercap"),
            zone_label: ctx.bool("collector.rapl.enable-zone-label"),
        }))
    },
};

/// Reports `node_rapl_<zone>_joules_total{index,path}` (or one family with `rapl_zone`).
struct Rapl {
    /// `/sys/class/powercap`.
    dir: PathBuf,
    /// `--collector.rapl.enable-zone-label`.
    zone_label: bool,
}

/// One powercap zone that has a `name` file.
#[derive(Debug, PartialEq)]
struct Zone {
    /// Zone name without its index suffix (`package`, `core`, `dram`).
    name: String,
    /// Index from the name's `-N` suffix, else how often the name was seen before.
    index: u64,
    /// The zone's directory as upstream prints it (sysfs path joined with the entry).
    path: PathBuf,
}

impl Collector for Rapl {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let zones = zones(&self.dir).map_err(|e| match &e {
            CollectError::Io { source, .. }
                if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) =>
            {
                CollectError::NoData
            }
            _ => e,
        })?;
        let mut buf = [0u8; 32];
        let mut metric = String::new();
        let mut help = String::new();
        for z in &zones {
            let file = z.path.join("energy_uj");
            let uj = match read_small(&file, &mut buf) {
                Ok(v) => v,
                // Since CVE-2020-8694 only root may read energy_uj.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(CollectError::NoData),
                Err(e) => return Err(CollectError::io(file, e)),
            };
            let uj: u64 = uj.parse().map_err(|_| CollectError::parse(&file, format!("{uj:?}")))?;
            let joules = uj as f64 / 1_000_000.0;
            let index = z.index.to_string();
            let path = z.path.to_string_lossy();
            if self.zone_label {
                out.counter_with(
                    "node_rapl_joules_total",
                    "Current RAPL value in joules",
                    &[("index", &index), ("path", &path), ("rapl_zone", &z.name)],
                    joules,
                );
            } else {
                metric.clear();
                metric.push_str("node_rapl_");
                sanitize_into(&z.name, &mut metric);
                metric.push_str("_joules_total");
                help.clear();
                help.push_str("Current RAPL ");
                help.push_str(&z.name);
                help.push_str(" value in joules");
                out.counter_with(&metric, &help, &[("index", &index), ("path", &path)], joules);
            }
        }
        Ok(())
    }
}

/// Reads a small attribute, trimmed.
fn read_small<'a>(path: &Path, buf: &'a mut [u8; 32]) -> io::Result<&'a str> {
    use std::io::Read;
    let n = std::fs::File::open(path)?.read(buf)?;
    Ok(std::str::from_utf8(&buf[..n]).unwrap_or("").trim())
}

/// Every entry of the powercap class with a `name` file, in directory order (procfs'
/// `GetRaplZones`). Each zone's `max_energy_range_uj` must parse, as upstream requires.
fn zones(dir: &Path) -> Result<Vec<Zone>, CollectError> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut zones = Vec::new();
    let mut buf = [0u8; ATTR_BUF];
    for entry in list_dir(dir)? {
        let zdir = dir.join(&entry);
        let Ok(raw) = std::fs::read_to_string(zdir.join("name")) else { continue };
        let (index, name) = index_and_name(&seen, raw.trim());
        let max = zdir.join("max_energy_range_uj");
        let text = crate::sysfs::read_attr(&max, &mut buf).map_err(|e| CollectError::io(&max, e))?;
        text.parse::<u64>().map_err(|_| CollectError::parse(&max, format!("{text:?}")))?;
        seen.insert(name.clone(), index + 1);
        zones.push(Zone { name, index, path: zdir });
    }
    Ok(zones)
}

/// Splits `package-0` into (0, `package`); a name without a numeric `-N` suffix gets the
/// number of earlier zones with that name as its index.
fn index_and_name(seen: &HashMap<String, u64>, name: &str) -> (u64, String) {
    let mut parts = name.split('-');
    if let (Some(base), Some(idx), None) = (parts.next(), parts.next(), parts.next()) {
        // Go's strconv.Atoi accepts an optional sign; a negative index never occurs in sysfs.
        if let Ok(i) = idx.parse::<u64>() {
            return (i, base.to_owned());
        }
    }
    (seen.get(name).copied().unwrap_or(0), name.to_owned())
}

/// node_exporter's `SanitizeMetricName`: each leftmost match of `_*[^0-9A-Za-z_]+_*` becomes
/// one `_`.
fn sanitize_into(name: &str, out: &mut String) {
    let invalid = |c: char| !(c.is_ascii_alphanumeric() || c == '_');
    let chars: Vec<char> = name.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j] == '_' {
            j += 1;
        }
        let run_start = j;
        while j < chars.len() && invalid(chars[j]) {
            j += 1;
        }
        if j == run_start {
            // No invalid character after the underscores: no match starts in this run.
            out.extend(&chars[i..j.max(i + 1)]);
            i = j.max(i + 1);
            continue;
        }
        while j < chars.len() && chars[j] == '_' {
            j += 1;
        }
        out.push('_');
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixture_ctx;

    fn sanitize(s: &str) -> String {
        let mut out = String::new();
        sanitize_into(s, &mut out);
        out
    }

    #[test]
    fn sanitizes_like_node_exporter() {
        assert_eq!(sanitize("package"), "package");
        assert_eq!(sanitize("dram_1"), "dram_1");
        assert_eq!(sanitize("a__b"), "a__b");
        assert_eq!(sanitize("a-b"), "a_b");
        assert_eq!(sanitize("a_-_b"), "a_b");
        assert_eq!(sanitize("a__.-__b"), "a_b");
        assert_eq!(sanitize("x:y z"), "x_y_z");
        assert_eq!(sanitize("trailing-"), "trailing_");
        assert_eq!(sanitize("_-_-_"), "__");
    }

    #[test]
    fn index_from_suffix_or_usage_count() {
        let mut seen = HashMap::new();
        assert_eq!(index_and_name(&seen, "package-1"), (1, "package".into()));
        assert_eq!(index_and_name(&seen, "dram"), (0, "dram".into()));
        seen.insert("dram".into(), 1);
        assert_eq!(index_and_name(&seen, "dram"), (1, "dram".into()));
        assert_eq!(index_and_name(&seen, "a-b-1"), (0, "a-b-1".into()));
    }

    #[test]
    fn fixture_zones_in_directory_order() {
        let ctx = fixture_ctx(&[]);
        let dir = ctx.paths.sys("class/powercap");
        let z = zones(&dir).unwrap();
        let got: Vec<_> = z.iter().map(|z| (z.name.as_str(), z.index)).collect();
        assert_eq!(got, [("package", 0), ("core", 0)]);
        assert_eq!(z[0].path, dir.join("intel-rapl:0"));
    }

    #[test]
    fn zone_label_mode_uses_one_family() {
        let ctx = fixture_ctx(&[]);
        let c = Rapl { dir: ctx.paths.sys("class/powercap"), zone_label: true };
        let mut sink = Sink::new();
        c.collect(&mut sink).unwrap();
        let fams: Vec<_> = sink.families().iter().map(|f| (f.name.as_str(), f.samples.len())).collect();
        assert_eq!(fams, [("node_rapl_joules_total", 2)]);
    }
}
