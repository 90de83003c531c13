//! `cgroup`: per-unit resource usage of systemd services (and, opt-in, slices and scopes)
//! from the cgroup file system under `<path.sysfs>/fs/cgroup`.
//!
//! Units are the directories named `*.service` (`*.slice`, `*.scope` when enabled) found by
//! walking the root and the slices of systemd's tree; a unit's own sub-cgroups (a delegated
//! subtree, a user manager's units) are not units of the system manager and are not reported
//! separately. On a unified (v2) host every file is read from the unit's directory; on a v1 or
//! hybrid host systemd's tree names the units and each controller's hierarchy is read at the
//! same relative path (`cpu,cpuacct`, `memory`, `pids`, `blkio`; PSI and `cpu.stat` from
//! `unified/` when systemd mounts it). A file that does not exist (controller not enabled)
//! leaves its metrics out; a unit that vanishes during the scrape is skipped.
//!
//! Names: where prometheus-community's systemd_exporter named the same quantity
//! (`systemd_unit_cpu_seconds_total{name,type,mode}`, `systemd_unit_tasks_current{name}`,
//! `systemd_unit_tasks_max{name,type}`) its name and labels are used; the rest is
//! `osprey_service_*{name}`.

mod parse;

use std::collections::HashMap;

use regex::Regex;

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "cgroup",
    default_enabled: true,
    help: "Exposes per-service CPU, memory, IO, task and pressure metrics from cgroups under <path.sysfs>/fs/cgroup.",
    flags: &[
        Flag { name: "collector.cgroup.slices", help: "Also report slices (*.slice).", kind: FlagKind::Bool(false) },
        Flag { name: "collector.cgroup.scopes", help: "Also report scopes (*.scope).", kind: FlagKind::Bool(false) },
        Flag {
            name: "collector.cgroup.unit-include",
            help: "Regexp of units to report (anchored; empty = all).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: "collector.cgroup.unit-exclude",
            help: "Regexp of units not to report (anchored; empty = none).",
            kind: FlagKind::Str(""),
        },
    ],
    build: |ctx| {
        let anchored = |flag: &str| -> anyhow::Result<Option<Regex>> {
            let s = ctx.str(flag);
            if s.is_empty() {
                return Ok(None);
            }
            Regex::new(&format!("^(?:{s})$"))
                .map(Some)
                .map_err(|e| anyhow::anyhow!("--{flag}: invalid regular expression: {e}"))
        };
        Ok(Box::new(Cgroup {
            root: ctx.paths.sys("fs/cgroup"),
            dev_block: ctx.paths.sys("dev/block"),
            slices: ctx.bool("collector.cgroup.slices"),
            scopes: ctx.bool("collector.cgroup.scopes"),
            include: anchored("collector.cgroup.unit-include")?,
            exclude: anchored("collector.cgroup.unit-exclude")?,
        }))
    },
};

/// The collector.
struct Cgroup {
    /// `<sysfs>/fs/cgroup`.
    root: PathBuf,
    /// `<sysfs>/dev/block`, for device names of `MAJ:MIN`.
    dev_block: PathBuf,
    /// Report `*.slice`.
    slices: bool,
    /// Report `*.scope`.
    scopes: bool,
    /// Only units matching this.
    include: Option<Regex>,
    /// No units matching this.
    exclude: Option<Regex>,
}

/// How the cgroup file system is laid out on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// Unified: everything under one root.
    V2(PathBuf),
    /// Legacy or hybrid: the tree that names units, and each controller's hierarchy.
    V1 {
        /// systemd's hierarchy (or the first controller hierarchy found).
        tree: PathBuf,
        /// `cpu,cpuacct` (or `cpuacct`).
        cpuacct: Option<PathBuf>,
        /// `memory`.
        memory: Option<PathBuf>,
        /// `pids`.
        pids: Option<PathBuf>,
        /// `blkio`.
        blkio: Option<PathBuf>,
        /// The v2 mount of a hybrid host (PSI, `cpu.stat`).
        unified: Option<PathBuf>,
    },
}

/// A unit found in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    /// `nginx.service`.
    name: String,
    /// `service`, `slice` or `scope`.
    kind: &'static str,
    /// Path relative to the hierarchy root.
    rel: PathBuf,
}

