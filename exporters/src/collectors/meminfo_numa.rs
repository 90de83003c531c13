//! `meminfo_numa`: memory statistics per NUMA node from
//! `/sys/devices/system/node/node*/{meminfo,numastat}` (node_exporter compatible; disabled by
//! default as there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "meminfo_numa",
    default_enabled: false,
    help: "Exposes memory statistics from /sys/devices/system/node/node[0-9]*/meminfo, numastat.",
    flags: &[],
    build: |ctx| Ok(Box::new(MeminfoNuma { dir: ctx.paths.sys("devices/system/node") })),
};

/// Reports `node_memory_numa_<field>{node}` gauges and `node_memory_numa_<stat>_total{node}`
/// counters.
struct MeminfoNuma {
    dir: PathBuf,
}

impl Collector for MeminfoNuma {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let nodes = list_dir(&self.dir)?;
        let nodes = nodes
            .iter()
            .filter_map(|n| Some((n, n.strip_prefix("node")?)))
            .filter(|(_, num)| num.bytes().next().is_some_and(|b| b.is_ascii_digit()));
        for (dir, num) in nodes {
            let path = self.dir.join(dir).join("meminfo");
            let text = read_string(&path)?;
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let (node, field, value) = parse_meminfo_line(line).map_err(|m| CollectError::parse(&path, m))?;
                let name = format!("node_memory_numa_{field}");
                out.gauge_with(&name, &format!("Memory information field {field}."), &[("node", node)], value);
            }
            let path = self.dir.join(dir).join("numastat");
            let text = read_string(&path)?;
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let parse = || {
                    let mut f = line.split_ascii_whitespace();
                    let (stat, v, None) = (f.next()?, f.next()?, f.next()) else { return None };
                    Some((stat, v.parse::<f64>().ok()?))
                };
                let (stat, v) = parse()
                    .ok_or_else(|| CollectError::parse(&path, format!("expected `name value`, got {line:?}")))?;
                let name = format!("node_memory_numa_{stat}_total");
                out.counter_with(&name, &format!("Memory information field {stat}_total."), &[("node", num)], v);
            }
        }
        Ok(())
    }
}

/// `Node 0 Active(anon):  690340 kB` → (`0`, `Active_anon`, bytes).
fn parse_meminfo_line(line: &str) -> Result<(&str, String, f64), String> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() < 4 {
        return Err(format!("expected `Node N Field: value [kB]`, got {line:?}"));
    }
    let mut v: f64 = f[3].parse().map_err(|_| format!("invalid value in {line:?}"))?;
    match f.len() {
        4 => {}
        5 if f[4] == "kB" => v *= 1024.0,
        _ => return Err(format!("invalid line {line:?}")),
    }
    // `Active(anon):` → `Active_anon`.
    let field = f[2].trim_end_matches(':').replace('(', "_").replace(')', "");
    Ok((f[1], field, v))
}

#[cfg(test)]
mod tests {
    use super::parse_meminfo_line;

    #[test]
    fn parses_fields_with_and_without_units() {
        assert_eq!(parse_meminfo_line("Node 1 Active(anon):  4 kB").unwrap(), ("1", "Active_anon".to_owned(), 4096.0));
        assert_eq!(
            parse_meminfo_line("Node 0 HugePages_Total:     0").unwrap(),
            ("0", "HugePages_Total".to_owned(), 0.0)
        );
        assert!(parse_meminfo_line("Node 0 MemFree: 1 MB").is_err());
        assert!(parse_meminfo_line("Node 0 MemFree:").is_err());
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("meminfo_numa", &|f| f.starts_with("node_memory_numa_"));
    }
}
