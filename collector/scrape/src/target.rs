//! What to scrape: a [`ScrapeTarget`] is one endpoint after discovery and target relabeling,
//! with everything its scrape loop needs (interval, timeout, limits, metric relabeling, auth,
//! TLS). Its identity ([`TargetKey`]) is its labels plus its URL, as in Prometheus.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Label pairs.
pub type Labels = Vec<(String, String)>;

/// Metric relabeling of one sample's labels (which include `__name__`), applied after the
/// target labels are attached. Returns `false` to drop the sample. The labels it receives are
/// sorted; it may leave them in any order and may set empty values (which remove the label).
pub type MetricRelabel = Arc<dyn Fn(&mut Vec<(String, String)>) -> bool + Send + Sync>;

/// Default cap on an uncompressed body when `body_size_limit` is 0: 64 MiB (see
/// [`ScrapeLimits::body_size_limit`]).
pub const DEFAULT_BODY_SIZE_LIMIT: usize = 64 << 20;

/// Per-target limits. 0 means "no limit", except for `body_size_limit` (see there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScrapeLimits {
    /// Most samples per scrape after metric relabeling; more fail the scrape.
    pub sample_limit: usize,
    /// Most labels per series (including `__name__` and target labels).
    pub label_limit: usize,
    /// Longest label name in bytes.
    pub label_name_length_limit: usize,
    /// Longest label value in bytes.
    pub label_value_length_limit: usize,
    /// Largest uncompressed response body in bytes. Unlike Prometheus, 0 does not mean
    /// unlimited but [`DEFAULT_BODY_SIZE_LIMIT`], so that one scrape's memory is always bounded.
    pub body_size_limit: usize,
}

impl ScrapeLimits {
    /// The body size cap in force.
    pub fn effective_body_size_limit(&self) -> usize {
        if self.body_size_limit == 0 { DEFAULT_BODY_SIZE_LIMIT } else { self.body_size_limit }
    }
}

/// HTTP authentication sent with every scrape. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Auth {
    /// `Authorization: Basic …`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// `Authorization: Bearer …`.
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic({username}, <secret>)"),
            Self::Bearer(_) => f.write_str("Bearer(<secret>)"),
        }
    }
}

/// TLS settings of a target (`tls_config`). Targets with equal settings share one HTTP client
/// and its connection pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate (`insecure_skip_verify`).
    pub insecure_skip_verify: bool,
    /// Verify the server certificate against this name instead of the URL's host
    /// (`server_name`). SNI still carries the URL's host (none for an IP address).
    pub server_name: Option<String>,
}

/// One target to scrape.
#[derive(Clone)]
pub struct ScrapeTarget {
    /// The scrape pool (job name), reported in the status.
    pub scrape_pool: String,
    /// Final target labels after relabeling (`job`, `instance`, …; no `__` labels), attached
    /// to every scraped series.
    pub labels: Labels,
    /// Labels before relabeling, reported back in the status only.
    pub discovered_labels: Labels,
    /// The URL to GET (scheme, address, metrics path and params already applied).
    pub url: String,
    /// Time between scrapes.
    pub interval: Duration,
    /// Limit for one scrape: request, response headers and body.
    pub timeout: Duration,
    /// Keep exposed labels that clash with target labels (`honor_labels`).
    pub honor_labels: bool,
    /// Use timestamps present in the exposition (`honor_timestamps`).
    pub honor_timestamps: bool,
    /// Limits; a breach fails the scrape.
    pub limits: ScrapeLimits,
    /// Metric relabeling, if any.
    pub metric_relabel: Option<MetricRelabel>,
    /// Authentication, if any.
    pub auth: Option<Auth>,
    /// TLS settings for `https` URLs.
    pub tls: TlsConfig,
    /// When set, every scrape fails with this error without contacting the target (`up 0`,
    /// staleness markers for its series), as Prometheus does for every target of a job over
    /// its `target_limit`.
    pub forced_error: Option<String>,
}

impl fmt::Debug for ScrapeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrapeTarget")
            .field("scrape_pool", &self.scrape_pool)
            .field("labels", &self.labels)
            .field("url", &self.url)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("honor_labels", &self.honor_labels)
            .field("honor_timestamps", &self.honor_timestamps)
            .field("limits", &self.limits)
            .field("metric_relabel", &self.metric_relabel.is_some())
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("forced_error", &self.forced_error)
            .finish_non_exhaustive()
    }
}

