//! `filesystem`: size, free space and inodes of mounted file systems (node_exporter
//! compatible).
//!
//! Mounts come from `/proc/1/mountinfo` (falling back to `/proc/self/mountinfo` when PID 1 is
//! hidden). Every `statfs` runs on a worker thread and the scrape waits at most
//! `--collector.filesystem.mount-timeout` for it: a mount that does not answer in time is
//! reported with `node_filesystem_device_error 1`, remembered as stuck and skipped on later
//! scrapes until its pending `statfs` finally returns, so one hung NFS server cannot stall
//! every scrape.

mod mountinfo;

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use crate::prelude::*;
use mountinfo::Mount;

/// Default `--collector.filesystem.mount-points-exclude`.
const DEF_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// Default `--collector.filesystem.fs-types-exclude`.
const DEF_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";
const MP_EXCLUDE: &str = "collector.filesystem.mount-points-exclude";
const MP_INCLUDE: &str = "collector.filesystem.mount-points-include";
const FS_EXCLUDE: &str = "collector.filesystem.fs-types-exclude";
const FS_INCLUDE: &str = "collector.filesystem.fs-types-include";
const TIMEOUT: &str = "collector.filesystem.mount-timeout";
const WORKERS: &str = "collector.filesystem.stat-workers";
/// The `device_error` label of a mount that did not answer in time.
const TIMEOUT_ERROR: &str = "mountpoint timeout";

/// Catalog entry.
pub static DEF: Def = Def {
    name: "filesystem",
    default_enabled: true,
    help: "Exposes filesystem statistics, such as disk space used.",
    flags: &[
        Flag {
            name: MP_EXCLUDE,
            help: "Regexp of mount points to exclude for filesystem collector. (mutually exclusive to mount-points-include)",
            kind: FlagKind::Str(DEF_MOUNT_POINTS_EXCLUDE),
        },
        Flag {
            name: MP_INCLUDE,
            help: "Regexp of mount points to include for filesystem collector. (mutually exclusive to mount-points-exclude)",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: FS_EXCLUDE,
            help: "Regexp of filesystem types to exclude for filesystem collector. (mutually exclusive to fs-types-include)",
            kind: FlagKind::Str(DEF_FS_TYPES_EXCLUDE),
        },
        Flag {
            name: FS_INCLUDE,
            help: "Regexp of filesystem types to include for filesystem collector. (mutually exclusive to fs-types-exclude)",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: TIMEOUT,
            help: "how long to wait for a mount to respond before marking it as stale",
            kind: FlagKind::Str("5s"),
        },
        Flag { name: WORKERS, help: "how many stat calls to process simultaneously", kind: FlagKind::Str("4") },
    ],
    build: |ctx| Ok(Box::new(Filesystem::new(ctx, Arc::new(statfs))?)),
};

/// What `statfs(2)` reports that the collector uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStats {
    /// `f_bsize`, the unit upstream multiplies block counts by.
    pub block_size: u64,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Blocks available to unprivileged users.
    pub blocks_avail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
}

/// The `statfs` call, injectable so tests can simulate a hung mount.
pub type StatFn = Arc<dyn Fn(&Path) -> io::Result<FsStats> + Send + Sync>;

/// The real `statfs`.
fn statfs(path: &Path) -> io::Result<FsStats> {
    let s = rustix::fs::statvfs(path)?;
    Ok(FsStats {
        block_size: s.f_bsize,
        blocks: s.f_blocks,
        blocks_free: s.f_bfree,
        blocks_avail: s.f_bavail,
        files: s.f_files,
        files_free: s.f_ffree,
    })
}

/// The collector: filters, the stuck-mount set and a small pool of `statfs` workers.
struct Filesystem {
    paths: HostPaths,
    mountpoints: DeviceFilter,
    fs_types: DeviceFilter,
    timeout: Duration,
    stat: StatFn,
    /// Mount points whose `statfs` timed out and has not returned yet.
    stuck: Arc<Mutex<HashSet<String>>>,
    pool: Pool,
}

/// node_exporter's include/exclude pair: an include replaces a default exclude; setting both
/// is an error.
fn filter(ctx: &Ctx, exclude: &str, include: &str, default: &str) -> anyhow::Result<DeviceFilter> {
    let ex = ctx.str(exclude);
    if !ctx.str(include).is_empty() && (ex.is_empty() || ex == default) {
        return Ok(DeviceFilter { exclude: None, include: ctx.regex(include)? });
    }
    ctx.device_filter(exclude, include)
}

