//! Osprey's embedded time-series database.
//!
//! Series are sorted label sets; samples are `(i64 ms, f64)`. Appends go to an in-memory head
//! backed by a write-ahead log; the head is cut into immutable, memory-mapped blocks that are
//! compacted and expired in the background. See `README.md` at the crate root for the formats.

pub mod chunk;
