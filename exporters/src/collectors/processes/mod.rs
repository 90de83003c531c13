//! `processes`: node_exporter's `processes` collector (`node_processes_*`, see [`host`]) and
//! process groups with process-exporter's metric names, labels and semantics
//! (`namedprocess_namegroup_*{groupname}`), configured by `[[processes.group]]` in the
//! agent's TOML (see [`config`]). Both come from one pass over `/proc`.
//!
//! Semantics kept from process-exporter: a process is classified once, when first seen
//! (identified by PID and start time); unmatched descendants of a matched process join its
//! group (`children`); counters are accumulated per group from per-process deltas, so they
//! never decrease when processes exit, and processes already running at the agent's start
//! count from zero; a group once seen stays with its counters and zero gauges. A process that
//! exits between listing and reading is skipped silently.

pub mod config;
mod group;
mod host;
mod read;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use config::{ProcAttrs, ProcessesConfig, TemplateInput};
use group::{Counts, GroupNow, Sample, States};
use read::PidDir;

pub use config::parse_section;

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "processes",
    default_enabled: false,
    help: "Exposes process and thread counts (node_processes_*) and, for [[processes.group]] in the config file, process group metrics (namedprocess_*).",
    flags: &[],
    build: |ctx| {
        let cfg = ctx.section::<ProcessesConfig>("processes").unwrap_or_default();
        let c = Processes::new(ctx, cfg);
        if !c.cfg.groups.is_empty() {
            // process-exporter reads all processes once at start: counters of processes
            // already running count from there.
            let _ = c.update();
        }
        Ok(Box::new(c))
    },
};

/// Ticks per second of `/proc/PID/stat` times.
const USER_HZ: f64 = 100.0;

/// What the agent remembers of a process between scrapes.
#[derive(Debug)]
enum Known {
    /// Not in any group; never re-examined (as process-exporter without `-recheck`).
    Ignored { starttime: u64, seen: u64 },
    /// In `group`.
    Tracked(Box<Tracked>),
}

#[derive(Debug)]
struct Tracked {
    starttime: u64,
    seen: u64,
    group: std::sync::Arc<str>,
    last: Counts,
    start_secs: f64,
    fd_limit: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Ticks since boot at the first read.
    first_update: Option<f64>,
    generation: u64,
    known: HashMap<i32, Known>,
    accum: BTreeMap<std::sync::Arc<str>, Counts>,
    read_errors: u64,
    partial_errors: u64,
    users: HashMap<u32, String>,
}

/// The collector.
struct Processes {
    procfs: PathBuf,
    passwd: PathBuf,
    cfg: std::sync::Arc<ProcessesConfig>,
    boot_time: f64,
    page_size: u64,
    state: Mutex<State>,
}

/// Scratch buffers reused across reads of one scrape.
#[derive(Default)]
struct Bufs {
    a: Vec<u8>,
    b: Vec<u8>,
}

/// A process seen for the first time in this scrape, not (yet) in a group.
struct NewProc {
    ppid: i32,
    starttime: u64,
}

