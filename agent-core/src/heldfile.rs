//! A bounded cache of open procfs and sysfs files, re-read with `pread(2)` at offset 0.
//!
//! Opening a file is most of what reading a small `/proc` or `/sys` file costs (path lookup,
//! inode and `struct file` set-up, `close`): measured on this project's machine, a held file
//! re-read with `pread` at offset 0 costs about a third of `open` + `read` + `close`. Reading
//! a seq_file (procfs) or a kernfs attribute (sysfs) at offset 0 regenerates its content, so
//! a held file reads exactly what a fresh open would (`held_file_reads_fresh_content` checks
//! it on `/proc/self/stat`).
//!
//! What is held, and what it costs:
//! * Only files on procfs or sysfs (checked with `fstatfs` when the file is first opened), and
//!   no per-process files (`/proc/<pid>/...`, `/proc/thread-self`): those come and go with
//!   processes and their number is unbounded.
//! * At most [`CAPACITY`] files for the whole process; further files are read with a fresh open
//!   each time. Each held file pins its `struct file` and the seq_file page in the kernel
//!   (about 4.5 KiB of kernel memory per file, see the README's performance section).
//! * A file not read for [`IDLE_SCRAPES`] scrapes is closed (devices that went away, or a
//!   `collect[]` subset that no longer asks for it).
//! * A read error on a held file (`ENODEV` when a sysfs device was removed, say) closes it and
//!   retries once with a fresh open, so a device that was replaced under the same name is read
//!   from its new directory.
//! * While one caller reads a held file, it is taken out of the cache: a concurrent reader of
//!   the same path opens its own, so two multi-chunk reads never interleave on one seq_file.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};

/// Most files held open at once.
pub const CAPACITY: usize = 256;

/// A held file not read for this many scrapes ([`next_scrape`] calls) is closed.
pub const IDLE_SCRAPES: u64 = 16;

/// `PROC_SUPER_MAGIC` from `linux/magic.h`.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// `SYSFS_MAGIC` from `linux/magic.h`.
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Read size for whole-file reads.
const CHUNK: usize = 4096;

struct Slot {
    /// `None` while a reader has it out.
    fd: Option<OwnedFd>,
    /// Scrape epoch of the last read.
    used: u64,
}

#[derive(Default)]
struct Cache {
    slots: HashMap<PathBuf, Slot>,
    epoch: u64,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn with_cache<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    let mut guard = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    f(guard.get_or_insert_with(Cache::default))
}

/// Starts a new scrape epoch and closes files not read for [`IDLE_SCRAPES`] scrapes.
pub fn next_scrape() {
    with_cache(|c| {
        c.epoch += 1;
        let epoch = c.epoch;
        c.slots.retain(|_, s| s.fd.is_none() || s.used + IDLE_SCRAPES >= epoch);
    });
}

/// Number of files held open now.
pub fn held() -> usize {
    with_cache(|c| c.slots.values().filter(|s| s.fd.is_some()).count())
}

/// Reads the whole file at `path` into `buf` (cleared first).
///
/// # Errors
/// Opening or reading the file failed.
pub fn read_to_end(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    read_with(
        path,
        || open(path),
        |fd| {
            buf.clear();
            loop {
                buf.reserve(CHUNK);
                let offset = buf.len() as u64;
                let n = rustix::io::pread(fd, rustix::buffer::spare_capacity(buf), offset)?;
                if n == 0 {
                    return Ok(buf.len());
                }
            }
        },
    )
    .map(drop)
}

/// One `read(2)` of at most `buf.len()` bytes from offset 0 of `path` (how procfs'
/// `SysReadFile` reads a sysfs attribute); returns the number of bytes read.
///
/// # Errors
/// Opening or reading the file failed.
pub fn read_once(path: &Path, buf: &mut [u8]) -> io::Result<usize> {
    read_with(path, || open(path), |fd| Ok(rustix::io::pread(fd, &mut *buf, 0)?))
}

/// [`read_once`] of `name` in the directory open as `dir` (whose path is `dir_path`): a file
/// not held yet is opened with `openat(2)` relative to `dir`, skipping the path walk.
///
/// # Errors
/// Opening or reading the file failed.
pub fn read_once_at(dir: &OwnedFd, dir_path: &Path, name: &str, buf: &mut [u8]) -> io::Result<usize> {
    let path = dir_path.join(name);
    read_with(
        &path,
        || Ok(rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?),
        |fd| Ok(rustix::io::pread(fd, &mut *buf, 0)?),
    )
}

fn open(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?)
}

/// Runs `read` on the held file for `path`, or on a fresh open of it (then held if it may be).
fn read_with(
    path: &Path,
    open: impl FnOnce() -> io::Result<OwnedFd>,
    mut read: impl FnMut(&OwnedFd) -> io::Result<usize>,
) -> io::Result<usize> {
    let held = with_cache(|c| {
        let epoch = c.epoch;
        c.slots.get_mut(path).and_then(|s| {
            s.used = epoch;
            s.fd.take()
        })
    });
    if let Some(fd) = held {
        match read(&fd) {
            Err(e) if !value_error(&e) => {
                // Stale (device removed, say): close it and read a fresh open instead.
                with_cache(|c| c.slots.remove(path));
            }
            res => {
                give_back(path, fd);
                return res;
            }
        }
    }
    let fd = open()?;
    let res = read(&fd);
    if res.as_ref().is_err_and(|e| !value_error(e)) {
        return res;
    }
    if with_cache(|c| c.slots.len() < CAPACITY && !c.slots.contains_key(path)) && may_hold(path, &fd) {
        with_cache(|c| {
            if c.slots.len() < CAPACITY && !c.slots.contains_key(path) {
                c.slots.insert(path.to_owned(), Slot { fd: Some(fd), used: c.epoch });
            }
        });
    }
    res
}

