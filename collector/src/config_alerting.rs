//! The alerting parts of the collector's TOML: `[alerting]` (Alertmanagers to send to, as
//! Prometheus's `alerting:` section, plus the notifier's queue settings) and `[notify]` (the
//! built-in routes and receivers for fleets without an Alertmanager).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use osprey_discovery::{DnsSdConfig, FileSdConfig, PromDuration, RelabelConfig, StaticConfig};
use osprey_notify::receivers::Receiver;
use osprey_notify::route::Route;
use serde::{Deserialize, Serialize};

use crate::config::{BasicAuth, TlsConfig, d_1m, d_10s, fix_path, http};
use crate::locate::Seg;

fn v2() -> String {
    "v2".into()
}
fn batch() -> usize {
    256
}
fn capacity() -> usize {
    10_000
}

/// One `[[alerting.alertmanagers]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// `http` or `https`.
    #[serde(default = "http")]
    pub scheme: String,
    /// Path prefix of the Alertmanager API.
    #[serde(default)]
    pub path_prefix: String,
    /// Push timeout (default 10s).
    #[serde(default = "d_10s")]
    pub timeout: PromDuration,
    /// API version (`v2`, the only one Alertmanager 0.25+ serves).
    #[serde(default = "v2")]
    pub api_version: String,
    /// HTTP basic authentication towards the Alertmanagers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// TLS settings for `https` (the CA file is used; rustls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Alertmanager addresses (`host:port`).
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// File-based discovery of Alertmanagers.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// DNS-based discovery of Alertmanagers (SRV, A or AAAA records).
    #[serde(default)]
    pub dns_sd_configs: Vec<DnsSdConfig>,
    /// Relabeling of discovered Alertmanagers (`__address__`, `__scheme__`, `__alerts_path__`).
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
}

/// `[alerting]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Relabeling applied to alerts before sending.
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// Where to send alerts.
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
    /// Minimum time between re-sends of a still-firing alert (Prometheus's
    /// `--rules.alert.resend-delay`, default 1m).
    #[serde(default = "d_1m")]
    pub resend_delay: PromDuration,
    /// Most alerts per `POST /api/v2/alerts` (default 256, as Prometheus).
    #[serde(default = "batch")]
    pub batch_size: usize,
    /// Alerts queued for sending before the oldest are dropped and counted (Prometheus's
    /// `--alertmanager.notification-queue-capacity`, default 10000).
    #[serde(default = "capacity")]
    pub queue_capacity: usize,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            alert_relabel_configs: Vec::new(),
            alertmanagers: Vec::new(),
            resend_delay: d_1m(),
            batch_size: batch(),
            queue_capacity: capacity(),
        }
    }
}

type Invalid = (Vec<Seg>, String);

impl AlertingConfig {
    /// Validates and resolves relative paths against `dir`.
    pub(crate) fn finish(&mut self, dir: &Path) -> Result<(), Invalid> {
        let at = |k: &str| vec![Seg::k("alerting"), Seg::k(k)];
        for (j, r) in self.alert_relabel_configs.iter().enumerate() {
            r.validate().map_err(|m| (vec![Seg::k("alerting"), Seg::k("alert_relabel_configs"), Seg::i(j)], m))?;
        }
        if self.batch_size == 0 {
            return Err((at("batch_size"), "batch_size must be greater than 0".into()));
        }
        if self.queue_capacity == 0 {
            return Err((at("queue_capacity"), "queue_capacity must be greater than 0".into()));
        }
        for (j, am) in self.alertmanagers.iter_mut().enumerate() {
            let at = |k: &str| vec![Seg::k("alerting"), Seg::k("alertmanagers"), Seg::i(j), Seg::k(k)];
            if am.api_version != "v2" {
                return Err((at("api_version"), format!("unsupported api_version {:?}: only \"v2\"", am.api_version)));
            }
            if am.scheme != "http" && am.scheme != "https" {
                return Err((at("scheme"), format!("invalid scheme {:?}: expected \"http\" or \"https\"", am.scheme)));
            }
            if am.timeout.0.is_zero() {
                return Err((at("timeout"), "timeout must be greater than 0".into()));
            }
            if let Some(b) = &mut am.basic_auth {
                if b.password.is_some() && b.password_file.is_some() {
                    return Err((
                        at("basic_auth"),
                        "at most one of basic_auth password & password_file must be configured".into(),
                    ));
                }
                if let Some(p) = &mut b.password_file {
                    fix_path(p, dir);
                }
            }
            if let Some(t) = &mut am.tls_config {
                for p in [&mut t.ca_file, &mut t.cert_file, &mut t.key_file].into_iter().flatten() {
                    fix_path(p, dir);
                }
            }
            for s in &am.static_configs {
                s.to_group(String::new()).map_err(|m| (at("static_configs"), m))?;
            }
            for f in &mut am.file_sd_configs {
                f.validate().map_err(|m| (at("file_sd_configs"), m))?;
                f.set_directory(dir);
            }
            for d in &am.dns_sd_configs {
                d.validate().map_err(|m| (at("dns_sd_configs"), m))?;
            }
            for r in &am.relabel_configs {
                r.validate().map_err(|m| (at("relabel_configs"), m))?;
            }
        }
        Ok(())
    }
}

/// `[notify]`: alerts routed by the collector itself to Slack, Telegram or webhooks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `[[notify.route]]`: matchers, `group_by`, `group_wait`/`group_interval`/
    /// `repeat_interval` (seconds), `continue`; the first matching route wins unless it continues.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// `[[notify.receiver]]`: `type = "webhook" | "slack" | "telegram"` with a unique `name`.
    #[serde(default, rename = "receiver")]
    pub receivers: Vec<Receiver>,
    /// Where what was sent is remembered across restarts (default `<data-dir>/notify-state.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
}

impl NotifyConfig {
    /// Checks that receiver names are unique and every route names one.
    pub(crate) fn finish(&mut self, dir: &Path) -> Result<(), Invalid> {
        let mut names = BTreeSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let at = vec![Seg::k("notify"), Seg::k("receiver"), Seg::i(i), Seg::k("name")];
            if r.name().is_empty() {
                return Err((at, "receiver name is empty".into()));
            }
            if !names.insert(r.name().to_owned()) {
                return Err((at, format!("duplicate receiver name {:?}", r.name())));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if !names.contains(&r.receiver) {
                return Err((
                    vec![Seg::k("notify"), Seg::k("route"), Seg::i(i), Seg::k("receiver")],
                    format!("route names receiver {:?}, which is not defined in [[notify.receiver]]", r.receiver),
                ));
            }
        }
        if let Some(p) = &mut self.state_file {
            fix_path(p, dir);
        }
        Ok(())
    }

    /// The receiver called `name`.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name() == name)
    }
}
