//! Prometheus HTTP API (`/api/v1/…`) response shapes, without any server.
//!
//! [`query_response`] and friends build `serde_json::Value`s with Prometheus's keys and value
//! encodings (sample values as strings: `"NaN"`, `"+Inf"`, shortest round-trip, exponent form
//! below 1e-6 and from 1e21). JSON numbers in a `Value` are `f64`, so a timestamp like 1.5 s
//! serialises as `1.5`; [`render_query_response`] writes Prometheus's exact bytes (`1.500`).

pub mod params;
pub mod position;
mod syntax;

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::labels::Labels;
use crate::value::{Error, QueryResult, QueryValue};

/// Prometheus's API error classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `bad_data` (400)
    BadData,
    /// `execution` (422)
    Execution,
    /// `timeout` (503)
    Timeout,
    /// `canceled` (503)
    Canceled,
    /// `internal` (500)
    Internal,
    /// `not_found` (404)
    NotFound,
    /// `unavailable` (503)
    Unavailable,
}

impl ErrorType {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::NotFound => "not_found",
            ErrorType::Unavailable => "unavailable",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Timeout | ErrorType::Canceled | ErrorType::Unavailable => 503,
            ErrorType::Internal => 500,
            ErrorType::NotFound => 404,
        }
    }
}

/// The error class of an engine error.
pub fn error_type(e: &Error) -> ErrorType {
    match e {
        Error::Parse(_) => ErrorType::BadData,
        Error::Timeout(_) => ErrorType::Timeout,
        Error::Exec(_) | Error::TooManySamples(_) => ErrorType::Execution,
    }
}

/// A sample value as Prometheus renders it (Go `strconv.FormatFloat` with `'f'`/`'e'`, -1).
pub fn format_value(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust: `1e-7`; Go: `1e-07` (sign always, at least two exponent digits).
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = exp.strip_prefix('-').map_or(('+', exp), |d| ('-', d));
        return format!("{mant}e{sign}{digits:0>2}");
    }
    let s = format!("{f}");
    if s == "-0" { "-0".into() } else { s }
}

/// A timestamp (ms) as Prometheus renders it: seconds with up to three decimals, e.g. `1.500`.
pub fn format_timestamp(ms: i64) -> String {
    let mut s = String::new();
    let mut t = ms;
    if t < 0 {
        s.push('-');
        t = -t;
    }
    let _ = write!(s, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(s, ".{frac:03}");
    }
    s
}

