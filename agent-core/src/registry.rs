//! The registry: runs every enabled collector concurrently for each scrape, each with its own
//! timeout, and reports `node_scrape_collector_{duration_seconds,success}`.
//!
//! Collectors run on a few *lanes* (threads of tokio's blocking pool) that take the selected
//! collectors one after another from a shared queue. A collector that exceeds its timeout is
//! reported with success 0, its lane is abandoned and a fresh lane carries on with the queue.
//! A collector still running from an earlier scrape (stuck in a syscall, say) is not started
//! again: it is reported with success 0 until it returns, so stuck threads never pile up.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::collector::{CollectError, Collector};
use crate::model::{MetricFamily, MetricType};

mod lanes;

use lanes::Job;

/// Collectors that run at the same time by default. Most collectors take microseconds, so
/// more lanes buy nothing but thread hand-offs and allocator contention (measured in
/// `benches/agent_vs_node_exporter.sh`); a slow or stuck collector never holds up the others
/// because a lane stuck past the timeout is replaced.
pub const DEFAULT_LANES: usize = 2;

/// How often the same collector's error is logged at most.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(300);

struct Entry {
    collector: Arc<dyn Collector>,
    busy: Arc<AtomicBool>,
    log: Mutex<LogLimiter>,
}

#[derive(Default)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// Returns the number of suppressed messages when this one may be logged.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < ERROR_LOG_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Outcome of one collector in one scrape.
#[derive(Debug)]
pub struct CollectorReport {
    /// Collector name.
    pub name: &'static str,
    /// Wall time the collector took (the timeout when it timed out).
    pub duration: Duration,
    /// Whether it succeeded.
    pub success: bool,
}

/// A set of collectors run together for each scrape.
pub struct Registry {
    entries: Vec<Entry>,
    timeout: Duration,
    lanes: usize,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("collectors", &self.names())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry whose collectors each get `timeout` per scrape, run on
    /// [`DEFAULT_LANES`] lanes.
    pub fn new(timeout: Duration) -> Self {
        Self { entries: Vec::new(), timeout, lanes: DEFAULT_LANES }
    }

