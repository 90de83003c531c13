//! The API against a real on-disk TSDB, driven through the router with `oneshot`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt as _;
use osprey_promql::storage::stale_nan;
use osprey_promql::{Engine, EngineOptions, MemStorage};
use osprey_tsdb::{Db, Options};
use serde_json::Value;
use tower::ServiceExt as _;

use super::{ApiState, TsdbStorage, router};

const NOW: i64 = 3_600_000;

struct TmpDir(PathBuf);

impl TmpDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("osprey-api-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Series of the test data set: labels, and `(t, v)` samples every 15 s over an hour.
type TestSeries = (Vec<(&'static str, &'static str)>, Vec<(i64, f64)>);

fn dataset() -> Vec<TestSeries> {
    let mut out = Vec::new();
    let every = |f: &dyn Fn(i64) -> Option<f64>| -> Vec<(i64, f64)> {
        (0..240).filter_map(|i| f(i).map(|v| (i * 15_000, v))).collect()
    };
    for (inst, job, k) in [("a:9100", "node", 3.0), ("b:9100", "node", 5.0), ("c:9090", "prom", 1.5)] {
        out.push((
            vec![("__name__", "http_requests_total"), ("instance", inst), ("job", job)],
            every(&|i| Some(if i >= 120 && job == "prom" { (i - 120) as f64 * k } else { i as f64 * k })),
        ));
        out.push((
            vec![("__name__", "up"), ("instance", inst), ("job", job)],
            every(&|i| {
                if inst == "b:9100" && i == 200 {
                    Some(stale_nan())
                } else if inst == "b:9100" && i > 200 {
                    None
                } else {
                    Some(1.0)
                }
            }),
        ));
        for le in ["0.1", "1", "+Inf"] {
            let f: f64 = le.parse().unwrap_or(10.0);
            out.push((
                vec![("__name__", "req_seconds_bucket"), ("instance", inst), ("job", job), ("le", le)],
                every(&|i| Some(i as f64 * k * f.min(10.0))),
            ));
        }
    }
    out.push((vec![("__name__", "odd"), ("path", "a\nb")], every(&|i| Some(i as f64))));
    out.push((vec![("__name__", "odd"), ("path", "xfoo")], every(&|i| Some(-(i as f64)))));
    out.push((
        vec![("__name__", "odd"), ("path", "foo")],
        every(&|i| Some(f64::from(i32::try_from(i % 7).unwrap_or(0)))),
    ));
    out
}

fn open_db(dir: &TmpDir) -> Arc<Db> {
    let opts = Options { maintenance_interval: None, ..Options::default() };
    let db = Db::open(&dir.0, opts).expect("open db");
    let mut app = db.appender();
    for (labels, samples) in dataset() {
        let ls = osprey_tsdb::Labels::from_pairs(labels.iter().copied());
        for (t, v) in samples {
            app.append(&ls, t, v).expect("append");
        }
    }
    app.commit().expect("commit");
    Arc::new(db)
}

fn mem_storage() -> MemStorage {
    let mut m = MemStorage::new();
    for (labels, samples) in dataset() {
        let ls = osprey_promql::Labels::from_pairs(&labels);
        for (t, v) in samples {
            m.add(&ls, t, v);
        }
    }
    m
}

const CORPUS: &[&str] = &[
    "up",
    "up{job=\"node\"}",
    "up{job!=\"node\"}",
    "up{instance=~\"a.*\"}",
    "up{instance=~\"a\"}",
    "up{instance!~\".*9100\"}",
    "up{job=~\"node|prom\"}",
    "up{job=~\"nod\"}",
    "up{job=\"\"}",
    "up{job!=\"\"}",
    "up{job=~\".+\"}",
    "up{job=~\".*\"}",
    "{__name__=~\"up|odd\"}",
    "{__name__=~\"u.\", job=\"node\"}",
    "{job=\"node\" or job=\"prom\"}",
    "odd{path=~\"a.b\"}",
    "odd{path=~\".*\"}",
    "odd{path=~\"foo\"}",
    "odd{path!~\"f.*\"}",
    "odd{path=~\"(?i)FOO\"}",
    "odd{path=~\".foo\"}",
    "odd{path=~\"a|xfoo\"}",
    "odd{path=~\"a\\\\nb\"}",
    "rate(http_requests_total[5m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "increase(http_requests_total{job=\"prom\"}[10m])",
    "histogram_quantile(0.9, sum by (le) (rate(req_seconds_bucket[5m])))",
    "topk(2, http_requests_total)",
    "count(up)",
    "absent(nonexistent)",
    "up offset 5m",
    "up @ 1800",
    "max_over_time(odd[10m])",
    "changes(up[1h])",
    "resets(http_requests_total[1h])",
    "http_requests_total / on(instance) group_left up",
    "rate(http_requests_total[5m])[10m:1m]",
    "label_replace(up, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
    "vector(1) + 2",
    "time()",
];

fn rendered(r: osprey_promql::value::Result<osprey_promql::QueryResult>) -> String {
    match r {
        Ok(v) => osprey_promql::api::render_query_response(&v),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn tsdb_storage_answers_like_memory_storage() {
    let dir = TmpDir::new("diff");
    let tsdb = TsdbStorage::new(open_db(&dir));
    let mem = mem_storage();
    let engine = Engine::default_engine();
    let mut checked = 0;
    for q in CORPUS {
        for t in [0, 7_500, 1_807_500, 3_007_500, 3_592_500] {
            assert_eq!(
                rendered(engine.instant_query(&tsdb, q, t)),
                rendered(engine.instant_query(&mem, q, t)),
                "{q} @ {t}"
            );
            checked += 1;
        }
        let (a, b) = (
            rendered(engine.range_query(&tsdb, q, 7_500, 3_592_500, 60_000)),
            rendered(engine.range_query(&mem, q, 7_500, 3_592_500, 60_000)),
        );
        assert_eq!(a, b, "range {q}");
        checked += 1;
    }
    // Matchers must select something, or equality would be trivial.
    let r = rendered(engine.instant_query(&tsdb, "odd{path=~\"a.b\"}", 1_807_500));
    assert!(r.contains("a\\nb"), "`.` matches a newline: {r}");
    let r = rendered(engine.instant_query(&tsdb, "odd{path=~\"foo\"}", 1_807_500));
    assert!(!r.contains("xfoo") && r.contains("\"foo\""), "anchored: {r}");
    println!("{checked} queries agree between the TSDB and the in-memory store");
    use osprey_promql::Queryable as _;
    assert_eq!(tsdb.label_names(&[]), mem.label_names(&[]));
    assert_eq!(tsdb.label_values("job", &[]), mem.label_values("job", &[]));
}

fn state(db: Arc<Db>, opts: EngineOptions) -> ApiState {
    let mut st = ApiState::new(db, Engine::new(opts));
    st.clock = Arc::new(|| NOW);
    st
}

async fn call(st: &ApiState, req: Request<Body>) -> (u16, Value) {
    let resp = router(st.clone()).oneshot(req).await.expect("router answers");
    let code = resp.status().as_u16();
    let ct = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("").to_owned());
    assert_eq!(ct.as_deref(), Some("application/json"));
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("JSON body: {e}: {}", String::from_utf8_lossy(&bytes)));
    (code, v)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

fn post(uri: &str, form: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("request")
}

#[tokio::test]
async fn grafana_requests_get_prometheus_shapes() {
    let dir = TmpDir::new("grafana");
    let st = state(open_db(&dir), EngineOptions::default());

    let (code, v) = call(&st, get("/api/v1/status/buildinfo")).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "success");
    assert!(v["data"]["version"].is_string() && v["data"]["goVersion"].is_string());

    // Grafana: POST query_range, form-encoded, start/end in seconds, step in seconds.
    let form = "query=sum+by+(job)+(rate(http_requests_total%5B5m%5D))&start=600&end=1800&step=60";
    let (code, v) = call(&st, post("/api/v1/query_range", form)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let res = v["data"]["result"].as_array().expect("result");
    assert_eq!(res.len(), 2);
    assert_eq!(res[0]["metric"], serde_json::json!({"job": "node"}));
    let vals = res[0]["values"].as_array().expect("values");
    assert_eq!(vals.len(), 21);
    assert_eq!(vals[0][0], 600);
    assert!(
        (vals[0][1].as_str().expect("string value").parse::<f64>().expect("float") - (3.0 + 5.0) / 15.0).abs() < 1e-9
    );

    // Instant query by GET at an explicit time, and with the injected "now".
    let (code, v) = call(&st, get("/api/v1/query?query=up%7Bjob%3D%22node%22%7D&time=1800")).await;
    assert_eq!(code, 200);
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["data"]["result"][0]["value"], serde_json::json!([1800, "1"]));
    let (_, v) = call(&st, post("/api/v1/query", "query=up")).await;
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(2), "b is stale at now: {v}");
    let (_, v) = call(&st, post("/api/v1/query", "query=1%2B1")).await;
    assert_eq!(v["data"], serde_json::json!({"resultType": "scalar", "result": [3600, "2"]}));

    // Label browser: labels and values with match[] and time bounds, metric names.
    let (code, v) = call(&st, post("/api/v1/labels", "match%5B%5D=up&start=0&end=3600")).await;
    assert_eq!(code, 200);
    assert_eq!(v["data"], serde_json::json!(["__name__", "instance", "job"]));
    let (_, v) = call(&st, get("/api/v1/labels")).await;
    assert_eq!(v["data"], serde_json::json!(["__name__", "instance", "job", "le", "path"]));
    let (_, v) = call(&st, get("/api/v1/label/__name__/values?start=0&end=3600")).await;
    assert_eq!(v["data"], serde_json::json!(["http_requests_total", "odd", "req_seconds_bucket", "up"]));
    let (_, v) = call(&st, get("/api/v1/label/job/values?match[]=http_requests_total%7Bjob%3D~%22p.*%22%7D")).await;
    assert_eq!(v["data"], serde_json::json!(["prom"]));
    let (_, v) = call(&st, get("/api/v1/label/__name__/values?limit=2")).await;
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["warnings"][0], "results truncated due to limit");

    // Series with match[] (two selectors) and bounds; time bounds outside the data give none.
    let (code, v) = call(
        &st,
        post(
            "/api/v1/series",
            "match%5B%5D=up%7Bjob%3D%22prom%22%7D&match%5B%5D=odd%7Bpath%3D%22foo%22%7D&start=0&end=3600",
        ),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        v["data"],
        serde_json::json!([{"__name__": "odd", "path": "foo"}, {"__name__": "up", "instance": "c:9090", "job": "prom"}])
    );
    let (_, v) = call(&st, get("/api/v1/series?match[]=up&start=100000&end=200000")).await;
    assert_eq!(v["data"], serde_json::json!([]));

    let (code, v) = call(&st, get("/api/v1/metadata")).await;
    assert_eq!((code, &v["data"]), (200, &serde_json::json!({})));
    let (code, v) = call(&st, get("/api/v1/query_exemplars?query=up&start=0&end=3600")).await;
    assert_eq!((code, &v["data"]), (200, &serde_json::json!([])));
    let (_, v) = call(&st, get("/api/v1/format_query?query=sum(up)by(job)")).await;
    assert_eq!(v["data"], "sum by (job) (up)");
    let (_, v) = call(&st, post("/api/v1/parse_query", "query=up")).await;
    assert_eq!(v["data"]["type"], "vectorSelector");

    let (_, v) = call(&st, get("/api/v1/status/runtimeinfo")).await;
    assert!(v["data"]["startTime"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert_eq!(v["data"]["storageRetention"], "15d");
    let (_, v) = call(&st, get("/api/v1/status/tsdb")).await;
    assert_eq!(v["data"]["headStats"]["numSeries"], 18);
    assert_eq!(v["data"]["seriesCountByMetricName"][0], serde_json::json!({"name": "req_seconds_bucket", "value": 9}));
    assert_eq!(v["data"]["headStats"]["minTime"], 0);
}

#[tokio::test]
async fn bad_requests_get_prometheus_errors() {
    let dir = TmpDir::new("errors");
    let db = open_db(&dir);
    let st = state(Arc::clone(&db), EngineOptions::default());
    let cases: &[(&str, Option<&str>, u16, &str, &str)] = &[
        (
            "/api/v1/query?query=sum(",
            None,
            400,
            "bad_data",
            "invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis",
        ),
        (
            "/api/v1/query?query=up%7Ba%3D%22b%22%7D%20%29",
            None,
            400,
            "bad_data",
            "invalid parameter \"query\": 1:12: parse error: unexpected right parenthesis ')'",
        ),
        (
            "/api/v1/query?query=up%7B%0A",
            None,
            400,
            "bad_data",
            "invalid parameter \"query\": 2:1: parse error: unexpected end of input inside braces",
        ),
        ("/api/v1/query", Some("query=up&time=yesterday"), 400, "bad_data", "invalid parameter \"time\": cannot parse"),
        (
            "/api/v1/query_range",
            Some("query=up&start=10&end=0&step=1"),
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range",
            Some("query=up&start=0&end=10&step=0"),
            400,
            "bad_data",
            "zero or negative query resolution",
        ),
        ("/api/v1/query_range", Some("query=up&end=10&step=1"), 400, "bad_data", "invalid parameter \"start\""),
        (
            "/api/v1/query_range",
            Some("query=up&start=0&end=100000&step=1"),
            400,
            "bad_data",
            "exceeded maximum resolution",
        ),
        ("/api/v1/series", None, 400, "bad_data", "no match[] parameter provided"),
        ("/api/v1/series?match[]=%7Bjob%3D%22%22%7D", None, 400, "bad_data", "at least one non-empty matcher"),
        ("/api/v1/series?match[]=sum(up)", None, 400, "bad_data", "invalid parameter \"match[]\""),
        ("/api/v1/labels?start=x", None, 400, "bad_data", "invalid parameter \"start\""),
        ("/api/v1/query?query=up&timeout=zz", None, 400, "bad_data", "invalid parameter \"timeout\""),
        ("/api/v1/query?query=1%20%2B%20%22a%22", None, 400, "bad_data", "invalid parameter \"query\""),
        ("/api/v1/format_query?query=up%7B", None, 400, "bad_data", ""),
    ];
    for &(uri, form, want_code, want_type, want_msg) in cases {
        let req = form.map_or_else(|| get(uri), |f| post(uri, f));
        let (code, v) = call(&st, req).await;
        assert_eq!(code, want_code, "{uri} {form:?}: {v}");
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], want_type, "{uri}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(want_msg)), "{uri}: {v}");
    }
    let small = state(Arc::clone(&db), EngineOptions { max_samples: 10, ..EngineOptions::default() });
    let (code, v) = call(&small, get("/api/v1/query_range?query=up&start=0&end=3600&step=15")).await;
    assert_eq!((code, &v["errorType"]), (422, &serde_json::json!("execution")), "{v}");
    assert_eq!(v["error"], "query processing would load too many samples into memory in query execution");
    let slow = state(Arc::clone(&db), EngineOptions { timeout: Duration::ZERO, ..EngineOptions::default() });
    let (code, v) =
        call(&slow, get("/api/v1/query_range?query=rate(http_requests_total%5B5m%5D)&start=0&end=3600&step=15")).await;
    assert_eq!((code, &v["errorType"]), (503, &serde_json::json!("timeout")), "{v}");
    // The request's `timeout` shortens the engine's (2m here), as Prometheus's does.
    let normal = state(db, EngineOptions::default());
    let uri = "/api/v1/query_range?query=rate(http_requests_total%5B5m%5D)&start=0&end=3600&step=15";
    let (code, v) = call(&normal, get(&format!("{uri}&timeout=0s"))).await;
    assert_eq!((code, &v["errorType"]), (503, &serde_json::json!("timeout")), "{v}");
    assert_eq!(v["error"], "query timed out in expression evaluation");
    let (code, v) = call(&normal, get(&format!("{uri}&timeout=1h"))).await;
    assert_eq!(code, 200, "{v}");
}
