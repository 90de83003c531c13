//! Alertmanager v2 client: a bounded queue (oldest dropped first, counted), batches of at most
//! `batch_size`, each batch posted to every Alertmanager with a timeout.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

/// Label set.
pub type Labels = BTreeMap<String, String>;

/// One alert in Alertmanager's v2 `postableAlert` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmAlert {
    /// Labels (identity).
    pub labels: Labels,
    /// Annotations.
    #[serde(default)]
    pub annotations: Labels,
    /// RFC 3339 start.
    #[serde(rename = "startsAt", skip_serializing_if = "String::is_empty", default)]
    pub starts_at: String,
    /// RFC 3339 end (in the past = resolved; in the future = valid until).
    #[serde(rename = "endsAt", skip_serializing_if = "String::is_empty", default)]
    pub ends_at: String,
    /// Link back to the rule's expression.
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty", default)]
    pub generator_url: String,
}

/// Rewrites or drops an alert before sending (`alert_relabel_configs`); `false` drops it.
pub type RelabelHook = Arc<dyn Fn(&mut Labels) -> bool + Send + Sync>;

/// Client configuration (`[alerting]` of the collector's TOML).
#[derive(Clone)]
pub struct Config {
    /// Base URLs of the Alertmanagers, e.g. `http://127.0.0.1:9093` (path prefix allowed).
    pub alertmanagers: Vec<String>,
    /// Per-request timeout (Prometheus default 10s).
    pub timeout: Duration,
    /// Queue capacity (`--alertmanager.notification-queue-capacity`, default 10000).
    pub queue_capacity: usize,
    /// Max alerts per POST (Prometheus: 256).
    pub batch_size: usize,
    /// Basic auth (user, password); the password is never logged.
    pub basic_auth: Option<(String, String)>,
    /// CA file for HTTPS Alertmanagers (system roots otherwise).
    pub ca_file: Option<PathBuf>,
    /// `alert_relabel_configs` applied to every alert.
    pub relabel: Option<RelabelHook>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            alertmanagers: Vec::new(),
            timeout: Duration::from_secs(10),
            queue_capacity: 10_000,
            batch_size: 256,
            basic_auth: None,
            ca_file: None,
            relabel: None,
        }
    }
}

/// Counters named after Prometheus's `prometheus_notifications_*`.
#[derive(Debug, Default)]
pub struct Stats {
    /// `prometheus_notifications_sent_total` (alerts, summed over Alertmanagers).
    pub sent: AtomicU64,
    /// `prometheus_notifications_errors_total` (alerts in failed posts).
    pub errors: AtomicU64,
    /// `prometheus_notifications_dropped_total` (queue overflow or relabel drop).
    pub dropped: AtomicU64,
}