    /// Sets how many collectors may run at the same time (at least 1).
    #[must_use]
    pub fn with_lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes.max(1);
        self
    }

    /// Adds a collector.
    pub fn add(&mut self, collector: Box<dyn Collector>) {
        self.entries.push(Entry {
            collector: Arc::from(collector),
            busy: Arc::new(AtomicBool::new(false)),
            log: Mutex::new(LogLimiter::default()),
        });
    }

    /// Names of the registered collectors, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.collector.name()).collect()
    }

    /// Runs the collectors selected by `select` concurrently and returns their families plus
    /// the `node_scrape_collector_*` families (not yet normalized).
    pub async fn gather(&self, select: impl Fn(&str) -> bool) -> (Vec<MetricFamily>, Vec<CollectorReport>) {
        crate::heldfile::next_scrape();
        let mut reports = Vec::new();
        let mut items = Vec::new();
        for (idx, e) in self.entries.iter().enumerate() {
            let name = e.collector.name();
            if !select(name) {
                continue;
            }
            if e.busy.swap(true, Ordering::AcqRel) {
                self.log_error(idx, &CollectError::Other("still running since an earlier scrape".into()));
                reports.push(CollectorReport { name, duration: Duration::ZERO, success: false });
                continue;
            }
            items.push(Job { idx, collector: Arc::clone(&e.collector), busy: Arc::clone(&e.busy) });
        }
        let outcomes = lanes::run(items, self.lanes, self.timeout).await;
        let mut families = Vec::new();
        for o in outcomes {
            let name = self.entries[o.idx].collector.name();
            if let Some(sink) = o.sink {
                families.extend(sink.into_families());
            }
            let success = match o.result {
                Ok(()) => true,
                Err(err) => {
                    self.log_error(o.idx, &err);
                    false
                }
            };
            reports.push(CollectorReport { name, duration: o.duration, success });
        }
        reports.sort_by_key(|r| r.name);
        let mut dur = MetricFamily::new(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            MetricType::Gauge,
        );
        let mut ok = MetricFamily::new(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            MetricType::Gauge,
        );
        for r in &reports {
            dur.push(&[("collector", r.name)], r.duration.as_secs_f64());
            ok.push(&[("collector", r.name)], if r.success { 1.0 } else { 0.0 });
        }
        families.push(dur);
        families.push(ok);
        (families, reports)
    }

    fn log_error(&self, idx: usize, err: &CollectError) {
        let e = &self.entries[idx];
        let allowed = e.log.lock().map_or(Some(0), |mut l| l.allow(Instant::now()));
        if let Some(suppressed) = allowed {
            if matches!(err, CollectError::NoData) {
                tracing::debug!(collector = e.collector.name(), "collector returned no data");
            } else {
                tracing::error!(
                    collector = e.collector.name(),
                    error = %err,
                    suppressed_since_last = suppressed,
                    "collector failed"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::Sink;

    struct Fixed(&'static str, Result<(), ()>);
    impl Collector for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
            out.gauge(&format!("test_{}", self.0), "h", 1.0);
            self.1.map_err(|()| CollectError::Other("boom".into()))
        }
    }

    struct Stuck;
    impl Collector for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }
        fn collect(&self, _: &mut Sink) -> Result<(), CollectError> {
            std::thread::sleep(Duration::from_secs(1));
            Ok(())
        }
    }

    fn success(fams: &[MetricFamily], name: &str) -> f64 {
        let f = fams.iter().find(|f| f.name == "node_scrape_collector_success").unwrap();
        f.samples.iter().find(|s| s.label("collector") == Some(name)).unwrap().value
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failing_and_stuck_collectors_do_not_fail_the_scrape() {
        let mut r = Registry::new(Duration::from_millis(200));
        r.add(Box::new(Fixed("good", Ok(()))));
        r.add(Box::new(Fixed("bad", Err(()))));
        r.add(Box::new(Stuck));
        let start = Instant::now();
        let (fams, _) = r.gather(|_| true).await;
        assert!(start.elapsed() < Duration::from_secs(2), "stuck collector blocked the scrape");
        assert_eq!(success(&fams, "good"), 1.0);
        assert_eq!(success(&fams, "bad"), 0.0);
        assert_eq!(success(&fams, "stuck"), 0.0);
        // The failing collector's partial output is kept.
        assert!(fams.iter().any(|f| f.name == "test_bad"));
        // Second scrape: the stuck one is still busy and is not started again.
        let (fams, _) = r.gather(|n| n == "stuck").await;
        assert_eq!(success(&fams, "stuck"), 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stuck_collector_on_a_single_lane_does_not_hold_up_the_queue() {
        // Regression: with lanes, a stuck collector must not delay the ones queued behind it
        // beyond its own timeout.
        let mut r = Registry::new(Duration::from_millis(100)).with_lanes(1);
        r.add(Box::new(Stuck));
        for name in ["a", "b", "c"] {
            r.add(Box::new(Fixed(name, Ok(()))));
        }
        let start = Instant::now();
        let (fams, reports) = r.gather(|_| true).await;
        assert!(start.elapsed() < Duration::from_millis(900), "queue waited for the stuck collector");
        assert_eq!(reports.len(), 4);
        assert_eq!(success(&fams, "stuck"), 0.0);
        for name in ["a", "b", "c"] {
            assert_eq!(success(&fams, name), 1.0, "{name}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_selected_collector_is_reported_once() {
        let mut r = Registry::new(Duration::from_secs(5)).with_lanes(3);
        let names: Vec<&'static str> = (0..40).map(|i| &*Box::leak(format!("c{i:02}").into_boxed_str())).collect();
        for n in &names {
            r.add(Box::new(Fixed(n, if n.ends_with('7') { Err(()) } else { Ok(()) })));
        }
        let (fams, reports) = r.gather(|n| n != "c00").await;
        let mut got: Vec<_> = reports.iter().map(|r| r.name).collect();
        got.sort_unstable();
        assert_eq!(got, names[1..]);
        assert_eq!(success(&fams, "c17"), 0.0);
        assert_eq!(success(&fams, "c18"), 1.0);
        assert_eq!(fams.iter().filter(|f| f.name.starts_with("test_c")).count(), 39);
    }
}