impl Processes {
    fn new(ctx: &Ctx, cfg: std::sync::Arc<ProcessesConfig>) -> Self {
        let boot_time = std::fs::read_to_string(ctx.paths.proc("stat"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0);
        Self {
            procfs: ctx.paths.procfs.clone(),
            passwd: ctx.paths.root("etc/passwd"),
            cfg,
            boot_time,
            page_size: rustix::param::page_size() as u64,
            state: Mutex::new(State::default()),
        }
    }

    /// Reads every process, updates the tracking state and returns this scrape's groups.
    fn update(&self) -> Result<(BTreeMap<std::sync::Arc<str>, GroupNow>, host::HostCounts), CollectError> {
        let root = read::ProcRoot::open(&self.procfs).map_err(|e| CollectError::io(&self.procfs, e))?;
        let pids = root.pids().map_err(|e| CollectError::io(&self.procfs, e))?;
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let st = &mut *st;
        // "Now" in /proc/PID/stat's start-time clock (ticks since boot, CLOCK_BOOTTIME): comparing
        // there, not in wall-clock seconds via btime, keeps a few seconds of clock skew from
        // deciding whether a new process's counters count.
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let now_ticks = now.tv_sec as f64 * USER_HZ + now.tv_nsec as f64 / 1e9 * USER_HZ;
        let first_update = *st.first_update.get_or_insert(now_ticks);
        st.generation += 1;
        let generation = st.generation;
        let mut bufs = Bufs::default();
        let mut samples: Vec<(std::sync::Arc<str>, Sample)> = Vec::new();
        let mut new_unmatched: HashMap<i32, NewProc> = HashMap::new();
        let mut host = host::HostCounts::default();
        let grouping = !self.cfg.groups.is_empty();
        for pid in pids {
            let dir = root.pid(pid);
            if dir.read_into("stat", &mut bufs.a).is_err() {
                continue; // exited
            }
            let Some(stat) = read::parse_stat(&bufs.a) else { continue };
            host.count(&dir, &stat, pid);
            if !grouping {
                continue;
            }
            match st.known.get_mut(&pid) {
                Some(Known::Ignored { starttime, seen }) if *starttime == stat.starttime => {
                    *seen = generation;
                    continue;
                }
                Some(Known::Tracked(t)) if t.starttime == stat.starttime => {
                    t.seen = generation;
                    match self.sample(&dir, &stat, &mut bufs, t, (&mut st.read_errors, &mut st.partial_errors)) {
                        Some(s) => samples.push((t.group.clone(), s)),
                        None => continue,
                    }
                    continue;
                }
                _ => {}
            }
            // New process (or a reused PID): classify it.
            if dir.read_into("cmdline", &mut bufs.b).is_err() {
                continue;
            }
            let cmdline = read::parse_cmdline(&bufs.b);
            let attrs = ProcAttrs { comm: &stat.comm, cmdline: &cmdline, pid };
            let named = self.cfg.groups.iter().find_map(|g| {
                let caps = g.matches(&attrs)?;
                let user = if g.name.uses_username() {
                    let mut b = Vec::new();
                    let uid = dir.read_into("status", &mut b).map_or(0, |()| read::parse_status(&b).euid);
                    st.users.entry(uid).or_insert_with(|| lookup_user(&self.passwd, uid)).clone()
                } else {
                    String::new()
                };
                let username = || user.clone();
                Some(g.name.render(&TemplateInput { attrs: &attrs, matches: &caps, username: &username }))
            });
            match named {
                Some(name) => {
                    let mut t = self.track(&stat, name.into(), generation);
                    if let Some(s) = self.first_sample(&dir, &stat, &mut bufs, &mut t, first_update, st) {
                        samples.push((t.group.clone(), s));
                        st.known.insert(pid, Known::Tracked(Box::new(t)));
                    }
                }
                None => {
                    new_unmatched.insert(pid, NewProc { ppid: stat.ppid, starttime: stat.starttime });
                }
            }
        }
        // Children of tracked processes join their ancestor's group.
        let mut pending: Vec<i32> = new_unmatched.keys().copied().collect();
        pending.sort_unstable();
        for pid in pending {
            let group = if self.cfg.children { Self::ancestor_group(pid, &new_unmatched, &st.known, 0) } else { None };
            let np = &new_unmatched[&pid];
            let Some(group) = group else {
                st.known.insert(pid, Known::Ignored { starttime: np.starttime, seen: generation });
                continue;
            };
            let dir = root.pid(pid);
            if dir.read_into("stat", &mut bufs.a).is_err() {
                continue;
            }
            let Some(stat) = read::parse_stat(&bufs.a) else { continue };
            if stat.starttime != np.starttime {
                continue;
            }
            let mut t = self.track(&stat, group, generation);
            if let Some(s) = self.first_sample(&dir, &stat, &mut bufs, &mut t, first_update, st) {
                samples.push((t.group.clone(), s));
                st.known.insert(pid, Known::Tracked(Box::new(t)));
            }
        }
        st.known.retain(|_, k| match k {
            Known::Ignored { seen, .. } => *seen == generation,
            Known::Tracked(t) => t.seen == generation,
        });
        Ok((group::group(samples, &mut st.accum), host))
    }

    fn track(&self, stat: &read::Stat, group: std::sync::Arc<str>, generation: u64) -> Tracked {
        Tracked {
            starttime: stat.starttime,
            seen: generation,
            group,
            last: Counts::default(),
            start_secs: self.boot_time + stat.starttime as f64 / USER_HZ,
            fd_limit: None,
        }
    }

    /// The first sample of a newly tracked process: its whole counters count when it started
    /// after the first scrape (`first_update`, ticks since boot), otherwise only what it does
    /// from now on.
    fn first_sample(
        &self,
        dir: &PidDir<'_>,
        stat: &read::Stat,
        bufs: &mut Bufs,
        t: &mut Tracked,
        first_update: f64,
        st: &mut State,
    ) -> Option<Sample> {
        let mut dir_limit = None;
        if let Ok(()) = dir.read_into("limits", &mut bufs.b) {
            dir_limit = read::parse_open_files_limit(&bufs.b);
        }
        t.fd_limit = dir_limit;
        // Start times have tick (10 ms) resolution: a process started in the tick of the first
        // read counts fully (it can have used at most that tick).
        let started_after = t.starttime as f64 >= first_update.floor();
        let mut s = self.sample(dir, stat, bufs, t, (&mut st.read_errors, &mut st.partial_errors))?;
        if !started_after {
            s.delta = Counts::default();
        }
        Some(s)
    }

    /// Reads the per-scrape files of a tracked process; `None` when it exited meanwhile.
    fn sample(
        &self,
        dir: &PidDir<'_>,
        stat: &read::Stat,
        bufs: &mut Bufs,
        t: &mut Tracked,
        errs: (&mut u64, &mut u64),
    ) -> Option<Sample> {
        let (read_errors, partial_errors) = errs;
        if let Err(e) = dir.read_into("status", &mut bufs.b) {
            if e.kind() != std::io::ErrorKind::NotFound && e.raw_os_error() != Some(libc::ESRCH) {
                *read_errors += 1;
            }
            return None;
        }
        let status = read::parse_status(&bufs.b);
        let mut partial = false;
        let (read_bytes, write_bytes) = if let Ok(()) = dir.read_into("io", &mut bufs.b) {
            read::parse_io(&bufs.b)
        } else {
            partial = true;
            (0, 0)
        };
        let open_fds = dir.count_entries("fd").ok();
        partial |= open_fds.is_none();
        let mut counts = Counts {
            utime: stat.utime,
            stime: stat.stime,
            read_bytes,
            write_bytes,
            majflt: stat.majflt,
            minflt: stat.minflt,
            ctx_vol: status.ctx_voluntary,
            ctx_nonvol: status.ctx_nonvoluntary,
        };
        let mut states = States::default();
        states.count(stat.state);
        if self.cfg.threads && stat.num_threads > 1 {
            match Self::thread_totals(dir, bufs) {
                Some((vol, nonvol, thread_states)) => {
                    counts.ctx_vol = vol;
                    counts.ctx_nonvol = nonvol;
                    states.add(&thread_states);
                }
                None => partial = true,
            }
        }
        let (mut pss, mut swap_pss) = (0, 0);
        if self.cfg.smaps {
            match dir.read_into("smaps_rollup", &mut bufs.b) {
                Ok(()) => (pss, swap_pss) = read::parse_smaps_rollup(&bufs.b),
                Err(_) => partial = true,
            }
        }
        if partial {
            *partial_errors += 1;
        }
        let delta = counts.delta_since(&t.last);
        t.last = counts;
        Some(Sample {
            delta,
            resident: stat.rss * self.page_size,
            virt: stat.vsize,
            swap: status.vm_swap,
            pss,
            swap_pss,
            open_fds,
            fd_limit: t.fd_limit,
            threads: stat.num_threads,
            states,
            start_secs: t.start_secs,
        })
    }

    /// Context switches summed over threads and the threads' states (process-exporter adds
    /// these to the process's own state).
    fn thread_totals(dir: &PidDir<'_>, bufs: &mut Bufs) -> Option<(u64, u64, States)> {
        let tids = dir.numeric_entries("task").ok()?;
        if tids.len() < 2 {
            return None;
        }
        let (mut vol, mut nonvol, mut states) = (0, 0, States::default());
        for tid in tids {
            let td = dir.sub(&format!("task/{tid}"));
            if td.read_into("stat", &mut bufs.a).is_err() {
                continue;
            }
            let Some(ts) = read::parse_stat(&bufs.a) else { continue };
            if td.read_into("status", &mut bufs.b).is_err() {
                continue;
            }
            let tstatus = read::parse_status(&bufs.b);
            vol += tstatus.ctx_voluntary;
            nonvol += tstatus.ctx_nonvoluntary;
            states.count(ts.state);
        }
        Some((vol, nonvol, states))
    }

    /// The group of the nearest tracked ancestor among known and new processes.
    fn ancestor_group(
        pid: i32,
        new: &HashMap<i32, NewProc>,
        known: &HashMap<i32, Known>,
        depth: usize,
    ) -> Option<std::sync::Arc<str>> {
        let ppid = new.get(&pid)?.ppid;
        if ppid < 1 || depth > 512 {
            return None;
        }
        match known.get(&ppid) {
            Some(Known::Tracked(t)) => Some(t.group.clone()),
            Some(Known::Ignored { .. }) => None,
            None => Self::ancestor_group(ppid, new, known, depth + 1),
        }
    }
}

/// The user name of `uid` from `passwd` (the UID as text when unknown, as process-exporter).
fn lookup_user(passwd: &Path, uid: u32) -> String {
    std::fs::read_to_string(passwd)
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

impl Collector for Processes {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let (groups, host) = self.update()?;
        host.emit(&self.procfs, out)?;
        group::write(out, &groups, self.cfg.smaps);
        if self.cfg.groups.is_empty() {
            return Ok(());
        }
        let st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.counter(
            "namedprocess_scrape_errors",
            "general scrape errors: no proc metrics collected during a cycle",
            0.0,
        );
        out.counter(
            "namedprocess_scrape_procread_errors",
            "incremented each time a proc's metrics collection fails",
            st.read_errors as f64,
        );
        out.counter(
            "namedprocess_scrape_partial_errors",
            "incremented each time a tracked proc's metrics collection fails partially, e.g. unreadable I/O stats",
            st.partial_errors as f64,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
