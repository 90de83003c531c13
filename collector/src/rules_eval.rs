//! The rules crate's seams implemented on the real PromQL engine: [`PromqlRuleEngine`] answers
//! rule and template queries over any [`Queryable`] (the TSDB in run mode, memory in tests),
//! [`LastSampleSource`] reads `ALERTS_FOR_STATE` back for restoring `for` state, and
//! [`MemTestBackend`] is the in-memory database `test rules` runs promtool's unit tests on.

use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use osprey_promql::series::{Point, parse_values};
use osprey_promql::storage::{Matcher, Queryable};
use osprey_promql::{Engine, EngineOptions, MemStorage, QueryValue};
use osprey_rules::eval::{ForStateSource, Labels, QueryEngine, QueryError, Sample};
use osprey_rules::unittest::{InputSeries, TestBackend, TestDb, parse_series_labels};

/// Converts engine labels to the rules crate's label map.
pub fn to_rule_labels(l: &osprey_promql::Labels) -> Labels {
    l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Converts the rules crate's label map to engine labels.
pub fn to_engine_labels(l: &Labels) -> osprey_promql::Labels {
    osprey_promql::Labels::from_vec(l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Runs `expr` at `t_ms` like Prometheus's `EngineQueryFunc`: a vector as is, a scalar as one
/// sample without labels, anything else is an error.
pub fn instant_samples(engine: &Engine, q: &dyn Queryable, expr: &str, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
    let res = engine.instant_query(q, expr, t_ms).map_err(|e| match e {
        osprey_promql::Error::Parse(m) => QueryError(osprey_promql::position::with_position(expr, &m)),
        e => QueryError(e.to_string()),
    })?;
    match res.value {
        QueryValue::Vector(v) => Ok(v
            .into_iter()
            .map(|s| {
                let mut labels = to_rule_labels(&s.labels);
                if s.drop_name {
                    labels.remove("__name__");
                }
                Sample { labels, value: s.v }
            })
            .collect()),
        QueryValue::Scalar { v, .. } => Ok(vec![Sample { labels: Labels::new(), value: v }]),
        _ => Err(QueryError("rule result is not a vector or scalar".into())),
    }
}

/// Rule evaluation on `osprey-promql` over a storage `Q`.
#[derive(Debug)]
pub struct PromqlRuleEngine<Q> {
    /// The engine.
    pub engine: Engine,
    /// What it reads.
    pub storage: Q,
}

impl<Q: Queryable> QueryEngine for PromqlRuleEngine<Q> {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
        instant_samples(&self.engine, &self.storage, expr, t_ms)
    }
}

/// [`ForStateSource`] over any [`Queryable`]: the last sample of the series with exactly the
/// given labels.
pub struct LastSampleSource<'a>(pub &'a dyn Queryable);

/// The last sample of the series with exactly `labels` in `[from_ms, to_ms]`.
pub fn last_sample(q: &dyn Queryable, labels: &Labels, from_ms: i64, to_ms: i64) -> Option<(i64, f64)> {
    let matchers: Vec<Matcher> = labels.iter().map(|(k, v)| Matcher::equal(k, v)).collect();
    let want = to_engine_labels(labels);
    q.select(&matchers, from_ms, to_ms)
        .into_iter()
        .find(|s| s.labels == want)
        .and_then(|s| s.samples.iter().rev().find(|(_, v)| !osprey_promql::storage::is_stale(*v)).copied())
}

impl ForStateSource for LastSampleSource<'_> {
    fn last_sample(&self, labels: &Labels, from_ms: i64, to_ms: i64) -> Option<(i64, f64)> {
        last_sample(self.0, labels, from_ms, to_ms)
    }
}

/// promtool's engine settings for unit tests: default lookback, subqueries without a step use
/// the evaluation interval.
pub fn unit_test_engine(eval_interval: Duration) -> Engine {
    Engine::new(EngineOptions {
        default_subquery_step_ms: i64::try_from(eval_interval.as_millis()).unwrap_or(i64::MAX).max(1),
        ..EngineOptions::default()
    })
}

/// The unit-test database: input samples staged until `load_till` (promtool's lazy loader),
/// rule output appended directly.
#[derive(Debug)]
pub struct MemTestDb {
    engine: Engine,
    visible: RwLock<MemStorage>,
    /// Staged input samples, sorted by time descending (the next one to load is last).
    staged: Mutex<Vec<(i64, osprey_promql::Labels, f64)>>,
}

impl MemTestDb {
    /// A database whose input becomes visible through [`TestDb::load_till`].
    pub fn new(engine: Engine, mut input: Vec<(i64, osprey_promql::Labels, f64)>) -> Self {
        input.sort_by_key(|s| std::cmp::Reverse(s.0));
        Self { engine, visible: RwLock::new(MemStorage::new()), staged: Mutex::new(input) }
    }
}

impl QueryEngine for MemTestDb {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
        let store = self.visible.read().unwrap_or_else(PoisonError::into_inner);
        instant_samples(&self.engine, &*store, expr, t_ms)
    }
}

