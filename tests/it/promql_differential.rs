//! Differential test of the PromQL engine against Prometheus itself: the same series are loaded
//! into our engine and into `promtool test rules` (Prometheus's engine, Debian's 2.42), every
//! query of a corpus is evaluated by us, and promtool checks our results as its expectations.
//! promtool compares within one ULP; where it reports a mismatch we re-read its value and
//! accept differences within 1e-9 relative (Prometheus 3 sums with Kahan compensation, 2.42
//! does not). Label sets must match exactly.
//!
//! Kept to the two generations' common ground (see the conformance README): no samples on
//! range boundaries (evaluations at :30 s, data every minute), no renamed functions, no
//! `__name__` tricks that depend on delayed name removal, no NaN results (promtool's comparer
//! treats NaN as unequal to itself), no ties among `topk`/`bottomk` candidates (which of two
//! equal values wins depends on heap order), no counter windows reaching before a series' first
//! sample (2.x clamps the extrapolation to the counter's zero point before the 1.1 × interval
//! check, 3.x after it), and subquery steps that never put a range boundary on a sample.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use osprey_promql::storage::stale_nan;
use osprey_promql::{Engine, Labels, MemStorage, QueryValue};

use crate::harness::{TempDir, peer};

const INTERVAL_MS: i64 = 60_000;
const POINTS: usize = 60;
const EVAL_TIMES: &[(&str, i64)] =
    &[("10m30s", 630_000), ("25m30s", 1_530_000), ("41m30s", 2_490_000), ("52m30s", 3_150_000)];

/// A sample slot: value, gap, or staleness marker.
#[derive(Clone, Copy)]
enum Slot {
    V(f64),
    Gap,
    Stale,
}

