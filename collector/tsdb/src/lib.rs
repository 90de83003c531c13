//! Osprey's embedded time-series database.
//!
//! Series are sorted label sets; samples are `(i64 ms, f64)`. Appends go to an in-memory head
//! backed by a write-ahead log; the head is cut into immutable, memory-mapped blocks that are
//! compacted and expired in the background. The workspace README (section TSDB) describes the
//! formats and policies.

// Codec state machines read naturally with short names; `ctx`-style helpers take errors by value.
#![allow(clippy::many_single_char_names, clippy::needless_pass_by_value, clippy::type_complexity)]

pub mod analyze;
pub mod block;
mod block_read;
pub mod chunk;
pub mod db;
pub mod fleet;
pub mod head;
pub mod import;
pub mod labels;
mod maintain;
pub mod matcher;
pub mod postings;
pub mod promblock;
pub mod query;
pub mod records;
mod replay;
pub mod sealed;
pub mod wal;

pub use analyze::analyze;
pub use block::BlockMeta;
pub use db::{Appender, Db, Error, Options, SeriesRef, Stats};
pub use head::AppendError;
pub use import::{ImportReport, import_openmetrics, import_prometheus};
pub use labels::Labels;
pub use matcher::{MatchOp, Matcher};
pub use query::{Querier, Series};
pub use wal::FsyncPolicy;

/// The bit pattern Prometheus uses for a staleness marker (a NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
