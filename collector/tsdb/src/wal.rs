//! Write-ahead log: numbered segment files of CRC32C-framed records, a configurable fsync
//! policy, and checkpoints that let old segments be deleted.
//!
//! Record frame: `len: u32 LE | crc32c(payload): u32 LE | payload`, payload\[0\] = record type.
//! A record never spans segments. A torn or corrupt record ends replay of the log: the segment
//! is truncated there and later segments are removed (they can only hold data committed after
//! the damage, which the fsync policy did not cover).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::head::lock;

/// When the WAL is fsync'd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every commit (slowest, loses nothing on power failure).
    Always,
    /// When a segment is completed, and at most this long after a commit (default 5 s).
    Interval(Duration),
    /// Only when a segment is completed.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        Self::Interval(Duration::from_secs(5))
    }
}

/// WAL counters.
#[derive(Debug, Default)]
pub struct WalStats {
    /// Bytes currently on disk in segments and the checkpoint.
    pub size_bytes: AtomicU64,
    /// fsync calls.
    pub fsyncs: AtomicU64,
    /// Total fsync time in nanoseconds.
    pub fsync_nanos: AtomicU64,
    /// Records dropped at replay because of corruption or a torn tail.
    pub corruptions: AtomicU64,
}

struct State {
    seg: u32,
    file: File,
    size: u64,
    dirty_since: Option<Instant>,
}

/// The write-ahead log of a data directory.
pub struct Wal {
    dir: PathBuf,
    state: Mutex<State>,
    policy: FsyncPolicy,
    segment_size: u64,
    /// Counters.
    pub stats: WalStats,
}

fn seg_name(n: u32) -> String {
    format!("{n:08}")
}

fn ctx(e: io::Error, what: &str, p: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
}

/// Appends one framed record to `buf`.
pub fn frame(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Splits a segment into record payloads; returns them and the length of the valid prefix.
pub fn parse_records(data: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap_or([0; 4])) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap_or([0; 4]));
        let Some(payload) = data.get(pos + 8..pos + 8 + len) else { break };
        if len == 0 || crc32c::crc32c(payload) != crc {
            break;
        }
        out.push(payload);
        pos += 8 + len;
    }
    (out, pos)
}

