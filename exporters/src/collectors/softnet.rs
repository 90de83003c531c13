//! `softnet`: per-CPU packet processing statistics from `/proc/net/softnet_stat`
//! (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "softnet",
    default_enabled: true,
    help: "Exposes statistics from /proc/net/softnet_stat.",
    flags: &[],
    build: |ctx| Ok(Box::new(Softnet { path: ctx.paths.proc("net/softnet_stat") })),
};

/// Reports `node_softnet_*` per CPU.
struct Softnet {
    path: PathBuf,
}

/// One line of `softnet_stat` (hex columns).
#[derive(Debug, PartialEq, Eq)]
struct Line {
    cpu: u64,
    processed: u64,
    dropped: u64,
    squeezed: u64,
    collision: u64,
    rps: u64,
    flow_limit: u64,
    backlog: u64,
}

/// Parses `softnet_stat`; the CPU is column 13 where the kernel prints it, else the line number.
fn parse(text: &str) -> Result<Vec<Line>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<u64> = line
            .split_ascii_whitespace()
            .map(|c| u64::from_str_radix(c, 16))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        if cols.len() < 9 {
            return Err(format!("line {}: expected at least 9 columns, got {}", i + 1, cols.len()));
        }
        let at = |n: usize| cols.get(n).copied().unwrap_or(0);
        out.push(Line {
            cpu: if cols.len() >= 13 { cols[12] } else { i as u64 },
            processed: cols[0],
            dropped: cols[1],
            squeezed: cols[2],
            collision: cols[8],
            rps: at(9),
            flow_limit: at(10),
            backlog: at(11),
        });
    }
    Ok(out)
}

impl Collector for Softnet {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        let mut cpu = String::new();
        for l in parse(&text).map_err(|e| CollectError::parse(&self.path, e))? {
            cpu.clear();
            cpu.push_str(&l.cpu.to_string());
            let lab = [("cpu", cpu.as_str())];
            out.counter_with("node_softnet_processed_total", "Number of processed packets", &lab, l.processed as f64);
            out.counter_with("node_softnet_dropped_total", "Number of dropped packets", &lab, l.dropped as f64);
            out.counter_with(
                "node_softnet_times_squeezed_total",
                "Number of times processing packets ran out of quota",
                &lab,
                l.squeezed as f64,
            );
            out.counter_with(
                "node_softnet_cpu_collision_total",
                "Number of collision occur while obtaining device lock while transmitting",
                &lab,
                l.collision as f64,
            );
            out.counter_with(
                "node_softnet_received_rps_total",
                "Number of times cpu woken up received_rps",
                &lab,
                l.rps as f64,
            );
            out.counter_with(
                "node_softnet_flow_limit_count_total",
                "Number of times flow limit has been reached",
                &lab,
                l.flow_limit as f64,
            );
            out.gauge_with("node_softnet_backlog_len", "Softnet backlog status", &lab, l.backlog as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_cpu_column_when_present() {
        let t = "00000010 00000001 00000002 0 0 0 0 0 00000003 00000004 00000005 00000006 00000007\n";
        let l = &parse(t).unwrap()[0];
        assert_eq!((l.cpu, l.processed, l.collision, l.backlog), (7, 16, 3, 6));
        assert_eq!(parse("1 2 3 0 0 0 0 0 0\n1 2 3 0 0 0 0 0 0\n").unwrap()[1].cpu, 1);
        assert!(parse("zz 1\n").is_err());
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("softnet", &|f| f.starts_with("node_softnet_"));
    }
}
