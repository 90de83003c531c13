//! Process groups: per-process samples summed into groups with process-exporter's accumulated
//! counters, and the `namedprocess_namegroup_*` families written from them.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::USER_HZ;
use crate::prelude::*;

/// Counters of one process or group (ticks for CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) utime: u64,
    pub(super) stime: u64,
    pub(super) read_bytes: u64,
    pub(super) write_bytes: u64,
    pub(super) majflt: u64,
    pub(super) minflt: u64,
    pub(super) ctx_vol: u64,
    pub(super) ctx_nonvol: u64,
}

impl Counts {
    pub(super) fn add(&mut self, d: &Self) {
        self.utime += d.utime;
        self.stime += d.stime;
        self.read_bytes += d.read_bytes;
        self.write_bytes += d.write_bytes;
        self.majflt += d.majflt;
        self.minflt += d.minflt;
        self.ctx_vol += d.ctx_vol;
        self.ctx_nonvol += d.ctx_nonvol;
    }

    pub(super) fn delta_since(&self, old: &Self) -> Self {
        Self {
            utime: self.utime.saturating_sub(old.utime),
            stime: self.stime.saturating_sub(old.stime),
            read_bytes: self.read_bytes.saturating_sub(old.read_bytes),
            write_bytes: self.write_bytes.saturating_sub(old.write_bytes),
            majflt: self.majflt.saturating_sub(old.majflt),
            minflt: self.minflt.saturating_sub(old.minflt),
            ctx_vol: self.ctx_vol.saturating_sub(old.ctx_vol),
            ctx_nonvol: self.ctx_nonvol.saturating_sub(old.ctx_nonvol),
        }
    }
}

/// Process states as process-exporter buckets them.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct States {
    pub(super) running: u64,
    pub(super) sleeping: u64,
    pub(super) waiting: u64,
    pub(super) zombie: u64,
    pub(super) other: u64,
}

impl States {
    pub(super) fn count(&mut self, state: u8) {
        match state {
            b'R' => self.running += 1,
            b'S' => self.sleeping += 1,
            b'D' => self.waiting += 1,
            b'Z' => self.zombie += 1,
            _ => self.other += 1,
        }
    }

    pub(super) fn add(&mut self, o: &Self) {
        self.running += o.running;
        self.sleeping += o.sleeping;
        self.waiting += o.waiting;
        self.zombie += o.zombie;
        self.other += o.other;
    }
}

/// The per-scrape view of a tracked process.
#[derive(Debug, Default)]
pub(super) struct Sample {
    pub(super) delta: Counts,
    pub(super) resident: u64,
    pub(super) virt: u64,
    pub(super) swap: u64,
    pub(super) pss: u64,
    pub(super) swap_pss: u64,
    pub(super) open_fds: Option<u64>,
    pub(super) fd_limit: Option<u64>,
    pub(super) threads: u64,
    pub(super) states: States,
    pub(super) start_secs: f64,
}

/// A group's numbers in one scrape.
#[derive(Debug, Default)]
pub(super) struct GroupNow {
    pub(super) procs: u64,
    pub(super) counts: Counts,
    pub(super) resident: u64,
    pub(super) virt: u64,
    pub(super) swap: u64,
    pub(super) pss: u64,
    pub(super) swap_pss: u64,
    pub(super) open_fds: u64,
    pub(super) worst_fd_ratio: f64,
    pub(super) threads: u64,
    pub(super) states: States,
    pub(super) oldest: Option<f64>,
}

/// Sums samples into groups and adds the accumulated counters (which it updates).
pub(super) fn group(
    samples: Vec<(Arc<str>, Sample)>,
    accum: &mut BTreeMap<Arc<str>, Counts>,
) -> BTreeMap<Arc<str>, GroupNow> {
    let mut groups: BTreeMap<Arc<str>, GroupNow> = BTreeMap::new();
    for (name, s) in samples {
        let g = groups.entry(name).or_default();
        g.procs += 1;
        g.counts.add(&s.delta);
        g.resident += s.resident;
        g.virt += s.virt;
        g.swap += s.swap;
        g.pss += s.pss;
        g.swap_pss += s.swap_pss;
        if let Some(n) = s.open_fds {
            g.open_fds += n;
            if let Some(limit) = s.fd_limit.filter(|&l| l > 0) {
                let ratio = n as f64 / limit as f64;
                if ratio > g.worst_fd_ratio {
                    g.worst_fd_ratio = ratio;
                }
            }
        }
        g.threads += s.threads;
        g.states.add(&s.states);
        g.oldest = Some(g.oldest.map_or(s.start_secs, |o: f64| o.min(s.start_secs)));
    }
    for (name, g) in &mut groups {
        let acc = accum.entry(name.clone()).or_default();
        acc.add(&g.counts);
        g.counts = *acc;
    }
    for (name, acc) in accum.iter() {
        groups.entry(name.clone()).or_insert_with(|| GroupNow { counts: *acc, ..GroupNow::default() });
    }
    groups
}