/// Errors an attribute returns for its current value, the file itself being fine (`speed` of
/// a link that is down: `EINVAL`; unsupported: `EOPNOTSUPP`; no data: `ENODATA`, `EAGAIN`):
/// the file stays held. Any other error (`ENODEV` after the device went away, say) closes it.
fn value_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(22 | 95 | 61 | 11))
}

/// Puts a held file back (dropped when another reader re-filled the slot meanwhile).
fn give_back(path: &Path, fd: OwnedFd) {
    with_cache(|c| {
        if let Some(s) = c.slots.get_mut(path)
            && s.fd.is_none()
        {
            s.fd = Some(fd);
        }
    });
}

/// Only system-wide procfs and sysfs files are held: their content is regenerated by every
/// read at offset 0. Per-process files are not (unbounded, and tied to one process).
fn may_hold(path: &Path, fd: &OwnedFd) -> bool {
    let per_process = path.components().any(|c| {
        let s = c.as_os_str().as_encoded_bytes();
        s == b"thread-self" || (!s.is_empty() && s.iter().all(u8::is_ascii_digit))
    });
    if per_process {
        return false;
    }
    rustix::fs::fstatfs(fd).is_ok_and(|st| {
        #[allow(clippy::useless_conversion)] // `f_type` is `c_long`: i64 here, i32 on 32-bit targets
        let t = i64::from(st.f_type);
        t == PROC_SUPER_MAGIC || t == SYSFS_MAGIC
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_file_reads_fresh_content() {
        // utime/stime in /proc/self/stat change as this thread burns CPU; the held file must
        // see the change (a stale buffer would return the first read's bytes).
        let path = Path::new("/proc/self/stat");
        // /proc/self is not numeric, so it may be held: it names this process for its life.
        let mut first = Vec::new();
        read_to_end(path, &mut first).unwrap();
        assert!(held_contains(path), "a procfs file is held after its first read");
        let start = std::time::Instant::now();
        let mut again = Vec::new();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_secs(5) {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            read_to_end(path, &mut again).unwrap();
            if again != first {
                break;
            }
        }
        std::hint::black_box(x);
        assert_ne!(again, first, "re-reading a held /proc file returns fresh content");
        assert_eq!(again.last(), Some(&b'\n'), "whole file read: {again:?}");
    }

    #[test]
    fn regular_and_per_process_files_are_not_held() {
        let dir = std::env::temp_dir().join(format!("osprey-heldfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("x");
        std::fs::write(&file, "one\n").unwrap();
        let mut buf = Vec::new();
        read_to_end(&file, &mut buf).unwrap();
        assert_eq!(buf, b"one\n");
        assert!(!held_contains(&file), "a regular file is never held");
        // A replaced regular file is read anew (it would not be if the old fd were held).
        std::fs::write(dir.join("y"), "two\n").unwrap();
        std::fs::rename(dir.join("y"), &file).unwrap();
        read_to_end(&file, &mut buf).unwrap();
        assert_eq!(buf, b"two\n");
        std::fs::remove_dir_all(&dir).unwrap();

        let own = PathBuf::from(format!("/proc/{}/stat", std::process::id()));
        read_to_end(&own, &mut buf).unwrap();
        assert!(!held_contains(&own), "per-process files are never held");
    }

    #[test]
    fn read_once_reads_one_chunk_from_offset_zero() {
        let path = Path::new("/proc/sys/kernel/ostype");
        let mut buf = [0u8; 3];
        assert_eq!(read_once(path, &mut buf).unwrap(), 3);
        assert_eq!(&buf, b"Lin");
        // Held now: the next read starts at offset 0 again, not where the last one stopped.
        assert_eq!(read_once(path, &mut buf).unwrap(), 3);
        assert_eq!(&buf, b"Lin");
        assert_eq!(read_once(Path::new("/proc/no-such-file"), &mut buf).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn attribute_refusing_its_value_stays_held_and_keeps_refusing() {
        // A virtual interface's `speed` refuses reads with EINVAL (no link speed); the file is
        // held all the same and every read reports the same error, as a fresh open would.
        let Some(path) = std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("speed"))
            .find(|p| std::fs::read(p).is_err_and(|e| e.raw_os_error() == Some(22)))
        else {
            println!("no interface whose speed reads EINVAL on this host: nothing to check");
            return;
        };
        let mut buf = [0u8; 16];
        for _ in 0..2 {
            assert_eq!(read_once(&path, &mut buf).unwrap_err().raw_os_error(), Some(22));
            assert!(held_contains(&path), "{} is held", path.display());
        }
    }

    #[test]
    fn idle_files_are_closed() {
        let path = Path::new("/proc/sys/kernel/osrelease");
        let mut buf = Vec::new();
        read_to_end(path, &mut buf).unwrap();
        assert!(held_contains(path));
        for _ in 0..=IDLE_SCRAPES {
            next_scrape();
        }
        assert!(!held_contains(path), "closed after {IDLE_SCRAPES} scrapes without a read");
    }

    fn held_contains(path: &Path) -> bool {
        with_cache(|c| c.slots.get(path).is_some_and(|s| s.fd.is_some()))
    }
}
