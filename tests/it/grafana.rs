//! Grafana's Prometheus data source, replayed against the collector's API: the requests it
//! sends, byte for byte in shape (method, form encoding, parameter names and number formats),
//! and the checks its response reader makes. Followed from Grafana's source (grafana/grafana,
//! read 2026-11):
//!
//! * `pkg/promlib/client/client.go`: `QueryRange` POSTs `application/x-www-form-urlencoded`
//!   `query`, `start`, `end` (Unix seconds as `strconv.FormatFloat(…, 'f', -1, 64)`, e.g.
//!   `1699999200.5`), `step` (seconds, same format: `15`, `0.5`) and `timeout` when the data
//!   source has a query timeout; `QueryInstant` POSTs `query`, `time`, `timeout`;
//!   `QueryExemplars` POSTs `query`, `start`, `end`. Resource calls (labels, series) are POSTed
//!   with the browser's form body, except the GET-only list `endpointsSupportOnlyGet`
//!   (`api/v1/label/<name>/values`, `api/v1/metadata`, `api/v1/status/buildinfo`, …); a POST
//!   answered with 400 or 405 is retried as GET.
//! * `packages/grafana-prometheus/src/language_provider.ts`: `start()` fetches
//!   `label/__name__/values` then `metadata` and `labels` with `start`/`end` (whole seconds
//!   from `getAdjustedInterval`); `fetchSeriesLabels` calls `series` with `match[]` and
//!   `limit=40000`; `fetchSeriesLabelsMatch` calls `labels` with `match[]`;
//!   `fetchSeriesValuesWithMatch` calls `label/<name>/values` with `match[]`.
//! * `pkg/promlib/converter/prom.go` (`ReadPrometheusStyleResult`): reads `status`, `error`,
//!   `errorType`, `warnings`/`infos` (arrays of strings), `data.resultType` and `data.result`;
//!   matrix/vector items are objects with `metric` (string → string), `value` or `values` as
//!   `[<JSON number seconds>, "<float text>"]` parsed with Go's `strconv.ParseFloat` (so
//!   `NaN`, `+Inf`, `-Inf`); scalar and string results are one such pair; an error response
//!   becomes `"<errorType>: <error>"`. Label and series lists are `data` arrays.
//! * The data source's health check (`pkg/promlib/healthcheck.go`) runs the instant query
//!   `1+1` and expects a scalar `2`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Response, TempDir, free_port, http_get};

const BASE_S: i64 = 1_699_999_200;
const POINTS: i64 = 240;

/// Form encoding as Go's `url.Values.Encode` does it (space as `+`).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// `POST path` with a form body, as Grafana's Go client sends it.
pub fn http_post_form(port: u16, path: &str, pairs: &[(&str, &str)]) -> std::io::Result<Response> {
    let body = form_encode(pairs);
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    let _ = write!(
        req,
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nUser-Agent: Grafana/11.0.0\r\n\r\n",
        body.len()
    );
    req.push_str(&body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response { status, headers, body: raw[split + 4..].to_vec() })
}

/// Go's `strconv.ParseFloat` on a sample value (what Grafana's converter calls).
fn go_parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// One `[seconds, "value"]` pair as the converter's `readTimeValuePair` reads it.
fn pair(p: &Value) -> Result<(f64, f64), String> {
    let a = p.as_array().filter(|a| a.len() == 2).ok_or_else(|| format!("not a pair: {p}"))?;
    let t = a[0].as_f64().ok_or_else(|| format!("time is not a JSON number: {p}"))?;
    let v = a[1].as_str().and_then(go_parse_float).ok_or_else(|| format!("value is not a float string: {p}"))?;
    Ok((t, v))
}

/// What Grafana's `ReadPrometheusStyleResult` accepts: `Ok(frames)` as `(labels, points)`.
type Frames = Vec<(serde_json::Map<String, Value>, Vec<(f64, f64)>)>;

