//! Query, series, label and query-text endpoints.

// Parameter helpers fail with the finished error response; it goes straight back to axum.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::response::Response;
use osprey_promql::api::params::{check_range, parse_duration, parse_time};
use osprey_promql::api::{
    ErrorType, format_query_response, parse_query_response, query_error_response, render_query_response,
    series_response, success,
};
use osprey_promql::storage::Matcher as QMatcher;
use osprey_promql::{Error, Labels, QueryResult};
use promql_parser::parser::Expr;
use serde_json::json;

use super::ApiState;
use super::params::{Params, bad_data, error, invalid_param, json, raw};
use super::storage::{convert_matchers, to_engine_labels};

/// Bounds used when `start`/`end` are absent (far enough from `i64` limits to never overflow).
const MIN_TIME: i64 = i64::MIN / 4;
const MAX_TIME: i64 = i64::MAX / 4;

fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, Response> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s).map_err(|e| invalid_param(name, &e)),
    }
}

/// The request's `timeout`: it shortens (never extends) the engine's `--query.timeout`.
fn timeout_param(p: &Params) -> Result<Option<std::time::Duration>, Response> {
    match p.get("timeout") {
        None | Some("") => Ok(None),
        Some(s) => parse_duration(s)
            .map(|ms| Some(std::time::Duration::from_millis(ms.max(0).unsigned_abs())))
            .map_err(|e| invalid_param("timeout", &e)),
    }
}

fn query_result(
    q_text: &str,
    r: Result<osprey_promql::value::Result<QueryResult>, tokio::task::JoinError>,
) -> Response {
    match r {
        Ok(Ok(res)) => raw(200, render_query_response(&res)),
        Ok(Err(Error::Parse(msg))) => {
            invalid_param("query", &osprey_promql::api::position::with_position(q_text, &msg))
        }
        // A range query over a range vector or string is rejected before evaluation, as a bad
        // `query` parameter (Prometheus: `bad_data`, 400).
        Ok(Err(Error::Exec(msg))) if msg.starts_with("invalid expression type ") => invalid_param("query", &msg),
        Ok(Err(e)) => {
            let (code, v) = query_error_response(&e);
            json(code, &v)
        }
        Err(e) => error(ErrorType::Internal, &format!("query panicked: {e}")),
    }
}

/// `/api/v1/query`
pub async fn query(State(st): State<ApiState>, p: Params) -> Response {
    let run = || -> Result<(String, i64, Option<std::time::Duration>), Response> {
        let timeout = timeout_param(&p)?;
        Ok((p.get("query").unwrap_or("").to_owned(), time_param(&p, "time", (st.clock)())?, timeout))
    };
    let (q, t, timeout) = match run() {
        Ok(v) => v,
        Err(r) => return r,
    };
    let storage = st.storage();
    let engine = std::sync::Arc::clone(&st.engine);
    let text = q.clone();
    query_result(
        &text,
        tokio::task::spawn_blocking(move || engine.instant_query_timeout(&storage, &q, t, timeout)).await,
    )
}

/// `/api/v1/query_range`
pub async fn query_range(State(st): State<ApiState>, p: Params) -> Response {
    let run = || -> Result<(String, i64, i64, i64, Option<std::time::Duration>), Response> {
        let start = parse_time(p.get("start").unwrap_or("")).map_err(|e| invalid_param("start", &e))?;
        let end = parse_time(p.get("end").unwrap_or("")).map_err(|e| invalid_param("end", &e))?;
        let step = parse_duration(p.get("step").unwrap_or("")).map_err(|e| invalid_param("step", &e))?;
        check_range(start, end, step).map_err(|(k, m)| error(k, &m))?;
        let timeout = timeout_param(&p)?;
        Ok((p.get("query").unwrap_or("").to_owned(), start, end, step, timeout))
    };
    let (q, start, end, step, timeout) = match run() {
        Ok(v) => v,
        Err(r) => return r,
    };
    let storage = st.storage();
    let engine = std::sync::Arc::clone(&st.engine);
    let text = q.clone();
    query_result(
        &text,
        tokio::task::spawn_blocking(move || engine.range_query_timeout(&storage, &q, start, end, step, timeout)).await,
    )
}

/// Parses `match[]` selectors into matcher groups (one per `or` branch), as Prometheus does.
fn match_params(p: &Params) -> Result<Vec<Vec<QMatcher>>, Response> {
    let mut groups = Vec::new();
    for s in p.all("match[]") {
        let expr = osprey_promql::durations::parse_checked(s)
            .map_err(|e| invalid_param("match[]", &osprey_promql::api::position::with_position(s, &e)))?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(invalid_param(
                "match[]",
                &format!("1:1: parse error: unexpected expression {s:?}, expected a selector"),
            ));
        };
        for g in osprey_promql::engine::selector_matchers(&vs) {
            if g.iter().all(|m| m.matches("")) {
                return Err(bad_data("match[] must contain at least one non-empty matcher"));
            }
            groups.push(g);
        }
    }
    Ok(groups)
}

