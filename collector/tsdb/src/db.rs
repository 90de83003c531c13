//! The database: directory lock and format check, WAL replay, appenders with atomic commits,
//! queriers, and the self-metrics.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::block::{Block, BlockError};
use crate::head::{AppendError, Head, MemSeries, Place, SeriesData, lock, read, write};
use crate::labels::Labels;
use crate::query::Querier;
use crate::records;
use crate::wal::{FsyncPolicy, Wal, frame};

/// On-disk format version written to `FORMAT` (2: blocks may be version 2, which an older
/// Osprey would quarantine as corrupted, so it must refuse the directory instead).
pub const FORMAT_VERSION: u32 = 2;

/// Database options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Range of a block cut from the head, ms (default 2 h).
    pub block_range_ms: i64,
    /// WAL fsync policy.
    pub fsync: FsyncPolicy,
    /// WAL segment size in bytes (default 64 MiB).
    pub wal_segment_size: u64,
    /// Delete blocks that end more than this before the newest data (ms).
    pub retention_time_ms: Option<i64>,
    /// Delete the oldest blocks while all blocks together exceed this many bytes.
    pub retention_size_bytes: Option<u64>,
    /// Run maintenance (head cut, compaction, retention, fsync) in a background thread at
    /// this interval; `None` leaves it to explicit [`Db::maintain`] calls.
    pub maintenance_interval: Option<Duration>,
    /// Threads for WAL replay (0: one per core).
    pub replay_threads: usize,
    /// Accept samples up to this many ms older than a series' newest sample (default 0:
    /// out-of-order samples are rejected, as Prometheus does). Keep it under half the block
    /// range: samples older than the head's lower bound are always rejected as too old.
    pub out_of_order_window_ms: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            block_range_ms: 2 * 3600 * 1000,
            fsync: FsyncPolicy::default(),
            wal_segment_size: 64 << 20,
            retention_time_ms: Some(15 * 24 * 3600 * 1000),
            retention_size_bytes: None,
            maintenance_interval: Some(Duration::from_secs(30)),
            replay_threads: 0,
            out_of_order_window_ms: 0,
        }
    }
}

/// Database errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// I/O failure, with the file and action in the message.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Another process holds the directory.
    #[error("data directory {0} is locked by another process (lock file {0}/lock); refusing to open it")]
    Locked(PathBuf),
    /// The directory was written by a newer Osprey.
    #[error(
        "data directory {dir} has format version {found}, newer than the supported {FORMAT_VERSION}; refusing to open it"
    )]
    NewerFormat {
        /// Directory.
        dir: PathBuf,
        /// Version found.
        found: u32,
    },
    /// A malformed `FORMAT` file.
    #[error("{0}/FORMAT: expected `osprey-tsdb <version>`, found {1:?}")]
    BadFormatFile(PathBuf, String),
}

/// Counters behind the `osprey_tsdb_*` self-metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Out-of-order rejections.
    pub out_of_order: AtomicU64,
    /// Duplicate-timestamp rejections.
    pub duplicate: AtomicU64,
    /// Too-old (out of bounds) rejections.
    pub too_old: AtomicU64,
    /// Compactions run.
    pub compactions: AtomicU64,
    /// Compactions failed.
    pub compactions_failed: AtomicU64,
    /// Head cuts into blocks.
    pub head_cuts: AtomicU64,
    /// Blocks quarantined as corrupted.
    pub corrupted_blocks: AtomicU64,
    /// Blocks deleted by retention.
    pub retention_deletions: AtomicU64,
}