impl ScrapeTarget {
    /// A target with Prometheus' defaults (1 min interval, 10 s timeout, timestamps honored)
    /// and `labels` sorted.
    pub fn new(scrape_pool: impl Into<String>, mut labels: Labels, url: impl Into<String>) -> Self {
        labels.sort();
        Self {
            scrape_pool: scrape_pool.into(),
            discovered_labels: Vec::new(),
            labels,
            url: url.into(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            honor_labels: false,
            honor_timestamps: true,
            limits: ScrapeLimits::default(),
            metric_relabel: None,
            auth: None,
            tls: TlsConfig::default(),
            forced_error: None,
        }
    }

    /// The identity used to diff target sets.
    pub fn key(&self) -> TargetKey {
        let mut labels = self.labels.clone();
        labels.sort();
        TargetKey { labels, url: self.url.clone() }
    }

    /// Whether everything that shapes the stored series (labels, honor flags, relabeling) is
    /// the same, so the series cache of the loop stays valid.
    pub(crate) fn same_series_shape(&self, other: &Self) -> bool {
        self.labels == other.labels
            && self.honor_labels == other.honor_labels
            && self.honor_timestamps == other.honor_timestamps
            && match (&self.metric_relabel, &other.metric_relabel) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// A target's identity: its sorted labels and its URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    /// Sorted target labels.
    pub labels: Labels,
    /// The scrape URL.
    pub url: String,
}

impl TargetKey {
    /// A stable 64-bit hash (FNV-1a over labels and URL), the basis of the start offset.
    pub fn hash64(&self) -> u64 {
        let mut h = Fnv64::new();
        for (n, v) in &self.labels {
            h.write(n.as_bytes());
            h.write(&[0xff]);
            h.write(v.as_bytes());
            h.write(&[0xff]);
        }
        h.write(self.url.as_bytes());
        h.0
    }
}

/// FNV-1a, 64 bit.
pub(crate) struct Fnv64(pub(crate) u64);

impl Fnv64 {
    pub(crate) fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Milliseconds from `now_ms` to the target's first scrape, as Prometheus' `offset()`: the
/// phase `(hash ^ seed) % interval` is pinned to absolute time, so a target keeps its slot in
/// the interval across restarts and targets spread evenly over the interval.
pub fn start_offset_ms(key_hash: u64, seed: u64, interval_ms: i64, now_ms: i64) -> i64 {
    let interval = interval_ms.max(1);
    let base = interval - now_ms.rem_euclid(interval);
    let phase = ((key_hash ^ seed) % interval as u64) as i64;
    let mut next = base + phase;
    if next > interval {
        next -= interval;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_pins_the_phase_to_absolute_time() {
        let interval = 15_000;
        for now in [0, 1, 7_321, 14_999, 1_700_000_000_123] {
            let off = start_offset_ms(12_345, 0, interval, now);
            assert!((0..=interval).contains(&off), "offset {off} outside the interval");
            assert_eq!((now + off) % interval, 12_345 % interval, "first scrape at the target's phase (now {now})");
        }
    }

    #[test]
    fn offsets_spread_over_the_interval() {
        let interval = 10_000;
        let mut buckets = [0; 10];
        for i in 0..1000 {
            let t = ScrapeTarget::new(
                "j",
                vec![("instance".into(), format!("h{i}:9100"))],
                format!("http://h{i}:9100/metrics"),
            );
            let off = start_offset_ms(t.key().hash64(), 0, interval, 0);
            buckets[(off / 1000).min(9) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| b > 50), "uneven spread: {buckets:?}");
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let a = Auth::Basic { username: "u".into(), password: "hunter2".into() };
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(!format!("{:?}", Auth::Bearer("tok".into())).contains("tok"));
    }

    #[test]
    fn default_body_limit_applies_when_zero() {
        assert_eq!(ScrapeLimits::default().effective_body_size_limit(), DEFAULT_BODY_SIZE_LIMIT);
        let l = ScrapeLimits { body_size_limit: 10, ..ScrapeLimits::default() };
        assert_eq!(l.effective_body_size_limit(), 10);
    }
}
