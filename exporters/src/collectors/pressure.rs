//! `pressure`: pressure stall information from `/proc/pressure` (node_exporter compatible).

use std::io;

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "pressure",
    default_enabled: true,
    help: "Exposes pressure stall statistics from /proc/pressure/.",
    flags: &[],
    build: |ctx| Ok(Box::new(Pressure { dir: ctx.paths.proc("pressure") })),
};

/// Reports `node_pressure_*_seconds_total` from the `some`/`full` totals (microseconds).
struct Pressure {
    dir: PathBuf,
}

/// `(resource, line kind, metric, help)` in the order upstream emits them.
const METRICS: &[(&str, &str, &str, &str)] = &[
    (
        "cpu",
        "some",
        "node_pressure_cpu_waiting_seconds_total",
        "Total time in seconds that processes have waited for CPU time",
    ),
    (
        "io",
        "some",
        "node_pressure_io_waiting_seconds_total",
        "Total time in seconds that processes have waited due to IO congestion",
    ),
    (
        "io",
        "full",
        "node_pressure_io_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IO congestion",
    ),
    (
        "memory",
        "some",
        "node_pressure_memory_waiting_seconds_total",
        "Total time in seconds that processes have waited for memory",
    ),
    (
        "memory",
        "full",
        "node_pressure_memory_stalled_seconds_total",
        "Total time in seconds no process could make progress due to memory congestion",
    ),
    (
        "irq",
        "full",
        "node_pressure_irq_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IRQ congestion",
    ),
];

/// The `total=` value (µs) of the `kind` line (`some`/`full`) of a PSI file.
fn total(text: &str, kind: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split_ascii_whitespace().next() == Some(kind))?;
    line.split_ascii_whitespace().find_map(|kv| kv.strip_prefix("total="))?.parse().ok()
}

impl Collector for Pressure {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        for res in ["cpu", "io", "memory", "irq"] {
            let path = self.dir.join(res);
            let mut raw = Vec::new();
            let text = match agent_core::heldfile::read_to_end(&path, &mut raw) {
                Ok(()) => String::from_utf8_lossy(&raw),
                // IRQ pressure needs Linux 6.1; the others 4.20 with CONFIG_PSI.
                Err(e) if e.kind() == io::ErrorKind::NotFound && res == "irq" => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CollectError::NoData),
                // `psi=0` on the kernel command line: the files exist but refuse reads.
                Err(e) if e.raw_os_error() == Some(95) => return Err(CollectError::NoData),
                Err(e) => return Err(CollectError::io(path, e)),
            };
            for (_, kind, metric, help) in METRICS.iter().filter(|m| m.0 == res) {
                let t = total(&text, kind)
                    .ok_or_else(|| CollectError::parse(&path, format!("no `{kind}` line with a total")))?;
                out.counter(metric, help, t as f64 / 1000.0 / 1000.0);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_totals() {
        let t =
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=14036781\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n";
        assert_eq!(super::total(t, "some"), Some(14_036_781));
        assert_eq!(super::total(t, "full"), Some(7));
        assert_eq!(super::total("some avg10=1\n", "some"), None);
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("pressure", &|f| f.starts_with("node_pressure_"));
    }
}
