//! `stat`: kernel and system statistics from `/proc/stat` (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "stat",
    default_enabled: true,
    help: "Exposes various statistics from /proc/stat. This includes boot time, forks and interrupts.",
    flags: &[Flag {
        name: "collector.stat.softirq",
        help: "Export softirq calls per vector.",
        kind: FlagKind::Bool(false),
    }],
    build: |ctx| Ok(Box::new(Stat { path: ctx.paths.proc("stat"), softirq: ctx.bool("collector.stat.softirq") })),
};

/// Softirq vector names in `/proc/stat` column order.
const SOFTIRQ_VECTORS: [&str; 10] =
    ["hi", "timer", "net_tx", "net_rx", "block", "block_iopoll", "tasklet", "sched", "hrtimer", "rcu"];

/// Reports boot time, context switches, forks, interrupts, runnable/blocked processes.
struct Stat {
    path: PathBuf,
    softirq: bool,
}

/// The `/proc/stat` values this collector reports.
#[derive(Debug, Default, PartialEq)]
struct ProcStat {
    intr: u64,
    ctxt: u64,
    btime: u64,
    processes: u64,
    running: u64,
    blocked: u64,
    softirq: Vec<u64>,
}

/// Parses the non-CPU lines of `/proc/stat`.
fn parse(text: &str) -> Result<ProcStat, String> {
    let mut s = ProcStat::default();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(key) = f.next() else { continue };
        let first = || -> Result<u64, String> {
            line.split_ascii_whitespace()
                .nth(1)
                .ok_or_else(|| format!("{key}: missing value"))?
                .parse()
                .map_err(|e| format!("{key}: {e}"))
        };
        match key {
            "intr" => s.intr = first()?,
            "ctxt" => s.ctxt = first()?,
            "btime" => s.btime = first()?,
            "processes" => s.processes = first()?,
            "procs_running" => s.running = first()?,
            "procs_blocked" => s.blocked = first()?,
            "softirq" => {
                s.softirq = f.skip(1).map(str::parse).collect::<Result<_, _>>().map_err(|e| format!("softirq: {e}"))?;
            }
            _ => {}
        }
    }
    Ok(s)
}

impl Collector for Stat {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        let s = parse(&text).map_err(|e| CollectError::parse(&self.path, e))?;
        out.counter("node_intr_total", "Total number of interrupts serviced.", s.intr as f64);
        out.counter("node_context_switches_total", "Total number of context switches.", s.ctxt as f64);
        out.counter("node_forks_total", "Total number of forks.", s.processes as f64);
        out.gauge("node_boot_time_seconds", "Node boot time, in unixtime.", s.btime as f64);
        out.gauge("node_procs_running", "Number of processes in runnable state.", s.running as f64);
        out.gauge("node_procs_blocked", "Number of processes blocked waiting for I/O to complete.", s.blocked as f64);
        if self.softirq {
            for (vector, v) in SOFTIRQ_VECTORS.iter().zip(&s.softirq) {
                out.counter_with("node_softirqs_total", "Number of softirq calls.", &[("vector", vector)], *v as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let s = parse("cpu  1 2 3\nintr 10 1 2\nctxt 5\nbtime 100\nprocesses 7\nprocs_running 2\nprocs_blocked 1\nsoftirq 9 1 2 3\n")
            .unwrap();
        assert_eq!(
            s,
            ProcStat { intr: 10, ctxt: 5, btime: 100, processes: 7, running: 2, blocked: 1, softirq: vec![1, 2, 3] }
        );
        assert!(parse("ctxt x\n").unwrap_err().contains("ctxt"));
    }

    #[test]
    fn matches_upstream_e2e() {
        let names = [
            "node_intr_total",
            "node_context_switches_total",
            "node_forks_total",
            "node_boot_time_seconds",
            "node_procs_running",
            "node_procs_blocked",
            "node_softirqs_total",
        ];
        crate::testutil::assert_matches_e2e("stat", &|f| names.contains(&f));
    }
}
