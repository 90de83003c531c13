//! Where firing and resolved alerts go: every `[[alerting.alertmanagers]]` entry (a notifier
//! with its queue, Alertmanagers from static config or discovery) and the built-in `[notify]`
//! dispatcher (routes, grouping, silences, persisted "what was sent") delivering to webhook,
//! Slack and Telegram receivers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osprey_discovery::{JobConfigs, Labels, Manager, SdConfig, process};
use osprey_notify::alertmanager::{AmAlert, Config as AmClientConfig, Notifier, RelabelHook, build_client};
use osprey_notify::receivers::{Receiver, Retry, post_with_retry};
use osprey_notify::route::{Dispatcher, InAlert};
use tokio::task::JoinHandle;

use crate::config::{AlertingConfig, AlertmanagerConfig, Config, NotifyConfig, read_secret};

/// An alert on its way out (after `alerts_to_send`), with the evaluation time.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The Alertmanager v2 shape (labels, annotations, times, generator URL).
    pub alert: AmAlert,
    /// Whether it is resolved (`endsAt` not after the evaluation time).
    pub resolved: bool,
}

/// The running notification side. Rebuilt on reload (the dispatcher keeps its silences).
pub struct Notifications {
    /// One notifier per `[[alerting.alertmanagers]]` entry.
    pub notifiers: Vec<Arc<Notifier>>,
    /// The built-in dispatcher and its receivers, when `[notify]` has routes.
    pub dispatcher: Option<Arc<Mutex<Dispatcher>>>,
    /// Where silences are kept across restarts (beside the dispatcher's state file).
    silences_file: Option<PathBuf>,
    client: Option<osprey_notify::HttpClient>,
    external_labels: Labels,
    relabel_configs: Vec<osprey_discovery::RelabelConfig>,
    /// Discovery of Alertmanagers (kept alive while this exists).
    _discovery: Option<Manager>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Notifications {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn am_client_config(a: &AlertingConfig, am: &AlertmanagerConfig) -> Result<AmClientConfig, String> {
    let basic_auth = match &am.basic_auth {
        Some(b) => {
            let password = match (&b.password, &b.password_file) {
                (_, Some(f)) => read_secret(f)?,
                (Some(p), None) => p.clone(),
                (None, None) => String::new(),
            };
            Some((b.username.clone(), password))
        }
        None => None,
    };
    Ok(AmClientConfig {
        alertmanagers: Vec::new(),
        timeout: am.timeout.0,
        queue_capacity: a.queue_capacity,
        batch_size: a.batch_size,
        basic_auth,
        ca_file: am.tls_config.as_ref().and_then(|t| t.ca_file.clone()),
        relabel: None::<RelabelHook>,
    })
}

/// The base URLs of the discovered Alertmanagers of one entry: Prometheus's labels
/// `__address__`, `__scheme__`, `__alerts_path__` after `relabel_configs`.
pub fn alertmanager_urls(am: &AlertmanagerConfig, groups: &[osprey_discovery::TargetGroup]) -> Vec<String> {
    let mut out = Vec::new();
    for g in groups {
        for t in &g.targets {
            let mut l: Labels = g.labels.clone();
            l.extend(t.clone());
            l.entry("__scheme__".into()).or_insert_with(|| am.scheme.clone());
            l.entry("__alerts_path__".into()).or_insert_with(|| am.path_prefix.trim_end_matches('/').to_owned());
            if !process(&mut l, &am.relabel_configs) {
                continue;
            }
            let Some(addr) = l.get("__address__").filter(|a| !a.is_empty()) else { continue };
            let url = format!(
                "{}://{addr}{}",
                l.get("__scheme__").map_or("http", String::as_str),
                l.get("__alerts_path__").map_or("", String::as_str)
            );
            if !out.contains(&url) {
                out.push(url);
            }
        }
    }
    out
}

impl Notifications {
    /// Builds the notifiers and the dispatcher for `cfg` and starts their tasks (must run inside
    /// a tokio runtime). `state_file` is the default place of the dispatcher's memory.
    pub fn start(cfg: &Config, default_state: PathBuf, external_url: &str, debounce: Duration) -> Result<Self, String> {
        let alerting = cfg.alerting.clone().unwrap_or_default();
        let mut notifiers = Vec::new();
        let mut jobs = JobConfigs::new();
        for (i, am) in alerting.alertmanagers.iter().enumerate() {
            let n = Arc::new(Notifier::new(am_client_config(&alerting, am)?)?);
            let mut sd = Vec::new();
            if !am.static_configs.is_empty() {
                sd.push(SdConfig::Static(am.static_configs.clone()));
            }
            sd.extend(am.file_sd_configs.iter().cloned().map(SdConfig::File));
            sd.extend(am.dns_sd_configs.iter().cloned().map(SdConfig::Dns));
            jobs.insert(format!("alertmanager/{i}"), sd);
            notifiers.push(n);
        }
        let mut tasks = Vec::new();
        let discovery = if notifiers.is_empty() {
            None
        } else {
            let m = Manager::start(debounce);
            m.apply(jobs);
            let mut rx = m.subscribe();
            let ams = alerting.alertmanagers.clone();
            let ns = notifiers.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let set = rx.borrow_and_update().clone();
                    for (i, (am, n)) in ams.iter().zip(&ns).enumerate() {
                        let groups = set.get(&format!("alertmanager/{i}")).cloned().unwrap_or_default();
                        let urls = alertmanager_urls(am, &groups);
                        if urls != n.alertmanagers() {
                            tracing::info!(alertmanagers = ?urls, "alertmanagers updated");
                            n.set_alertmanagers(urls);
                        }
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }));
            for n in &notifiers {
                tasks.push(tokio::spawn(Arc::clone(n).run(Duration::from_millis(200))));
            }
            Some(m)
        };
        let notify = cfg.notify.clone().unwrap_or_default();
        let (dispatcher, client, silences_file) = if notify.routes.is_empty() {
            (None, None, None)
        } else {
            let state = notify.state_file.clone().unwrap_or(default_state);
            let silences_file = state.with_extension("silences.json");
            let mut d = Dispatcher::new(notify.routes.clone(), Some(state), external_url);
            for s in load_silences(&silences_file) {
                d.add_silence(s);
            }
            let client = build_client(&AmClientConfig::default())?;
            (Some(Arc::new(Mutex::new(d))), Some(client), Some(silences_file))
        };
        let mut me = Self {
            notifiers,
            dispatcher,
            silences_file,
            client,
            external_labels: cfg.global.external_labels.clone(),
            relabel_configs: alerting.alert_relabel_configs.clone(),
            _discovery: discovery,
            tasks,
        };
        if let (Some(d), Some(c)) = (&me.dispatcher, &me.client) {
            me.tasks.push(tokio::spawn(dispatch_loop(Arc::clone(d), c.clone(), notify)));
        }
        Ok(me)
    }

