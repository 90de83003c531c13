//! The seams to the rest of the collector: the PromQL engine, the storage, the clock.

use std::collections::BTreeMap;

/// A label set (sorted by name).
pub type Labels = BTreeMap<String, String>;

/// One instant-vector element.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series labels (with `__name__` if the expression keeps it).
    pub labels: Labels,
    /// Value.
    pub value: f64,
}

/// A query failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// The PromQL engine as rules need it: an instant query at a millisecond timestamp.
/// The collector implements this on `osprey-promql` over its TSDB.
pub trait QueryEngine: Send + Sync {
    /// Evaluates `expr` at `t_ms`; scalars come back as one sample with empty labels.
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, QueryError>;
}

/// Where rule output goes (the TSDB appender). Stale markers are `STALE_NAN`.
pub trait Appender {
    /// Appends one sample.
    fn append(&mut self, labels: &Labels, t_ms: i64, value: f64);
}

/// Reads back `ALERTS_FOR_STATE` for restoring `for` state after a restart.
pub trait ForStateSource {
    /// The last sample (timestamp ms, value) of the series with exactly `labels` in `[from_ms, to_ms]`.
    fn last_sample(&self, labels: &Labels, from_ms: i64, to_ms: i64) -> Option<(i64, f64)>;
}

/// Prometheus's staleness marker (a specific NaN bit pattern).
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// Whether `v` is the staleness marker.
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN.to_bits()
}
