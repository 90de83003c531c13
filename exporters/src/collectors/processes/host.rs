//! node_exporter's `processes` collector (`node_processes_*`), computed in the same pass over
//! `/proc` as the process groups: `--collector.processes` carried over from node_exporter means
//! what it meant there.

use std::collections::BTreeMap;

use super::read::{PidDir, Stat};
use crate::prelude::*;

/// Host-wide process and thread counts of one scrape.
#[derive(Debug, Default)]
pub struct HostCounts {
    /// Processes whose `stat` could be read.
    pub pids: u64,
    /// Sum of `num_threads`.
    pub threads: u64,
    /// Processes by state letter.
    pub states: BTreeMap<u8, u64>,
    /// Threads by state letter (only processes with a readable `task` directory).
    pub thread_states: BTreeMap<u8, u64>,
    /// Scratch list of thread IDs, reused across processes.
    tids: Vec<i32>,
}

impl HostCounts {
    /// Counts one process; its threads' states come from `task/*/stat` when it has more than
    /// one (a single thread's state is the process's).
    pub fn count(&mut self, dir: &PidDir<'_>, stat: &Stat, pid: i32) {
        self.pids += 1;
        self.threads += stat.num_threads;
        *self.states.entry(stat.state).or_default() += 1;
        if stat.num_threads <= 1 {
            // As node_exporter: the task directory must exist (fixture trees may lack it).
            if dir.has_task_dir() {
                *self.thread_states.entry(stat.state).or_default() += 1;
            }
            return;
        }
        let states = &mut self.thread_states;
        let mut leader = false;
        let listed = dir.thread_states(pid, &mut self.tids, |s| *states.entry(s).or_default() += 1);
        if listed.is_ok() {
            leader = self.tids.contains(&pid);
        }
        if leader {
            *self.thread_states.entry(stat.state).or_default() += 1;
        }
    }

    /// Writes the `node_processes_*` families; `procfs` gives the kernel limits.
    pub fn emit(&self, procfs: &Path, out: &mut Sink) -> Result<(), CollectError> {
        out.gauge("node_processes_threads", "Allocated threads in system", self.threads as f64);
        let max_threads = read_u64(&procfs.join("sys/kernel/threads-max"))?;
        out.gauge("node_processes_max_threads", "Limit of threads in the system", max_threads as f64);
        for (s, n) in &self.states {
            let s = char::from(*s).to_string();
            out.gauge_with("node_processes_state", "Number of processes in each state.", &[("state", &s)], *n as f64);
        }
        for (s, n) in &self.thread_states {
            let s = char::from(*s).to_string();
            out.gauge_with(
                "node_processes_threads_state",
                "Number of threads in each state.",
                &[("thread_state", &s)],
                *n as f64,
            );
        }
        let pid_max = read_u64(&procfs.join("sys/kernel/pid_max"))?;
        out.gauge("node_processes_pids", "Number of PIDs", self.pids as f64);
        out.gauge("node_processes_max_processes", "Number of max PIDs limit", pid_max as f64);
        Ok(())
    }
}