impl ForStateSource for MemTestDb {
    fn last_sample(&self, labels: &Labels, from_ms: i64, to_ms: i64) -> Option<(i64, f64)> {
        let store = self.visible.read().unwrap_or_else(PoisonError::into_inner);
        last_sample(&*store, labels, from_ms, to_ms)
    }
}

impl TestDb for MemTestDb {
    fn load_till(&self, t_ms: i64) {
        let mut staged = self.staged.lock().unwrap_or_else(PoisonError::into_inner);
        let mut store = self.visible.write().unwrap_or_else(PoisonError::into_inner);
        while staged.last().is_some_and(|s| s.0 <= t_ms) {
            if let Some((t, l, v)) = staged.pop() {
                store.add(&l, t, v);
            }
        }
    }

    fn append_sample(&self, labels: &Labels, t_ms: i64, value: f64) {
        let l = to_engine_labels(labels);
        self.visible.write().unwrap_or_else(PoisonError::into_inner).add(&l, t_ms, value);
    }
}

/// Builds [`MemTestDb`]s from promtool's `input_series` on the real engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemTestBackend;

impl TestBackend for MemTestBackend {
    fn load(
        &self,
        series: &[InputSeries],
        interval: Duration,
        start_ms: i64,
        eval_interval: Duration,
    ) -> Result<Box<dyn TestDb>, String> {
        let step = i64::try_from(interval.as_millis()).map_err(|e| e.to_string())?;
        let mut input = Vec::new();
        for s in series {
            let labels = parse_series_labels(&s.series).map_err(|e| format!("series {:?}: {e}", s.series))?;
            if labels.is_empty() {
                return Err(format!("series {:?}: no labels", s.series));
            }
            let labels = to_engine_labels(&labels);
            let points = parse_values(&s.values).map_err(|e| format!("series {:?}: values: {e}", s.series))?;
            for (i, p) in (0i64..).zip(&points) {
                let t = start_ms + i * step;
                match p {
                    Point::Float(v) => input.push((t, labels.clone(), *v)),
                    Point::Omitted => {}
                    Point::Histogram => {
                        return Err(format!("series {:?}: native histogram values are not supported", s.series));
                    }
                }
            }
        }
        Ok(Box::new(MemTestDb::new(unit_test_engine(eval_interval), input)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn rule_queries_return_vectors_and_scalars_and_reject_matrices() {
        let mut store = MemStorage::new();
        let up = labels(&[("__name__", "up"), ("job", "a")]);
        store.add(&to_engine_labels(&up), 0, 1.0);
        let e = PromqlRuleEngine { engine: Engine::default_engine(), storage: store };
        assert_eq!(e.instant("up", 10_000).unwrap(), vec![Sample { labels: up, value: 1.0 }]);
        assert_eq!(e.instant("up * 2", 10_000).unwrap()[0].labels, labels(&[("job", "a")]));
        assert_eq!(e.instant("3", 0).unwrap(), vec![Sample { labels: Labels::new(), value: 3.0 }]);
        assert_eq!(e.instant("up[1m]", 10_000).unwrap_err().0, "rule result is not a vector or scalar");
        assert_eq!(e.instant("sum(", 0).unwrap_err().0, "1:5: parse error: unclosed left parenthesis");
    }

    #[test]
    fn test_db_hides_input_until_loaded_and_sees_rule_output_at_once() {
        let s = InputSeries { series: "m{a=\"1\"}".into(), values: "1 _ 3 stale".into() };
        let db = MemTestBackend.load(&[s], Duration::from_secs(60), 0, Duration::from_secs(60)).unwrap();
        assert!(db.instant("m", 300_000).unwrap().is_empty(), "nothing loaded yet");
        db.load_till(60_000);
        assert_eq!(db.instant("m", 200_000).unwrap()[0].value, 1.0, "the 2m sample is not visible yet");
        db.load_till(120_000);
        assert_eq!(db.instant("m", 130_000).unwrap()[0].value, 3.0);
        db.load_till(180_000);
        assert!(db.instant("m", 190_000).unwrap().is_empty(), "stale marker ends the series");
        let out = labels(&[("__name__", "rec")]);
        db.append_sample(&out, 190_000, 7.0);
        assert_eq!(db.instant("rec", 190_000).unwrap()[0].value, 7.0);
        assert_eq!(db.last_sample(&out, 0, 200_000), Some((190_000, 7.0)));
        assert_eq!(db.last_sample(&labels(&[("__name__", "rec"), ("x", "y")]), 0, 200_000), None);
    }

    #[test]
    fn the_tsdb_store_backs_rule_evaluation_too() {
        // Run mode evaluates rules on the TSDB through the same adapter.
        fn rule_engine<T: QueryEngine>() {}
        rule_engine::<PromqlRuleEngine<crate::api::TsdbStorage>>();
    }

    #[test]
    fn bad_input_series_are_errors() {
        for (series, values) in [("up{job=\"a\"", "1"), ("up", "1 x"), ("h", "{{schema:0 count:1}}")] {
            let s = InputSeries { series: series.into(), values: values.into() };
            let r = MemTestBackend.load(&[s], Duration::from_secs(60), 0, Duration::from_secs(60));
            assert!(r.is_err(), "{series} {values}");
        }
    }
}
