//! The registry: runs every enabled collector concurrently for each scrape, each with its own
//! timeout, and reports `node_scrape_collector_{duration_seconds,success}`.
//!
//! A collector runs on tokio's blocking pool. A collector still running from an earlier scrape
//! (stuck in a syscall, say) is not started again: it is reported with success 0 until it
//! returns, so stuck threads never pile up.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::collector::{CollectError, Collector, Sink};
use crate::model::{MetricFamily, MetricType};

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
}

impl Registry {
    /// An empty registry whose collectors each get `timeout` per scrape.
    pub fn new(timeout: Duration) -> Self {
        Self { entries: Vec::new(), timeout }
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
        let mut tasks = tokio::task::JoinSet::new();
        let mut reports = Vec::new();
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
            let collector = Arc::clone(&e.collector);
            let busy = Arc::clone(&e.busy);
            let timeout = self.timeout;
            tasks.spawn(async move {
                let handle = tokio::task::spawn_blocking(move || {
                    let start = Instant::now();
                    let mut sink = Sink::new();
                    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| collector.collect(&mut sink)))
                        .unwrap_or_else(|_| Err(CollectError::Other("collector panicked".into())));
                    busy.store(false, Ordering::Release);
                    (sink, res, start.elapsed())
                });
                match tokio::time::timeout(timeout, handle).await {
                    Ok(Ok((sink, res, dur))) => (idx, Some(sink), res, dur),
                    Ok(Err(join)) => (idx, None, Err(CollectError::Other(format!("collector task failed: {join}"))), timeout),
                    Err(_) => (
                        idx,
                        None,
                        Err(CollectError::Other(format!("timed out after {}s", timeout.as_secs_f64()))),
                        timeout,
                    ),
                }
            });
        }
        let mut families = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let Ok((idx, sink, res, duration)) = joined else { continue };
            let name = self.entries[idx].collector.name();
            if let Some(sink) = sink {
                families.extend(sink.into_families());
            }
            let success = match res {
                Ok(()) => true,
                Err(err) => {
                    self.log_error(idx, &err);
                    false
                }
            };
            reports.push(CollectorReport { name, duration, success });
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
}