fn limit_param(p: &Params) -> Result<usize, Response> {
    match p.get("limit") {
        None | Some("") => Ok(0),
        Some(s) => s.parse::<usize>().map_err(|_| bad_data("limit must be a positive number")),
    }
}

fn bounds(p: &Params) -> Result<(i64, i64), Response> {
    Ok((time_param(p, "start", MIN_TIME)?, time_param(p, "end", MAX_TIME)?))
}

fn truncated<T: serde::Serialize>(mut v: Vec<T>, limit: usize) -> serde_json::Value {
    let cut = limit > 0 && v.len() > limit;
    if cut {
        v.truncate(limit);
    }
    let mut body = success(json!(v));
    if cut {
        body["warnings"] = json!(["results truncated due to limit"]);
    }
    body
}

/// `/api/v1/series`
pub async fn series(State(st): State<ApiState>, p: Params) -> Response {
    let run = || -> Result<Response, Response> {
        if p.all("match[]").is_empty() {
            return Err(bad_data("no match[] parameter provided"));
        }
        let (start, end) = bounds(&p)?;
        let groups = match_params(&p)?;
        let limit = limit_param(&p)?;
        let q = st.db.querier(start, end);
        let mut set: BTreeSet<osprey_tsdb::Labels> = BTreeSet::new();
        for g in &groups {
            let Some(ms) = convert_matchers(g) else { continue };
            set.extend(q.select(&ms).into_iter().map(|s| s.labels));
        }
        let all: Vec<Labels> = set.iter().map(to_engine_labels).collect();
        if limit > 0 && all.len() > limit {
            let mut body = series_response(&all[..limit]);
            body["warnings"] = json!(["results truncated due to limit"]);
            return Ok(json(200, &body));
        }
        Ok(json(200, &series_response(&all)))
    };
    run().unwrap_or_else(|r| r)
}

/// `/api/v1/labels`
pub async fn labels(State(st): State<ApiState>, p: Params) -> Response {
    let run = || -> Result<Response, Response> {
        let (start, end) = bounds(&p)?;
        let groups = match_params(&p)?;
        let limit = limit_param(&p)?;
        let q = st.db.querier(start, end);
        let names: Vec<String> = if groups.is_empty() {
            q.label_names(&[])
        } else {
            let mut set = BTreeSet::new();
            for g in &groups {
                let Some(ms) = convert_matchers(g) else { continue };
                set.extend(q.label_names(&ms));
            }
            set.into_iter().collect()
        };
        Ok(json(200, &truncated(names, limit)))
    };
    run().unwrap_or_else(|r| r)
}

/// `/api/v1/label/<name>/values`
pub async fn label_values(State(st): State<ApiState>, Path(name): Path<String>, p: Params) -> Response {
    let run = || -> Result<Response, Response> {
        if name.is_empty() {
            return Err(bad_data(&format!("invalid label name: {name:?}")));
        }
        let (start, end) = bounds(&p)?;
        let groups = match_params(&p)?;
        let limit = limit_param(&p)?;
        let q = st.db.querier(start, end);
        let values: Vec<String> = if groups.is_empty() {
            q.label_values(&name, &[])
        } else {
            let mut set = BTreeSet::new();
            for g in &groups {
                let Some(ms) = convert_matchers(g) else { continue };
                set.extend(q.label_values(&name, &ms));
            }
            set.into_iter().collect()
        };
        Ok(json(200, &truncated(values, limit)))
    };
    run().unwrap_or_else(|r| r)
}

/// `/api/v1/metadata`: metric metadata is not stored yet, so the map is empty.
pub async fn metadata(p: Params) -> Response {
    if let Some(l) = p.get("limit").filter(|l| !l.is_empty())
        && l.parse::<i64>().is_err()
    {
        return bad_data("limit must be a number");
    }
    json(200, &success(json!({})))
}

/// `/api/v1/query_exemplars`: exemplars are not stored, so the list is empty once the query
/// and times are valid.
pub async fn exemplars(State(st): State<ApiState>, p: Params) -> Response {
    let run = || -> Result<Response, Response> {
        let now = (st.clock)();
        time_param(&p, "start", MIN_TIME)?;
        time_param(&p, "end", now)?;
        osprey_promql::parse(p.get("query").unwrap_or("")).map_err(|e| invalid_param("query", &e.to_string()))?;
        Ok(json(200, &success(json!([]))))
    };
    run().unwrap_or_else(|r| r)
}

/// `/api/v1/format_query`
pub async fn format_query(p: Params) -> Response {
    let (code, v) = format_query_response(p.get("query").unwrap_or(""));
    json(code, &v)
}

/// `/api/v1/parse_query`
pub async fn parse_query(p: Params) -> Response {
    let (code, v) = parse_query_response(p.get("query").unwrap_or(""));
    json(code, &v)
}
