//! Reading processes from procfs cheaply: `/proc` is opened once per scrape and every file is
//! read with one `openat(proc_fd, "PID/file")` and, for the small files, a single `read`
//! (procfs generates such a file whole, so a short read is its end). Opening `/proc/PID` as a
//! directory first would cost two more system calls per process.

use std::fmt::Write as _;
use std::io;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Access, AtFlags, Mode, OFlags};

/// The procfs root, opened once per scrape.
pub struct ProcRoot {
    fd: OwnedFd,
    /// A real procfs mount (not a fixture tree): every `PID/` has a `task/`.
    real: bool,
}

impl ProcRoot {
    /// Opens `path` (e.g. `/proc`).
    pub fn open(path: &std::path::Path) -> io::Result<Self> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let real = rustix::fs::fstatfs(&fd).is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC);
        Ok(Self { fd, real })
    }

    /// The PIDs (numeric entries).
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        let fd =
            rustix::fs::openat(&self.fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let mut out = Vec::new();
        numeric_entries_into(&fd, &mut out)?;
        Ok(out)
    }

    /// `PID/` under this root.
    pub fn pid(&self, pid: i32) -> PidDir<'_> {
        PidDir { root: &self.fd, prefix: format!("{pid}/"), real: self.real }
    }
}

/// A `/proc/PID` (or `/proc/PID/task/TID`) directory, addressed by path from the root.
pub struct PidDir<'a> {
    root: &'a OwnedFd,
    prefix: String,
    real: bool,
}

/// Largest file read with a single `read` (stat, status, io, limits, smaps_rollup).
const SMALL: usize = 8192;