/// What was read for one unit; `None` = file absent.
#[derive(Debug, Default)]
struct Usage {
    /// CPU user and system seconds.
    cpu: Option<(f64, f64)>,
    /// Throttled seconds (v2 with the cpu controller).
    throttled: Option<f64>,
    /// Bytes in use.
    memory: Option<u64>,
    /// Peak bytes.
    memory_peak: Option<u64>,
    /// Swap bytes.
    swap: Option<u64>,
    /// Per-device IO.
    io: Vec<parse::DevIo>,
    /// Tasks.
    tasks: Option<u64>,
    /// Task limit (absent when `max`).
    tasks_max: Option<u64>,
    /// (resource, some µs, full µs).
    pressure: Vec<(&'static str, Option<u64>, Option<u64>)>,
}

impl Usage {
    fn is_empty(&self) -> bool {
        self.cpu.is_none()
            && self.memory.is_none()
            && self.memory_peak.is_none()
            && self.swap.is_none()
            && self.io.is_empty()
            && self.tasks.is_none()
            && self.pressure.is_empty()
    }
}

/// Deepest slice nesting walked (systemd nests a slice per `-` in its name).
const MAX_DEPTH: usize = 16;

/// A cgroup directory opened once, so each of its files costs one `openat` + `read` without a
/// walk of the whole path; `None` inside when the directory does not exist (controller not
/// mounted, unit gone).
struct CgDir(Option<AttrDir>);

impl CgDir {
    fn open(path: &Path) -> Self {
        Self(AttrDir::open(path).ok())
    }
}

/// Largest cgroup file read (`io.stat` of a host with many block devices).
const FILE_BUF: usize = 16 * 1024;

/// Reads a small cgroup file; `None` when it is absent or unreadable (controller disabled,
/// `psi=0`, unit removed).
fn read(dir: &CgDir, file: &str) -> Option<String> {
    let mut buf = [0u8; FILE_BUF];
    dir.0.as_ref()?.read(file, &mut buf).ok().map(str::to_owned)
}

impl Cgroup {
    fn layout(&self) -> Option<Layout> {
        if self.root.join("cgroup.controllers").is_file() {
            return Some(Layout::V2(self.root.clone()));
        }
        let dir = |names: &[&str]| names.iter().map(|n| self.root.join(n)).find(|p| p.is_dir());
        let unified = dir(&["unified"]).filter(|p| p.join("cgroup.controllers").is_file());
        let cpuacct = dir(&["cpu,cpuacct", "cpuacct,cpu", "cpuacct"]);
        let memory = dir(&["memory"]);
        let tree =
            dir(&["systemd"]).or_else(|| unified.clone()).or_else(|| cpuacct.clone()).or_else(|| memory.clone())?;
        Some(Layout::V1 { tree, cpuacct, memory, pids: dir(&["pids"]), blkio: dir(&["blkio"]), unified })
    }

    fn wanted(&self, name: &str) -> bool {
        !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
            && self.include.as_ref().is_none_or(|r| r.is_match(name))
    }

    /// Units under `tree`, sorted by name.
    fn discover(&self, tree: &Path) -> Vec<Unit> {
        let mut out = Vec::new();
        self.walk(tree, Path::new(""), 0, &mut out);
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        out
    }

    fn walk(&self, tree: &Path, rel: &Path, depth: usize, out: &mut Vec<Unit>) {
        let Ok(rd) = std::fs::read_dir(tree.join(rel)) else { return };
        for e in rd.filter_map(Result::ok) {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(name) = e.file_name().into_string() else { continue };
            let sub = rel.join(&name);
            // Unit names are case-sensitive: `.Service` is not a unit suffix.
            let suffix = name.rsplit_once('.').map_or("", |(_, s)| s);
            let kind = if suffix == "service" {
                "service"
            } else if suffix == "scope" {
                "scope"
            } else if suffix == "slice" {
                if depth < MAX_DEPTH {
                    self.walk(tree, &sub, depth + 1, out);
                }
                "slice"
            } else {
                continue;
            };
            let on = match kind {
                "slice" => self.slices,
                "scope" => self.scopes,
                _ => true,
            };
            if on && self.wanted(&name) {
                out.push(Unit { name, kind, rel: sub });
            }
        }
    }