/// A snapshot of the self-metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// `osprey_tsdb_head_series`
    pub head_series: u64,
    /// `osprey_tsdb_head_samples_appended_total`
    pub head_samples_appended: u64,
    /// `osprey_tsdb_wal_size_bytes`
    pub wal_size_bytes: u64,
    /// `osprey_tsdb_wal_fsyncs_total`
    pub wal_fsyncs: u64,
    /// `osprey_tsdb_wal_fsync_duration_seconds_total`
    pub wal_fsync_seconds: f64,
    /// `osprey_tsdb_wal_corruptions_total`
    pub wal_corruptions: u64,
    /// `osprey_tsdb_compactions_total`
    pub compactions: u64,
    /// `osprey_tsdb_compactions_failed_total`
    pub compactions_failed: u64,
    /// `osprey_tsdb_head_cuts_total`
    pub head_cuts: u64,
    /// `osprey_tsdb_corrupted_blocks_total`
    pub corrupted_blocks: u64,
    /// `osprey_tsdb_blocks_loaded`
    pub blocks: u64,
    /// `osprey_tsdb_blocks_bytes`
    pub blocks_bytes: u64,
    /// `osprey_tsdb_retention_deletions_total`
    pub retention_deletions: u64,
    /// `osprey_tsdb_out_of_order_samples_total{reason="out_of_order"}`
    pub rejected_out_of_order: u64,
    /// `…{reason="duplicate"}`
    pub rejected_duplicate: u64,
    /// `…{reason="too_old"}`
    pub rejected_too_old: u64,
}

impl Stats {
    /// Renders the metrics in Prometheus text format.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut m = |name: &str, kind: &str, help: &str, v: f64| {
            let _ = write!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n");
        };
        m("osprey_tsdb_head_series", "gauge", "Series in the head.", self.head_series as f64);
        m(
            "osprey_tsdb_head_samples_appended_total",
            "counter",
            "Samples appended to the head.",
            self.head_samples_appended as f64,
        );
        m("osprey_tsdb_wal_size_bytes", "gauge", "Size of the WAL on disk.", self.wal_size_bytes as f64);
        m("osprey_tsdb_wal_fsyncs_total", "counter", "WAL fsync calls.", self.wal_fsyncs as f64);
        m(
            "osprey_tsdb_wal_fsync_duration_seconds_total",
            "counter",
            "Time spent in WAL fsync.",
            self.wal_fsync_seconds,
        );
        m(
            "osprey_tsdb_wal_corruptions_total",
            "counter",
            "Corrupt or torn WAL records found at replay.",
            self.wal_corruptions as f64,
        );
        m("osprey_tsdb_compactions_total", "counter", "Block compactions.", self.compactions as f64);
        m(
            "osprey_tsdb_compactions_failed_total",
            "counter",
            "Failed block compactions.",
            self.compactions_failed as f64,
        );
        m("osprey_tsdb_head_cuts_total", "counter", "Head ranges persisted as blocks.", self.head_cuts as f64);
        m(
            "osprey_tsdb_corrupted_blocks_total",
            "counter",
            "Blocks moved aside as corrupted.",
            self.corrupted_blocks as f64,
        );
        m("osprey_tsdb_blocks_loaded", "gauge", "Blocks loaded.", self.blocks as f64);
        m("osprey_tsdb_blocks_bytes", "gauge", "Bytes of loaded blocks.", self.blocks_bytes as f64);
        m(
            "osprey_tsdb_retention_deletions_total",
            "counter",
            "Blocks deleted by retention.",
            self.retention_deletions as f64,
        );
        s.push_str("# HELP osprey_tsdb_out_of_order_samples_total Samples rejected, by reason.\n# TYPE osprey_tsdb_out_of_order_samples_total counter\n");
        for (r, v) in [
            ("out_of_order", self.rejected_out_of_order),
            ("duplicate", self.rejected_duplicate),
            ("too_old", self.rejected_too_old),
        ] {
            let _ = writeln!(s, "osprey_tsdb_out_of_order_samples_total{{reason=\"{r}\"}} {v}");
        }
        s
    }
}

