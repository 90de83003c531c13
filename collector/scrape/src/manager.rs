//! The [`ScrapeManager`]: one loop per target, target sets applied as a diff, status
//! snapshots for the API.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::Clients;
use crate::clock::{Clock, RealClock};
use crate::scrape_loop::{self, LoopCtx, Mode};
use crate::status::{Health, ScrapeMetrics, TargetStatus};
use crate::storage::Appendable;
use crate::target::{ScrapeTarget, TargetKey};

/// Settings of a [`ScrapeManager`].
#[derive(Clone)]
pub struct ManagerOptions {
    /// Mixed into every target's start offset, so that two collectors scraping the same
    /// targets (an HA pair) do not hit them at the same moment. Prometheus derives it from
    /// the host name and external labels.
    pub offset_seed: u64,
    /// A scrape that starts at most this late is stamped with its scheduled time, which keeps
    /// timestamps on a regular grid (better compression). `None`: 25 ms, but at most 1% of the
    /// interval (Prometheus' rule, with its 2 ms default raised for busy machines).
    pub timestamp_tolerance: Option<Duration>,
    /// The clock for schedules, timeouts and sample timestamps.
    pub clock: Arc<dyn Clock>,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        Self { offset_seed: 0, timestamp_tolerance: None, clock: Arc::new(RealClock) }
    }
}

/// What a [`ScrapeManager::sync`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Targets whose loop started (or resumed during its removal grace period).
    pub started: usize,
    /// Targets whose loop was asked to stop (markers follow after the grace period).
    pub stopped: usize,
    /// Targets that kept their loop and state (their settings are refreshed).
    pub kept: usize,
}

struct LoopHandle {
    /// The settings last sent to the loop.
    target: Arc<ScrapeTarget>,
    mode: Arc<watch::Sender<Mode>>,
    status: Arc<Mutex<TargetStatus>>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Loops {
    active: HashMap<TargetKey, LoopHandle>,
    draining: HashMap<TargetKey, LoopHandle>,
}

/// Runs one scrape loop per target and applies target sets as diffs.
pub struct ScrapeManager {
    storage: Arc<dyn Appendable>,
    opts: ManagerOptions,
    clients: Arc<Clients>,
    metrics: Arc<ScrapeMetrics>,
    runtime: Handle,
    loops: Mutex<Loops>,
}

impl ScrapeManager {
    /// A manager writing into `storage`. Must be called inside a tokio runtime, on which the
    /// loops run.
    pub fn new(storage: Arc<dyn Appendable>, opts: ManagerOptions) -> Self {
        Self {
            storage,
            opts,
            clients: Arc::default(),
            metrics: Arc::default(),
            runtime: Handle::current(),
            loops: Mutex::default(),
        }
    }

    /// Makes `targets` the set being scraped. Targets are identified by labels and URL
    /// ([`ScrapeTarget::key`]): new ones start, missing ones stop (their series get staleness
    /// markers after the grace period), present ones keep their loop, schedule and series
    /// cache and pick up changed settings at their next tick. A duplicate identity is scraped
    /// once (the first wins).
    ///
    /// Pass the same `metric_relabel` `Arc` for an unchanged relabel config: a different one
    /// rebuilds the target's series cache.
    pub fn sync(&self, targets: Vec<ScrapeTarget>) -> SyncStats {
        let mut wanted: HashMap<TargetKey, ScrapeTarget> = HashMap::with_capacity(targets.len());
        for t in targets {
            wanted.entry(t.key()).or_insert(t);
        }
        let mut stats = SyncStats::default();
        let mut loops = self.loops.lock().expect("loops lock");
        loops.draining.retain(|_, h| !h.task.is_finished());

        let gone: Vec<TargetKey> = loops.active.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
        for key in gone {
            if let Some(h) = loops.active.remove(&key) {
                h.mode.send_replace(Mode::Drain);
                loops.draining.insert(key, h);
                stats.stopped += 1;
            }
        }
        for (key, target) in wanted {
            let target = Arc::new(target);
            if let Some(h) = loops.active.get_mut(&key) {
                h.mode.send_replace(Mode::Run(Arc::clone(&target)));
                h.target = target;
                stats.kept += 1;
                continue;
            }
            if let Some(mut h) = loops.draining.remove(&key) {
                let mut resumed = false;
                h.mode.send_if_modified(|m| {
                    if matches!(m, Mode::Drain) {
                        *m = Mode::Run(Arc::clone(&target));
                        resumed = true;
                    }
                    resumed
                });
                if resumed {
                    h.target = Arc::clone(&target);
                    loops.active.insert(key, h);
                    stats.started += 1;
                    continue;
                }
            }
            let h = self.spawn(&key, &target);
            loops.active.insert(key, h);
            stats.started += 1;
        }
        // Drop the HTTP clients (and their pools) of TLS settings no target uses any more.
        let in_use: std::collections::HashSet<&crate::target::TlsConfig> =
            loops.active.values().map(|h| &h.target.tls).collect();
        self.clients.retain(|tls| in_use.contains(tls));
        self.metrics.active_targets.store(loops.active.len() as u64, Ordering::Relaxed);
        self.metrics.syncs.fetch_add(1, Ordering::Relaxed);
        stats
    }