impl PidDir<'_> {
    fn path(&self, name: &str) -> String {
        let mut p = String::with_capacity(self.prefix.len() + name.len());
        p.push_str(&self.prefix);
        p.push_str(name);
        p
    }

    /// The subdirectory `name` (e.g. `task/123`).
    pub fn sub(&self, name: &str) -> Self {
        PidDir { root: self.root, prefix: format!("{}{name}/", self.prefix), real: self.real }
    }

    /// True when `PID/task` exists: always on a real procfs (no system call), looked up in a
    /// fixture tree.
    pub fn has_task_dir(&self) -> bool {
        self.real || self.exists("task")
    }

    /// Calls `f` with the state letter of every thread in `task/` except `skip` (the caller
    /// knows the leader's state from `PID/stat`); `tids` is scratch space. Each thread's
    /// `stat` is opened relative to the `task` directory (a two-component path walk instead
    /// of four) and only its state is parsed. Threads that exit meanwhile are skipped.
    pub fn thread_states(&self, skip: i32, tids: &mut Vec<i32>, mut f: impl FnMut(u8)) -> io::Result<()> {
        let task = self.open_dir("task")?;
        tids.clear();
        numeric_entries_into(&task, tids)?;
        let mut path = String::with_capacity(24);
        let mut buf = [0u8; 512];
        for &tid in tids.iter().filter(|&&t| t != skip) {
            path.clear();
            // Writing to a String cannot fail.
            let _ = write!(path, "{tid}/stat");
            let Ok(fd) = rustix::fs::openat(&task, path.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            else {
                continue;
            };
            // The state follows the comm, which is at most 64 bytes: the first 512 bytes
            // always hold it.
            let Ok(n) = rustix::io::read(&fd, &mut buf) else { continue };
            if let Some(s) = parse_state(&buf[..n]) {
                f(s);
            }
        }
        Ok(())
    }

    /// True when `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        rustix::fs::accessat(self.root.as_fd(), self.path(name).as_str(), Access::EXISTS, AtFlags::empty()).is_ok()
    }

    /// Reads the whole file `name` into `buf` (cleared first).
    pub fn read_into(&self, name: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        let fd =
            rustix::fs::openat(self.root, self.path(name).as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        let mut chunk = [0u8; SMALL];
        loop {
            let n = rustix::io::read(&fd, &mut chunk)?;
            buf.extend_from_slice(&chunk[..n]);
            // A short read of a generated procfs file is its end (cmdline is never short
            // before its end either: it is copied page by page until the request is filled).
            if n < chunk.len() {
                return Ok(());
            }
        }
    }

    /// Number of entries of the subdirectory `name` (e.g. `fd`), without `.` and `..`. Linux
    /// 6.2+ reports the number of open files as the size of `/proc/PID/fd`: one `statx`
    /// instead of open, two `getdents` and close; a size of 0 (older kernels, or really no
    /// open file) falls back to listing.
    pub fn count_entries(&self, name: &str) -> io::Result<u64> {
        let st = rustix::fs::statat(self.root, self.path(name).as_str(), AtFlags::empty())?;
        if st.st_size > 0 {
            return Ok(st.st_size.cast_unsigned());
        }
        let dir = rustix::fs::Dir::new(self.open_dir(name)?)?;
        let mut n = 0;
        for e in dir {
            let e = e?;
            let b = e.file_name().to_bytes();
            if b != b"." && b != b".." {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Names of the subdirectory `name`'s entries that are numbers (PIDs, TIDs).
    pub fn numeric_entries(&self, name: &str) -> io::Result<Vec<i32>> {
        let mut out = Vec::new();
        numeric_entries_into(&self.open_dir(name)?, &mut out)?;
        Ok(out)
    }

    fn open_dir(&self, name: &str) -> io::Result<OwnedFd> {
        Ok(rustix::fs::openat(
            self.root,
            self.path(name).as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }
}

/// Numeric entry names of the directory at `path` (the PIDs of a procfs mount).
#[cfg(test)]
pub fn list_pids(path: &std::path::Path) -> io::Result<Vec<i32>> {
    ProcRoot::open(path)?.pids()
}

/// Appends the numeric entry names of the directory `fd` to `out`. One 16 KiB buffer per
/// call: `/proc` with a few hundred processes is listed in one or two `getdents64` calls
/// (rustix's `Dir` starts at 768 bytes and grows, a dozen calls for the same listing).
fn numeric_entries_into(fd: &OwnedFd, out: &mut Vec<i32>) -> io::Result<()> {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut dir = rustix::fs::RawDir::new(fd, &mut buf);
    while let Some(e) = dir.next() {
        let e = e?;
        if let Some(n) = std::str::from_utf8(e.file_name().to_bytes()).ok().and_then(|s| s.parse().ok()) {
            out.push(n);
        }
    }
    Ok(())
}

/// The state letter of a `stat` line: the first field after the comm's closing parenthesis
/// (the comm may itself hold parentheses, so the last one counts).
pub fn parse_state(b: &[u8]) -> Option<u8> {
    let close = b.iter().rposition(|&c| c == b')')?;
    b.get(close + 1..)?.iter().copied().find(|c| !c.is_ascii_whitespace())
}

/// The fields of `/proc/PID/stat` the process groups need.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stat {
    /// `comm`, without the parentheses.
    pub comm: String,
    /// One-letter state.
    pub state: u8,
    /// Parent PID.
    pub ppid: i32,
    /// Minor faults.
    pub minflt: u64,
    /// Major faults.
    pub majflt: u64,
    /// User time, ticks.
    pub utime: u64,
    /// System time, ticks.
    pub stime: u64,
    /// Threads.
    pub num_threads: u64,
    /// Start time, ticks after boot.
    pub starttime: u64,
    /// Virtual size, bytes.
    pub vsize: u64,
    /// Resident set, pages.
    pub rss: u64,
}

/// Parses `/proc/PID/stat` (the comm may hold spaces and parentheses).
pub fn parse_stat(b: &[u8]) -> Option<Stat> {
    let open = b.iter().position(|&c| c == b'(')?;
    let close = b.iter().rposition(|&c| c == b')')?;
    let comm = String::from_utf8_lossy(b.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(b.get(close + 1..)?).ok()?;
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.bytes().next()?;
    let mut nums = [0u64; 22];
    // Fields 4.. after the state; we need up to rss (field 24 → index 20 here).
    for n in nums.iter_mut().take(21) {
        *n = f.next()?.parse::<i64>().ok()?.max(0).cast_unsigned();
    }
    Some(Stat {
        comm,
        state,
        ppid: i32::try_from(nums[0]).unwrap_or(0),
        minflt: nums[6],
        majflt: nums[8],
        utime: nums[10],
        stime: nums[11],
        num_threads: nums[16],
        starttime: nums[18],
        vsize: nums[19],
        rss: nums[20],
    })
}

/// The fields of `/proc/PID/status` used.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// `VmSwap`, bytes.
    pub vm_swap: u64,
    /// `voluntary_ctxt_switches`.
    pub ctx_voluntary: u64,
    /// `nonvoluntary_ctxt_switches`.
    pub ctx_nonvoluntary: u64,
    /// Effective UID.
    pub euid: u32,
}

fn value_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.strip_prefix(key)?.strip_prefix(':').map(str::trim)
}

/// Parses `/proc/PID/status`.
pub fn parse_status(b: &[u8]) -> Status {
    let mut s = Status::default();
    for line in String::from_utf8_lossy(b).lines() {
        let num = |v: &str| v.split_ascii_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        if let Some(v) = value_after(line, "VmSwap") {
            s.vm_swap = num(v) * 1024;
        } else if let Some(v) = value_after(line, "voluntary_ctxt_switches") {
            s.ctx_voluntary = num(v);
        } else if let Some(v) = value_after(line, "nonvoluntary_ctxt_switches") {
            s.ctx_nonvoluntary = num(v);
        } else if let Some(v) = value_after(line, "Uid") {
            s.euid = v.split_ascii_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        }
    }
    s
}

/// `read_bytes` and `write_bytes` of `/proc/PID/io`.
pub fn parse_io(b: &[u8]) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for line in String::from_utf8_lossy(b).lines() {
        if let Some(v) = value_after(line, "read_bytes") {
            r = v.parse().unwrap_or(0);
        } else if let Some(v) = value_after(line, "write_bytes") {
            w = v.parse().unwrap_or(0);
        }
    }
    (r, w)
}

/// The soft `Max open files` of `/proc/PID/limits` (`unlimited` → `u64::MAX`).
pub fn parse_open_files_limit(b: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(b);
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_ascii_whitespace().next()?;
    if soft == "unlimited" { Some(u64::MAX) } else { soft.parse().ok() }
}

/// `Pss` and `SwapPss` of `/proc/PID/smaps_rollup`, bytes.
pub fn parse_smaps_rollup(b: &[u8]) -> (u64, u64) {
    let (mut pss, mut swap) = (0, 0);
    for line in String::from_utf8_lossy(b).lines() {
        let kb = |v: &str| v.split_ascii_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) * 1024;
        if let Some(v) = value_after(line, "Pss") {
            pss = kb(v);
        } else if let Some(v) = value_after(line, "SwapPss") {
            swap = kb(v);
        }
    }
    (pss, swap)
}

/// `/proc/PID/cmdline` split on NUL (a trailing NUL ends the last argument).
pub fn parse_cmdline(b: &[u8]) -> Vec<String> {
    let b = b.strip_suffix(b"\0").unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let line = b"42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 3 0 7 5 0 0 20 0 4 0 500 1000000 250 18446744073709551615 1 1\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!((s.state, s.ppid, s.minflt, s.majflt, s.utime, s.stime), (b'S', 7, 100, 3, 7, 5));
        assert_eq!((s.num_threads, s.starttime, s.vsize, s.rss), (4, 500, 1_000_000, 250));
        assert!(parse_stat(b"42 (x) S 1").is_none());
    }

    #[test]
    fn thread_state_after_comm_with_parentheses() {
        assert_eq!(parse_state(b"7 (a) b (c)) D 1 2 3"), Some(b'D'));
        assert_eq!(parse_state(b"7 (x)  R"), Some(b'R'));
        assert_eq!(parse_state(b"7 (x)"), None);
        assert_eq!(parse_state(b"7 x S"), None);
    }

    #[test]
    fn status_io_limits_smaps_cmdline() {
        let st = parse_status(
            b"Name:\tbash\nUid:\t1000\t1001\t1000\t1000\nVmSwap:\t      12 kB\nvoluntary_ctxt_switches:\t5\nnonvoluntary_ctxt_switches:\t2\n",
        );
        assert_eq!(st, Status { vm_swap: 12 * 1024, ctx_voluntary: 5, ctx_nonvoluntary: 2, euid: 1001 });
        assert_eq!(
            parse_io(b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"),
            (4096, 8192)
        );
        let lim = b"Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_limit(lim), Some(1024));
        assert_eq!(parse_smaps_rollup(b"Rss: 10 kB\nPss: 4 kB\nSwapPss: 1 kB\n"), (4096, 1024));
        assert_eq!(parse_cmdline(b"/bin/sh\0-c\0sleep 1\0"), ["/bin/sh", "-c", "sleep 1"]);
        assert!(parse_cmdline(b"").is_empty());
    }
}