/// State shared by the database, its appenders and queriers.
pub struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) head: Head,
    pub(crate) wal: Wal,
    /// Commits apply under the write side; query snapshots take the read side.
    pub(crate) visibility: RwLock<()>,
    /// Serializes WAL write + apply, so WAL order is apply order.
    pub(crate) commit: Mutex<()>,
    pub(crate) blocks: RwLock<Vec<Arc<Block>>>,
    pub(crate) counters: Counters,
    pub(crate) maintenance: Mutex<()>,
}

/// An open database.
pub struct Db {
    pub(crate) shared: Arc<Shared>,
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    bg: Option<std::thread::JoinHandle<()>>,
    _lock: File,
}

fn lock_dir(dir: &Path) -> Result<File, Error> {
    let p = dir.join("lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| io::Error::new(e.kind(), format!("opening lock file {}: {e}", p.display())))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(f),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Locked(dir.to_path_buf())),
        Err(e) => Err(io::Error::other(format!("locking {}: {e}", p.display())).into()),
    }
}

/// Writes `FORMAT` with the current version (via a temporary file and a rename).
fn write_format(dir: &Path) -> Result<(), Error> {
    let tmp = dir.join("FORMAT.tmp");
    let mut f = File::create(&tmp)?;
    std::io::Write::write_fmt(&mut f, format_args!("osprey-tsdb {FORMAT_VERSION}\n"))?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join("FORMAT"))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Checks (or writes) the `FORMAT` file.
fn check_format(dir: &Path) -> Result<(), Error> {
    let p = dir.join("FORMAT");
    match fs::read_to_string(&p) {
        Ok(s) => {
            let v = s.trim().strip_prefix("osprey-tsdb ").and_then(|v| v.parse::<u32>().ok());
            match v {
                Some(v) if v > FORMAT_VERSION => Err(Error::NewerFormat { dir: dir.to_path_buf(), found: v }),
                Some(v) if v == FORMAT_VERSION => Ok(()),
                // Older: everything in it is still read; from now on newer blocks are written.
                Some(_) => write_format(dir),
                None => Err(Error::BadFormatFile(dir.to_path_buf(), s)),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => write_format(dir),
        Err(e) => Err(io::Error::new(e.kind(), format!("reading {}: {e}", p.display())).into()),
    }
}

/// Locks `dir` for a tool that writes blocks into it (importers), with the format check and
/// cleanup of interrupted work.
pub fn lock_for_tool(dir: &Path) -> Result<File, Error> {
    fs::create_dir_all(dir).map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))?;
    let l = lock_dir(dir)?;
    check_format(dir)?;
    clean_partial(dir);
    Ok(l)
}

/// Removes leftovers of interrupted block writes and deletions.
fn clean_partial(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp-for-creation") || name.ends_with(".tmp-for-deletion") {
            tracing::info!(dir = %e.path().display(), "removing partial block from an interrupted write");
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Opens every block in `dir`, moving corrupted ones aside as `<ulid>.corrupted`.
pub(crate) fn load_blocks(dir: &Path, counters: &Counters) -> io::Result<Vec<Arc<Block>>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)?.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !crate::block::is_ulid(&name) || !e.path().is_dir() {
            continue;
        }
        match Block::open(&e.path()) {
            Ok(b) => out.push(Arc::new(b)),
            Err(err @ BlockError::Corrupt(..)) => {
                let to = dir.join(format!("{name}.corrupted"));
                tracing::error!(error = %err, moved_to = %to.display(), "quarantining corrupted block");
                fs::rename(e.path(), &to)?;
                counters.corrupted_blocks.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => return Err(io::Error::other(err.to_string())),
        }
    }
    out.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    Ok(out)
}