    fn spawn(&self, key: &TargetKey, target: &Arc<ScrapeTarget>) -> LoopHandle {
        let status = Arc::new(Mutex::new(TargetStatus {
            scrape_pool: target.scrape_pool.clone(),
            scrape_url: target.url.clone(),
            labels: key.labels.clone(),
            discovered_labels: target.discovered_labels.clone(),
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape_ms: None,
            last_scrape_duration: Duration::ZERO,
            interval: target.interval,
            timeout: target.timeout,
            scrapes: 0,
            last_samples_scraped: 0,
            last_body_bytes: 0,
        }));
        let (tx, _) = watch::channel(Mode::Run(Arc::clone(target)));
        let mode = Arc::new(tx);
        let key_hash = key.hash64();
        let first_tick = scrape_loop::first_tick(self.opts.clock.as_ref(), key_hash, self.opts.offset_seed, target);
        let ctx = LoopCtx {
            first_tick,
            key_hash,
            offset_seed: self.opts.offset_seed,
            tolerance_ms: self.opts.timestamp_tolerance.map(|d| d.as_millis() as i64),
            storage: Arc::clone(&self.storage),
            clock: Arc::clone(&self.opts.clock),
            clients: Arc::clone(&self.clients),
            metrics: Arc::clone(&self.metrics),
            status: Arc::clone(&status),
            mode: Arc::clone(&mode),
        };
        let task = self.runtime.spawn(scrape_loop::run(ctx));
        LoopHandle { target: Arc::clone(target), mode, status, task }
    }

    /// Snapshots of the active targets, sorted by scrape pool and URL.
    pub fn targets(&self) -> Vec<TargetStatus> {
        let loops = self.loops.lock().expect("loops lock");
        let mut out: Vec<TargetStatus> =
            loops.active.values().map(|h| h.status.lock().expect("status lock").clone()).collect();
        out.sort_by(|a, b| (&a.scrape_pool, &a.scrape_url, &a.labels).cmp(&(&b.scrape_pool, &b.scrape_url, &b.labels)));
        out
    }

    /// The snapshot of one active target.
    pub fn target(&self, key: &TargetKey) -> Option<TargetStatus> {
        let loops = self.loops.lock().expect("loops lock");
        loops.active.get(key).map(|h| h.status.lock().expect("status lock").clone())
    }

    /// Number of removed targets still in their grace period (markers not yet written).
    pub fn draining(&self) -> usize {
        let mut loops = self.loops.lock().expect("loops lock");
        loops.draining.retain(|_, h| !h.task.is_finished());
        loops.draining.len()
    }

    /// The scrape layer's self-metrics.
    pub fn metrics(&self) -> Arc<ScrapeMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Stops every loop at once, without staleness markers (the collector is shutting down and
    /// will pick up where it left), and waits for them to end.
    pub async fn stop(&self) {
        let handles: Vec<LoopHandle> = {
            let mut loops = self.loops.lock().expect("loops lock");
            let l = &mut *loops;
            l.active.drain().chain(l.draining.drain()).map(|(_, h)| h).collect()
        };
        for h in &handles {
            h.mode.send_replace(Mode::Shutdown);
        }
        for h in handles {
            let _ = h.task.await;
        }
        self.metrics.active_targets.store(0, Ordering::Relaxed);
    }
}

impl Drop for ScrapeManager {
    fn drop(&mut self) {
        if let Ok(mut loops) = self.loops.lock() {
            let l = &mut *loops;
            for (_, h) in l.active.drain().chain(l.draining.drain()) {
                h.mode.send_replace(Mode::Shutdown);
                h.task.abort();
            }
        }
    }
}