/// The client.
pub struct Notifier {
    cfg: Config,
    /// The Alertmanager base URLs currently sent to (discovery replaces them).
    targets: Mutex<Vec<String>>,
    client: reqwest::Client,
    queue: Mutex<VecDeque<AmAlert>>,
    /// Counters.
    pub stats: Stats,
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// An HTTP client with rustls, `cfg.ca_file` (or the system roots) and `cfg.timeout`; the
/// built-in receivers use it too.
pub fn build_client(cfg: &Config) -> Result<reqwest::Client, String> {
    let mut roots = RootCertStore::empty();
    match &cfg.ca_file {
        Some(p) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p)
                .and_then(Iterator::collect)
                .map_err(|e| format!("reading ca_file {}: {e}", p.display()))?;
            roots.add_parsable_certificates(certs);
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(cfg.timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

impl Notifier {
    /// Creates the client.
    pub fn new(cfg: Config) -> Result<Self, String> {
        let client = build_client(&cfg)?;
        let targets = Mutex::new(cfg.alertmanagers.clone());
        Ok(Self { cfg, targets, client, queue: Mutex::new(VecDeque::new()), stats: Stats::default() })
    }

    /// Replaces the Alertmanager base URLs (from discovery); queued alerts go to the new set.
    pub fn set_alertmanagers(&self, urls: Vec<String>) {
        *self.targets.lock().expect("targets lock") = urls;
    }

    /// The Alertmanager base URLs currently sent to.
    pub fn alertmanagers(&self) -> Vec<String> {
        self.targets.lock().expect("targets lock").clone()
    }

    /// The configured queue capacity.
    pub fn queue_capacity(&self) -> usize {
        self.cfg.queue_capacity
    }

    /// Queues alerts (after relabelling); beyond capacity the oldest are dropped and counted.
    pub fn enqueue(&self, alerts: Vec<AmAlert>) {
        let mut q = self.queue.lock().expect("queue lock");
        for mut a in alerts {
            if let Some(h) = &self.cfg.relabel
                && !h(&mut a.labels)
            {
                continue;
            }
            q.push_back(a);
        }
        let over = q.len().saturating_sub(self.cfg.queue_capacity);
        if over > 0 {
            q.drain(..over);
            self.stats.dropped.fetch_add(over as u64, Ordering::Relaxed);
            tracing::warn!(dropped = over, "alert notification queue full, dropping alerts");
        }
    }

    /// Alerts waiting.
    pub fn queue_len(&self) -> usize {
        self.queue.lock().expect("queue lock").len()
    }

    /// Sends everything queued, batch by batch, to every Alertmanager. Returns how many
    /// batches reached at least one Alertmanager.
    pub async fn flush(&self) -> usize {
        let mut ok_batches = 0;
        loop {
            let batch: Vec<AmAlert> = {
                let mut q = self.queue.lock().expect("queue lock");
                let n = q.len().min(self.cfg.batch_size);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                return ok_batches;
            }
            let mut any = false;
            for am in &self.alertmanagers() {
                match self.post(am, &batch).await {
                    Ok(()) => {
                        any = true;
                        self.stats.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.stats.errors.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        tracing::warn!(alertmanager = %am, error = %e, count = batch.len(), "error sending alerts");
                    }
                }
            }
            if any {
                ok_batches += 1;
            }
        }
    }

    async fn post(&self, base: &str, batch: &[AmAlert]) -> Result<(), String> {
        let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
        let body = serde_json::to_vec(batch).map_err(|e| e.to_string())?;
        let mut req = self
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("user-agent", "osprey-collector")
            .body(body);
        if let Some((u, p)) = &self.cfg.basic_auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        if status.is_success() { Ok(()) } else { Err(format!("bad response status {status}")) }
    }

    /// Runs forever: flushes every `every` (the collector spawns this).
    pub async fn run(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.flush().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(i: usize) -> AmAlert {
        AmAlert {
            labels: [("alertname".to_string(), format!("A{i}"))].into(),
            annotations: Labels::new(),
            starts_at: String::new(),
            ends_at: String::new(),
            generator_url: String::new(),
        }
    }

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let n = Notifier::new(Config { queue_capacity: 3, ..Config::default() }).unwrap();
        n.enqueue((0..5).map(alert).collect());
        assert_eq!(n.queue_len(), 3);
        assert_eq!(n.stats.dropped.load(Ordering::Relaxed), 2);
        let q = n.queue.lock().unwrap();
        assert_eq!(q[0].labels["alertname"], "A2", "oldest dropped first");
    }

    #[test]
    fn relabel_hook_rewrites_and_drops() {
        let hook: RelabelHook = Arc::new(|l: &mut Labels| {
            l.insert("cluster".into(), "eu".into());
            l["alertname"] != "A1"
        });
        let n = Notifier::new(Config { relabel: Some(hook), ..Config::default() }).unwrap();
        n.enqueue((0..3).map(alert).collect());
        let q = n.queue.lock().unwrap();
        assert_eq!(q.len(), 2);
        assert!(q.iter().all(|a| a.labels["cluster"] == "eu"));
    }

    #[test]
    fn serialises_in_alertmanager_v2_shape() {
        let mut a = alert(0);
        a.starts_at = "2026-01-01T00:00:00Z".into();
        let s = serde_json::to_string(&a).unwrap();
        assert_eq!(s, r#"{"labels":{"alertname":"A0"},"annotations":{},"startsAt":"2026-01-01T00:00:00Z"}"#);
    }
}
