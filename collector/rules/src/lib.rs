//! Osprey's rules: Prometheus rule files, the Go-template dialect of alert annotations, the
//! alert state machine with `ALERTS`/`ALERTS_FOR_STATE`, promtool-compatible `check rules`,
//! and the `/api/v1/rules` + `/api/v1/alerts` JSON shapes. The PromQL engine and the storage
//! are reached through the narrow traits in [`eval`], wired by the collector binary.

pub mod alerting;
pub mod api;
pub mod check;
pub mod duration;
pub mod eval;
pub mod file;
pub mod group;
pub mod manager;
pub mod template;
pub mod unittest;
pub mod unittest_fmt;
