//! `softirqs`: softirq counts per CPU and type from `/proc/softirqs` (node_exporter compatible;
//! disabled by default as there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "softirqs",
    default_enabled: false,
    help: "Exposes detailed softirq statistics from /proc/softirqs.",
    flags: &[],
    build: |ctx| Ok(Box::new(Softirqs { path: ctx.paths.proc("softirqs") })),
};

/// The rows node_exporter reports (others, should a kernel add any, are skipped as there).
const TYPES: &[&str] = &["HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU"];

/// Reports `node_softirqs_functions_total{cpu,type}`.
struct Softirqs {
    path: PathBuf,
}

impl Collector for Softirqs {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        for line in text.lines().skip(1) {
            let Some((name, values)) = line.split_once(':') else { continue };
            let Some(kind) = TYPES.iter().find(|t| **t == name.trim()) else { continue };
            for (cpu, v) in values.split_ascii_whitespace().enumerate() {
                let v: u64 =
                    v.parse().map_err(|_| CollectError::parse(&self.path, format!("{name}: {v:?} is not a count")))?;
                out.counter_with(
                    "node_softirqs_functions_total",
                    "Softirq counts per CPU.",
                    &[("cpu", &cpu.to_string()), ("type", kind)],
                    v as f64,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("softirqs", &|f| f.starts_with("node_softirqs_functions_total"));
    }
}