fn ts_value(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// The `metric` object of a series.
pub fn labels_object(ls: &Labels) -> Value {
    let mut m = Map::new();
    for (n, v) in ls.iter() {
        m.insert(n.to_string(), Value::String(v.to_string()));
    }
    Value::Object(m)
}

/// The `data` object of `/api/v1/query` and `/api/v1/query_range`.
pub fn query_data(v: &QueryValue) -> Value {
    let (kind, result) = match v {
        QueryValue::Scalar { t, v } => ("scalar", json!([ts_value(*t), format_value(*v)])),
        QueryValue::String { t, s } => ("string", json!([ts_value(*t), s])),
        QueryValue::Vector(vec) => (
            "vector",
            Value::Array(
                vec.iter()
                    .map(|s| json!({"metric": labels_object(&s.labels), "value": [ts_value(s.t), format_value(s.v)]}))
                    .collect(),
            ),
        ),
        QueryValue::Matrix(m) => (
            "matrix",
            Value::Array(
                m.iter()
                    .map(|s| {
                        let values: Vec<Value> =
                            s.points.iter().map(|p| json!([ts_value(p.0), format_value(p.1)])).collect();
                        json!({"metric": labels_object(&s.labels), "values": values})
                    })
                    .collect(),
            ),
        ),
    };
    json!({"resultType": kind, "result": result})
}

fn with_annotations(mut body: Map<String, Value>, warnings: &[String], infos: &[String]) -> Value {
    if !warnings.is_empty() {
        body.insert("warnings".into(), json!(warnings));
    }
    if !infos.is_empty() {
        body.insert("infos".into(), json!(infos));
    }
    Value::Object(body)
}

/// A successful query response: `{"status":"success","data":{…},"warnings":[…],"infos":[…]}`.
pub fn query_response(r: &QueryResult) -> Value {
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert("data".into(), query_data(&r.value));
    with_annotations(body, &r.warnings, &r.infos)
}

/// A successful response around any `data` (labels, series, metadata, …).
pub fn success(data: Value) -> Value {
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert("data".into(), data);
    Value::Object(body)
}

/// An error response and its HTTP status.
pub fn error_response(kind: ErrorType, msg: &str) -> (u16, Value) {
    (kind.http_status(), json!({"status": "error", "errorType": kind.as_str(), "error": msg}))
}

/// The error response for an engine error.
pub fn query_error_response(e: &Error) -> (u16, Value) {
    error_response(error_type(e), &e.to_string())
}

/// `/api/v1/format_query`: the query pretty-printed, or `bad_data`.
pub fn format_query_response(query: &str) -> (u16, Value) {
    match crate::durations::parse_checked(query) {
        Ok(e) => (200, success(Value::String(e.prettify()))),
        Err(e) => error_response(ErrorType::BadData, &e),
    }
}

/// `/api/v1/parse_query`: the query's syntax tree as JSON, or `bad_data`.
pub fn parse_query_response(query: &str) -> (u16, Value) {
    match crate::durations::parse_checked(query) {
        Ok(e) => match serde_json::to_value(&e) {
            Ok(v) => (200, success(v)),
            Err(err) => error_response(ErrorType::Internal, &err.to_string()),
        },
        Err(e) => error_response(ErrorType::BadData, &e),
    }
}

/// `/api/v1/labels` and `/api/v1/label/<name>/values`: a list of strings.
pub fn strings_response(v: &[String]) -> Value {
    success(json!(v))
}

/// `/api/v1/series`: a list of label objects.
pub fn series_response(v: &[Labels]) -> Value {
    success(Value::Array(v.iter().map(labels_object).collect()))
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn render_labels(out: &mut String, ls: &Labels) {
    out.push('{');
    for (i, (n, v)) in ls.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", json_str(n), json_str(v));
    }
    out.push('}');
}

fn render_point(out: &mut String, t: i64, v: &str) {
    let _ = write!(out, "[{},{}]", format_timestamp(t), json_str(v));
}

/// A query response with Prometheus's exact bytes (timestamps as `1.500`, not `1.5`).
pub fn render_query_response(r: &QueryResult) -> String {
    let mut out = String::from(r#"{"status":"success","data":{"resultType":"#);
    match &r.value {
        QueryValue::Scalar { t, v } => {
            out.push_str(r#""scalar","result":"#);
            render_point(&mut out, *t, &format_value(*v));
        }
        QueryValue::String { t, s } => {
            out.push_str(r#""string","result":"#);
            render_point(&mut out, *t, s);
        }
        QueryValue::Vector(vec) => {
            out.push_str(r#""vector","result":["#);
            for (i, s) in vec.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                render_labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                render_point(&mut out, s.t, &format_value(s.v));
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Matrix(m) => {
            out.push_str(r#""matrix","result":["#);
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                render_labels(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, p) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    render_point(&mut out, p.0, &format_value(p.1));
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    for (key, list) in [("warnings", &r.warnings), ("infos", &r.infos)] {
        if !list.is_empty() {
            let _ = write!(out, r#","{key}":{}"#, serde_json::to_string(list).unwrap_or_else(|_| "[]".into()));
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{RangeSeries, Sample};

    #[test]
    fn values_are_formatted_like_prometheus() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e-7), "1e-07");
        assert_eq!(format_value(1.5e21), "1.5e+21");
        assert_eq!(format_value(123_456_789.0), "123456789");
        assert_eq!(format_timestamp(1_435_781_451_781), "1435781451.781");
        assert_eq!(format_timestamp(1500), "1.500");
        assert_eq!(format_timestamp(2000), "2");
        assert_eq!(format_timestamp(-1005), "-1.005");
    }

    #[test]
    fn query_responses_have_prometheus_shapes() {
        let ls = Labels::from_pairs(&[("__name__", "up"), ("job", "node")]);
        let r = QueryResult {
            value: QueryValue::Vector(vec![Sample { labels: ls.clone(), t: 1500, v: 1.0, drop_name: false }]),
            warnings: vec!["PromQL warning: w".into()],
            infos: vec![],
        };
        assert_eq!(
            render_query_response(&r),
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"node"},"value":[1.500,"1"]}]},"warnings":["PromQL warning: w"]}"#
        );
        let v = query_response(&r);
        assert_eq!(v["data"]["result"][0]["value"][1], "1");
        assert_eq!(v["warnings"][0], "PromQL warning: w");
        assert!(v.get("infos").is_none());
        let m = QueryResult {
            value: QueryValue::Matrix(vec![RangeSeries {
                labels: ls,
                points: vec![(0, f64::NAN), (60_000, 2.5)],
                drop_name: false,
            }]),
            warnings: vec![],
            infos: vec![],
        };
        assert_eq!(
            render_query_response(&m),
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"node"},"values":[[0,"NaN"],[60,"2.5"]]}]}}"#
        );
        let s =
            QueryResult { value: QueryValue::Scalar { t: 1000, v: f64::INFINITY }, warnings: vec![], infos: vec![] };
        assert_eq!(query_response(&s)["data"], json!({"resultType": "scalar", "result": [1.0, "+Inf"]}));
    }

    #[test]
    fn format_and_parse_query_answer_like_prometheus() {
        let (code, body) = format_query_response("sum(rate(foo{job=\"a\"}[5m]))by(job)");
        assert_eq!(code, 200);
        assert_eq!(body["data"], "sum by (job) (rate(foo{job=\"a\"}[5m]))");
        let (code, body) = parse_query_response("up == 1");
        assert_eq!(code, 200);
        assert_eq!(body["data"]["type"], "binaryExpr");
        let (code, body) = parse_query_response("sum(");
        assert_eq!(code, 400);
        assert_eq!(body["errorType"], "bad_data");
    }

    #[test]
    fn errors_map_to_prometheus_types_and_statuses() {
        let (code, body) = query_error_response(&Error::Parse("1:5: parse error: unexpected".into()));
        assert_eq!(code, 400);
        assert_eq!(body["errorType"], "bad_data");
        let (code, body) = query_error_response(&Error::TooManySamples("query execution"));
        assert_eq!(code, 422);
        assert_eq!(body["error"], "query processing would load too many samples into memory in query execution");
        assert_eq!(query_error_response(&Error::Timeout("expression evaluation")).0, 503);
    }
}
