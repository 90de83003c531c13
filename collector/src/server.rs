//! The collector's server loop: loads the config, runs discovery, turns every discovery update
//! into the scrape set (`targets::build` → `to_scrape::convert_all` → `ScrapeManager::sync`,
//! which keeps unchanged targets' loops), reloads on SIGHUP and `POST /-/reload` (a bad config
//! is rejected and the old one kept), and serves `/-/healthy`, `/-/ready`, `/-/reload`,
//! `/api/v1/status/config`, `/api/v1/status/flags`, `/api/v1/targets` (Prometheus's shape, with
//! the scrape loops' health), `/api/v1/targets/metadata`, `/federate` and `/metrics`
//! (see [`crate::endpoints`]).
//!
//! Other route sets (the query API) join through [`app`]'s `extra` routers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use osprey_discovery::{Labels, Manager, public_labels};
use serde_json::json;

use osprey_scrape::{ScrapeManager, TargetKey, TargetStatus};
use osprey_tsdb::Db;

use crate::config::{Config, DEFAULT_CONFIG};
use crate::targets::{JobTargets, build, diff, sd_configs};
use crate::to_scrape::{RelabelCache, convert_all};

/// Where the configuration comes from.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    /// A file, re-read on reload.
    File(PathBuf),
    /// The embedded default.
    Embedded,
}

impl ConfigSource {
    /// Loads and validates; returns the config and its text.
    pub fn load(&self) -> Result<(Config, String), String> {
        match self {
            Self::File(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let dir = p.parent().map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
                let c = Config::parse(&text, &p.display().to_string(), &dir).map_err(|e| e.to_string())?;
                Ok((c, text))
            }
            Self::Embedded => {
                let c = Config::parse(DEFAULT_CONFIG, "<embedded>", std::path::Path::new("."))
                    .map_err(|e| e.to_string())?;
                Ok((c, DEFAULT_CONFIG.to_owned()))
            }
        }
    }
}

/// Shared server state.
pub struct AppState {
    source: ConfigSource,
    config: RwLock<(Arc<Config>, String)>,
    targets: RwLock<Arc<BTreeMap<String, JobTargets>>>,
    /// Targets whose settings could not be turned into a scrape (unreadable secret file):
    /// (job, labels, url) → error.
    target_errors: RwLock<BTreeMap<(String, Labels), String>>,
    manager: Manager,
    /// The scrape loops.
    pub scrape: ScrapeManager,
    /// The TSDB.
    pub db: Arc<Db>,
    relabel: RelabelCache,
    /// Command-line flags for `/api/v1/status/flags`, in Prometheus' names.
    pub flags: BTreeMap<String, String>,
    /// Serializes `resync` so that a reload and a discovery update do not interleave.
    sync_lock: tokio::sync::Mutex<()>,
    /// The rule evaluator, once started (reloads reload its rules; `/metrics` shows its metrics).
    pub ruler: std::sync::OnceLock<Arc<crate::ruler::Ruler>>,
}

impl AppState {
    /// Starts discovery for `config`, scraping into `db`. Must run inside a tokio runtime.
    pub fn start(
        source: ConfigSource,
        config: Config,
        text: String,
        debounce: Duration,
        db: Arc<Db>,
        flags: BTreeMap<String, String>,
    ) -> Arc<Self> {
        let manager = Manager::start(debounce);
        manager.apply(sd_configs(&config));
        let storage: Arc<dyn osprey_scrape::Appendable> = Arc::new(crate::storage::TsdbStorage::new(db.clone()));
        let scrape = ScrapeManager::new(storage, osprey_scrape::ManagerOptions::default());
        let st = Arc::new(Self {
            source,
            config: RwLock::new((Arc::new(config), text)),
            targets: RwLock::new(Arc::new(BTreeMap::new())),
            target_errors: RwLock::new(BTreeMap::new()),
            manager,
            scrape,
            db,
            relabel: RelabelCache::default(),
            flags,
            sync_lock: tokio::sync::Mutex::new(()),
            ruler: std::sync::OnceLock::new(),
        });
        tokio::spawn(follow_discovery(Arc::downgrade(&st), st.manager.subscribe()));
        st
    }

    /// Reloads the config; on error (in the config or in any rule file) the running one is
    /// kept, rules included. Targets whose job settings and labels are unchanged keep their
    /// scrape loops.
    pub async fn reload(&self) -> Result<(), String> {
        let (c, text) = self.source.load()?;
        if let Some(r) = self.ruler.get() {
            let groups = crate::ruler::load_rules(&c)
                .map_err(|e| format!("loading rules: {}", crate::ruler::join_errors(&e)))?;
            r.apply(&c, groups)?;
        }
        self.manager.apply(sd_configs(&c));
        *self.config.write().expect("config lock") = (Arc::new(c), text);
        tracing::info!("configuration reloaded");
        let set = self.manager.subscribe().borrow().clone();
        self.resync(&set).await;
        Ok(())
    }

    /// Builds the targets of `set` under the current config and hands them to the scrape loops.
    async fn resync(&self, set: &osprey_discovery::Discovered) {
        let _g = self.sync_lock.lock().await;
        let cfg = self.config.read().expect("config lock").0.clone();
        let next = Arc::new(build(&cfg, set));
        let prev = self.targets();
        let d = diff(&prev, &next);
        let (scrape, bad) = convert_all(&next, &self.relabel);
        let mut errs = BTreeMap::new();
        for (t, e) in bad {
            tracing::error!(job = %t.job, url = %t.url, error = %e, "target not scraped");
            errs.insert((t.job.clone(), t.labels.clone()), e);
        }
        for (job, jt) in next.iter() {
            if let Some(e) = &jt.limit_error {
                tracing::warn!(job = %job, error = %e, "every scrape of the job fails until its targets fit the limit");
            }
        }
        let s = self.scrape.sync(scrape);
        tracing::info!(
            added = d.added.len(),
            removed = d.removed.len(),
            unchanged = d.unchanged.len(),
            loops_started = s.started,
            loops_stopped = s.stopped,
            loops_kept = s.kept,
            "targets updated"
        );
        *self.target_errors.write().expect("target errors lock") = errs;
        *self.targets.write().expect("targets lock") = next;
    }