impl Filesystem {
    /// Builds the collector from flags with `stat` as the `statfs` implementation.
    fn new(ctx: &Ctx, stat: StatFn) -> anyhow::Result<Self> {
        let timeout = parse_go_duration(ctx.str(TIMEOUT))
            .ok_or_else(|| anyhow::anyhow!("--{TIMEOUT}: invalid duration {:?}", ctx.str(TIMEOUT)))?;
        let workers: usize = match ctx.str(WORKERS) {
            "" => 4,
            s => s.parse().map_err(|e| anyhow::anyhow!("--{WORKERS}: {e}: {s:?}"))?,
        };
        Ok(Self {
            paths: ctx.paths.clone(),
            mountpoints: filter(ctx, MP_EXCLUDE, MP_INCLUDE, DEF_MOUNT_POINTS_EXCLUDE)?,
            fs_types: filter(ctx, FS_EXCLUDE, FS_INCLUDE, DEF_FS_TYPES_EXCLUDE)?,
            timeout,
            stat,
            stuck: Arc::default(),
            pool: Pool::new(workers.max(1)),
        })
    }

    /// The mounts of PID 1, or of this process when PID 1 is hidden (`hidepid`).
    fn mounts(&self) -> Result<Vec<Mount>, CollectError> {
        let mut path = self.paths.proc("1/mountinfo");
        let bytes = match std::fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(error = %e, "reading root mounts failed, falling back to self mounts");
                path = self.paths.proc("self/mountinfo");
                std::fs::read(&path)
            }
            r => r,
        }
        .map_err(|e| CollectError::io(&path, e))?;
        let mut mounts = mountinfo::parse(&bytes).map_err(|e| CollectError::parse(&path, e))?;
        for m in &mut mounts {
            m.mountpoint = self.paths.strip_rootfs(&m.mountpoint);
        }
        Ok(mounts)
    }

    /// Runs `statfs` on every mount on the worker pool and waits until all answered or the
    /// mount timeout passed. Mounts without an answer are marked stuck and get `None`.
    fn stat_all(&self, mounts: &[&Mount]) -> Vec<Option<io::Result<FsStats>>> {
        let mut results: Vec<Option<io::Result<FsStats>>> = mounts.iter().map(|_| None).collect();
        if mounts.is_empty() {
            return results;
        }
        let (tx, rx) = mpsc::channel();
        let jobs = mounts.iter().enumerate().map(|(i, m)| {
            let (tx, stuck, stat) = (tx.clone(), Arc::clone(&self.stuck), Arc::clone(&self.stat));
            let (path, key) = (self.paths.root(&m.mountpoint), m.mountpoint.clone());
            Box::new(move || {
                let res = stat(&path);
                // Un-mark and report under the lock, so the scrape either sees the result or
                // marks the mount stuck before we get here.
                let mut stuck = stuck.lock().unwrap_or_else(PoisonError::into_inner);
                if stuck.remove(&key) {
                    tracing::info!(mountpoint = %key, "mount point has recovered, monitoring will resume");
                }
                let _ = tx.send((i, res));
            }) as Job
        });
        self.pool.run(jobs.collect());
        drop(tx);
        let deadline = Instant::now() + self.timeout;
        let mut missing = mounts.len();
        while missing > 0 {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((i, res)) => {
                    results[i] = Some(res);
                    missing -= 1;
                }
                Err(_) => break,
            }
        }
        if missing > 0 {
            let mut stuck = self.stuck.lock().unwrap_or_else(PoisonError::into_inner);
            while let Ok((i, res)) = rx.try_recv() {
                results[i] = Some(res);
            }
            for (m, r) in mounts.iter().zip(&results) {
                if r.is_none() {
                    tracing::warn!(mountpoint = %m.mountpoint, "mount point timed out, it is being labeled as stuck and will not be monitored");
                    stuck.insert(m.mountpoint.clone());
                }
            }
        }
        results
    }
}

impl Collector for Filesystem {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let mounts = self.mounts()?;
        let mut skipped = Vec::new();
        let mut to_stat = Vec::new();
        {
            let stuck = self.stuck.lock().unwrap_or_else(PoisonError::into_inner);
            for m in &mounts {
                if self.mountpoints.ignored(&m.mountpoint) || self.fs_types.ignored(&m.fs_type) {
                    continue;
                }
                if stuck.contains(&m.mountpoint) {
                    skipped.push(m);
                } else {
                    to_stat.push(m);
                }
            }
        }
        let results = self.stat_all(&to_stat);
        let mut seen = HashSet::new();
        for m in skipped {
            emit(out, &mut seen, m, None);
        }
        for (m, res) in to_stat.into_iter().zip(results) {
            emit(out, &mut seen, m, res.as_ref());
        }
        Ok(())
    }
}