    /// Hands alerts of one evaluation to every destination: external labels added (alert labels
    /// win), `alert_relabel_configs` applied, then queued for each notifier and fed to the
    /// dispatcher.
    pub fn send(&self, alerts: Vec<Outgoing>, now_ms: i64) {
        if alerts.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(alerts.len());
        let mut dispatched = Vec::with_capacity(alerts.len());
        for mut o in alerts {
            for (k, v) in &self.external_labels {
                o.alert.labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            if !process(&mut o.alert.labels, &self.relabel_configs) || o.alert.labels.is_empty() {
                for n in &self.notifiers {
                    n.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            dispatched.push(InAlert {
                labels: o.alert.labels.clone(),
                annotations: o.alert.annotations.clone(),
                starts_at: o.alert.starts_at.clone(),
                ends_at: if o.resolved { o.alert.ends_at.clone() } else { String::new() },
                resolved: o.resolved,
            });
            out.push(o.alert);
        }
        for n in &self.notifiers {
            n.enqueue(out.clone());
        }
        if let Some(d) = &self.dispatcher {
            d.lock().expect("dispatcher lock").ingest(&dispatched, now_ms);
        }
    }

    /// Carries silences over from the previous instance (at reload).
    pub fn adopt_silences(&self, old: &Notifications) {
        if let (Some(new), Some(old)) = (&self.dispatcher, &old.dispatcher) {
            let s = old.lock().expect("dispatcher lock").silences.clone();
            let mut n = new.lock().expect("dispatcher lock");
            for x in s {
                n.add_silence(x);
            }
        }
    }

    /// Writes the current silences next to the dispatcher's state (atomically), so they
    /// survive a restart.
    pub fn save_silences(&self) {
        let (Some(d), Some(p)) = (&self.dispatcher, &self.silences_file) else { return };
        let list = d.lock().expect("dispatcher lock").silences.clone();
        let tmp = p.with_extension("tmp");
        let res = serde_json::to_vec(&list)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, p));
        if let Err(e) = res {
            tracing::error!(file = %p.display(), error = %e, "saving silences failed");
        }
    }

    /// `prometheus_notifications_*` in the text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        let sum = |f: &dyn Fn(&Notifier) -> u64| self.notifiers.iter().map(|n| f(n)).sum::<u64>();
        for (name, kind, help, v) in [
            (
                "prometheus_notifications_sent_total",
                "counter",
                "Total number of alerts sent.",
                sum(&|n| n.stats.sent.load(Ordering::Relaxed)),
            ),
            (
                "prometheus_notifications_errors_total",
                "counter",
                "Total number of sent alerts affected by errors.",
                sum(&|n| n.stats.errors.load(Ordering::Relaxed)),
            ),
            (
                "prometheus_notifications_dropped_total",
                "counter",
                "Total number of alerts dropped due to errors when sending to Alertmanager.",
                sum(&|n| n.stats.dropped.load(Ordering::Relaxed)),
            ),
            (
                "prometheus_notifications_queue_length",
                "gauge",
                "The number of alert notifications in the queue.",
                sum(&|n| n.queue_len() as u64),
            ),
            (
                "prometheus_notifications_queue_capacity",
                "gauge",
                "The capacity of the alert notifications queue.",
                sum(&|n| n.queue_capacity() as u64),
            ),
            (
                "prometheus_notifications_alertmanagers_discovered",
                "gauge",
                "The number of alertmanagers discovered and active.",
                sum(&|n| n.alertmanagers().len() as u64),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        out
    }
}

/// Silences saved by [`Notifications::save_silences`]; expired ones are dropped by the
/// dispatcher. A missing file is no silences; an unreadable one is logged and ignored.
fn load_silences(p: &std::path::Path) -> Vec<osprey_notify::route::Silence> {
    match std::fs::read(p) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::error!(file = %p.display(), error = %e, "ignoring unreadable silences file");
            Vec::new()
        }),
        Err(_) => Vec::new(),
    }
}

