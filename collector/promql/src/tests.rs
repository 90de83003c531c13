//! Engine-level tests: limits, data read once per query, range = stepped instants.
#![allow(clippy::many_single_char_names)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::storage::{Matcher, Queryable, Series};
use crate::{Engine, EngineOptions, Error, Labels, MemStorage, QueryValue};

struct Counting {
    inner: MemStorage,
    selects: AtomicUsize,
}

impl Queryable for Counting {
    fn select(&self, m: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        self.selects.fetch_add(1, Ordering::SeqCst);
        self.inner.select(m, mint, maxt)
    }
    fn label_names(&self, m: &[Matcher]) -> Vec<String> {
        self.inner.label_names(m)
    }
    fn label_values(&self, n: &str, m: &[Matcher]) -> Vec<String> {
        self.inner.label_values(n, m)
    }
}

fn store(series: usize, points: i64) -> MemStorage {
    let mut s = MemStorage::new();
    for i in 0..series {
        let inst = format!("i{i}");
        let l = Labels::from_pairs(&[
            ("__name__", "x_total"),
            ("job", if i % 2 == 0 { "a" } else { "b" }),
            ("instance", &inst),
        ]);
        for p in 0..points {
            s.add(&l, p * 15_000, (p * (i as i64 + 1)) as f64);
        }
    }
    s
}

#[test]
fn range_query_reads_each_selector_once() {
    let c = Counting { inner: store(4, 400), selects: AtomicUsize::new(0) };
    let e = Engine::default_engine();
    let r = e
        .range_query(&c, "sum by (job) (rate(x_total[5m])) / on() group_left sum(x_total)", 600_000, 5_400_000, 15_000)
        .unwrap();
    assert_eq!(c.selects.load(Ordering::SeqCst), 2, "one select per selector, not per step");
    let QueryValue::Matrix(m) = r.value else { panic!("matrix expected") };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].points.len(), 321);
}

#[test]
fn range_query_steps_equal_instant_queries() {
    let s = store(3, 100);
    let e = Engine::default_engine();
    let q = "rate(x_total[1m]) * on(instance) group_left x_total offset 30s";
    let QueryValue::Matrix(m) = e.range_query(&s, q, 120_000, 600_000, 30_000).unwrap().value else { panic!() };
    for t in (120_000..=600_000).step_by(30_000) {
        let QueryValue::Vector(v) = e.instant_query(&s, q, t).unwrap().value else { panic!() };
        for smp in v {
            let series = m.iter().find(|x| x.labels == smp.labels).expect("series in range result");
            let p = series.points.iter().find(|p| p.0 == t).expect("point at step");
            assert!((p.1 - smp.v).abs() < 1e-9);
        }
    }
}

/// Range functions over selectors are computed a block of steps at a time in range queries;
/// every step must still equal the instant query at that time, both ways (same series, same
/// values), across block edges, gaps, stale markers, counter resets, `offset` and `@`.
#[test]
fn blocked_range_functions_equal_instant_queries() {
    let mut s = store(5, 120);
    let gappy = Labels::from_pairs(&[("__name__", "x_total"), ("job", "c"), ("instance", "gappy")]);
    for p in 0..120i64 {
        match p % 37 {
            0..=9 => {}
            10 => s.add(&gappy, p * 15_000, crate::storage::stale_nan()),
            _ => s.add(&gappy, p * 15_000, ((p * 7) % 50) as f64),
        }
    }
    let e = Engine::default_engine();
    for q in [
        "rate(x_total[1m])",
        "increase(x_total[2m] offset 45s)",
        "irate(x_total[1m])",
        "delta(x_total[1m])",
        "idelta(x_total[1m])",
        "deriv(x_total[2m])",
        "resets(x_total[3m])",
        "changes(x_total[3m])",
        "avg_over_time(x_total[1m])",
        "count_over_time(x_total[1m])",
        "last_over_time(x_total[1m])",
        "rate(x_total[1m] @ 600)",
        "sum by (job) (rate(x_total[1m]))",
        "max_over_time(rate(x_total[1m])[3m:30s])",
    ] {
        let (start, end, step) = (0, 1_800_000, 20_000);
        let r = e.range_query(&s, q, start, end, step).unwrap_or_else(|err| panic!("{q}: {err}"));
        let QueryValue::Matrix(m) = r.value else { panic!("{q}: matrix expected") };
        let mut points = 0;
        for t in (start..=end).step_by(step as usize) {
            let QueryValue::Vector(v) = e.instant_query(&s, q, t).unwrap().value else { panic!("{q}: vector") };
            for smp in &v {
                let series = m.iter().find(|x| x.labels == smp.labels).unwrap_or_else(|| panic!("{q} {t}"));
                let p = series.points.iter().find(|p| p.0 == t).unwrap_or_else(|| panic!("{q} at {t}"));
                assert!(p.1 == smp.v || (p.1 - smp.v).abs() < 1e-9 || (p.1.is_nan() && smp.v.is_nan()), "{q} at {t}");
            }
            points += v.len();
        }
        assert_eq!(points, m.iter().map(|x| x.points.len()).sum::<usize>(), "{q}: same number of points");
        assert!(points > 0, "{q}: some output");
    }
}

