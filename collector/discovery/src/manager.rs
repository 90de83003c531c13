//! The discovery manager: runs one provider per (job, SD config), collects their latest
//! groups, and after a debounce publishes the full set of target groups of every job on a
//! `watch` channel. Consumers diff successive sets. On `apply` (a config reload) providers whose
//! config is unchanged keep running and keep their groups.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::group::StaticConfig;
use crate::{DnsSdConfig, FileSdConfig, HttpSdConfig, TargetGroup};

/// One discovery mechanism of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdConfig {
    /// All `static_configs` of the job (sources "0", "1", …).
    Static(Vec<StaticConfig>),
    /// A `file_sd_configs` entry.
    File(FileSdConfig),
    /// A `dns_sd_configs` entry.
    Dns(DnsSdConfig),
    /// An `http_sd_configs` entry.
    Http(HttpSdConfig),
}

/// SD configs per job name.
pub type JobConfigs = BTreeMap<String, Vec<SdConfig>>;

/// The full set of target groups per job name; every configured job is present.
pub type Discovered = BTreeMap<String, Vec<TargetGroup>>;

/// Discovery counters (for the collector's `/metrics`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Target files that failed to read or parse (`prometheus_sd_file_read_errors_total`).
    pub file_read_errors: AtomicU64,
    /// Failed DNS lookups (`prometheus_sd_dns_lookup_failures_total`).
    pub dns_lookup_failures: AtomicU64,
    /// Failed HTTP SD refreshes (`prometheus_sd_http_failures_total`).
    pub http_failures: AtomicU64,
    /// Sets published to consumers (`prometheus_sd_updates_total`).
    pub updates: AtomicU64,
}

/// A provider's handle for publishing its full current set of groups.
#[derive(Clone)]
pub(crate) struct ProviderTx {
    id: u64,
    tx: mpsc::UnboundedSender<(u64, Vec<TargetGroup>)>,
}

impl ProviderTx {
    /// Publishes the provider's complete set of groups.
    pub(crate) fn send(&self, groups: Vec<TargetGroup>) {
        let _ = self.tx.send((self.id, groups));
    }
}

struct Provider {
    job: String,
    cfg: SdConfig,
    id: u64,
    task: JoinHandle<()>,
    groups: Option<Vec<TargetGroup>>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The running discovery manager. Dropping it stops every provider.
pub struct Manager {
    cmd: mpsc::UnboundedSender<JobConfigs>,
    rx: watch::Receiver<Arc<Discovered>>,
    metrics: Arc<Metrics>,
    task: JoinHandle<()>,
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Manager {
    /// Starts the manager on the current tokio runtime; updates are published at most once per
    /// `debounce` (Prometheus uses 5 s).
    pub fn start(debounce: Duration) -> Self {
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let (tx, rx) = watch::channel(Arc::new(Discovered::new()));
        let metrics = Arc::new(Metrics::default());
        let task = tokio::spawn(run(cmd_rx, tx, debounce, metrics.clone()));
        Self { cmd, rx, metrics, task }
    }

    /// Replaces the configuration; unchanged providers keep running.
    pub fn apply(&self, jobs: JobConfigs) {
        let _ = self.cmd.send(jobs);
    }

    /// A receiver of the published sets (the latest is always available with `borrow`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Discovered>> {
        self.rx.clone()
    }

