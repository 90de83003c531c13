//! Differential test of the collector's HTTP API against Prometheus (Debian's 2.42): one
//! OpenMetrics file is loaded into Prometheus with `promtool tsdb create-blocks-from
//! openmetrics` and into an Osprey TSDB with `osprey_tsdb::import_openmetrics`; a corpus of
//! queries goes through both `/api/v1/query` and `/api/v1/query_range` and the JSON answers
//! must agree: same status and error type, same result type, same series, timestamps, and
//! values within 1e-9 relative.
//!
//! Kept to what 2.42 and 3.x share (as in `promql_differential.rs`): evaluation times and
//! range boundaries never fall on a sample (data every 15 s at +0.25 s past an aligned base,
//! evaluations and subquery steps on whole or half seconds), no `holt_winters` (renamed
//! `double_exponential_smoothing` in 3.x, which is what our engine implements), counter windows never reach before a series' first sample, no functions
//! renamed or added in 3.x, no ties among `topk`/`bottomk` candidates.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;

use crate::harness::{Proc, TempDir, free_port, http_get, peer, run};

const BASE_S: i64 = 1_699_999_200;
const POINTS: i64 = 480;

fn openmetrics() -> String {
    let mut out = String::new();
    let jobs = [("api", ["a", "b", "c"]), ("db", ["d", "e", "f"])];
    let _ = writeln!(out, "# TYPE http_requests counter");
    for (j, (job, insts)) in jobs.iter().enumerate() {
        for (k, inst) in insts.iter().enumerate() {
            for code in ["200", "500"] {
                let slope = (j * 7 + k * 3 + 1) as f64 * if code == "500" { 0.13 } else { 1.7 };
                let mut v = 0.0;
                for i in 0..POINTS {
                    if i == 200 + (k as i64) * 37 && code == "200" {
                        v = 0.0;
                    }
                    v += slope * (1.0 + ((i * 13 + k as i64) % 5) as f64 / 10.0);
                    let _ = writeln!(
                        out,
                        "http_requests_total{{code=\"{code}\",instance=\"{inst}\",job=\"{job}\"}} {v} {}.25",
                        BASE_S + i * 15
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "# TYPE mem_bytes gauge");
    for (j, (job, insts)) in jobs.iter().enumerate() {
        for (k, inst) in insts.iter().enumerate() {
            let end = if *inst == "c" { 240 } else { POINTS };
            for i in 0..end {
                let v =
                    1000.0 * (j + 1) as f64 + 37.0 * k as f64 + ((i * 7 + k as i64 * 5) % 23) as f64 * (1.5 + k as f64);
                let _ = writeln!(out, "mem_bytes{{instance=\"{inst}\",job=\"{job}\"}} {v} {}.25", BASE_S + i * 15);
            }
        }
    }
    let _ = writeln!(out, "# TYPE lat_seconds histogram");
    for (j, (job, _)) in jobs.iter().enumerate() {
        for (n, le) in ["0.05", "0.1", "0.5", "1", "+Inf"].iter().enumerate() {
            let per = (j as f64 + 1.0) * (n as f64 + 1.0).powf(1.4);
            for i in 0..POINTS {
                let _ = writeln!(
                    out,
                    "lat_seconds_bucket{{job=\"{job}\",le=\"{le}\"}} {} {}.25",
                    per * i as f64,
                    BASE_S + i * 15
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn corpus() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();
    for sel in ["http_requests_total", "mem_bytes", "lat_seconds_bucket"] {
        for m in [
            "",
            "{job=\"api\"}",
            "{job=~\"d.*\"}",
            "{instance!~\"a|b\"}",
            "{job!=\"api\"}",
            "{nope=\"\"}",
            "{job=~\"ap\"}",
        ] {
            q.push(format!("{sel}{m}"));
        }
    }
    for w in ["1m", "5m", "10m"] {
        for f in ["rate", "irate", "increase", "resets", "changes"] {
            q.push(format!("{f}(http_requests_total[{w}])"));
        }
        for f in ["avg", "min", "max", "sum", "count", "stddev", "stdvar", "last"] {
            q.push(format!("{f}_over_time(mem_bytes[{w}])"));
        }
        q.push(format!("quantile_over_time(0.7, mem_bytes[{w}])"));
        q.push(format!("delta(mem_bytes[{w}])"));
        q.push(format!("deriv(mem_bytes[{w}])"));
        q.push(format!("predict_linear(mem_bytes[{w}], 600)"));
        q.push(format!("idelta(mem_bytes[{w}])"));
    }
    for agg in ["sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"] {
        for by in ["", " by (job)", " by (code)", " without (instance)", " by (job, code)"] {
            q.push(format!("{agg}{by} (rate(http_requests_total[5m]))"));
        }
        q.push(format!("{agg} by (job) (mem_bytes)"));
    }
    for k in ["1", "2", "4"] {
        q.push(format!("topk({k}, rate(http_requests_total[5m]))"));
        q.push(format!("bottomk({k}, mem_bytes)"));
        q.push(format!("topk by (job) ({k}, mem_bytes)"));
    }
    for p in ["0", "0.25", "0.5", "0.9", "1"] {
        q.push(format!("quantile({p}, mem_bytes)"));
        q.push(format!("quantile by (job) ({p}, rate(http_requests_total[5m]))"));
    }
    for p in ["0.5", "0.9", "0.99"] {
        q.push(format!("histogram_quantile({p}, sum by (le) (rate(lat_seconds_bucket[5m])))"));
        q.push(format!("histogram_quantile({p}, sum by (le, job) (rate(lat_seconds_bucket[10m])))"));
    }
    for f in ["abs", "ceil", "floor", "round", "sqrt", "ln", "log2", "log10", "exp", "timestamp", "sort", "sort_desc"] {
        q.push(format!("{f}(mem_bytes{{job=\"api\"}})"));
    }
    for b in [
        "rate(http_requests_total[5m]) / on(instance, job) group_left mem_bytes",
        "sum by (job) (rate(http_requests_total{code=\"500\"}[5m])) / sum by (job) (rate(http_requests_total[5m]))",
        "mem_bytes > 2000",
        "mem_bytes > bool 2000",
        "mem_bytes < 1100 or mem_bytes > 2100",
        "mem_bytes and on(instance) rate(http_requests_total{code=\"200\"}[5m]) > 20",
        "mem_bytes unless mem_bytes{job=\"db\"}",
        "mem_bytes * 2 + 1",
        "2 ^ 3 - mem_bytes{instance=\"a\"} % 7",
        "-mem_bytes",
        "mem_bytes == mem_bytes",
        "rate(http_requests_total[5m]) * on(instance, job) group_left(code) mem_bytes",
        "sum(mem_bytes) by (job) - on(job) sum(mem_bytes) by (job)",
        "mem_bytes / ignoring(instance) group_left sum by (job) (mem_bytes)",
        "clamp_min(mem_bytes, 2050)",
        "clamp_max(mem_bytes, 2050)",
        "clamp(mem_bytes, 1050, 2050)",
        "label_replace(mem_bytes, \"host\", \"h-$1\", \"instance\", \"(.*)\")",
        "label_join(mem_bytes, \"both\", \"/\", \"job\", \"instance\")",
        "absent(nope)",
        "absent(mem_bytes)",
        "absent_over_time(nope[5m])",
        "vector(1)",
        "scalar(sum(mem_bytes))",
        "time()",
        "count_values(\"v\", round(mem_bytes / 100))",
        "mem_bytes offset 5m",
        "rate(http_requests_total[5m] offset 10m)",
        "max_over_time(rate(http_requests_total[5m])[10m:1m])",
        "avg_over_time(mem_bytes[10m:30s])",
        "sum(rate(http_requests_total[5m])) by (job) > 10",
        "count(mem_bytes > 1500) by (job)",
        "day_of_week()",
        "hour(timestamp(mem_bytes))",
        "minute()",
        "sum(",
        "rate(mem_bytes)",
        "foo bar",
        "1 + \"a\"",
        "mem_bytes + on(job) mem_bytes",
    ] {
        q.push(b.to_string());
    }
    q
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn fetch(port: u16, path: &str) -> Value {
    let r = http_get(port, path).unwrap_or_else(|e| panic!("GET {path} on {port}: {e}"));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => false,
    }
}

/// Keyed result series: metric JSON → `(t, value)` points.
fn keyed(v: &Value) -> Result<BTreeMap<String, Vec<(f64, String)>>, String> {
    let mut out = BTreeMap::new();
    let point = |p: &Value| (p[0].as_f64().unwrap_or(f64::NAN), p[1].as_str().unwrap_or("").to_owned());
    match v["data"]["resultType"].as_str() {
        Some("vector" | "matrix") => {
            for s in v["data"]["result"].as_array().ok_or("no result array")? {
                let pts = if let Some(vals) = s["values"].as_array() {
                    vals.iter().map(point).collect()
                } else {
                    vec![point(&s["value"])]
                };
                out.insert(s["metric"].to_string(), pts);
            }
        }
        Some("scalar" | "string") => {
            out.insert(String::new(), vec![point(&v["data"]["result"])]);
        }
        other => return Err(format!("resultType {other:?}")),
    }
    Ok(out)
}

fn compare(ours: &Value, theirs: &Value) -> Result<(), String> {
    if ours["status"] != theirs["status"] {
        return Err(format!("status {} vs {}", ours["status"], theirs["status"]));
    }
    if theirs["status"] == "error" {
        return if ours["errorType"] == theirs["errorType"] {
            Ok(())
        } else {
            Err(format!("errorType {} vs {}", ours["errorType"], theirs["errorType"]))
        };
    }
    if ours["data"]["resultType"] != theirs["data"]["resultType"] {
        return Err(format!("resultType {} vs {}", ours["data"]["resultType"], theirs["data"]["resultType"]));
    }
    let (a, b) = (keyed(ours)?, keyed(theirs)?);
    if a.keys().ne(b.keys()) {
        return Err(format!("series {:?} vs {:?}", a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>()));
    }
    for (k, pa) in &a {
        let pb = &b[k];
        if pa.len() != pb.len() || pa.iter().zip(pb).any(|(x, y)| x.0 != y.0 || !close(&x.1, &y.1)) {
            return Err(format!("{k}: {pa:?} vs {pb:?}"));
        }
    }
    Ok(())
}

#[test]
fn collector_api_agrees_with_prometheus() {
    let (Some(prom), Some(promtool)) = (peer("prometheus"), peer("promtool")) else { return };
    let dir = TempDir::new("api-diff");
    let file = dir.join("data.om");
    std::fs::write(&file, openmetrics()).expect("write openmetrics");
    let prom_data = dir.join("prom");
    let out = run(
        &promtool,
        &["tsdb", "create-blocks-from", "openmetrics", &file.to_string_lossy(), &prom_data.to_string_lossy()],
    );
    assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").expect("config");
    let port = free_port();
    let args: Vec<String> = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.tsdb.path={}", prom_data.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--storage.tsdb.retention.time=100y".into(),
    ];
    let _prom = Proc::start(&prom, &args, port, "/-/ready", &dir);

    let ours_dir = dir.join("osprey");
    std::fs::create_dir_all(&ours_dir).expect("dir");
    let report = osprey_tsdb::import_openmetrics(&file, &ours_dir).expect("import");
    assert!(report.samples > 0);
    let db =
        osprey_tsdb::Db::open(&ours_dir, osprey_tsdb::Options { maintenance_interval: None, ..Default::default() })
            .expect("open db");
    let state = osprey_collector::api::ApiState::new(Arc::new(db), osprey_promql::Engine::default_engine());
    let our_port = free_port();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt.block_on(tokio::net::TcpListener::bind(("127.0.0.1", our_port))).expect("bind");
    rt.spawn(async move { axum::serve(listener, osprey_collector::api::router(state)).await });

    let queries = corpus();
    let mut failures = Vec::new();
    let mut checked = 0;
    for q in &queries {
        let e = encode(q);
        let mut paths: Vec<String> = [20 * 60, 47 * 60, 89 * 60, 119 * 60]
            .iter()
            .map(|off| format!("/api/v1/query?query={e}&time={}.5", BASE_S + off + 7))
            .collect();
        paths.push(format!(
            "/api/v1/query_range?query={e}&start={}.5&end={}.5&step=60",
            BASE_S + 20 * 60 + 7,
            BASE_S + 110 * 60 + 7
        ));
        for p in paths {
            checked += 1;
            if let Err(msg) = compare(&fetch(our_port, &p), &fetch(port, &p)) {
                failures.push(format!("{q} [{}]: {msg}", p.split('&').skip(1).collect::<Vec<_>>().join("&")));
            }
        }
    }
    let v = fetch(port, "/api/v1/series?match[]=mem_bytes");
    let ours = fetch(our_port, "/api/v1/series?match[]=mem_bytes");
    assert_eq!(ours["data"], v["data"], "series");
    let (a, b) = (fetch(our_port, "/api/v1/labels"), fetch(port, "/api/v1/labels"));
    assert_eq!(a["data"], b["data"], "labels");
    let (a, b) = (fetch(our_port, "/api/v1/label/job/values"), fetch(port, "/api/v1/label/job/values"));
    assert_eq!(a["data"], b["data"], "label values");
    println!(
        "collector API vs Prometheus: {} of {checked} requests agree ({} queries)",
        checked - failures.len(),
        queries.len()
    );
    for f in &failures {
        println!("MISMATCH {f}");
    }
    assert!(failures.is_empty(), "{} mismatches", failures.len());
}