#[test]
fn too_many_samples_is_a_prometheus_error() {
    let s = store(10, 100);
    let e = Engine::new(EngineOptions { max_samples: 50, ..EngineOptions::default() });
    let err = e.instant_query(&s, "x_total[10m]", 1_000_000).unwrap_err();
    assert_eq!(err, Error::TooManySamples("query execution"));
    assert_eq!(err.to_string(), "query processing would load too many samples into memory in query execution");
    assert!(e.instant_query(&s, "x_total", 1_000_000).is_ok(), "10 samples fit");
}

#[test]
fn loading_too_much_stops_before_evaluation() {
    let s = store(10, 100);
    let e = Engine::new(EngineOptions { max_loaded_samples: 500, ..EngineOptions::default() });
    let err = e.range_query(&s, "rate(x_total[5m])", 0, 1_500_000, 60_000).unwrap_err();
    assert_eq!(err, Error::TooManySamples("query execution"));
    assert!(e.instant_query(&s, "x_total", 100_000).is_ok(), "a small window fits");
}

#[test]
fn timeout_stops_the_query() {
    let s = store(2, 10);
    let e = Engine::new(EngineOptions { timeout: Duration::ZERO, ..EngineOptions::default() });
    let err = e.range_query(&s, "x_total", 0, 100_000, 1000).unwrap_err();
    assert_eq!(err.to_string(), "query timed out in expression evaluation");
}

/// A store whose `select` signals that it was entered, then blocks until released.
struct Gate {
    inner: MemStorage,
    entered: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Queryable for Gate {
    fn select(&self, m: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        let _ = self.entered.lock().unwrap().send(());
        let _ = self.release.lock().unwrap().recv();
        self.inner.select(m, mint, maxt)
    }
    fn label_names(&self, m: &[Matcher]) -> Vec<String> {
        self.inner.label_names(m)
    }
    fn label_values(&self, n: &str, m: &[Matcher]) -> Vec<String> {
        self.inner.label_values(n, m)
    }
}

#[test]
fn concurrency_limit_queues_then_times_out_in_the_queue() {
    let s = store(1, 10);
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let gate = Gate {
        inner: s.clone(),
        entered: std::sync::Mutex::new(entered_tx),
        release: std::sync::Mutex::new(release_rx),
    };
    let e = Engine::new(EngineOptions { max_concurrent: 1, ..EngineOptions::default() });
    std::thread::scope(|sc| {
        let first = sc.spawn(|| e.instant_query(&gate, "x_total", 100_000));
        entered_rx.recv().expect("first query reached storage");
        // The only slot is taken: a query with a short timeout gives up in the queue.
        let err = e.instant_query_timeout(&s, "x_total", 100_000, Some(Duration::from_millis(50))).unwrap_err();
        assert_eq!(err, Error::Timeout("query queue"));
        assert_eq!(err.to_string(), "query timed out in query queue");
        // One with time to spare waits and runs once the slot is free.
        let second = sc.spawn(|| e.instant_query_timeout(&s, "x_total", 100_000, Some(Duration::from_secs(60))));
        release_tx.send(()).expect("release");
        assert!(first.join().expect("first").is_ok());
        assert!(second.join().expect("second").is_ok());
    });
}

#[test]
fn request_timeout_is_capped_by_and_shortens_the_engine_timeout() {
    let s = store(2, 100);
    let e = Engine::default_engine();
    let err = e.range_query_timeout(&s, "x_total", 0, 1_000_000, 1000, Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err, Error::Timeout("expression evaluation"));
    assert!(e.range_query_timeout(&s, "x_total", 0, 1_000_000, 1000, Some(Duration::from_secs(3600))).is_ok());
}

#[test]
fn bad_query_is_a_parse_error() {
    let s = store(1, 1);
    let err = Engine::default_engine().instant_query(&s, "sum(", 0).unwrap_err();
    assert!(matches!(err, Error::Parse(_)), "{err:?}");
}

#[test]
fn stale_marker_ends_the_series_before_lookback() {
    let mut s = MemStorage::new();
    let l = Labels::from_pairs(&[("__name__", "m")]);
    s.add(&l, 0, 1.0);
    s.add(&l, 10_000, crate::storage::stale_nan());
    let e = Engine::default_engine();
    let QueryValue::Vector(v) = e.instant_query(&s, "m", 5_000).unwrap().value else { panic!() };
    assert_eq!(v.len(), 1);
    let QueryValue::Vector(v) = e.instant_query(&s, "m", 20_000).unwrap().value else { panic!() };
    assert!(v.is_empty(), "stale marker hides the series within the lookback window");
}

mod generated {
    use proptest::prelude::*;

