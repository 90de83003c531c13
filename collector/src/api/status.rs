//! `/api/v1/status/*` endpoints.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::response::Response;
use osprey_promql::api::success;
use osprey_tsdb::Matcher;
use serde_json::{Value, json};

use super::ApiState;
use super::params::json;

/// `/api/v1/status/buildinfo`: our version and build facts in Prometheus's keys.
pub async fn buildinfo() -> Response {
    json(
        200,
        &success(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "revision": option_env!("OSPREY_GIT_REVISION").unwrap_or("unknown"),
            "branch": option_env!("OSPREY_GIT_BRANCH").unwrap_or("unknown"),
            "buildUser": "osprey",
            "buildDate": option_env!("OSPREY_BUILD_DATE").unwrap_or("unknown"),
            "goVersion": concat!("rust ", env!("CARGO_PKG_RUST_VERSION")),
        })),
    )
}

pub use agent_core::calendar::rfc3339_millis as rfc3339;

/// `/api/v1/status/runtimeinfo`
pub async fn runtimeinfo(State(st): State<ApiState>) -> Response {
    let start = st.start_time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let stats = st.db.stats();
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    json(
        200,
        &success(json!({
            "startTime": rfc3339(start),
            "CWD": cwd,
            "reloadConfigSuccess": true,
            "lastConfigTime": rfc3339(start),
            "corruptionCount": stats.corrupted_blocks + stats.wal_corruptions,
            "goroutineCount": 0,
            "GOMAXPROCS": threads,
            "GOMEMLIMIT": i64::MAX,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": st.storage_retention,
        })),
    )
}

fn top(counts: BTreeMap<String, u64>) -> Value {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(10);
    Value::Array(v.into_iter().map(|(name, value)| json!({"name": name, "value": value})).collect())
}

/// `/api/v1/status/tsdb`: head statistics and the top-10 cardinality lists over all series.
pub async fn tsdb(State(st): State<ApiState>) -> Response {
    let db = std::sync::Arc::clone(&st.db);
    let body = tokio::task::spawn_blocking(move || {
        let q = db.querier(i64::MIN / 4, i64::MAX / 4);
        let all = q.select(&[
            Matcher::new(osprey_tsdb::MatchOp::Re, "__name__", ".+").unwrap_or_else(|_| Matcher::eq("", ""))
        ]);
        let (mut by_name, mut values_per_label, mut bytes_per_label, mut pairs) = (
            BTreeMap::new(),
            BTreeMap::<String, std::collections::BTreeSet<String>>::new(),
            BTreeMap::new(),
            BTreeMap::new(),
        );
        let (mut mint, mut maxt, mut chunks) = (i64::MAX, i64::MIN, 0u64);
        for s in &all {
            for c in s.chunks() {
                mint = mint.min(c.mint);
                maxt = maxt.max(c.maxt);
                chunks += 1;
            }
            for (n, v) in s.labels.iter() {
                if n == "__name__" {
                    *by_name.entry(v.to_owned()).or_insert(0u64) += 1;
                }
                values_per_label.entry(n.to_owned()).or_default().insert(v.to_owned());
                *pairs.entry(format!("{n}={v}")).or_insert(0u64) += 1;
            }
        }
        for (n, vals) in &values_per_label {
            bytes_per_label.insert(n.clone(), vals.iter().map(|v| v.len() as u64).sum());
        }
        let label_counts = values_per_label.iter().map(|(n, v)| (n.clone(), v.len() as u64)).collect();
        let stats = db.stats();
        let (mint, maxt) = if all.is_empty() { (i64::MAX, i64::MIN) } else { (mint, maxt) };
        success(json!({
            "headStats": {
                "numSeries": stats.head_series,
                "numLabelPairs": pairs.len(),
                "chunkCount": chunks,
                "minTime": mint,
                "maxTime": maxt,
            },
            "seriesCountByMetricName": top(by_name),
            "labelValueCountByLabelName": top(label_counts),
            "memoryInBytesByLabelName": top(bytes_per_label),
            "seriesCountByLabelValuePair": top(pairs),
        }))
    })
    .await
    .unwrap_or_else(|e| json!({"status": "error", "errorType": "internal", "error": e.to_string()}));
    json(200, &body)
}