impl Db {
    /// Opens (creating) the database in `dir`.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        let lock_file = lock_for_tool(&dir)?;
        let counters = Counters::default();
        let blocks = load_blocks(&dir, &counters)?;
        let head = Head::new();
        let min_valid =
            blocks.iter().filter(|b| !b.meta.compaction.imported).map(|b| b.meta.max_time).max().unwrap_or(i64::MIN);
        head.min_valid.store(min_valid, Ordering::Relaxed);
        let wal = crate::replay::replay(&dir, &opts, &head)?;
        let shared = Arc::new(Shared {
            dir,
            opts: opts.clone(),
            head,
            wal,
            visibility: RwLock::new(()),
            commit: Mutex::new(()),
            blocks: RwLock::new(blocks),
            counters,
            maintenance: Mutex::new(()),
        });
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let bg = opts.maintenance_interval.map(|every| {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("tsdb-maintenance".into())
                .spawn(move || {
                    loop {
                        let g = lock(&stop.0);
                        let (g, _) = stop.1.wait_timeout(g, every).unwrap_or_else(std::sync::PoisonError::into_inner);
                        if *g {
                            return;
                        }
                        drop(g);
                        if let Err(e) = crate::maintain::run(&shared) {
                            tracing::error!(error = %e, "tsdb maintenance failed; will retry");
                        }
                    }
                })
                .expect("spawning tsdb maintenance thread")
        });
        Ok(Self { shared, stop, bg, _lock: lock_file })
    }

    /// A new appender (one per scrape).
    pub fn appender(&self) -> Appender {
        self.appender_with_capacity(0)
    }

    /// A new appender with room staged for `samples` samples (more may be appended).
    pub fn appender_with_capacity(&self, samples: usize) -> Appender {
        let head = &self.shared.head;
        let generation = head.generation.load(Ordering::Relaxed);
        let token = crate::head::appender_token(&head.next_appender);
        let last = (self.shared.opts.out_of_order_window_ms > 0).then(HashMap::new);
        Appender {
            shared: self.shared.clone(),
            pending: Vec::with_capacity(samples.min(1 << 16)),
            last,
            token,
            generation,
        }
    }

    /// A querier over `[mint, maxt]` (inclusive, ms).
    pub fn querier(&self, mint: i64, maxt: i64) -> Querier {
        Querier::new(self.shared.clone(), mint, maxt)
    }

    /// Runs one round of maintenance now: head cut, compaction, retention, WAL fsync.
    pub fn maintain(&self) -> io::Result<()> {
        crate::maintain::run(&self.shared)
    }

    /// The loaded blocks' metadata, oldest first.
    pub fn blocks(&self) -> Vec<crate::block::BlockMeta> {
        read(&self.shared.blocks).iter().map(|b| b.meta.clone()).collect()
    }

    /// Appends before this time (ms) are rejected as too old: that range is in blocks.
    pub fn min_valid_time(&self) -> i64 {
        self.shared.head.min_valid.load(Ordering::Relaxed)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Current self-metrics.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let c = &s.counters;
        let blocks = read(&s.blocks);
        Stats {
            head_series: s.head.num_series() as u64,
            head_samples_appended: s.head.samples_appended.load(Ordering::Relaxed),
            wal_size_bytes: s.wal.stats.size_bytes.load(Ordering::Relaxed),
            wal_fsyncs: s.wal.stats.fsyncs.load(Ordering::Relaxed),
            wal_fsync_seconds: s.wal.stats.fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            wal_corruptions: s.wal.stats.corruptions.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            compactions_failed: c.compactions_failed.load(Ordering::Relaxed),
            head_cuts: c.head_cuts.load(Ordering::Relaxed),
            corrupted_blocks: c.corrupted_blocks.load(Ordering::Relaxed),
            blocks: blocks.len() as u64,
            blocks_bytes: blocks.iter().map(|b| b.meta.stats.num_bytes).sum(),
            retention_deletions: c.retention_deletions.load(Ordering::Relaxed),
            rejected_out_of_order: c.out_of_order.load(Ordering::Relaxed),
            rejected_duplicate: c.duplicate.load(Ordering::Relaxed),
            rejected_too_old: c.too_old.load(Ordering::Relaxed),
        }
    }

    /// Heap bytes the head holds, by structure (walks every series: for benchmarks and
    /// diagnostics, not for every scrape of the self-metrics).
    pub fn head_memory(&self) -> crate::head::HeadMemory {
        self.shared.head.memory()
    }

    /// Approximate heap bytes held by head sample data.
    pub fn head_sample_bytes(&self) -> usize {
        self.shared.head.sample_bytes()
    }

    /// Flushes the WAL (fsync) and stops background maintenance.
    pub fn close(mut self) -> io::Result<()> {
        self.stop_bg();
        self.shared.wal.sync_if_due(true)
    }

    fn stop_bg(&mut self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if let Some(h) = self.bg.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.stop_bg();
        let _ = self.shared.wal.sync_if_due(true);
    }
}