    use crate::{Engine, EngineOptions, MemStorage};

    fn selector() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("x_total".to_string()),
            Just("x_total{job=\"a\"}".to_string()),
            Just("{__name__=~\"x.*\", instance!=\"i1\"}".to_string()),
            Just("missing_metric".to_string()),
            Just("x_total offset 1m".to_string()),
            Just("x_total @ 300".to_string()),
        ]
    }

    fn range_fn() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
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
            "stddev_over_time",
            "last_over_time",
            "present_over_time",
            "absent_over_time",
            "mad_over_time",
        ])
    }

    fn expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            selector(),
            (range_fn(), selector(), 1u32..20).prop_map(|(f, s, r)| format!("{f}({s}[{r}m])")),
            (-5.0f64..5.0).prop_map(|v| format!("vector({v})")),
        ];
        leaf.prop_recursive(4, 32, 3, |inner| {
            let agg = prop::sample::select(vec!["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]);
            let op = prop::sample::select(vec![
                "+", "-", "*", "/", "%", "^", ">", "<", "==", "and", "or", "unless", "atan2",
            ]);
            prop_oneof![
                (agg, inner.clone(), prop::bool::ANY).prop_map(|(a, e, by)| if by {
                    format!("{a} by (job) ({e})")
                } else {
                    format!("{a} without (instance) ({e})")
                }),
                (inner.clone(), op.clone(), inner.clone())
                    .prop_map(|(l, o, r)| format!("({l}) {o} on(job) group_left ({r})")),
                (inner.clone(), op, inner.clone()).prop_map(|(l, o, r)| format!("({l}) {o} ({r})")),
                (0u32..5, inner.clone()).prop_map(|(k, e)| format!("topk({k}, {e})")),
                (0.0f64..1.2, inner.clone()).prop_map(|(q, e)| format!("quantile({q}, {e})")),
                inner.clone().prop_map(|e| format!("max_over_time(({e})[10m:1m])")),
                inner.clone().prop_map(|e| format!("label_replace({e}, \"dst\", \"$1\", \"instance\", \"i(.*)\")")),
                inner.clone().prop_map(|e| format!("histogram_quantile(0.9, {e})")),
                inner.clone().prop_map(|e| format!("sort_desc(abs({e}))")),
                inner.prop_map(|e| format!("absent({e})")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Random grammar-generated queries never panic, and range results stay sorted.
        #[test]
        fn generated_queries_never_panic(q in expr(), t in 0i64..1_200_000) {
            let s: MemStorage = super::store(4, 80);
            let e = Engine::new(EngineOptions { max_samples: 200_000, ..EngineOptions::default() });
            let _ = e.instant_query(&s, &q, t);
            if let Ok(crate::QueryResult { value: crate::QueryValue::Matrix(m), .. }) =
                e.range_query(&s, &q, t, t + 300_000, 60_000)
            {
                prop_assert!(m.windows(2).all(|w| w[0].labels < w[1].labels), "{q}: matrix not sorted");
            }
        }
    }
}

#[test]
fn instant_subquery_with_colliding_dropped_names_is_an_error() {
    let mut s = MemStorage::new();
    for name in ["a_total", "b_total"] {
        let l = Labels::from_pairs(&[("__name__", name), ("job", "x")]);
        for p in 0..40 {
            s.add(&l, p * 15_000, p as f64);
        }
    }
    let e = Engine::default_engine();
    for q in ["(-{job=\"x\"})[5m:]", "(tanh({job=\"x\"}))[5m:1m]"] {
        let err = e.instant_query(&s, q, 500_000).unwrap_err();
        assert_eq!(err, Error::Exec("vector cannot contain metrics with the same labelset".into()), "{q}");
    }
    assert!(e.instant_query(&s, "({job=\"x\"})[5m:]", 500_000).is_ok(), "names kept: no collision");
}