/// Writes one mount's metrics (once per distinct label set). `None` means "timed out".
fn emit(out: &mut Sink, seen: &mut HashSet<[String; 6]>, m: &Mount, res: Option<&io::Result<FsStats>>) {
    let error = match &res {
        None => TIMEOUT_ERROR.to_owned(),
        Some(Err(e)) => go_error_string(e),
        Some(Ok(_)) => String::new(),
    };
    let key = [&m.device, &m.mountpoint, &m.fs_type, &error, &m.major, &m.minor].map(Clone::clone);
    if !seen.insert(key) {
        return;
    }
    let labels = [
        ("device", m.device.as_str()),
        ("mountpoint", m.mountpoint.as_str()),
        ("fstype", m.fs_type.as_str()),
        ("device_error", error.as_str()),
    ];
    let gauge = |out: &mut Sink, name: &str, help: &str, v: f64| out.gauge_with(name, help, &labels, v);
    let failed = !matches!(res, Some(Ok(_)));
    gauge(
        out,
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
        if failed { 1.0 } else { 0.0 },
    );
    gauge(out, "node_filesystem_readonly", "Filesystem read-only status.", if m.read_only { 1.0 } else { 0.0 });
    let Some(Ok(s)) = res else { return };
    let bs = s.block_size as f64;
    gauge(out, "node_filesystem_size_bytes", "Filesystem size in bytes.", s.blocks as f64 * bs);
    gauge(out, "node_filesystem_free_bytes", "Filesystem free space in bytes.", s.blocks_free as f64 * bs);
    gauge(
        out,
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
        s.blocks_avail as f64 * bs,
    );
    gauge(out, "node_filesystem_files", "Filesystem total file nodes.", s.files as f64);
    gauge(out, "node_filesystem_files_free", "Filesystem total free file nodes.", s.files_free as f64);
    out.gauge_with(
        "node_filesystem_mount_info",
        "Filesystem mount information.",
        &[("device", &m.device), ("major", &m.major), ("minor", &m.minor), ("mountpoint", &m.mountpoint)],
        1.0,
    );
    // Upstream's Linux collector leaves `purgeable` at 0, which passes its `>= 0` check, so
    // current node_exporter reports this macOS metric as 0 for every Linux file system.
    gauge(
        out,
        "node_filesystem_purgeable_bytes",
        "Filesystem space available including purgeable space (MacOS specific).",
        0.0,
    );
}

/// An error as Go's `syscall.Errno.Error()` prints it (`permission denied`), which is what
/// upstream puts in the `device_error` label.
fn go_error_string(e: &io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    let msg = io::Error::from_raw_os_error(code).to_string();
    let msg = msg.strip_suffix(&format!(" (os error {code})")).unwrap_or(&msg);
    let mut chars = msg.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// Go's `time.ParseDuration` for the forms flags use (`5s`, `1.5s`, `500ms`, `1m30s`).
fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0.0_f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// A unit of work for the pool.
type Job = Box<dyn FnOnce() + Send>;

/// A pool of `statfs` threads that outlives scrapes: threads stuck in a hung `statfs` stay
/// stuck, and new ones are started so that `size` threads are free for each scrape.
struct Pool {
    size: usize,
    tx: mpsc::Sender<Job>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    /// Threads waiting for work.
    idle: Arc<AtomicUsize>,
}

impl Pool {
    /// An empty pool; threads start on first use.
    fn new(size: usize) -> Self {
        let (tx, rx) = mpsc::channel();
        Self { size, tx, rx: Arc::new(Mutex::new(rx)), idle: Arc::default() }
    }

    /// Queues `jobs`, first starting threads so that up to `size` of them are idle.
    fn run(&self, jobs: Vec<Job>) {
        let want = jobs.len().min(self.size);
        for _ in self.idle.load(Ordering::Acquire)..want {
            self.spawn();
        }
        for job in jobs {
            // The receiver lives as long as `self`; a failed send cannot happen.
            let _ = self.tx.send(job);
        }
    }

    /// Starts one worker thread.
    fn spawn(&self) {
        let (rx, idle) = (Arc::clone(&self.rx), Arc::clone(&self.idle));
        idle.fetch_add(1, Ordering::AcqRel);
        let started = std::thread::Builder::new().name("osprey-statfs".into()).spawn(move || {
            loop {
                let job = {
                    let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
                    match rx.recv() {
                        Ok(job) => job,
                        Err(_) => return, // collector dropped
                    }
                };
                idle.fetch_sub(1, Ordering::AcqRel);
                job();
                idle.fetch_add(1, Ordering::AcqRel);
            }
        });
        if let Err(e) = started {
            self.idle.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(error = %e, "cannot start statfs worker thread");
        }
    }
}

#[cfg(test)]
mod tests;
