//! `osprey-scrape`: the collector's scrape layer, with Prometheus' semantics.
//!
//! * [`ScrapeManager::sync`] takes the full set of [`ScrapeTarget`]s (after discovery and
//!   target relabeling) and applies it as a diff: one tokio task per target; only added and
//!   removed targets start and stop, the others keep their schedule and series cache.
//! * Each loop starts at an offset derived from a hash of the target (as Prometheus'
//!   `offset()`), then scrapes on a fixed grid of its interval; a scrape slower than the
//!   interval skips ticks instead of piling up.
//! * A scrape sends Prometheus' `Accept` header (OpenMetrics, then text) and
//!   `Accept-Encoding: gzip`, reuses the target's keep-alive connection, reads at most
//!   `body_size_limit` uncompressed bytes (64 MiB when 0) within `scrape_timeout`, and parses
//!   with `agent_core`'s strict parser. In the steady state of a text-format target (every
//!   series known, comment lines unchanged) lines are read straight into the series cache's
//!   keys instead (`fast`), and samples go to the storage by series reference.
//! * Everything one scrape produces — samples, staleness markers, the synthetic `up`,
//!   `scrape_duration_seconds`, `scrape_samples_scraped`,
//!   `scrape_samples_post_metric_relabeling`, `scrape_series_added` — goes through one
//!   [`Appender`] and one commit. A failed scrape (HTTP, timeout, parse, any limit) stores
//!   nothing of its body, writes `up 0` and staleness markers for the target's series, and
//!   its reason becomes the target's `lastError`.
//! * Memory of one scrape is bounded: the body buffer by `body_size_limit` (also after gzip:
//!   a gzip bomb stops at the limit), the parser's lines and label values by agent-core's
//!   64 KiB limits, and with a `sample_limit` (and no metric relabeling) an oversized
//!   exposition is refused by a line count before it is parsed.
//!
//! Deliberate differences from Prometheus: `body_size_limit: 0` means 64 MiB, not unlimited;
//! a series exposed twice in one scrape fails the scrape (Prometheus keeps the first sample and
//! stays up); a missing or unknown `Content-Type` is parsed as the text format (Prometheus 3
//! needs `fallback_scrape_protocol`).

mod append;
pub mod client;
pub mod clock;
pub mod error;
mod fast;
pub mod fleet;
mod hash;
mod manager;
mod packed;
mod scrape_loop;
mod status;
pub mod storage;
pub mod target;

#[cfg(test)]
mod tests;

pub use append::{AppendCounts, Counts, SeriesCache, count_sample_lines};
pub use clock::{Clock, ManualClock, RealClock};
pub use error::ScrapeError;
pub use manager::{ManagerOptions, ScrapeManager, SyncStats};
pub use status::{Health, ScrapeMetrics, TargetStatus};
pub use storage::{AppendError, Appendable, Appender, MemStorage, STALE_NAN_BITS, SeriesRef, is_stale_nan, stale_nan};
pub use target::{Auth, DEFAULT_BODY_SIZE_LIMIT, MetricRelabel, ScrapeLimits, ScrapeTarget, TargetKey, TlsConfig};