async fn dispatch_loop(d: Arc<Mutex<Dispatcher>>, client: osprey_notify::HttpClient, cfg: NotifyConfig) {
    let by_name: BTreeMap<String, Receiver> = cfg.receivers.iter().map(|r| (r.name().to_owned(), r.clone())).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let due = d.lock().expect("dispatcher lock").due(crate::api::wall_clock_ms());
        for n in due {
            let Some(r) = by_name.get(&n.receiver).cloned() else { continue };
            let (url, body) = n.request_for(&r);
            let client = client.clone();
            tokio::spawn(async move {
                match post_with_retry(&client, &url, &body, Retry::default(), tokio::time::sleep).await {
                    Ok(_) => tracing::info!(receiver = %r.name(), alerts = n.alerts.len(), "notification sent"),
                    Err(e) => tracing::error!(receiver = %r.name(), error = %e, "notification failed"),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_discovery::TargetGroup;

    #[test]
    fn alertmanager_urls_follow_scheme_prefix_and_relabeling() {
        let mut am: AlertmanagerConfig = toml::from_str(
            "scheme = \"https\"\npath_prefix = \"/am/\"\nrelabel_configs = [{ source_labels = [\"__address__\"], regex = \"drop.*\", action = \"drop\" }]\n",
        )
        .unwrap();
        let t = |a: &str| Labels::from([("__address__".to_owned(), a.to_owned())]);
        let groups = vec![TargetGroup {
            source: "0".into(),
            targets: vec![t("a:9093"), t("drop-me:9093"), t("a:9093")],
            labels: Labels::new(),
        }];
        assert_eq!(alertmanager_urls(&am, &groups), ["https://a:9093/am"]);
        am.relabel_configs.clear();
        am.scheme = "http".into();
        am.path_prefix = String::new();
        assert_eq!(alertmanager_urls(&am, &groups), ["http://a:9093", "http://drop-me:9093"]);
    }
}
