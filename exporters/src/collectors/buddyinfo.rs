//! `buddyinfo`: free memory blocks per order from `/proc/buddyinfo` (node_exporter compatible;
//! disabled by default as there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "buddyinfo",
    default_enabled: false,
    help: "Exposes statistics of memory fragments as reported by /proc/buddyinfo.",
    flags: &[],
    build: |ctx| Ok(Box::new(Buddyinfo { path: ctx.paths.proc("buddyinfo") })),
};

/// Reports `node_buddyinfo_blocks{node,size,zone}`.
struct Buddyinfo {
    path: PathBuf,
}

/// One `Node N, zone Z  c0 c1 …` line.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    node: &'a str,
    zone: &'a str,
    counts: Vec<f64>,
}

impl Collector for Buddyinfo {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        let zones = parse(&text).map_err(|m| CollectError::parse(&self.path, m))?;
        for z in zones {
            for (size, count) in z.counts.iter().enumerate() {
                out.gauge_with(
                    "node_buddyinfo_blocks",
                    "Count of free blocks according to size.",
                    &[("node", z.node), ("size", &size.to_string()), ("zone", z.zone)],
                    *count,
                );
            }
        }
        Ok(())
    }
}

/// Parses `/proc/buddyinfo`; every zone must list the same number of orders.
fn parse(text: &str) -> Result<Vec<Line<'_>>, String> {
    let mut zones: Vec<Line<'_>> = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 4 || f[0] != "Node" || f[2] != "zone" {
            return Err(format!("line {}: expected `Node N, zone NAME counts…`, got {line:?}", i + 1));
        }
        let counts = f[4..]
            .iter()
            .map(|c| c.parse::<f64>().map_err(|_| format!("line {}: {c:?} is not a count", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        if zones.first().is_some_and(|z| z.counts.len() != counts.len()) {
            return Err(format!(
                "line {}: {} orders, earlier lines have {}",
                i + 1,
                counts.len(),
                zones[0].counts.len()
            ));
        }
        zones.push(Line { node: f[1].trim_end_matches(','), zone: f[3].trim_end_matches(','), counts });
    }
    Ok(zones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zones_and_rejects_ragged_or_garbled_lines() {
        let z = parse("Node 0, zone      DMA      1      0\nNode 1, zone   Normal   4381   1093\n").unwrap();
        assert_eq!(z[1], Line { node: "1", zone: "Normal", counts: vec![4381.0, 1093.0] });
        assert!(parse("Node 0, zone DMA 1 0\nNode 0, zone DMA32 1\n").unwrap_err().contains("line 2"));
        assert!(parse("Node 0, zone DMA x\n").unwrap_err().contains("not a count"));
        assert!(parse("garbage\n").is_err());
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("buddyinfo", &|f| f.starts_with("node_buddyinfo_"));
    }
}
