//! The seams of `osprey-rules` implemented on the collector's parts: the PromQL engine over the
//! TSDB (the same storage adapter the query API reads through), a TSDB appender for rule output,
//! and `ALERTS_FOR_STATE` read back from the TSDB for restoring `for` state.

use std::sync::Arc;

use osprey_promql::Engine;
use osprey_promql::value::QueryValue;
use osprey_rules::eval::{Appender, ForStateSource, Labels, QueryEngine, QueryError, Sample, is_stale};
use osprey_tsdb::{Db, Matcher};

use crate::api::TsdbStorage;

/// Instant queries for rules, evaluated by the engine over the TSDB.
pub struct EngineAdapter {
    /// The engine (shared with the query API: same limits).
    pub engine: Arc<Engine>,
    /// The TSDB seen as the engine's storage.
    pub storage: TsdbStorage,
}

impl QueryEngine for EngineAdapter {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
        let r = self.engine.instant_query(&self.storage, expr, t_ms).map_err(|e| QueryError(e.to_string()))?;
        match r.value {
            QueryValue::Vector(v) => Ok(v
                .into_iter()
                .map(|s| Sample {
                    labels: s
                        .labels
                        .iter()
                        .filter(|(k, _)| !(s.drop_name && *k == "__name__"))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    value: s.v,
                })
                .collect()),
            QueryValue::Scalar { v, .. } => Ok(vec![Sample { labels: Labels::new(), value: v }]),
            QueryValue::String { .. } => Err(QueryError("rule result is a string, not a vector or scalar".into())),
            QueryValue::Matrix(_) => Err(QueryError("rule result is a range vector, not a vector or scalar".into())),
        }
    }
}

/// One group evaluation's output, committed to the TSDB at once.
pub struct TsdbRuleAppender {
    inner: osprey_tsdb::Appender,
    /// Samples the TSDB rejected (out of order, duplicate, too old).
    pub rejected: u64,
}

impl TsdbRuleAppender {
    /// A new transaction on `db`.
    pub fn new(db: &Db) -> Self {
        Self { inner: db.appender(), rejected: 0 }
    }

    /// Writes the WAL and makes the samples visible.
    pub fn commit(self) -> std::io::Result<()> {
        self.inner.commit()
    }
}

impl Appender for TsdbRuleAppender {
    fn append(&mut self, labels: &Labels, t_ms: i64, value: f64) {
        let l = osprey_tsdb::Labels::from_owned(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        if let Err(e) = self.inner.append(&l, t_ms, value) {
            self.rejected += 1;
            tracing::debug!(error = %e, "rule output sample rejected");
        }
    }
}

/// `ALERTS_FOR_STATE` as stored in the TSDB.
pub struct TsdbForState<'a>(pub &'a Db);

impl ForStateSource for TsdbForState<'_> {
    fn last_sample(&self, labels: &Labels, from_ms: i64, to_ms: i64) -> Option<(i64, f64)> {
        let ms: Vec<Matcher> = labels.iter().map(|(k, v)| Matcher::eq(k, v)).collect();
        self.0
            .querier(from_ms, to_ms)
            .select(&ms)
            .iter()
            .filter(|s| s.labels.len() == labels.len())
            .filter_map(|s| s.samples().filter(|(_, v)| !is_stale(*v)).last())
            .max_by_key(|(t, _)| *t)
    }
}
