//! Osprey's PromQL engine.
//!
//! Parsing is the `promql-parser` crate's; evaluation is ours. The engine reads data through the
//! narrow [`storage::Queryable`] trait, so any store (the collector's TSDB, or the in-memory
//! [`storage::MemStorage`]) can back it.

mod aggregate;
pub mod api;
mod binop;
pub mod durations;
pub mod engine;
mod functions;
mod histogram;
mod idmap;
mod info;
pub mod labels;
pub use api::position;
mod rangeblock;
mod rangefns;
pub mod series;
pub mod storage;
pub mod strlit;
pub mod value;

#[cfg(test)]
mod tests;

pub use engine::{Engine, EngineOptions, parse};
pub use labels::Labels;
pub use storage::{MemStorage, Queryable};
pub use value::{Error, QueryResult, QueryValue, RangeSeries, Sample};
