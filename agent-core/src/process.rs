//! Standard `process_*` self-metrics (client_golang's process collector), read from the real
//! `/proc/self`, never from `--path.procfs`.

use crate::model::{MetricFamily, MetricType};

/// Ticks per second of `/proc/*/stat` times (USER_HZ, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// The `process_*` families for this process; files that cannot be read are left out.
pub fn process_families() -> Vec<MetricFamily> {
    let mut out = Vec::new();
    let mut gauge = |name: &str, help: &str, kind: MetricType, v: f64| {
        let mut f = MetricFamily::new(name, help, kind);
        f.push(&[], v);
        out.push(f);
    };
    if let Ok(stat) = crate::collector::read_string(std::path::Path::new("/proc/self/stat"))
        && let Some(s) = parse_stat(&stat)
    {
        let page = rustix::param::page_size() as f64;
        gauge(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            MetricType::Counter,
            (s.utime + s.stime) as f64 / USER_HZ,
        );
        gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge, s.vsize as f64);
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            MetricType::Gauge,
            s.rss_pages as f64 * page,
        );
        if let Some(boot) = boot_time() {
            gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                MetricType::Gauge,
                boot + s.starttime as f64 / USER_HZ,
            );
        }
    }
    if let Some(n) = open_fds() {
        gauge("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, n as f64);
    }
    if let Ok(limits) = crate::collector::read_string(std::path::Path::new("/proc/self/limits")) {
        if let Some(v) = parse_limit(&limits, "Max open files") {
            gauge("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge, v);
        }
        if let Some(v) = parse_limit(&limits, "Max address space") {
            gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                MetricType::Gauge,
                v,
            );
        }
    }
    out
}

/// The fields of `/proc/PID/stat` the process metrics need.
#[derive(Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// User time in ticks.
    pub utime: u64,
    /// System time in ticks.
    pub stime: u64,
    /// Start time in ticks after boot.
    pub starttime: u64,
    /// Virtual memory size in bytes.
    pub vsize: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/PID/stat` (the command may contain spaces and parentheses).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Fields after the command, starting with field 3 (state) at index 0.
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let num = |i: usize| f.get(i)?.parse::<u64>().ok();
    Some(ProcStat { utime: num(11)?, stime: num(12)?, starttime: num(19)?, vsize: num(20)?, rss_pages: num(21)? })
}

/// A soft limit from `/proc/PID/limits` (`unlimited` → +Inf).
fn parse_limit(text: &str, name: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_ascii_whitespace().next()?;
    if soft == "unlimited" { Some(f64::INFINITY) } else { soft.parse().ok() }
}

/// Open file descriptors, counted as client_golang does (listing `/proc/self/fd`, which
/// counts the listing's own descriptor too). Linux 6.2+ reports the count as the directory's
/// size: one `statx` instead of a listing of every descriptor (the agent holds ~100 procfs
/// and sysfs files open, see [`crate::heldfile`]); size 0 (older kernels) falls back to listing.
fn open_fds() -> Option<u64> {
    match rustix::fs::stat("/proc/self/fd") {
        Ok(st) if st.st_size > 0 => Some(st.st_size.cast_unsigned() + 1),
        _ => std::fs::read_dir("/proc/self/fd").ok().map(|rd| rd.count() as u64),
    }
}

/// Boot time from `/proc/stat`, read once: it cannot change while we run, and `/proc/stat`
/// is large on many-CPU hosts.
fn boot_time() -> Option<f64> {
    static BOOT: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line =
            "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 500 1000000 250 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, ProcStat { utime: 7, stime: 3, starttime: 500, vsize: 1_000_000, rss_pages: 250 });
    }

    #[test]
    fn parses_limits() {
        let t = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\nMax address space         unlimited            unlimited            bytes\n";
        assert_eq!(parse_limit(t, "Max open files"), Some(1024.0));
        assert_eq!(parse_limit(t, "Max address space"), Some(f64::INFINITY));
    }

    #[test]
    fn own_process_metrics_exist() {
        let fams = process_families();
        for n in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(fams.iter().any(|f| f.name == n), "missing {n}");
        }
    }
}
