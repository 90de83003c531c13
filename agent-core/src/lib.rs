//! `agent-core`: what the Osprey agent and collector share.
//!
//! * [`model`]: metric families and samples (client_golang's model).
//! * [`encode`] / [`parse`]: the Prometheus text 0.0.4 and OpenMetrics 1.0 exposition formats.
//! * [`collector`]: the [`Collector`](collector::Collector) trait, the [`Sink`](collector::Sink)
//!   collectors write into and the host paths they read from.
//! * [`registry`]: runs collectors concurrently per scrape with timeouts.
//!
//! Nothing here knows about the collector server; the agent (`exporters`) and the central
//! collector both build on it.

pub mod collector;
pub mod duration;
pub mod encode;
pub mod heldfile;
pub mod model;
pub mod parse;
pub mod registry;

pub use collector::{CollectError, Collector, HostPaths, Sink};
pub use model::{MetricFamily, MetricType, Sample, Suffix};
pub mod auth;
pub mod calendar;
pub mod conn;
pub mod http;
pub mod logging;
pub mod notify;
pub mod process;
pub mod ratelog;
pub mod tls;
pub mod web_config;
