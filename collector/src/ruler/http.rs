//! `/api/v1/rules`, `/api/v1/alerts` (Prometheus's shapes) and `/api/v1/silences` (silences of
//! the built-in `[notify]` dispatcher: `POST` with matchers and an expiry, `GET`, `DELETE
//! /api/v1/silences/{id}`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use osprey_discovery::PromDuration;
use osprey_notify::route::{Matcher, Silence};
use osprey_rules::api::{RulesFilter, alerts_data, rules_data, success};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Ruler;
use crate::api::{Params, wall_clock_ms};

/// The routes of this module.
pub fn router(r: Arc<Ruler>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules).post(rules))
        .route("/api/v1/alerts", get(alerts).post(alerts))
        .route("/api/v1/silences", get(list_silences).post(add_silence))
        .route("/api/v1/silences/{id}", delete(delete_silence))
        .with_state(r)
}

fn reply(code: StatusCode, v: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn bad_data(msg: &str) -> Response {
    reply(StatusCode::BAD_REQUEST, &json!({"status": "error", "errorType": "bad_data", "error": msg}))
}

async fn rules(State(r): State<Arc<Ruler>>, p: Params) -> Response {
    let kind = match p.get("type") {
        None | Some("") => None,
        Some(t @ ("alert" | "record")) => Some(t.to_owned()),
        Some(t) => return bad_data(&format!("invalid parameter \"type\": unsupported type {t:?}")),
    };
    let own = |n: &str| p.all(n).into_iter().map(str::to_owned).collect::<Vec<_>>();
    let exclude_alerts = match p.get("exclude_alerts") {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(v) => return bad_data(&format!("invalid parameter \"exclude_alerts\": {v:?} is not a boolean")),
    };
    let f = RulesFilter {
        kind,
        rule_names: own("rule_name[]"),
        group_names: own("rule_group[]").into_iter().chain(own("group_name[]")).collect(),
        files: own("file[]"),
        exclude_alerts,
    };
    let groups = tokio::task::spawn_blocking(move || r.groups()).await.unwrap_or_default();
    reply(StatusCode::OK, &success(&rules_data(&groups, &f)))
}

async fn alerts(State(r): State<Arc<Ruler>>) -> Response {
    let groups = tokio::task::spawn_blocking(move || r.groups()).await.unwrap_or_default();
    reply(StatusCode::OK, &success(&alerts_data(&groups)))
}

/// The body of `POST /api/v1/silences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewSilence {
    /// Label matchers (`name="v"`, `name=~"re"`, …), all must match.
    matchers: Vec<Matcher>,
    /// Start (Unix ms); now when absent.
    #[serde(default)]
    starts_at_ms: Option<i64>,
    /// Expiry (Unix ms); or give `duration`.
    #[serde(default)]
    ends_at_ms: Option<i64>,
    /// How long from the start (`2h`).
    #[serde(default)]
    duration: Option<PromDuration>,
    /// Who.
    #[serde(default)]
    created_by: String,
    /// Why.
    #[serde(default)]
    comment: String,
}

const NO_ROUTES: &str = "silences apply to the built-in [notify] routes, and none are configured";

async fn add_silence(State(r): State<Arc<Ruler>>, body: axum::body::Bytes) -> Response {
    let s: NewSilence = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_data(&format!("invalid silence: {e}")),
    };
    if s.matchers.is_empty() {
        return bad_data("invalid silence: at least one matcher is required");
    }
    let start = s.starts_at_ms.unwrap_or_else(wall_clock_ms);
    let end = match (s.ends_at_ms, s.duration) {
        (Some(e), None) => e,
        (None, Some(d)) => start + d.0.as_millis() as i64,
        _ => return bad_data("invalid silence: give exactly one of endsAtMs and duration"),
    };
    if end <= start {
        return bad_data("invalid silence: it ends before it starts");
    }
    let n = r.notifications();
    let Some(d) = &n.dispatcher else { return bad_data(NO_ROUTES) };
    // Ids unique across restarts (silences are persisted): time and a process-wide counter.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = d.lock().expect("dispatcher lock").add_silence(Silence {
        id: format!("{:x}-{seq}", wall_clock_ms()),
        matchers: s.matchers,
        starts_at_ms: start,
        ends_at_ms: end,
        created_by: s.created_by,
        comment: s.comment,
    });
    n.save_silences();
    reply(StatusCode::OK, &json!({"status": "success", "data": {"silenceId": id}}))
}

async fn list_silences(State(r): State<Arc<Ruler>>) -> Response {
    let n = r.notifications();
    let list = n.dispatcher.as_ref().map(|d| d.lock().expect("dispatcher lock").silences.clone()).unwrap_or_default();
    let now = wall_clock_ms();
    let data: Vec<Value> = list
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["status"] = json!(if s.starts_at_ms > now { "pending" } else { "active" });
            v
        })
        .collect();
    reply(StatusCode::OK, &json!({"status": "success", "data": data}))
}

async fn delete_silence(State(r): State<Arc<Ruler>>, Path(id): Path<String>) -> Response {
    let n = r.notifications();
    let Some(d) = &n.dispatcher else { return bad_data(NO_ROUTES) };
    let deleted = d.lock().expect("dispatcher lock").delete_silence(&id);
    if deleted {
        n.save_silences();
        reply(StatusCode::OK, &json!({"status": "success"}))
    } else {
        reply(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "errorType": "not_found", "error": format!("silence {id:?} not found")}),
        )
    }
}
