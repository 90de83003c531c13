//! `cpu`: CPU time per mode from `/proc/stat`, `/proc/cpuinfo` details, isolation and thermal
//! throttling (node_exporter compatible).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use regex::Regex;

use crate::prelude::*;

const INFO: &str = "collector.cpu.info";
const GUEST: &str = "collector.cpu.guest";
const FLAGS: &str = "collector.cpu.info.flags-include";
const BUGS: &str = "collector.cpu.info.bugs-include";

/// USER_HZ: the unit of `/proc/stat` CPU times.
const USER_HZ: f64 = 100.0;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "cpu",
    default_enabled: true,
    help: "Exposes CPU statistics.",
    flags: &[
        Flag { name: GUEST, help: "Enables metric node_cpu_guest_seconds_total.", kind: FlagKind::Bool(true) },
        Flag { name: INFO, help: "Enables metric cpu_info.", kind: FlagKind::Bool(false) },
        Flag {
            name: FLAGS,
            help: "Filter the `flags` field in cpuInfo with a value that must be a regular expression.",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: BUGS,
            help: "Filter the `bugs` field in cpuInfo with a value that must be a regular expression.",
            kind: FlagKind::Str(""),
        },
    ],
    build: |ctx| {
        let flags = ctx.regex(FLAGS)?;
        let bugs = ctx.regex(BUGS)?;
        let paths = &ctx.paths;
        let isolated = read_trimmed(&paths.sys("devices/system/cpu/isolated"))
            .ok()
            .map(|s| parse_cpu_list(&s))
            .transpose()
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", paths.sys("devices/system/cpu/isolated").display()))?
            .unwrap_or_default();
        Ok(Box::new(Cpu {
            stat: paths.proc("stat"),
            cpuinfo: paths.proc("cpuinfo"),
            topology_root: paths.sys("devices/system/cpu"),
            info: ctx.bool(INFO) || flags.is_some() || bugs.is_some(),
            guest: ctx.bool(GUEST),
            cpufreq: ctx.bool("collector.cpufreq"),
            flags,
            bugs,
            isolated,
            last: Mutex::new(HashMap::new()),
        }))
    },
};

/// CPU times of one CPU in seconds: user nice system idle iowait irq softirq steal guest guest_nice.
type Times = [f64; 10];

/// Reports `node_cpu_*`.
struct Cpu {
    stat: PathBuf,
    cpuinfo: PathBuf,
    topology_root: PathBuf,
    info: bool,
    guest: bool,
    cpufreq: bool,
    flags: Option<Regex>,
    bugs: Option<Regex>,
    isolated: Vec<u32>,
    /// Last reported times, so counters never go backwards (as upstream).
    last: Mutex<HashMap<String, Times>>,
}

/// Parses a kernel CPU list such as `1,3-5,9`.
fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |x: &str| x.trim().parse::<u32>().map_err(|e| format!("{part:?}: {e}"));
        match part.split_once('-') {
            Some((a, b)) => out.extend(num(a)?..=num(b)?),
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

/// The per-CPU lines of `/proc/stat` as (cpu number, times in seconds).
fn parse_stat(text: &str) -> Result<Vec<(&str, Times)>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(cpu) = f.next().and_then(|k| k.strip_prefix("cpu")).filter(|n| !n.is_empty()) else { continue };
        let mut t = [0.0; 10];
        for (slot, v) in t.iter_mut().zip(f) {
            *slot = v.parse::<u64>().map_err(|e| format!("cpu{cpu}: {e}"))? as f64 / USER_HZ;
        }
        out.push((cpu, t));
    }
    Ok(out)
}

/// One processor block of `/proc/cpuinfo` as key → value.
fn parse_cpuinfo(text: &str) -> Vec<HashMap<&str, &str>> {
    text.split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect::<HashMap<_, _>>()
        })
        .filter(|m| m.contains_key("processor"))
        .collect()
}

const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