    /// Reads one unit; `None` when it has disappeared (or nothing at all could be read).
    fn read_unit(layout: &Layout, unit: &Unit) -> Option<Usage> {
        let mut u = Usage::default();
        match layout {
            Layout::V2(root) => {
                let dir = CgDir::open(&root.join(&unit.rel));
                if let Some(s) = read(&dir, "cpu.stat").and_then(|t| parse::cpu_stat(&t)) {
                    u.cpu = Some((s.user_usec as f64 / 1e6, s.system_usec as f64 / 1e6));
                    u.throttled = s.throttled_usec.map(|v| v as f64 / 1e6);
                }
                u.memory = read(&dir, "memory.current").and_then(|t| parse::single(&t));
                u.memory_peak = read(&dir, "memory.peak").and_then(|t| parse::single(&t));
                u.swap = read(&dir, "memory.swap.current").and_then(|t| parse::single(&t));
                u.io = read(&dir, "io.stat").map(|t| parse::io_stat(&t)).unwrap_or_default();
                u.tasks = read(&dir, "pids.current").and_then(|t| parse::single(&t));
                u.tasks_max = read(&dir, "pids.max").and_then(|t| parse::single(&t));
                read_pressure(&dir, &mut u);
            }
            Layout::V1 { cpuacct, memory, pids, blkio, unified, .. } => {
                if let Some(d) = cpuacct.as_ref().map(|c| CgDir::open(&c.join(&unit.rel))) {
                    let ns = |f: &str| read(&d, f).and_then(|t| parse::single(&t));
                    u.cpu = match (ns("cpuacct.usage_user"), ns("cpuacct.usage_sys")) {
                        (Some(a), Some(b)) => Some((a as f64 / 1e9, b as f64 / 1e9)),
                        _ => read(&d, "cpuacct.stat")
                            .and_then(|t| parse::cpuacct_stat(&t))
                            .map(|(a, b)| (a as f64 / 100.0, b as f64 / 100.0)),
                    };
                }
                if let Some(d) = memory.as_ref().map(|m| CgDir::open(&m.join(&unit.rel))) {
                    u.memory = read(&d, "memory.usage_in_bytes").and_then(|t| parse::single(&t));
                    u.memory_peak = read(&d, "memory.max_usage_in_bytes").and_then(|t| parse::single(&t));
                    let memsw = read(&d, "memory.memsw.usage_in_bytes").and_then(|t| parse::single(&t));
                    u.swap = memsw.zip(u.memory).map(|(sw, m)| sw.saturating_sub(m));
                }
                if let Some(d) = pids.as_ref().map(|p| CgDir::open(&p.join(&unit.rel))) {
                    u.tasks = read(&d, "pids.current").and_then(|t| parse::single(&t));
                    u.tasks_max = read(&d, "pids.max").and_then(|t| parse::single(&t));
                }
                if let Some(d) = blkio.as_ref().map(|b| CgDir::open(&b.join(&unit.rel)))
                    && let (Some(bytes), Some(ops)) =
                        (read(&d, "blkio.throttle.io_service_bytes"), read(&d, "blkio.throttle.io_serviced"))
                {
                    u.io = parse::blkio_v1(&bytes, &ops);
                }
                if let Some(d) = unified.as_ref().map(|p| CgDir::open(&p.join(&unit.rel))) {
                    if u.cpu.is_none()
                        && let Some(s) = read(&d, "cpu.stat").and_then(|t| parse::cpu_stat(&t))
                    {
                        u.cpu = Some((s.user_usec as f64 / 1e6, s.system_usec as f64 / 1e6));
                    }
                    read_pressure(&d, &mut u);
                }
            }
        }
        (!u.is_empty()).then_some(u)
    }

    /// A device label for `MAJ:MIN`: the `DEVNAME` of its uevent, else `MAJ:MIN`.
    fn device_name(&self, cache: &mut HashMap<(u32, u32), String>, major: u32, minor: u32) -> String {
        cache
            .entry((major, minor))
            .or_insert_with(|| {
                let key = format!("{major}:{minor}");
                std::fs::read_to_string(self.dev_block.join(&key).join("uevent"))
                    .ok()
                    .and_then(|t| parse::uevent_devname(&t).map(str::to_owned))
                    .unwrap_or(key)
            })
            .clone()
    }