fn read_prometheus_style(v: &Value) -> Result<(String, Frames), String> {
    let status = v["status"].as_str().ok_or("no status string")?;
    for key in ["warnings", "infos"] {
        if let Some(w) = v.get(key) {
            let ok = w.as_array().is_some_and(|a| a.iter().all(Value::is_string));
            if !ok {
                return Err(format!("{key} is not an array of strings: {w}"));
            }
        }
    }
    if status == "error" {
        let (t, e) = (v["errorType"].as_str().ok_or("no errorType")?, v["error"].as_str().ok_or("no error")?);
        return Err(format!("{t}: {e}"));
    }
    let data = v.get("data").filter(|d| d.is_object()).ok_or("data is not an object")?;
    let rt = data["resultType"].as_str().ok_or("no resultType found")?.to_owned();
    let mut frames = Vec::new();
    match rt.as_str() {
        "matrix" | "vector" => {
            for item in data["result"].as_array().ok_or("result is not an array")? {
                let metric = item["metric"].as_object().ok_or_else(|| format!("metric is not an object: {item}"))?;
                if let Some((k, _)) = metric.iter().find(|(_, v)| !v.is_string()) {
                    return Err(format!("label {k} is not a string"));
                }
                let pts = match (item.get("value"), item.get("values")) {
                    (Some(p), None) if rt == "vector" => vec![pair(p)?],
                    (None, Some(ps)) if rt == "matrix" => {
                        ps.as_array().ok_or("values is not an array")?.iter().map(pair).collect::<Result<_, _>>()?
                    }
                    _ => return Err(format!("{rt} item without its value(s): {item}")),
                };
                frames.push((metric.clone(), pts));
            }
        }
        "scalar" => frames.push((serde_json::Map::new(), vec![pair(&data["result"])?])),
        "string" => {
            let a = data["result"].as_array().filter(|a| a.len() == 2 && a[0].is_number() && a[1].is_string());
            a.ok_or("string result is not [number, string]")?;
            frames.push((serde_json::Map::new(), vec![]));
        }
        other => return Err(format!("unknown result type: {other}")),
    }
    Ok((rt, frames))
}

fn openmetrics() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE http_requests counter");
    for (k, inst) in ["a:9100", "b:9100"].iter().enumerate() {
        for code in ["200", "500"] {
            for i in 0..POINTS {
                let v = (i * (k as i64 + 1)) as f64 * if code == "500" { 0.1 } else { 2.0 };
                let _ = writeln!(
                    out,
                    "http_requests_total{{code=\"{code}\",instance=\"{inst}\",job=\"node\"}} {v} {}",
                    BASE_S + i * 15
                );
            }
        }
    }
    let _ = writeln!(out, "# TYPE temp gauge");
    for i in 0..POINTS {
        let v = match i % 40 {
            7 => "NaN".to_owned(),
            8 => "+Inf".to_owned(),
            9 => "-Inf".to_owned(),
            _ => format!("{}", 20.0 + (i % 13) as f64 / 4.0),
        };
        let _ = writeln!(out, "temp{{instance=\"a:9100\",job=\"node\"}} {v} {}", BASE_S + i * 15);
    }
    let _ = writeln!(out, "# TYPE up gauge");
    for inst in ["a:9100", "b:9100"] {
        for i in 0..POINTS {
            let _ = writeln!(out, "up{{instance=\"{inst}\",job=\"node\"}} 1 {}", BASE_S + i * 15);
        }
    }
    out.push_str("# EOF\n");
    out
}

fn json_of(r: &Response, what: &str) -> Value {
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}: content type");
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", r.text()))
}

fn strings(v: &Value, what: &str) -> Vec<String> {
    assert_eq!(v["status"], "success", "{what}: {v}");
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: data is not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("{what}: not a string: {s}")).to_owned())
        .collect()
}