impl Cpu {
    fn update_info(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.cpuinfo)?;
        let cpus = parse_cpuinfo(&text);
        let get = |m: &HashMap<&str, &str>, k: &str| m.get(k).copied().unwrap_or("").to_owned();
        for c in &cpus {
            out.add_owned(
                "node_cpu_info",
                "CPU information from /proc/cpuinfo.",
                MetricType::Gauge,
                vec![
                    ("package".into(), get(c, "physical id")),
                    ("core".into(), get(c, "core id")),
                    ("cpu".into(), get(c, "processor")),
                    ("vendor".into(), get(c, "vendor_id")),
                    ("family".into(), get(c, "cpu family")),
                    ("model".into(), get(c, "model")),
                    ("model_name".into(), get(c, "model name")),
                    ("microcode".into(), get(c, "microcode")),
                    ("stepping".into(), get(c, "stepping")),
                    ("cachesize".into(), get(c, "cache size")),
                ],
                1.0,
            );
        }
        if self.cpufreq {
            for c in &cpus {
                let mhz: f64 = c.get("cpu MHz").and_then(|v| v.parse().ok()).unwrap_or(0.0);
                out.add_owned(
                    "node_cpu_frequency_hertz",
                    "CPU frequency in hertz from /proc/cpuinfo.",
                    MetricType::Gauge,
                    vec![
                        ("package".into(), get(c, "physical id")),
                        ("core".into(), get(c, "core id")),
                        ("cpu".into(), get(c, "processor")),
                    ],
                    mhz * 1e6,
                );
            }
        }
        if let Some(first) = cpus.first() {
            let fields = [
                (
                    &self.flags,
                    "flags",
                    "node_cpu_flag_info",
                    "flag",
                    "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
                ),
                (
                    &self.bugs,
                    "bugs",
                    "node_cpu_bug_info",
                    "bug",
                    "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
                ),
            ];
            for (re, key, metric, label, help) in fields {
                let Some(re) = re else { continue };
                for v in first.get(key).copied().unwrap_or("").split_ascii_whitespace().filter(|v| re.is_match(v)) {
                    out.gauge_with(metric, help, &[(label, v)], 1.0);
                }
            }
        }
        Ok(())
    }

    fn update_stat(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.stat)?;
        let stats = parse_stat(&text).map_err(|e| CollectError::parse(&self.stat, e))?;
        let mut last = self.last.lock().map_err(|_| CollectError::Other("cpu state poisoned".into()))?;
        // Counters that jump backwards keep their last value; a big idle jump back (CPU
        // hot-plug) resets the CPU's state, as upstream does.
        for (cpu, new) in &stats {
            let old = last.entry((*cpu).to_owned()).or_insert([0.0; 10]);
            if old[3] - new[3] >= 3.0 {
                *old = [0.0; 10];
            }
            for (o, n) in old.iter_mut().zip(new) {
                if *n >= *o {
                    *o = *n;
                }
            }
        }
        last.retain(|k, _| stats.iter().any(|(c, _)| c == k));
        for (cpu, t) in last.iter() {
            for (mode, v) in MODES.iter().zip(t) {
                out.counter_with(
                    "node_cpu_seconds_total",
                    "Seconds the CPUs spent in each mode.",
                    &[("cpu", cpu), ("mode", mode)],
                    *v,
                );
            }
            if self.guest {
                let help = "Seconds the CPUs spent in guests (VMs) for each mode.";
                out.counter_with("node_cpu_guest_seconds_total", help, &[("cpu", cpu), ("mode", "user")], t[8]);
                out.counter_with("node_cpu_guest_seconds_total", help, &[("cpu", cpu), ("mode", "nice")], t[9]);
            }
        }
        Ok(())
    }

    fn update_thermal_throttle(&self, out: &mut Sink) {
        let Ok(entries) = list_dir(&self.topology_root) else { return };
        let mut packages: BTreeMap<u64, u64> = BTreeMap::new();
        let mut cores: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for cpu in entries
            .iter()
            .filter(|e| e.strip_prefix("cpu").is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit())))
        {
            let dir = self.topology_root.join(cpu);
            let (Ok(pkg), Ok(core)) =
                (read_u64(&dir.join("topology/physical_package_id")), read_u64(&dir.join("topology/core_id")))
            else {
                continue;
            };
            if let std::collections::btree_map::Entry::Vacant(e) = cores.entry((pkg, core))
                && let Ok(n) = read_u64(&dir.join("thermal_throttle/core_throttle_count"))
            {
                e.insert(n);
            }
            if let std::collections::btree_map::Entry::Vacant(e) = packages.entry(pkg)
                && let Ok(n) = read_u64(&dir.join("thermal_throttle/package_throttle_count"))
            {
                e.insert(n);
            }
        }
        for (pkg, n) in packages {
            out.counter_with(
                "node_cpu_package_throttles_total",
                "Number of times this CPU package has been throttled.",
                &[("package", &pkg.to_string())],
                n as f64,
            );
        }
        for ((pkg, core), n) in cores {
            out.counter_with(
                "node_cpu_core_throttles_total",
                "Number of times this CPU core has been throttled.",
                &[("package", &pkg.to_string()), ("core", &core.to_string())],
                n as f64,
            );
        }
    }
}

impl Collector for Cpu {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        if self.info {
            self.update_info(out)?;
        }
        self.update_stat(out)?;
        for cpu in &self.isolated {
            out.gauge_with(
                "node_cpu_isolated",
                "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
                &[("cpu", &cpu.to_string())],
                1.0,
            );
        }
        self.update_thermal_throttle(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists_and_stat() {
        assert_eq!(parse_cpu_list("1,3-5,9\n").unwrap(), [1, 3, 4, 5, 9]);
        assert!(parse_cpu_list("1-x").is_err());
        let s = parse_stat("cpu  1 2 3 4\ncpu0 100 0 50 0 0 0 0 0 2 1\nintr 5\n").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, "0");
        assert_eq!(s[0].1[0], 1.0);
        assert_eq!(s[0].1[8], 0.02);
    }

    #[test]
    fn counters_never_go_backwards() {
        let dir = std::env::temp_dir().join(format!("osprey-cpu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stat = dir.join("stat");
        let cpu = Cpu {
            stat: stat.clone(),
            cpuinfo: dir.join("cpuinfo"),
            topology_root: dir.join("none"),
            info: false,
            guest: false,
            cpufreq: false,
            flags: None,
            bugs: None,
            isolated: vec![],
            last: Mutex::new(HashMap::new()),
        };
        let value = |text: &str| {
            std::fs::write(&stat, text).unwrap();
            let mut sink = Sink::new();
            cpu.collect(&mut sink).unwrap();
            let f = &sink.families()[0];
            f.samples.iter().find(|s| s.label("mode") == Some("iowait")).unwrap().value
        };
        assert_eq!(value("cpu0 0 0 0 1000 500 0 0 0 0 0\n"), 5.0);
        assert_eq!(value("cpu0 0 0 0 1001 400 0 0 0 0 0\n"), 5.0, "iowait went backwards");
        assert_eq!(value("cpu0 0 0 0 1002 600 0 0 0 0 0\n"), 6.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("cpu", &|f| {
            f.starts_with("node_cpu_") && !f.starts_with("node_cpu_scaling_") && f != "node_cpu_vulnerabilities_info"
        });
    }
}