/// Go's `time.Time{}.Unix()`: the start time process-exporter reports for a group with no
/// process left.
pub(super) const GO_ZERO_TIME: f64 = -62_135_596_800.0;

/// Writes the `namedprocess_namegroup_*` families of `groups` (process-exporter's order).
pub(super) fn write(out: &mut Sink, groups: &BTreeMap<Arc<str>, GroupNow>, smaps: bool) {
    let g = |out: &mut Sink, name: &str, help: &str, group: &str, v: f64| {
        out.gauge_with(name, help, &[("groupname", group)], v);
    };
    for (name, n) in groups {
        let name = &**name;
        g(out, "namedprocess_namegroup_num_procs", "number of processes in this group", name, n.procs as f64);
        let mem = "number of bytes of memory in use";
        let memf = "namedprocess_namegroup_memory_bytes";
        out.gauge_with(memf, mem, &[("groupname", name), ("memtype", "resident")], n.resident as f64);
        out.gauge_with(memf, mem, &[("groupname", name), ("memtype", "virtual")], n.virt as f64);
        out.gauge_with(memf, mem, &[("groupname", name), ("memtype", "swapped")], n.swap as f64);
        if smaps {
            out.gauge_with(memf, mem, &[("groupname", name), ("memtype", "proportionalResident")], n.pss as f64);
            out.gauge_with(memf, mem, &[("groupname", name), ("memtype", "proportionalSwapped")], n.swap_pss as f64);
        }
        g(
            out,
            "namedprocess_namegroup_oldest_start_time_seconds",
            "start time in seconds since 1970/01/01 of oldest process in group",
            name,
            n.oldest.map_or(GO_ZERO_TIME, f64::floor),
        );
        g(
            out,
            "namedprocess_namegroup_open_filedesc",
            "number of open file descriptors for this group",
            name,
            n.open_fds as f64,
        );
        g(
            out,
            "namedprocess_namegroup_worst_fd_ratio",
            "the worst (closest to 1) ratio between open fds and max fds among all procs in this group",
            name,
            n.worst_fd_ratio,
        );
        let cpu = "namedprocess_namegroup_cpu_seconds_total";
        let cpuh = "Cpu user usage in seconds";
        let c = &n.counts;
        out.counter_with(cpu, cpuh, &[("groupname", name), ("mode", "user")], c.utime as f64 / USER_HZ);
        out.counter_with(cpu, cpuh, &[("groupname", name), ("mode", "system")], c.stime as f64 / USER_HZ);
        let ctr = |out: &mut Sink, metric: &str, help: &str, v: u64| {
            out.counter_with(metric, help, &[("groupname", name)], v as f64);
        };
        ctr(out, "namedprocess_namegroup_read_bytes_total", "number of bytes read by this group", c.read_bytes);
        ctr(out, "namedprocess_namegroup_write_bytes_total", "number of bytes written by this group", c.write_bytes);
        ctr(out, "namedprocess_namegroup_major_page_faults_total", "Major page faults", c.majflt);
        ctr(out, "namedprocess_namegroup_minor_page_faults_total", "Minor page faults", c.minflt);
        let cs = "namedprocess_namegroup_context_switches_total";
        out.counter_with(
            cs,
            "Context switches",
            &[("groupname", name), ("ctxswitchtype", "voluntary")],
            c.ctx_vol as f64,
        );
        out.counter_with(
            cs,
            "Context switches",
            &[("groupname", name), ("ctxswitchtype", "nonvoluntary")],
            c.ctx_nonvol as f64,
        );
        g(out, "namedprocess_namegroup_num_threads", "Number of threads", name, n.threads as f64);
        let sh = "Number of processes in states Running, Sleeping, Waiting, Zombie, or Other";
        let s = &n.states;
        for (state, v) in [
            ("Running", s.running),
            ("Sleeping", s.sleeping),
            ("Waiting", s.waiting),
            ("Zombie", s.zombie),
            ("Other", s.other),
        ] {
            out.gauge_with("namedprocess_namegroup_states", sh, &[("groupname", name), ("state", state)], v as f64);
        }
    }
}