#[test]
#[allow(clippy::many_single_char_names)]
fn grafana_data_source_requests_get_the_shapes_it_reads() {
    let dir = TempDir::new("grafana");
    let file = dir.join("data.om");
    std::fs::write(&file, openmetrics()).expect("write openmetrics");
    let data = dir.join("osprey");
    std::fs::create_dir_all(&data).expect("dir");
    osprey_tsdb::import_openmetrics(&file, &data).expect("import");
    let db = osprey_tsdb::Db::open(&data, osprey_tsdb::Options { maintenance_interval: None, ..Default::default() })
        .expect("open db");
    let mut state = osprey_collector::api::ApiState::new(Arc::new(db), osprey_promql::Engine::default_engine());
    let now_ms = (BASE_S + POINTS * 15) * 1000;
    state.clock = Arc::new(move || now_ms);
    let port = free_port();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port))).expect("bind");
    rt.spawn(async move { axum::serve(listener, osprey_collector::api::router(state)).await });

    let (start, end) = (format!("{}.5", BASE_S + 600), format!("{}.5", BASE_S + 3000));
    let (start_s, end_s) = ((BASE_S + 600).to_string(), (BASE_S + 3000).to_string());
    let post = |path: &str, pairs: &[(&str, &str)]| -> Value {
        let r = http_post_form(port, path, pairs).unwrap_or_else(|e| panic!("POST {path}: {e}"));
        json_of(&r, path)
    };
    let get = |path: &str| -> Value {
        let r = http_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        json_of(&r, path)
    };

    // Health check: instant `1+1`.
    let v = post("/api/v1/query", &[("query", "1+1"), ("time", &end)]);
    let (rt_, frames) = read_prometheus_style(&v).expect("health check");
    assert_eq!((rt_.as_str(), frames[0].1[0].1), ("scalar", 2.0), "{v}");

    // A dashboard panel: POSTed range query with float start/end and a timeout.
    for step in ["15", "60", "0.5", "7.5"] {
        let q = "sum by (instance) (rate(http_requests_total{job=\"node\"}[1m]))";
        let v = post(
            "/api/v1/query_range",
            &[("query", q), ("start", &start), ("end", &end), ("step", step), ("timeout", "60s")],
        );
        let (kind, frames) = read_prometheus_style(&v).unwrap_or_else(|e| panic!("step {step}: {e}"));
        assert_eq!(kind, "matrix");
        assert_eq!(frames.len(), 2, "one frame per instance: {v}");
        let step_f: f64 = step.parse().expect("step");
        let start_f: f64 = start.parse().expect("start");
        let end_f: f64 = end.parse().expect("end");
        for (labels, pts) in &frames {
            assert!(labels.contains_key("instance") && labels.len() == 1, "{labels:?}");
            assert_eq!(pts.len() as f64, ((end_f - start_f) / step_f).floor() + 1.0, "points on every step");
            for (k, (t, val)) in pts.iter().enumerate() {
                assert!((t - (start_f + k as f64 * step_f)).abs() < 1e-6, "timestamp {t} off the grid");
                assert!(val.is_finite() && *val > 0.0);
            }
        }
    }

    // NaN and ±Inf travel as strings Go's ParseFloat reads.
    let v = post("/api/v1/query_range", &[("query", "temp"), ("start", &start_s), ("end", &end_s), ("step", "15")]);
    let (_, frames) = read_prometheus_style(&v).expect("temp");
    let vals: Vec<f64> = frames[0].1.iter().map(|p| p.1).collect();
    assert!(
        vals.iter().any(|v| v.is_nan()) && vals.contains(&f64::INFINITY) && vals.contains(&f64::NEG_INFINITY),
        "{v}"
    );

    // Instant ("Table"/"Stat") query at the end of the range, with its timeout.
    let v = post("/api/v1/query", &[("query", "up"), ("time", &end), ("timeout", "60s")]);
    let (kind, frames) = read_prometheus_style(&v).expect("instant");
    assert_eq!((kind.as_str(), frames.len()), ("vector", 2), "{v}");
    assert!(frames.iter().all(|f| f.1.len() == 1 && f.1[0] == (end.parse().expect("t"), 1.0)));

    // An info annotation reaches Grafana as a notice.
    let v = post("/api/v1/query", &[("query", "rate(temp[5m])"), ("time", &end)]);
    read_prometheus_style(&v).expect("rate of a gauge");
    assert!(v["infos"].as_array().is_some_and(|a| !a.is_empty()), "infos expected: {v}");

    // Errors are "<errorType>: <error>" in the panel.
    let v =
        post("/api/v1/query_range", &[("query", "sum(rate(up[5m])"), ("start", &start), ("end", &end), ("step", "15")]);
    let e = read_prometheus_style(&v).expect_err("bad query");
    assert!(e.starts_with("bad_data: invalid parameter \"query\": 1:17: parse error:"), "{e}");

    // Editor start-up: metric names, metadata, label names (GET-only endpoints stay GET).
    let names = strings(&get(&format!("/api/v1/label/__name__/values?start={start_s}&end={end_s}")), "metric names");
    assert_eq!(names, ["http_requests_total", "temp", "up"]);
    let meta = get("/api/v1/metadata");
    assert_eq!(meta["status"], "success");
    assert!(meta["data"].is_object(), "metadata data must be a metric → [entries] object: {meta}");
    let labels = strings(&post("/api/v1/labels", &[("start", &start_s), ("end", &end_s)]), "labels");
    assert_eq!(labels, ["__name__", "code", "instance", "job"]);

    // Label browser: labels and values for a selector, series with Grafana's limit.
    let m = "http_requests_total{instance=\"a:9100\"}";
    let labels =
        strings(&post("/api/v1/labels", &[("start", &start_s), ("end", &end_s), ("match[]", m)]), "labels match");
    assert_eq!(labels, ["__name__", "code", "instance", "job"]);
    let codes = strings(
        &get(&format!(
            "/api/v1/label/code/values?start={start_s}&end={end_s}&match%5B%5D={}",
            form_encode(&[("", m)]).trim_start_matches('=')
        )),
        "values match",
    );
    assert_eq!(codes, ["200", "500"]);
    let series = post("/api/v1/series", &[("start", &start_s), ("end", &end_s), ("match[]", m), ("limit", "40000")]);
    assert_eq!(series["status"], "success");
    let list = series["data"].as_array().expect("series array");
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|s| {
        s.as_object().is_some_and(|o| o.values().all(Value::is_string) && o["__name__"] == "http_requests_total")
    }));
    let series =
        post("/api/v1/series", &[("start", &start_s), ("end", &end_s), ("match[]", "{job=\"node\"}"), ("limit", "3")]);
    assert_eq!(series["data"].as_array().map(Vec::len), Some(3), "limit honoured: {series}");
    assert!(series["warnings"].as_array().is_some_and(|w| !w.is_empty()), "truncation warning: {series}");

    // Template variable `label_values(up, instance)` → values with match[].
    let insts = strings(
        &get(&format!("/api/v1/label/instance/values?start={start_s}&end={end_s}&match%5B%5D=up")),
        "instances",
    );
    assert_eq!(insts, ["a:9100", "b:9100"]);

    // Version detection and exemplars.
    let b = get("/api/v1/status/buildinfo");
    assert_eq!(b["status"], "success");
    let version = b["data"]["version"].as_str().expect("data.version string");
    assert_eq!(version.split('.').filter(|p| p.parse::<u64>().is_ok()).count(), 3, "semver: {version}");
    let ex = post("/api/v1/query_exemplars", &[("query", "up"), ("start", &start), ("end", &end)]);
    assert_eq!(ex["status"], "success");
    assert!(ex["data"].is_array(), "{ex}");

    // A POST to a GET-only resource gets 405, and Grafana's retry as GET works.
    let r = http_post_form(port, "/api/v1/label/job/values", &[("start", &start_s)]).expect("POST label values");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(strings(&get(&format!("/api/v1/label/job/values?start={start_s}")), "retry"), ["node"]);
}
