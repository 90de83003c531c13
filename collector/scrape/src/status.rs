//! What the API shows about targets ([`TargetStatus`], as `/api/v1/targets` needs it) and the
//! scrape layer's self-metrics ([`ScrapeMetrics`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agent_core::model::{MetricFamily, MetricType, Sample, Suffix};

use crate::append::AppendCounts;
use crate::target::Labels;

/// A target's health, as `/api/v1/targets` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Health {
    /// Not scraped yet.
    Unknown,
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
}

impl Health {
    /// `"unknown"`, `"up"` or `"down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// A snapshot of one active target.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetStatus {
    /// The scrape pool (job).
    pub scrape_pool: String,
    /// The scrape URL.
    pub scrape_url: String,
    /// Target labels.
    pub labels: Labels,
    /// Labels before relabeling.
    pub discovered_labels: Labels,
    /// Health of the last scrape.
    pub health: Health,
    /// Why the last scrape failed; empty when it succeeded.
    pub last_error: String,
    /// Start of the last scrape (its sample timestamp), milliseconds since the epoch.
    pub last_scrape_ms: Option<i64>,
    /// How long the last scrape took (request, parse, append).
    pub last_scrape_duration: Duration,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
    /// Scrapes done since the target appeared.
    pub scrapes: u64,
    /// `scrape_samples_scraped` of the last scrape.
    pub last_samples_scraped: usize,
    /// Uncompressed body size of the last scrape in bytes (0 when it failed before the body).
    pub last_body_bytes: usize,
}

/// Counters of the whole scrape layer, exported as Prometheus' names where Prometheus has the
/// metric (so its dashboards work) and `osprey_scrape_*` otherwise.
#[derive(Debug, Default)]
pub struct ScrapeMetrics {
    pub(crate) scrapes: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) exceeded_sample_limit: AtomicU64,
    pub(crate) exceeded_body_size_limit: AtomicU64,
    pub(crate) exceeded_label_limits: AtomicU64,
    pub(crate) sample_out_of_order: AtomicU64,
    pub(crate) sample_duplicate: AtomicU64,
    pub(crate) sample_out_of_bounds: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) skipped_ticks: AtomicU64,
    pub(crate) active_targets: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) peak_body_buffer: AtomicU64,
    lateness_buckets: [AtomicU64; LATENESS_BUCKETS.len()],
    lateness_count: AtomicU64,
    lateness_sum_micros: AtomicU64,
}

/// Upper bounds (seconds) of `osprey_scrape_start_lateness_seconds`.
const LATENESS_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

impl ScrapeMetrics {
    pub(crate) fn add_refused(&self, c: &AppendCounts) {
        self.sample_out_of_order.fetch_add(c.out_of_order, Ordering::Relaxed);
        self.sample_duplicate.fetch_add(c.duplicate, Ordering::Relaxed);
        self.sample_out_of_bounds.fetch_add(c.out_of_bounds, Ordering::Relaxed);
    }

    /// Records how late a scrape started after its scheduled tick.
    pub(crate) fn observe_lateness(&self, late_ms: i64) {
        let secs = late_ms.max(0) as f64 / 1000.0;
        for (b, bound) in self.lateness_buckets.iter().zip(LATENESS_BUCKETS) {
            if secs <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.lateness_count.fetch_add(1, Ordering::Relaxed);
        self.lateness_sum_micros.fetch_add(late_ms.max(0) as u64 * 1000, Ordering::Relaxed);
    }

    /// Scrapes done, and how many of them failed.
    pub fn scrapes(&self) -> (u64, u64) {
        (self.scrapes.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }

    /// Largest body buffer any scrape has held, in bytes of capacity.
    pub fn peak_body_buffer(&self) -> u64 {
        self.peak_body_buffer.load(Ordering::Relaxed)
    }

    /// Ticks skipped because a scrape of the same target was still running.
    pub fn skipped_ticks(&self) -> u64 {
        self.skipped_ticks.load(Ordering::Relaxed)
    }

    /// The metric families for `/metrics`.
    pub fn families(&self) -> Vec<MetricFamily> {
        let c = |name: &str, help: &str, v: &AtomicU64| {
            let mut f = MetricFamily::new(name, help, MetricType::Counter);
            f.push(&[], v.load(Ordering::Relaxed) as f64);
            f
        };
        let g = |name: &str, help: &str, v: &AtomicU64| {
            let mut f = MetricFamily::new(name, help, MetricType::Gauge);
            f.push(&[], v.load(Ordering::Relaxed) as f64);
            f
        };
        let mut lateness = MetricFamily::new(
            "osprey_scrape_start_lateness_seconds",
            "How late scrapes started after their scheduled tick (schedule jitter).",
            MetricType::Histogram,
        );
        for (b, bound) in self.lateness_buckets.iter().zip(LATENESS_BUCKETS) {
            let mut s = Sample::new(vec![("le".into(), bound.to_string())], b.load(Ordering::Relaxed) as f64);
            s.suffix = Suffix::Bucket;
            lateness.samples.push(s);
        }
        let count = self.lateness_count.load(Ordering::Relaxed) as f64;
        for (suffix, labels, v) in [
            (Suffix::Bucket, vec![("le".to_owned(), "+Inf".to_owned())], count),
            (Suffix::Sum, vec![], self.lateness_sum_micros.load(Ordering::Relaxed) as f64 / 1e6),
            (Suffix::Count, vec![], count),
        ] {
            let mut s = Sample::new(labels, v);
            s.suffix = suffix;
            lateness.samples.push(s);
        }
        vec![
            lateness,
            c("osprey_scrapes_total", "Scrapes done.", &self.scrapes),
            c("osprey_scrapes_failed_total", "Scrapes that failed (up 0).", &self.failed),
            c("osprey_scrape_timeouts_total", "Scrapes that hit scrape_timeout.", &self.timeouts),
            c(
                "osprey_scrape_skipped_ticks_total",
                "Scrape ticks skipped because the previous scrape of the target was still running.",
                &self.skipped_ticks,
            ),
            c("osprey_scrape_target_syncs_total", "Target set updates applied.", &self.syncs),
            g("osprey_scrape_active_targets", "Targets being scraped.", &self.active_targets),
            c(
                "prometheus_target_scrapes_exceeded_sample_limit_total",
                "Scrapes that failed because sample_limit was exceeded.",
                &self.exceeded_sample_limit,
            ),
            c(
                "prometheus_target_scrapes_exceeded_body_size_limit_total",
                "Scrapes that failed because body_size_limit was exceeded.",
                &self.exceeded_body_size_limit,
            ),
            c(
                "prometheus_target_scrape_pool_exceeded_label_limits_total",
                "Scrapes that failed because a label limit was exceeded.",
                &self.exceeded_label_limits,
            ),
            c(
                "prometheus_target_scrapes_sample_out_of_order_total",
                "Samples the storage refused as older than their series' newest.",
                &self.sample_out_of_order,
            ),
            c(
                "prometheus_target_scrapes_sample_duplicate_timestamp_total",
                "Samples the storage refused: same timestamp as their series' newest, other value.",
                &self.sample_duplicate,
            ),
            c(
                "prometheus_target_scrapes_sample_out_of_bounds_total",
                "Samples the storage refused as too old or too far in the future.",
                &self.sample_out_of_bounds,
            ),
        ]
    }
}
