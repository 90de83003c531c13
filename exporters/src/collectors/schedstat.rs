//! `schedstat`: per-CPU scheduler statistics from `/proc/schedstat` (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "schedstat",
    default_enabled: true,
    help: "Exposes task scheduler statistics from /proc/schedstat.",
    flags: &[],
    build: |ctx| Ok(Box::new(SchedStat { path: ctx.paths.proc("schedstat") })),
};

/// Reports running/waiting seconds and timeslices per CPU.
struct SchedStat {
    path: PathBuf,
}

/// `(cpu, running ns, waiting ns, timeslices)` of each `cpuN` line.
fn parse(text: &str) -> Result<Vec<(&str, u64, u64, u64)>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(cpu) = f.next().and_then(|c| c.strip_prefix("cpu")) else { continue };
        let nums: Vec<u64> = f.map(str::parse).collect::<Result<_, _>>().map_err(|e| format!("cpu{cpu}: {e}"))?;
        if nums.len() < 9 {
            return Err(format!("cpu{cpu}: expected 9 fields, got {}", nums.len()));
        }
        out.push((cpu, nums[6], nums[7], nums[8]));
    }
    Ok(out)
}

impl Collector for SchedStat {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string_or_no_data(&self.path)?;
        for (cpu, running, waiting, slices) in parse(&text).map_err(|e| CollectError::parse(&self.path, e))? {
            let l = [("cpu", cpu)];
            out.counter_with(
                "node_schedstat_running_seconds_total",
                "Number of seconds CPU spent running a process.",
                &l,
                running as f64 / 1e9,
            );
            out.counter_with(
                "node_schedstat_waiting_seconds_total",
                "Number of seconds spent by processing waiting for this CPU.",
                &l,
                waiting as f64 / 1e9,
            );
            out.counter_with(
                "node_schedstat_timeslices_total",
                "Number of timeslices executed by CPU.",
                &l,
                slices as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_cpu_lines_only() {
        let t = "version 15\ntimestamp 1\ncpu0 1 0 3 4 5 6 2000000000 7 8\ndomain0 0 1 2\n";
        assert_eq!(super::parse(t).unwrap(), vec![("0", 2_000_000_000, 7, 8)]);
        assert!(super::parse("cpu0 1 2\n").is_err());
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("schedstat", &|f| f.starts_with("node_schedstat_"));
    }
}
