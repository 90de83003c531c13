//! The collector's server loop (discovery and HTTP for now): loads the config, runs discovery,
//! keeps the current target set (diffed on every discovery update), reloads on SIGHUP and
//! `POST /-/reload` (a bad config is rejected and the old one kept), and serves `/-/healthy`,
//! `/-/ready`, `/-/reload`, `/api/v1/status/config` and `/api/v1/targets` (Prometheus's shape;
//! scrape health is "unknown" until the scrape loop is wired in).

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

use crate::config::{Config, DEFAULT_CONFIG};
use crate::targets::{JobTargets, build, diff, sd_configs};

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
    manager: Manager,
}

impl AppState {
    /// Starts discovery for `config`.
    pub fn start(source: ConfigSource, config: Config, text: String, debounce: Duration) -> Arc<Self> {
        let manager = Manager::start(debounce);
        manager.apply(sd_configs(&config));
        let st = Arc::new(Self {
            source,
            config: RwLock::new((Arc::new(config), text)),
            targets: RwLock::new(Arc::new(BTreeMap::new())),
            manager,
        });
        tokio::spawn(follow_discovery(Arc::downgrade(&st), st.manager.subscribe()));
        st
    }

    /// Reloads the config; on error the running one is kept.
    pub fn reload(&self) -> Result<(), String> {
        let (c, text) = self.source.load()?;
        self.manager.apply(sd_configs(&c));
        *self.config.write().expect("config lock") = (Arc::new(c), text);
        tracing::info!("configuration reloaded");
        Ok(())
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
        let cfg = st.config.read().expect("config lock").0.clone();
        let next = Arc::new(build(&cfg, &set));
        let prev = st.targets();
        let d = diff(&prev, &next);
        tracing::info!(
            added = d.added.len(),
            removed = d.removed.len(),
            unchanged = d.unchanged.len(),
            "targets updated"
        );
        *st.targets.write().expect("targets lock") = next;
    }
}

/// The HTTP routes.
pub fn router(st: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/-/healthy", get(|| async { "Osprey collector is Healthy.\n" }))
        .route("/-/ready", get(|| async { "Osprey collector is Ready.\n" }))
        .route("/-/reload", post(reload))
        .route("/api/v1/status/config", get(status_config))
        .route("/api/v1/targets", get(targets))
        .with_state(st)
}

async fn reload(State(st): State<Arc<AppState>>) -> Response {
    match st.reload() {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response(),
    }
}

async fn status_config(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let text = st.config.read().expect("config lock").1.clone();
    // Prometheus's field is named "yaml"; ours carries the TOML text.
    Json(json!({"status": "success", "data": {"yaml": text}}))
}

async fn targets(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let t = st.targets();
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for (job, jt) in t.iter() {
        for a in &jt.active {
            active.push(json!({
                "discoveredLabels": a.discovered,
                "labels": public_labels(&a.labels),
                "scrapePool": job,
                "scrapeUrl": a.url,
                "globalUrl": a.url,
                "lastError": jt.limit_error.clone().unwrap_or_default(),
                "lastScrape": "0001-01-01T00:00:00Z",
                "lastScrapeDuration": 0,
                "health": "unknown",
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
        if let Err(e) = st.reload() {
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
