//! `/federate`, `/metrics`, `/api/v1/status/flags` and `/api/v1/targets/metadata`.
//!
//! * `/federate?match[]=SELECTOR…`: the newest sample (with its timestamp) of every series that
//!   matches any selector and has a sample in the last 5 minutes that is not a staleness
//!   marker, in the text exposition format, as Prometheus serves it.
//! * `/metrics`: the collector's own metrics: `osprey_*` (scrape layer, TSDB, discovery) plus
//!   the Prometheus names dashboards query (`prometheus_tsdb_head_series`,
//!   `prometheus_target_scrapes_*`, `prometheus_sd_*`, …).
//! * `/api/v1/targets/metadata`: the collector does not keep metric metadata (HELP/TYPE) from
//!   scrapes, so the answer is always a success with empty `data`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use agent_core::encode::{Format, encode};
use agent_core::model::{MetricFamily, MetricType, Sample};
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use osprey_tsdb::{MatchOp, Matcher, STALE_NAN_BITS};
use serde_json::json;

use crate::server::AppState;

/// How far back `/federate` looks for a series' newest sample.
pub const FEDERATE_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The routes of this module.
pub fn router(st: Arc<AppState>) -> Router {
    Router::new()
        .route("/federate", get(federate))
        .route("/metrics", get(metrics))
        .route("/api/v1/status/flags", get(flags))
        .route("/api/v1/targets/metadata", get(|| async { Json(json!({"status": "success", "data": []})) }))
        .with_state(st)
}

pub use agent_core::calendar::rfc3339_millis as rfc3339_ms;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Parses one `match[]` selector into alternatives of TSDB matchers.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    use promql_parser::label::MatchOp as P;
    use promql_parser::parser::Expr;
    let expr = osprey_promql::durations::parse_checked(s).map_err(|e| format!("invalid selector {s:?}: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("invalid selector {s:?}: not a series selector"));
    };
    let conv = |m: &promql_parser::label::Matcher| -> Result<Matcher, String> {
        let op = match m.op {
            P::Equal => MatchOp::Eq,
            P::NotEqual => MatchOp::Ne,
            P::Re(_) => MatchOp::Re,
            P::NotRe(_) => MatchOp::Nre,
        };
        Matcher::new(op, &m.name, &m.value).map_err(|e| e.to_string())
    };
    let mut base = vs.matchers.matchers.iter().map(conv).collect::<Result<Vec<_>, _>>()?;
    if let Some(n) = &vs.name {
        base.push(Matcher::eq("__name__", n));
    }
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![base]);
    }
    vs.matchers
        .or_matchers
        .iter()
        .map(|g| {
            let mut v = g.iter().map(conv).collect::<Result<Vec<_>, _>>()?;
            v.extend(base.iter().cloned());
            Ok(v)
        })
        .collect()
}

fn match_params(query: Option<&str>) -> Vec<String> {
    let Some(q) = query else { return Vec::new() };
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| decode(k) == "match[]")
        .map(|(_, v)| decode(v))
        .collect()
}

async fn federate(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let sels = match_params(q.as_deref());
    if sels.is_empty() {
        return (StatusCode::BAD_REQUEST, "bad request: no match[] parameter given\n").into_response();
    }
    let mut alternatives = Vec::new();
    for s in &sels {
        match parse_selector(s) {
            Ok(v) => alternatives.extend(v),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("bad request: {e}\n")).into_response(),
        }
    }
    let now = now_ms();
    let q = st.db.querier(now - FEDERATE_LOOKBACK_MS, now);
    let mut latest: BTreeMap<osprey_tsdb::Labels, (i64, f64)> = BTreeMap::new();
    for ms in &alternatives {
        for s in q.select(ms) {
            if let Some((t, v)) = s.samples().last()
                && v.to_bits() != STALE_NAN_BITS
            {
                latest.insert(s.labels.clone(), (t, v));
            }
        }
    }
    let mut fams: Vec<MetricFamily> = Vec::new();
    for (labels, (t, v)) in latest {
        let name = labels.get("__name__").unwrap_or_default().to_owned();
        if fams.last().is_none_or(|f| f.name != name) {
            fams.push(MetricFamily::new(name.clone(), "", MetricType::Untyped));
        }
        let ls = labels.iter().filter(|(n, _)| *n != "__name__").map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
        let mut sample = Sample::new(ls, v);
        sample.timestamp_ms = Some(t);
        fams.last_mut().expect("pushed above").samples.push(sample);
    }
    let mut out = Vec::new();
    encode(&mut out, &fams, Format::Text);
    ([(header::CONTENT_TYPE, Format::Text.content_type())], out).into_response()
}

