//! `loadavg`: system load averages from `/proc/loadavg` (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "loadavg",
    default_enabled: true,
    help: "Exposes load average.",
    flags: &[],
    build: |ctx| Ok(Box::new(LoadAvg { path: ctx.paths.proc("loadavg") })),
};

/// Reads `/proc/loadavg` and reports `node_load1`, `node_load5`, `node_load15`.
struct LoadAvg {
    path: PathBuf,
}

impl Collector for LoadAvg {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        let [l1, l5, l15] =
            parse(&text).ok_or_else(|| CollectError::parse(&self.path, "expected three load averages"))?;
        out.gauge("node_load1", "1m load average.", l1);
        out.gauge("node_load5", "5m load average.", l5);
        out.gauge("node_load15", "15m load average.", l15);
        Ok(())
    }
}

/// The first three fields of `/proc/loadavg`.
fn parse(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_ascii_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_loadavg() {
        assert_eq!(super::parse("0.02 0.04 0.05 1/497 11947\n"), Some([0.02, 0.04, 0.05]));
        assert_eq!(super::parse("0.02 x"), None);
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("loadavg", &|f| f.starts_with("node_load"));
    }
}