    fn emit(&self, out: &mut Sink, unit: &Unit, u: &Usage, devices: &mut HashMap<(u32, u32), String>) {
        let name = unit.name.as_str();
        if let Some((user, system)) = u.cpu {
            let f = "systemd_unit_cpu_seconds_total";
            let h = "Unit CPU time in seconds";
            out.counter_with(f, h, &[("name", name), ("type", unit.kind), ("mode", "user")], user);
            out.counter_with(f, h, &[("name", name), ("type", unit.kind), ("mode", "system")], system);
        }
        if let Some(t) = u.throttled {
            out.counter_with(
                "osprey_service_cpu_throttled_seconds_total",
                "Time the unit's tasks were throttled by its CPU quota (cpu.stat throttled_usec).",
                &[("name", name)],
                t,
            );
        }
        let gauge = |out: &mut Sink, metric: &str, help: &str, v: Option<u64>| {
            if let Some(v) = v {
                out.gauge_with(metric, help, &[("name", name)], v as f64);
            }
        };
        gauge(out, "osprey_service_memory_bytes", "Memory in use by the unit (memory.current).", u.memory);
        gauge(
            out,
            "osprey_service_memory_peak_bytes",
            "Highest memory use of the unit since its cgroup was created (memory.peak).",
            u.memory_peak,
        );
        gauge(out, "osprey_service_swap_bytes", "Swap in use by the unit (memory.swap.current).", u.swap);
        for d in &u.io {
            let dev = self.device_name(devices, d.major, d.minor);
            let l = [("name", name), ("device", dev.as_str())];
            out.counter_with(
                "osprey_service_io_read_bytes_total",
                "Bytes the unit read from the device.",
                &l,
                d.rbytes as f64,
            );
            out.counter_with(
                "osprey_service_io_written_bytes_total",
                "Bytes the unit wrote to the device.",
                &l,
                d.wbytes as f64,
            );
            out.counter_with(
                "osprey_service_io_reads_total",
                "Read operations of the unit on the device.",
                &l,
                d.rios as f64,
            );
            out.counter_with(
                "osprey_service_io_writes_total",
                "Write operations of the unit on the device.",
                &l,
                d.wios as f64,
            );
        }
        gauge(out, "systemd_unit_tasks_current", "Current number of tasks per Systemd unit", u.tasks);
        if let Some(m) = u.tasks_max {
            out.gauge_with(
                "systemd_unit_tasks_max",
                "Maximum number of tasks per Systemd unit",
                &[("name", name), ("type", unit.kind)],
                m as f64,
            );
        }
        for (res, some, full) in &u.pressure {
            let (waiting, stalled) = PSI_NAMES.iter().find(|p| p.0 == *res).map(|p| (p.1, p.2)).unwrap_or_default();
            if let Some(v) = some {
                out.counter_with(waiting.0, waiting.1, &[("name", name)], *v as f64 / 1e6);
            }
            if let Some(v) = full {
                out.counter_with(stalled.0, stalled.1, &[("name", name)], *v as f64 / 1e6);
            }
        }
    }
}

/// (resource, (some metric, help), (full metric, help)).
type PsiName = (&'static str, (&'static str, &'static str), (&'static str, &'static str));

const PSI_NAMES: [PsiName; 3] = [
    (
        "cpu",
        ("osprey_service_pressure_cpu_waiting_seconds_total", "Time some of the unit's tasks waited for CPU."),
        ("osprey_service_pressure_cpu_stalled_seconds_total", "Time all of the unit's tasks waited for CPU."),
    ),
    (
        "io",
        ("osprey_service_pressure_io_waiting_seconds_total", "Time some of the unit's tasks waited for IO."),
        ("osprey_service_pressure_io_stalled_seconds_total", "Time all of the unit's tasks waited for IO."),
    ),
    (
        "memory",
        ("osprey_service_pressure_memory_waiting_seconds_total", "Time some of the unit's tasks waited for memory."),
        ("osprey_service_pressure_memory_stalled_seconds_total", "Time all of the unit's tasks waited for memory."),
    ),
];

fn read_pressure(dir: &CgDir, u: &mut Usage) {
    for res in ["cpu", "io", "memory"] {
        if let Some(t) = read(dir, &format!("{res}.pressure")) {
            let (some, full) = parse::pressure(&t);
            if some.is_some() || full.is_some() {
                u.pressure.push((res, some, full));
            }
        }
    }
}

impl Collector for Cgroup {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let layout = self.layout().ok_or(CollectError::NoData)?;
        let tree = match &layout {
            Layout::V2(root) => root.clone(),
            Layout::V1 { tree, .. } => tree.clone(),
        };
        let mut devices = HashMap::new();
        for unit in self.discover(&tree) {
            if let Some(u) = Self::read_unit(&layout, &unit) {
                self.emit(out, &unit, &u, &mut devices);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
