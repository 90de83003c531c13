//! Values flowing through the engine and query results.

use crate::labels::Labels;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series labels (the metric name may still be present with `drop_name` set).
    pub labels: Labels,
    /// Timestamp in milliseconds (the sample's own time for raw selectors).
    pub t: i64,
    /// Value.
    pub v: f64,
    /// Delayed `__name__` removal: drop the name when the query finishes.
    pub drop_name: bool,
}

/// One series of a range vector or range-query result.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Series labels.
    pub labels: Labels,
    /// `(timestamp ms, value)` points in time order.
    pub points: Vec<(i64, f64)>,
    /// Delayed `__name__` removal flag.
    pub drop_name: bool,
}

/// A value during evaluation at one timestamp.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar.
    Scalar(f64),
    /// A string.
    String(String),
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector.
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// Prometheus's name for the value's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// Instant query returning a scalar at time `t`.
    Scalar {
        /// Evaluation time (ms).
        t: i64,
        /// Value.
        v: f64,
    },
    /// Instant query returning a string.
    String {
        /// Evaluation time (ms).
        t: i64,
        /// Value.
        s: String,
    },
    /// Instant query returning a vector (sample times set to the evaluation time).
    Vector(Vec<Sample>),
    /// Range query result, or an instant query returning a range vector; sorted by labels.
    Matrix(Vec<RangeSeries>),
}

/// A query's value plus its annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The value.
    pub value: QueryValue,
    /// Warnings (`PromQL warning: …`).
    pub warnings: Vec<String>,
    /// Infos (`PromQL info: …`).
    pub infos: Vec<String>,
}

/// Query errors, with Prometheus's texts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The query did not parse (`bad_data`).
    #[error("{0}")]
    Parse(String),
    /// Evaluation error (`execution`).
    #[error("{0}")]
    Exec(String),
    /// The query ran past its timeout (`timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query would load too many samples (`execution`).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
