//! The seams of `osprey-rules` implemented on the collector's parts: the PromQL engine over the
//! TSDB (the same storage adapter the query API reads through), and a TSDB appender for rule output
//! (`ALERTS_FOR_STATE` is read back through [`crate::rules_eval::LastSampleSource`]).

use std::sync::Arc;

use osprey_promql::Engine;
use osprey_rules::eval::{Appender, Labels, QueryEngine, QueryError, Sample};
use osprey_tsdb::Db;

use crate::api::TsdbStorage;
use crate::rules_eval::instant_samples;

/// Instant queries for rules, evaluated by the engine over the TSDB.
pub struct EngineAdapter {
    /// The engine (shared with the query API: same limits).
    pub engine: Arc<Engine>,
    /// The TSDB seen as the engine's storage.
    pub storage: TsdbStorage,
}

impl QueryEngine for EngineAdapter {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
        instant_samples(&self.engine, &self.storage, expr, t_ms)
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