    /// The discovery counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }
}

fn spawn_provider(cfg: &SdConfig, ptx: ProviderTx, metrics: Arc<Metrics>) -> JoinHandle<()> {
    match cfg.clone() {
        SdConfig::Static(list) => tokio::spawn(async move {
            let mut groups = Vec::new();
            for (i, c) in list.iter().enumerate() {
                match c.to_group(i.to_string()) {
                    Ok(g) => groups.push(g),
                    Err(e) => tracing::error!(error = %e, "static_configs: invalid group"),
                }
            }
            ptx.send(groups);
        }),
        SdConfig::File(c) => tokio::spawn(crate::file_sd::run(c, ptx, metrics)),
        SdConfig::Dns(c) => tokio::spawn(crate::dns_sd::run(c, ptx, metrics)),
        SdConfig::Http(c) => tokio::spawn(crate::http_sd::run(c, ptx, metrics)),
    }
}

async fn run(
    mut cmd_rx: mpsc::UnboundedReceiver<JobConfigs>,
    out: watch::Sender<Arc<Discovered>>,
    debounce: Duration,
    metrics: Arc<Metrics>,
) {
    let (upd_tx, mut upd_rx) = mpsc::unbounded_channel::<(u64, Vec<TargetGroup>)>();
    let mut providers: Vec<Provider> = Vec::new();
    let mut jobs = JobConfigs::new();
    let mut next_id = 0u64;
    let mut deadline: Option<Instant> = None;
    loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let mut dirty = false;
        tokio::select! {
            cmd = cmd_rx.recv() => {
                let Some(new_jobs) = cmd else { return };
                let mut keep = Vec::new();
                for (job, cfgs) in &new_jobs {
                    for cfg in cfgs {
                        if let Some(pos) = providers.iter().position(|p| &p.job == job && &p.cfg == cfg) {
                            keep.push(providers.swap_remove(pos));
                        } else {
                            next_id += 1;
                            let ptx = ProviderTx { id: next_id, tx: upd_tx.clone() };
                            let task = spawn_provider(cfg, ptx, metrics.clone());
                            keep.push(Provider { job: job.clone(), cfg: cfg.clone(), id: next_id, task, groups: None });
                        }
                    }
                }
                // Whatever is left is no longer configured; dropping aborts its task.
                providers = keep;
                jobs = new_jobs;
                dirty = true;
            }
            Some((id, groups)) = upd_rx.recv() => {
                if let Some(p) = providers.iter_mut().find(|p| p.id == id)
                    && p.groups.as_ref() != Some(&groups)
                {
                    p.groups = Some(groups);
                    dirty = true;
                }
            }
            () = sleep => {
                deadline = None;
                let mut set = Discovered::new();
                for (job, cfgs) in &jobs {
                    let mut groups = Vec::new();
                    for cfg in cfgs {
                        if let Some(p) = providers.iter().find(|p| &p.job == job && &p.cfg == cfg) {
                            groups.extend(p.groups.iter().flatten().cloned());
                        }
                    }
                    set.insert(job.clone(), groups);
                }
                metrics.updates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                out.send_replace(Arc::new(set));
            }
        }
        if dirty && deadline.is_none() {
            deadline = Some(Instant::now() + debounce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statics(targets: &[&str]) -> SdConfig {
        SdConfig::Static(vec![StaticConfig {
            targets: targets.iter().map(|s| (*s).to_owned()).collect(),
            labels: crate::Labels::new(),
        }])
    }

    async fn wait_for(
        rx: &mut watch::Receiver<Arc<Discovered>>,
        pred: impl Fn(&Discovered) -> bool,
    ) -> Arc<Discovered> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                {
                    let cur = rx.borrow_and_update().clone();
                    if pred(&cur) {
                        return cur;
                    }
                }
                rx.changed().await.expect("manager alive");
            }
        })
        .await
        .expect("condition reached")
    }

    #[tokio::test]
    async fn publishes_full_sets_per_job_and_reloads() {
        let m = Manager::start(Duration::from_millis(20));
        let mut rx = m.subscribe();
        m.apply(JobConfigs::from([
            ("a".into(), vec![statics(&["h1:1", "h2:2"])]),
            ("b".into(), vec![statics(&["h3:3"])]),
        ]));
        let set = wait_for(&mut rx, |s| s.len() == 2 && s["a"].len() == 1 && s["b"].len() == 1).await;
        assert_eq!(set["a"][0].source, "0");
        assert_eq!(set["a"][0].targets.len(), 2);
        // Reload: job b removed, job a unchanged, job c added.
        m.apply(JobConfigs::from([("a".into(), vec![statics(&["h1:1", "h2:2"])]), ("c".into(), vec![])]));
        let set = wait_for(&mut rx, |s| s.contains_key("c")).await;
        assert!(!set.contains_key("b"));
        assert_eq!(set["a"][0].targets.len(), 2, "unchanged provider keeps its groups across a reload");
        assert!(set["c"].is_empty());
        assert!(m.metrics().updates.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    }
}
