//! Runner tests. The engine here is a test-only fake that understands `metric` and
//! `metric == N` over `a+bxn` input series; the real comparison against promtool runs once
//! the PromQL engine is wired (see the crate README section).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::eval::{QueryError, Sample, is_stale};

fn conformance() -> PathBuf {
    std::env::var_os("OSPREY_CONFORMANCE_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/rules/testdata"),
        |d| PathBuf::from(d).join("rules/testdata"),
    )
}

#[test]
fn upstream_test_files_parse() {
    let dir = conformance();
    for name in [
        "unittest.yml",
        "long-period.yml",
        "at-modifier-test.yml",
        "negative-offset-test.yml",
        "no-test-group-interval.yml",
        "start-time-test.yml",
        "rules_run.yml",
        "rules_run_fuzzy.yml",
        "rules_run_no_fuzzy.yml",
        "failing.yml",
        "bad-input-series.yml",
        "bad-promql.yml",
        "bad-rules-syntax-test.yml",
        "bad-rules-error-test.yml",
    ] {
        let tf = parse_test_file(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!tf.tests.is_empty(), "{name}");
    }
    let tf = parse_test_file(&dir.join("rules_run_fuzzy.yml")).unwrap();
    assert!(tf.fuzzy_compare);
}

#[test]
fn selector_strings_and_fuzzy_compare() {
    let l = parse_series_labels(r#"job:test:count_over_time1m{job="test"}"#).unwrap();
    assert_eq!(l["__name__"], "job:test:count_over_time1m");
    assert_eq!(l["job"], "test");
    assert!(float_eq(3.0, next_up(3.0), true));
    assert!(!float_eq(3.0, next_up(next_up(3.0)), true));
    assert!(!float_eq(3.0, next_up(3.0), false));
}

/// Test-only fake storage + engine: `input` is made visible by `load_till`.
#[derive(Default)]
struct FakeDbForUnitTests {
    input: Vec<(Labels, i64, f64)>,
    visible: std::sync::Mutex<Vec<(Labels, i64, f64)>>,
}

impl QueryEngine for FakeDbForUnitTests {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
        let (name, eq) = match expr.split_once(" == ") {
            Some((n, v)) => (n.trim(), Some(v.trim().parse::<f64>().map_err(|e| QueryError(e.to_string()))?)),
            None => (expr.trim(), None),
        };
        let mut latest: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
        for (l, t, v) in self.visible.lock().unwrap().iter() {
            if l.get("__name__").map(String::as_str) == Some(name) && *t <= t_ms && *t > t_ms - 300_000 {
                let e = latest.entry(l.clone()).or_insert((*t, *v));
                if *t >= e.0 {
                    *e = (*t, *v);
                }
            }
        }
        Ok(latest
            .into_iter()
            .filter(|(_, (_, v))| !is_stale(*v) && eq.is_none_or(|x| *v == x))
            .map(|(mut l, (_, v))| {
                if eq.is_some() {
                    l.remove("__name__");
                }
                Sample { labels: l, value: v }
            })
            .collect())
    }
}

impl ForStateSource for FakeDbForUnitTests {
    fn last_sample(&self, _: &Labels, _: i64, _: i64) -> Option<(i64, f64)> {
        None
    }
}

impl TestDb for FakeDbForUnitTests {
    fn load_till(&self, t_ms: i64) {
        let mut v = self.visible.lock().unwrap();
        for s in self.input.iter().filter(|s| s.1 <= t_ms) {
            if !v.contains(s) {
                v.push(s.clone());
            }
        }
    }

    fn append_sample(&self, labels: &Labels, t_ms: i64, value: f64) {
        self.visible.lock().unwrap().push((labels.clone(), t_ms, value));
    }
}

struct FakeBackendForUnitTests;

impl TestBackend for FakeBackendForUnitTests {
    fn load(
        &self,
        series: &[InputSeries],
        interval: Duration,
        start_ms: i64,
        _: Duration,
    ) -> Result<Box<dyn TestDb>, String> {
        let mut db = FakeDbForUnitTests::default();
        for s in series {
            let labels = parse_series_labels(&s.series)?;
            let mut i = 0i64;
            for tok in s.values.split_whitespace() {
                let (base, rest) = tok.split_once('x').map_or((tok, None), |(b, n)| (b, Some(n)));
                let n: i64 = rest.map_or(Ok(0), str::parse).map_err(|e| format!("{tok}: {e}"))?;
                let (a, b) = base.split_once('+').map_or((base, "0"), |x| x);
                let a: f64 = a.parse().map_err(|e| format!("{tok}: {e}"))?;
                let b: f64 = b.parse().map_err(|e| format!("{tok}: {e}"))?;
                for k in 0..=n {
                    db.input.push((labels.clone(), start_ms + i * interval.as_millis() as i64, a + b * k as f64));
                    i += 1;
                }
            }
        }
        Ok(Box::new(db))
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn runner_passes_and_fails_like_promtool_with_fake_engine() {
    let dir = std::env::temp_dir().join(format!("osprey-unittest-{}", std::process::id()));
    write(
        &dir,
        "r.yml",
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 2m\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.instance }} down'\n  - record: up_copy\n    expr: up\n",
    );
    let good = write(
        &dir,
        "good.yml",
        "rule_files: [r.yml]\ntests:\n- name: ok\n  interval: 1m\n  input_series:\n  - series: 'up{instance=\"a\"}'\n    values: '1 0x5'\n  alert_rule_test:\n  - eval_time: 2m\n    alertname: Down\n    exp_alerts: []\n  - eval_time: 3m\n    alertname: Down\n    exp_alerts:\n    - exp_labels: {severity: page, instance: a}\n      exp_annotations: {summary: 'a down'}\n  promql_expr_test:\n  - expr: up_copy\n    eval_time: 4m\n    exp_samples:\n    - labels: 'up_copy{instance=\"a\"}'\n      value: 0\n",
    );
    let r = test_rules(std::slice::from_ref(&good), &FakeBackendForUnitTests, &TestOptions::default());
    assert_eq!(r.exit_code, 0, "{r:?}");
    assert_eq!(r.stdout, format!("Unit Testing:  {}\n  SUCCESS\n\n", good.display()));
    let bad = write(
        &dir,
        "bad.yml",
        "rule_files: [r.yml]\ntests:\n- name: early\n  interval: 1m\n  input_series:\n  - series: 'up{instance=\"a\"}'\n    values: '1 0x5'\n  alert_rule_test:\n  - eval_time: 2m\n    alertname: Down\n    exp_alerts:\n    - exp_labels: {severity: page, instance: a}\n",
    );
    let r = test_rules(std::slice::from_ref(&bad), &FakeBackendForUnitTests, &TestOptions::default());
    assert_eq!(r.exit_code, 1, "{r:?}");
    assert_eq!(r.stdout, format!("Unit Testing:  {}\n\n\n", bad.display()), "one blank line per failure");
    assert!(r.stderr.starts_with("  FAILED:\n    name: early,\n    alertname: Down, time: 2m, \n        exp:[\n            0:\n              Labels:{alertname=\"Down\", instance=\"a\", severity=\"page\"}\n              Annotations:{}\n            ], \n        got:[]\n"), "{}", r.stderr);
    let r = test_rules(
        &[bad],
        &FakeBackendForUnitTests,
        &TestOptions { run: vec!["^nomatch$".into()], ..TestOptions::default() },
    );
    assert_eq!(r.exit_code, 0, "--run filters groups out");
}