fn gauge(name: &str, help: &str, v: f64) -> MetricFamily {
    let mut f = MetricFamily::new(name, help, MetricType::Gauge);
    f.push(&[], v);
    f
}

fn counter(name: &str, help: &str, v: f64) -> MetricFamily {
    let mut f = MetricFamily::new(name, help, MetricType::Counter);
    f.push(&[], v);
    f
}

/// The self-metrics families.
pub fn self_metrics(st: &AppState) -> Vec<MetricFamily> {
    let mut fams = st.scrape.metrics().families();
    let (scrapes, failed) = st.scrape.metrics().scrapes();
    let ts = st.db.stats();
    let d = st.discovery_metrics();
    let active: usize = st.targets().values().map(|j| j.active.len()).sum();
    fams.extend([
        gauge("osprey_tsdb_head_series", "Series in the TSDB head.", ts.head_series as f64),
        gauge("prometheus_tsdb_head_series", "Series in the TSDB head.", ts.head_series as f64),
        counter("osprey_tsdb_head_samples_appended_total", "Samples appended.", ts.head_samples_appended as f64),
        counter("prometheus_tsdb_head_samples_appended_total", "Samples appended.", ts.head_samples_appended as f64),
        gauge("osprey_tsdb_wal_size_bytes", "WAL size.", ts.wal_size_bytes as f64),
        gauge("osprey_tsdb_blocks_loaded", "Blocks loaded.", ts.blocks as f64),
        gauge("prometheus_tsdb_blocks_loaded", "Blocks loaded.", ts.blocks as f64),
        gauge("prometheus_tsdb_storage_blocks_bytes", "Bytes of all blocks.", ts.blocks_bytes as f64),
        counter("prometheus_tsdb_compactions_total", "Compactions run.", ts.compactions as f64),
        counter("prometheus_tsdb_compactions_failed_total", "Compactions failed.", ts.compactions_failed as f64),
        counter("osprey_tsdb_wal_fsyncs_total", "WAL fsyncs.", ts.wal_fsyncs as f64),
        counter("osprey_tsdb_wal_corruptions_total", "WAL corruptions found.", ts.wal_corruptions as f64),
        counter("osprey_tsdb_retention_deletions_total", "Blocks deleted by retention.", ts.retention_deletions as f64),
        gauge("osprey_targets_active", "Active targets.", active as f64),
        gauge("osprey_scrape_loops", "Running scrape loops.", st.scrape.targets().len() as f64),
        counter("osprey_scrapes_ok_total", "Scrapes that succeeded.", (scrapes - failed) as f64),
        counter("prometheus_sd_updates_total", "Discovery sets published.", d.updates.load(Ordering::Relaxed) as f64),
        counter(
            "prometheus_sd_file_read_errors_total",
            "file_sd read errors.",
            d.file_read_errors.load(Ordering::Relaxed) as f64,
        ),
        counter(
            "prometheus_sd_dns_lookup_failures_total",
            "DNS SD lookup failures.",
            d.dns_lookup_failures.load(Ordering::Relaxed) as f64,
        ),
        counter(
            "prometheus_sd_http_failures_total",
            "HTTP SD failures.",
            d.http_failures.load(Ordering::Relaxed) as f64,
        ),
    ]);
    fams
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let fams = self_metrics(&st);
    let mut out = Vec::new();
    encode(&mut out, &fams, Format::Text);
    if let Some(r) = st.ruler.get() {
        let r = Arc::clone(r);
        if let Ok(t) = tokio::task::spawn_blocking(move || r.metrics_text()).await {
            out.extend_from_slice(t.as_bytes());
        }
    }
    ([(header::CONTENT_TYPE, Format::Text.content_type())], out).into_response()
}

async fn flags(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({"status": "success", "data": st.flags}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_epoch_ms() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn match_params_decode_and_selectors_parse() {
        let p = match_params(Some("match%5B%5D=up%7Bjob%3D%22a%22%7D&x=1&match[]={__name__=~\"n.*\"}"));
        assert_eq!(p, ["up{job=\"a\"}", "{__name__=~\"n.*\"}"]);
        let m = parse_selector(&p[0]).expect("selector");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].len(), 2);
        assert!(parse_selector("sum(up)").is_err());
        assert!(parse_selector("up{").is_err());
    }
}