/// Collects one scrape's samples; [`Appender::commit`] makes them visible and durable at once.
pub struct Appender {
    shared: Arc<Shared>,
    pending: Vec<(Arc<MemSeries>, i64, f64)>,
    /// Newest in-order sample staged per series. Kept from the start only with an
    /// out-of-order window; otherwise built from `pending` the first time a series comes
    /// twice (a scrape rarely repeats a series, and a map per sample cost ≈ 7 % of the
    /// collector's CPU).
    last: Option<HashMap<u32, (i64, u64)>>,
    /// This appender's mark in [`MemSeries::mark_staged`].
    token: u32,
    generation: u64,
}

/// A handle of a head series, from [`Appender::append_get_ref`]: later samples of the series are
/// appended with [`Appender::append_ref`] without looking its labels up (as Prometheus' series
/// references). It stays valid until the head is next truncated.
#[derive(Clone)]
pub struct SeriesRef {
    series: Arc<MemSeries>,
    generation: u64,
}

impl Appender {
    /// Stages a sample; out-of-order, duplicate and too-old samples are rejected and counted.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        self.append_get_ref(labels, t, v).map(drop)
    }

    /// As [`Appender::append`], returning a handle of the series for [`Appender::append_ref`]
    /// (also when the sample itself was rejected).
    pub fn append_get_ref(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::EmptyLabels);
        }
        let generation = self.shared.head.generation.load(Ordering::Relaxed);
        let (s, _) = self.shared.head.get_or_create(labels);
        let r = SeriesRef { series: s.clone(), generation };
        self.append_series(s, t, v).map(|()| r)
    }

    /// Stages a sample of the series `r` refers to; `None` when the head was truncated since
    /// `r` was made (the series may be gone: append by labels again).
    pub fn append_ref(&mut self, r: &SeriesRef, t: i64, v: f64) -> Option<Result<(), AppendError>> {
        (self.shared.head.generation.load(Ordering::Relaxed) == r.generation)
            .then(|| self.append_series(r.series.clone(), t, v))
    }

    fn append_series(&mut self, s: Arc<MemSeries>, t: i64, v: f64) -> Result<(), AppendError> {
        let head = &self.shared.head;
        let bits = v.to_bits();
        let min_valid = head.min_valid.load(Ordering::Relaxed);
        let window = self.shared.opts.out_of_order_window_ms;
        // The token only filters: a series another appender staged in between is checked
        // against its committed data here, and the commit re-checks every sample anyway.
        if s.mark_staged(self.token) && self.last.is_none() {
            // Without a window every staged sample is in order: the newest per series wins.
            self.last = Some(self.pending.iter().map(|(p, t, v)| (p.id, (*t, v.to_bits()))).collect());
        }
        let place = match self.last.as_ref().and_then(|m| m.get(&s.id)).copied() {
            // Relative to this appender's own staged samples; the commit re-checks.
            Some(staged) => match SeriesData::check(Some(staged), t, bits, min_valid) {
                Ok(true) => Ok(Place::InOrder),
                Ok(false) => Ok(Place::Ignore),
                Err(AppendError::OutOfOrder) if window > 0 && t >= staged.0.saturating_sub(window) => {
                    Ok(Place::OutOfOrder)
                }
                Err(e) => Err(e),
            },
            None => lock(&s.data).place(t, bits, min_valid, window),
        };
        match place {
            Ok(Place::InOrder) => {
                if let Some(m) = &mut self.last {
                    m.insert(s.id, (t, bits));
                }
                self.pending.push((s, t, v));
                Ok(())
            }
            Ok(Place::OutOfOrder) => {
                self.pending.push((s, t, v));
                Ok(())
            }
            Ok(Place::Ignore) => Ok(()),
            Err(e) => {
                self.count(e);
                Err(e)
            }
        }
    }

    fn count(&self, e: AppendError) {
        count_rejection(&self.shared.counters, e);
    }

    /// Number of staged samples.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes the staged samples to the WAL and then makes them visible, all together. On an
    /// I/O error (a full disk) nothing is applied and the WAL is unchanged.
    pub fn commit(self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let sh = &self.shared;
        let _c = lock(&sh.commit);
        // A head truncation (which runs under the commit lock) may have dropped a series this
        // appender staged samples for; then re-resolve those by labels.
        let pending: Vec<(Arc<MemSeries>, i64, f64)> = if sh.head.generation.load(Ordering::Relaxed) == self.generation
        {
            self.pending
        } else {
            let mut live: HashMap<u32, Arc<MemSeries>> = HashMap::new();
            self.pending
                .into_iter()
                .map(|(s, t, v)| {
                    let s = live
                        .entry(s.id)
                        .or_insert_with(|| match sh.head.series(s.id) {
                            Some(cur) if Arc::ptr_eq(&cur, &s) => cur,
                            _ => sh.head.get_or_create(&sh.head.labels_of(&s)).0,
                        })
                        .clone();
                    (s, t, v)
                })
                .collect()
        };
        let mut buf = Vec::with_capacity(pending.len() * 16 + 64);
        let new: Vec<&Arc<MemSeries>> = {
            let mut seen = std::collections::HashSet::new();
            pending.iter().map(|p| &p.0).filter(|s| !s.is_logged() && seen.insert(s.id)).collect()
        };
        if !new.is_empty() {
            let labels: Vec<(u32, Labels)> = new.iter().map(|s| (s.id, sh.head.labels_of(s))).collect();
            frame(&mut buf, &records::series(labels.iter().map(|(id, l)| (*id, l))));
        }
        let samples: Vec<(u32, i64, f64)> = pending.iter().map(|(s, t, v)| (s.id, *t, *v)).collect();
        frame(&mut buf, &records::samples(&samples));
        sh.wal.write(&buf)?;
        for s in &new {
            s.set_logged();
        }
        let _v = write(&sh.visibility);
        let min_valid = sh.head.min_valid.load(Ordering::Relaxed);
        let window = sh.opts.out_of_order_window_ms;
        let (mut applied, mut lo, mut hi) = (0, i64::MAX, i64::MIN);
        for (s, t, v) in &pending {
            let mut d = lock(&s.data);
            match d.place(*t, v.to_bits(), min_valid, window) {
                Ok(p) => {
                    if d.apply(p, *t, *v) {
                        lo = lo.min(*t);
                        hi = hi.max(*t);
                        applied += 1;
                    }
                }
                Err(e) => count_rejection(&sh.counters, e),
            }
        }
        sh.head.note_times(lo, hi);
        sh.head.samples_appended.fetch_add(applied, Ordering::Relaxed);
        Ok(())
    }

    /// Drops the staged samples.
    pub fn rollback(self) {}
}

fn count_rejection(c: &Counters, e: AppendError) {
    let ctr = match e {
        AppendError::OutOfOrder => &c.out_of_order,
        AppendError::Duplicate => &c.duplicate,
        AppendError::TooOld => &c.too_old,
        AppendError::EmptyLabels => return,
    };
    ctr.fetch_add(1, Ordering::Relaxed);
}