fn dataset() -> Vec<(String, Vec<Slot>)> {
    let mut out = Vec::new();
    let counter = |step: f64, reset_at: Option<usize>| -> Vec<Slot> {
        let mut v = 0.0;
        (0..POINTS)
            .map(|i| {
                if Some(i) == reset_at {
                    v = 0.0;
                }
                v += step;
                Slot::V(v)
            })
            .collect()
    };
    out.push((r#"http_requests_total{job="api", instance="a"}"#.to_string(), counter(7.0, Some(30))));
    out.push((r#"http_requests_total{job="api", instance="b"}"#.to_string(), counter(4.0, None)));
    let mut c = counter(5.0, Some(47));
    for i in [12, 13, 27] {
        c[i] = Slot::Gap;
    }
    c[40] = Slot::Stale;
    for s in &mut c[41..45] {
        *s = Slot::Gap;
    }
    out.push((r#"http_requests_total{job="db", instance="c"}"#.to_string(), c));
    let gauge = |base: f64, amp: f64| -> Vec<Slot> {
        (0..POINTS).map(|i| Slot::V(base + amp * (((i * 7) % 11) as f64 - 5.0))).collect()
    };
    out.push((r#"memory_bytes{job="api", instance="a"}"#.to_string(), gauge(1000.0, 40.0)));
    out.push((r#"memory_bytes{job="api", instance="b"}"#.to_string(), gauge(800.0, 15.0)));
    out.push((r#"memory_bytes{job="db", instance="c"}"#.to_string(), gauge(4000.0, 250.0)));
    for (inst, job, down) in [("a", "api", 20..24), ("b", "api", 0..0), ("c", "db", 35..50)] {
        let v = (0..POINTS).map(|i| Slot::V(if down.contains(&i) { 0.0 } else { 1.0 })).collect();
        out.push((format!(r#"up{{job="{job}", instance="{inst}"}}"#), v));
    }
    for (k, le) in ["0.1", "0.5", "1", "+Inf"].iter().enumerate() {
        for (job, rate) in [("api", 4.0), ("db", 2.0)] {
            let per_min = rate * (k as f64 + 1.0) + if k == 3 { 1.0 } else { 0.0 };
            let v = (0..POINTS).map(|i| Slot::V(per_min * i as f64)).collect();
            out.push((format!(r#"request_duration_seconds_bucket{{job="{job}", le="{le}"}}"#), v));
        }
    }
    out
}

fn corpus() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();
    let range_fns = [
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "resets",
        "changes",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "present_over_time",
        "stddev_over_time",
        "stdvar_over_time",
    ];
    for f in range_fns {
        for m in ["http_requests_total", "memory_bytes"] {
            for r in ["2m", "5m", "10m"] {
                q.push(format!("{f}({m}[{r}])"));
            }
        }
    }
    for r in ["3m", "7m"] {
        q.push(format!("quantile_over_time(0.75, memory_bytes[{r}])"));
        q.push(format!("predict_linear(memory_bytes[{r}], 600)"));
        q.push(format!("rate(http_requests_total{{job=\"api\"}}[{r}] offset 2m)"));
    }
    let aggs = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"];
    for a in aggs {
        for inner in ["rate(http_requests_total[5m])", "memory_bytes", "up"] {
            q.push(format!("{a}({inner})"));
            q.push(format!("{a} by (job) ({inner})"));
            q.push(format!("{a} without (instance) ({inner})"));
        }
    }
    for inner in ["memory_bytes", "rate(http_requests_total[5m])"] {
        q.push(format!("topk(2, {inner})"));
        q.push(format!("bottomk(1, {inner})"));
        q.push(format!("topk by (job) (1, {inner})"));
        q.push(format!("quantile(0.9, {inner})"));
        q.push(format!("quantile by (job) (0.5, {inner})"));
    }
    q.push(r#"count_values("value", up)"#.into());
    q.push(r#"count_values by (job) ("value", up)"#.into());
    for le_q in ["0.5", "0.9", "0.99"] {
        q.push(format!("histogram_quantile({le_q}, sum by (le) (rate(request_duration_seconds_bucket[5m])))"));
        q.push(format!("histogram_quantile({le_q}, rate(request_duration_seconds_bucket[10m]))"));
    }
    q.extend(
        [
            "memory_bytes / on(job) group_left sum by (job) (memory_bytes)",
            "sum by (job) (memory_bytes) / on(job) group_right memory_bytes",
            "memory_bytes * on(instance, job) up",
            "memory_bytes * ignoring(instance) group_left count by (job) (up)",
            "http_requests_total > bool 100",
            "http_requests_total > 150",
            "150 < http_requests_total",
            "memory_bytes and on(instance) up == 1",
            "memory_bytes unless on(instance) up == 0",
            "memory_bytes or on(instance) http_requests_total",
            "rate(http_requests_total[5m]) * 60",
            "1 - memory_bytes / 10000",
            "-memory_bytes",
            "memory_bytes % 7",
            "memory_bytes ^ 0.5",
            "sum(rate(http_requests_total[5m])) by (job) / sum(up) by (job)",
            "abs(delta(memory_bytes[5m]))",
            "ceil(rate(http_requests_total[5m]))",
            "floor(memory_bytes / 3)",
            "round(memory_bytes / 7)",
            "round(memory_bytes / 7, 0.25)",
            "sqrt(memory_bytes)",
            "ln(memory_bytes)",
            "log2(memory_bytes)",
            "log10(memory_bytes)",
            "exp(up)",
            "clamp(memory_bytes, 900, 1000)",
            "clamp_min(memory_bytes, 1000)",
            "clamp_max(memory_bytes, 1000)",
            "sgn(delta(memory_bytes[5m]))",
            "timestamp(memory_bytes)",
            "timestamp(up offset 3m)",
            r#"absent(nothing{job="x"})"#,
            "absent(memory_bytes)",
            r#"absent_over_time(nothing{job="y"}[5m])"#,
            r#"label_replace(memory_bytes, "host", "h-$1", "instance", "(.*)")"#,
            r#"label_join(up, "id", "/", "job", "instance")"#,
            "vector(3)",
            "scalar(sum(up))",
            "time()",
            "minute()",
            "hour(vector(7200))",
            "day_of_week()",
            "max_over_time(rate(http_requests_total[2m] offset 30s)[6m:1m])",
            "avg_over_time(memory_bytes[10m:2m])",
            "min_over_time(sum by (job) (memory_bytes)[15m:5m] offset 5m)",
            "sum_over_time(up[30m])",
            "count_over_time(http_requests_total[15m])",
            "changes(up[30m])",
            "resets(http_requests_total[30m])",
            r#"http_requests_total{job=~"a.*|d.*", instance!="b"}"#,
            r#"{__name__=~"memory_.*|up", job="db"}"#,
            "http_requests_total offset 5m",
            "memory_bytes @ 600",
            "rate(http_requests_total[5m] @ 1200)",
            "sort_desc(memory_bytes)",
            "irate(http_requests_total[3m])",
            "idelta(http_requests_total[3m])",
            "http_requests_total * on(instance) group_left(job) up",
            "memory_bytes + on(instance) group_left http_requests_total",
            "memory_bytes - ignoring(job) up",
            "memory_bytes == bool on(instance) memory_bytes",
            "up == 0",
            "up != 1",
            "count(up == 1) by (job)",
            "sum without (job, instance) (memory_bytes)",
            "avg by (instance) (memory_bytes) > 900",
            "nothing or vector(0)",
            r#"sum(nothing{job="x"})"#,
            "rate(nothing[5m])",
            "http_requests_total unless memory_bytes",
            "http_requests_total and ignoring(instance) up",
            "delta(up[10m])",
            "last_over_time(http_requests_total[10m])",
            "max(max_over_time(memory_bytes[5m])) by (job) - min(min_over_time(memory_bytes[5m])) by (job)",
            "increase(http_requests_total[8m]) / 8",
            "deriv(http_requests_total[10m])",
            "predict_linear(http_requests_total[15m], 3600)",
            "stddev_over_time(rate(http_requests_total[2m] offset 30s)[6m:1m])",
            "sum_over_time(rate(http_requests_total[3m] offset 30s)[4m:2m] offset 1m)",
        ]
        .map(String::from),
    );
    q
}

fn load_ours(data: &[(String, Vec<Slot>)]) -> MemStorage {
    let mut s = MemStorage::new();
    for (series, slots) in data {
        let labels = parse_series_labels(series);
        for (i, slot) in slots.iter().enumerate() {
            let t = i as i64 * INTERVAL_MS;
            match slot {
                Slot::V(v) => s.add(&labels, t, *v),
                Slot::Stale => s.add(&labels, t, stale_nan()),
                Slot::Gap => {}
            }
        }
    }
    s
}

fn parse_series_labels(s: &str) -> Labels {
    let (name, rest) = s.split_once('{').expect("series with labels");
    let mut pairs = vec![("__name__".to_string(), name.to_string())];
    for kv in rest.trim_end_matches('}').split(", ") {
        let (k, v) = kv.split_once('=').expect("k=v");
        pairs.push((k.to_string(), v.trim_matches('"').to_string()));
    }
    Labels::from_vec(pairs)
}

fn yaml_value(v: f64) -> String {
    if v.is_infinite() { if v > 0.0 { ".inf".into() } else { "-.inf".into() } } else { format!("{v:?}") }
}

fn labels_text(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Parses promtool's `{a="b", c="d"} 1.5E+00, {…} …` sample lists.
fn parse_samples(s: &str) -> BTreeMap<String, f64> {
    let re = regex::Regex::new(r"(\{[^}]*\}) (\S+?)(?:,|$)").expect("regex");
    re.captures_iter(s.trim()).map(|c| (c[1].to_string(), c[2].parse::<f64>().unwrap_or(f64::NAN))).collect()
}

#[test]
fn promql_results_match_prometheus_via_promtool() {
    let Some(promtool) = peer("promtool") else { return };
    let data = dataset();
    let store = load_ours(&data);
    let engine = Engine::default_engine();
    let mut yaml = String::from("evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n");
    for (series, slots) in &data {
        let values: Vec<&str> = slots
            .iter()
            .map(|s| match s {
                Slot::Gap => "_",
                Slot::Stale => "stale",
                Slot::V(_) => "",
            })
            .collect();
        let vals: Vec<String> = slots
            .iter()
            .zip(values)
            .map(|(s, txt)| if let Slot::V(v) = s { format!("{v}") } else { txt.to_string() })
            .collect();
        let _ = writeln!(yaml, "      - series: '{series}'\n        values: '{}'", vals.join(" "));
    }
    yaml.push_str("    promql_expr_test:\n");
    let (mut cases, mut skipped_nan, mut ours) = (0, 0, BTreeMap::new());
    for q in corpus() {
        for (name, t) in EVAL_TIMES {
            let r = engine.instant_query(&store, &q, *t).unwrap_or_else(|e| panic!("{q} at {name}: {e}"));
            let samples: Vec<(Labels, f64)> = match r.value {
                QueryValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
                QueryValue::Scalar { v, .. } => vec![(Labels::default(), v)],
                other => panic!("{q}: unexpected {other:?}"),
            };
            if samples.iter().any(|s| s.1.is_nan()) {
                skipped_nan += 1;
                continue;
            }
            cases += 1;
            let _ = writeln!(yaml, "      - expr: '{}'\n        eval_time: {name}", q.replace('\'', "''"));
            if samples.is_empty() {
                yaml.push_str("        exp_samples: []\n");
            } else {
                yaml.push_str("        exp_samples:\n");
            }
            for (l, v) in &samples {
                let _ =
                    writeln!(yaml, "          - labels: '{}'\n            value: {}", labels_text(l), yaml_value(*v));
                ours.insert((q.clone(), (*name).to_string(), labels_text(l)), *v);
            }
        }
    }
    let dir = TempDir::new("promql-diff");
    let file = dir.join("diff.yml");
    std::fs::write(&file, &yaml).expect("write test file");
    let out = Command::new(promtool).args(["test", "rules"]).arg(&file).output().expect("run promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{cases} query/time cases checked by promtool ({skipped_nan} with NaN results left out)");
    assert!(cases >= 400, "corpus too small: {cases}");
    if out.status.success() {
        return;
    }
    // Re-check promtool's reported mismatches with a 1e-9 relative tolerance.
    let mut bad = Vec::new();
    let lines: Vec<&str> = report.lines().collect();
    let mut reported = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.trim().strip_prefix("expr: ") else { continue };
        reported += 1;
        let (Some(exp), Some(got)) = (lines.get(i + 1), lines.get(i + 2)) else {
            bad.push(format!("unparsable promtool report near: {l}"));
            continue;
        };
        let (Some(exp), Some(got)) = (exp.trim().strip_prefix("exp: "), got.trim().strip_prefix("got: ")) else {
            bad.push(format!("{rest}: {}", lines[i + 1].trim()));
            continue;
        };
        let (e, g) = (parse_samples(exp), parse_samples(got));
        let same_keys = e.keys().eq(g.keys());
        let close = e.iter().all(|(k, a)| g.get(k).is_some_and(|b| (a - b).abs() <= 1e-9 * a.abs().max(b.abs())));
        if !same_keys || !close {
            bad.push(format!("{rest}\n    ours:       {exp}\n    prometheus: {got}"));
        }
    }
    assert!(reported > 0, "promtool failed without reporting mismatches:\n{report}");
    assert!(bad.is_empty(), "{} of {cases} cases differ from Prometheus:\n{}", bad.len(), bad.join("\n"));
    println!("{reported} cases differed only within 1e-9 relative");
}