    /// The status of a target's scrape loop.
    pub fn target_status(&self, t: &crate::targets::Target) -> Option<TargetStatus> {
        let labels: Vec<(String, String)> = public_labels(&t.labels).into_iter().collect();
        self.scrape.target(&TargetKey { labels, url: t.url.clone() })
    }

    /// The discovery manager's counters.
    pub fn discovery_metrics(&self) -> Arc<osprey_discovery::Metrics> {
        self.manager.metrics()
    }

    /// Stops every scrape loop, then flushes the TSDB's WAL.
    pub async fn shutdown(&self) {
        self.scrape.stop().await;
        if let Err(e) = self.db.maintain() {
            tracing::error!(error = %e, "flushing the TSDB on shutdown failed");
        }
    }

    /// The current target set.
    pub fn targets(&self) -> Arc<BTreeMap<String, JobTargets>> {
        self.targets.read().expect("targets lock").clone()
    }
}

async fn follow_discovery(
    st: std::sync::Weak<AppState>,
    mut rx: tokio::sync::watch::Receiver<Arc<osprey_discovery::Discovered>>,
) {
    while rx.changed().await.is_ok() {
        let Some(st) = st.upgrade() else { return };
        let set = rx.borrow_and_update().clone();
        st.resync(&set).await;
    }
}

/// The HTTP routes of this module and [`crate::endpoints`].
pub fn router(st: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/-/healthy", get(|| async { "Osprey collector is Healthy.\n" }))
        .route("/-/ready", get(|| async { "Osprey collector is Ready.\n" }))
        .route("/-/reload", post(reload))
        .route("/api/v1/status/config", get(status_config))
        .route("/api/v1/targets", get(targets))
        .with_state(st.clone())
        .merge(crate::endpoints::router(st))
}

/// The whole application: [`router`] plus `extra` route sets (e.g. the query API's
/// `api::router(state)`), merged in order.
pub fn app(st: Arc<AppState>, extra: impl IntoIterator<Item = axum::Router>) -> axum::Router {
    extra.into_iter().fold(router(st), axum::Router::merge)
}

async fn reload(State(st): State<Arc<AppState>>) -> Response {
    match st.reload().await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reload failed; keeping the running configuration");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response()
        }
    }
}

async fn status_config(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let text = redact_secrets(&st.config.read().expect("config lock").1);
    // Prometheus's field is named "yaml"; ours carries the TOML text.
    Json(json!({"status": "success", "data": {"yaml": text}}))
}

/// The config text with the values of `password`, `credentials` and `bot_token` replaced by
/// `<secret>`, as Prometheus shows secrets in `/api/v1/status/config`.
pub fn redact_secrets(text: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r#"(?m)\b(password|credentials|bot_token)(\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')"#)
            .expect("static regex")
    });
    re.replace_all(text, "$1$2\"<secret>\"").into_owned()
}

async fn targets(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let t = st.targets();
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for (job, jt) in t.iter() {
        for a in &jt.active {
            let status = st.target_status(a);
            // A job over its target_limit reports the limit through its loops (forced error).
            let err = st.target_errors.read().expect("lock").get(&(a.job.clone(), a.labels.clone())).cloned();
            let (health, last_error, last_scrape, dur) = match (&err, &status) {
                (Some(e), _) => ("down", e.clone(), "0001-01-01T00:00:00Z".to_owned(), 0.0),
                (None, Some(s)) => (
                    s.health.as_str(),
                    s.last_error.clone(),
                    s.last_scrape_ms.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), crate::endpoints::rfc3339_ms),
                    s.last_scrape_duration.as_secs_f64(),
                ),
                (None, None) => ("unknown", String::new(), "0001-01-01T00:00:00Z".to_owned(), 0.0),
            };
            active.push(json!({
                "discoveredLabels": a.discovered,
                "labels": public_labels(&a.labels),
                "scrapePool": job,
                "scrapeUrl": a.url,
                "globalUrl": a.url,
                "lastError": last_error,
                "lastScrape": last_scrape,
                "lastScrapeDuration": dur,
                "health": health,
                "scrapeInterval": osprey_discovery::format_duration(a.interval),
                "scrapeTimeout": osprey_discovery::format_duration(a.timeout),
            }));
        }
        for d in &jt.dropped {
            let labels: &Labels = &d.discovered;
            dropped.push(json!({"discoveredLabels": labels}));
        }
    }
    Json(json!({"status": "success", "data": {"activeTargets": active, "droppedTargets": dropped}}))
}

/// Reloads on every SIGHUP.
pub async fn reload_on_sighup(st: Arc<AppState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        if let Err(e) = st.reload().await {
            tracing::error!(error = %e, "reload failed; keeping the running configuration");
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_config_redacts_secrets() {
        let t = "basic_auth = { username = \"u\", password = \"p\\\"w\" }\nbot_token = '123:abc'\ncredentials=\"tok\"\npassword_file = \"/f\"\n";
        assert_eq!(
            super::redact_secrets(t),
            "basic_auth = { username = \"u\", password = \"<secret>\" }\nbot_token = \"<secret>\"\ncredentials=\"<secret>\"\npassword_file = \"/f\"\n"
        );
    }
}