fn list(dir: &Path) -> io::Result<(Vec<u32>, Vec<(u32, PathBuf)>)> {
    let mut segs = Vec::new();
    let mut cps = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| ctx(e, "reading WAL directory", dir))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(n) = name.parse::<u32>() {
            segs.push(n);
        } else if let Some(n) = name.strip_prefix("checkpoint.") {
            if let Ok(n) = n.parse::<u32>() {
                cps.push((n, e.path()));
            } else {
                // An interrupted checkpoint (`checkpoint.N.tmp`).
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    segs.sort_unstable();
    cps.sort_by_key(|c| c.0);
    Ok((segs, cps))
}

impl Wal {
    /// Opens the log in `dir`, feeding every valid record (checkpoint first, then segments)
    /// to `replay`, which receives the segment number for progress logging.
    pub fn open(
        dir: &Path,
        policy: FsyncPolicy,
        segment_size: u64,
        mut replay: impl FnMut(u32, &[&[u8]]),
    ) -> io::Result<Self> {
        fs::create_dir_all(dir).map_err(|e| ctx(e, "creating WAL directory", dir))?;
        let (segs, cps) = list(dir)?;
        let stats = WalStats::default();
        let mut first_seg = 0;
        if let Some((n, path)) = cps.last() {
            first_seg = *n;
            let f = path.join(seg_name(0));
            let data = fs::read(&f).map_err(|e| ctx(e, "reading WAL checkpoint", &f))?;
            let (recs, valid) = parse_records(&data);
            if valid != data.len() {
                stats.corruptions.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(file = %f.display(), "corrupt WAL checkpoint record; using the valid prefix");
            }
            stats.size_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            replay(*n, &recs);
            for (old, p) in &cps[..cps.len() - 1] {
                tracing::debug!(checkpoint = old, "removing old WAL checkpoint");
                let _ = fs::remove_dir_all(p);
            }
        }
        let mut last = first_seg;
        let mut broken = false;
        for &n in &segs {
            let p = dir.join(seg_name(n));
            if n < first_seg || broken {
                fs::remove_file(&p).map_err(|e| ctx(e, "removing WAL segment", &p))?;
                continue;
            }
            let data = fs::read(&p).map_err(|e| ctx(e, "reading WAL segment", &p))?;
            let (recs, valid) = parse_records(&data);
            tracing::info!(
                segment = n,
                last = segs.last().copied().unwrap_or(n),
                records = recs.len(),
                "replaying WAL segment"
            );
            replay(n, &recs);
            if valid != data.len() {
                broken = true;
                stats.corruptions.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(segment = %p.display(), offset = valid, "torn or corrupt WAL record; truncating the log there");
                let f = OpenOptions::new().write(true).open(&p).map_err(|e| ctx(e, "opening WAL segment", &p))?;
                f.set_len(valid as u64).map_err(|e| ctx(e, "truncating WAL segment", &p))?;
            }
            stats.size_bytes.fetch_add(valid as u64, Ordering::Relaxed);
            last = n;
        }
        let path = dir.join(seg_name(last));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .read(true)
            .open(&path)
            .map_err(|e| ctx(e, "opening WAL segment", &path))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_path_buf(),
            state: Mutex::new(State { seg: last, file, size, dirty_since: None }),
            policy,
            segment_size,
            stats,
        })
    }

    fn sync(&self, f: &File) -> io::Result<()> {
        let start = Instant::now();
        f.sync_data()?;
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.stats.fsync_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn rotate(&self, st: &mut State) -> io::Result<()> {
        self.sync(&st.file)?;
        let next = st.seg + 1;
        let path = self.dir.join(seg_name(next));
        st.file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .read(true)
            .open(&path)
            .map_err(|e| ctx(e, "creating WAL segment", &path))?;
        st.seg = next;
        st.size = 0;
        st.dirty_since = None;
        Ok(())
    }

    /// Writes already-framed records (see [`frame`]) as one write. On failure (a full disk)
    /// the segment is cut back to its previous length, so the log stays clean.
    pub fn write(&self, framed: &[u8]) -> io::Result<()> {
        let mut st = lock(&self.state);
        if st.size > 0 && st.size + framed.len() as u64 > self.segment_size {
            self.rotate(&mut st)?;
        }
        let at = st.size;
        if let Err(e) = st.file.write_all_at(framed, at) {
            let _ = st.file.set_len(at);
            let p = self.dir.join(seg_name(st.seg));
            return Err(ctx(e, "writing WAL segment", &p));
        }
        st.size += framed.len() as u64;
        self.stats.size_bytes.fetch_add(framed.len() as u64, Ordering::Relaxed);
        match self.policy {
            FsyncPolicy::Always => self.sync(&st.file)?,
            FsyncPolicy::Interval(d) => match st.dirty_since {
                Some(t) if t.elapsed() >= d => {
                    self.sync(&st.file)?;
                    st.dirty_since = None;
                }
                None => st.dirty_since = Some(Instant::now()),
                Some(_) => {}
            },
            FsyncPolicy::Never => {}
        }
        Ok(())
    }

    /// fsyncs if the interval policy has pending data older than its interval (called by the
    /// background maintenance) or when `force` is set.
    pub fn sync_if_due(&self, force: bool) -> io::Result<()> {
        let mut st = lock(&self.state);
        let due = match (self.policy, st.dirty_since) {
            (FsyncPolicy::Interval(d), Some(t)) => t.elapsed() >= d,
            _ => false,
        };
        if due || force {
            self.sync(&st.file)?;
            st.dirty_since = None;
        }
        Ok(())
    }

    /// Starts a new segment for a checkpoint and returns its number. The caller must hold
    /// its commit lock, so that everything in earlier segments is already applied.
    pub fn start_checkpoint(&self) -> io::Result<u32> {
        let mut st = lock(&self.state);
        self.rotate(&mut st)?;
        Ok(st.seg)
    }

    /// Writes checkpoint `first_kept` holding the framed records of `parts` (written as they
    /// come, so the whole checkpoint is never in memory at once), which must cover every
    /// segment before `first_kept`; then deletes those segments and older checkpoints.
    pub fn finish_checkpoint(&self, first_kept: u32, parts: impl IntoIterator<Item = Vec<u8>>) -> io::Result<()> {
        let tmp = self.dir.join(format!("checkpoint.{first_kept:08}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        let res = (|| {
            fs::create_dir_all(&tmp)?;
            let f = File::create(tmp.join(seg_name(0)))?;
            let mut off = 0;
            for part in parts {
                f.write_all_at(&part, off)?;
                off += part.len() as u64;
            }
            self.sync(&f)?;
            fs::rename(&tmp, self.dir.join(format!("checkpoint.{first_kept:08}")))?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = res {
            let _ = fs::remove_dir_all(&tmp);
            return Err(ctx(e, "writing WAL checkpoint", &tmp));
        }
        let (segs, cps) = list(&self.dir)?;
        for n in segs.into_iter().filter(|&n| n < first_kept) {
            let _ = fs::remove_file(self.dir.join(seg_name(n)));
        }
        for (n, p) in cps {
            if n < first_kept {
                let _ = fs::remove_dir_all(p);
            }
        }
        self.stats.size_bytes.store(dir_size(&self.dir), Ordering::Relaxed);
        Ok(())
    }
}

/// Total size of files under `dir` (recursively).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_truncated_and_replay_resumes() {
        let dir = std::env::temp_dir().join(format!("osprey-wal-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let w = Wal::open(&dir, FsyncPolicy::Never, 64, |_, _| {}).expect("open");
        for i in 0u8..10 {
            let mut b = Vec::new();
            frame(&mut b, &[i; 20]);
            w.write(&b).expect("write");
        }
        drop(w);
        // Tear the last segment's tail.
        let (segs, _) = list(&dir).expect("list");
        let last = dir.join(seg_name(*segs.last().expect("segments")));
        let len = fs::metadata(&last).expect("meta").len();
        OpenOptions::new().write(true).open(&last).expect("open").set_len(len - 3).expect("truncate");
        let mut got = Vec::new();
        let w =
            Wal::open(&dir, FsyncPolicy::Never, 64, |_, recs| got.extend(recs.iter().map(|r| r[0]))).expect("reopen");
        assert_eq!(got, (0..9).collect::<Vec<u8>>());
        let mut b = Vec::new();
        frame(&mut b, &[42; 5]);
        w.write(&b).expect("write after repair");
        drop(w);
        let mut got = Vec::new();
        Wal::open(&dir, FsyncPolicy::Never, 64, |_, recs| got.extend(recs.iter().map(|r| r[0]))).expect("reopen");
        assert_eq!(got.last(), Some(&42));
        assert_eq!(got.len(), 10);
        let _ = fs::remove_dir_all(&dir);
    }
}
