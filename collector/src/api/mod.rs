//! Prometheus's HTTP API (`/api/v1/…`) over the TSDB and the PromQL engine.
//!
//! Shapes, status codes and error types follow Prometheus; GET takes URL parameters, POST
//! takes a form body (`application/x-www-form-urlencoded`) plus URL parameters, as Prometheus's
//! `FormValue` does. `/api/v1/metadata` answers `{}` (metric metadata is not stored yet) and
//! `/api/v1/query_exemplars` answers `[]` (exemplars are not stored). Mount with
//! `.merge(api::router(state))`.

mod handlers;
mod params;
mod status;
pub mod storage;

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::routing::get;
use osprey_promql::Engine;
use osprey_tsdb::Db;

pub use params::Params;
pub use storage::TsdbStorage;

/// A clock returning Unix milliseconds (injected so tests can pin "now").
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Everything the API handlers read.
#[derive(Clone)]
pub struct ApiState {
    /// The database queries read from.
    pub db: Arc<Db>,
    /// The PromQL engine; its options carry the query limits (timeout, max samples, max
    /// concurrent queries, lookback).
    pub engine: Arc<Engine>,
    /// When the process started (for `status/runtimeinfo`).
    pub start_time: SystemTime,
    /// Retention as shown in `status/runtimeinfo` (e.g. `15d`).
    pub storage_retention: String,
    /// "Now" for queries without a `time` parameter.
    pub clock: Clock,
}

impl ApiState {
    /// State with the wall clock, empty config text and flags, and 15d retention shown.
    pub fn new(db: Arc<Db>, engine: Engine) -> Self {
        Self {
            db,
            engine: Arc::new(engine),
            start_time: SystemTime::now(),
            storage_retention: "15d".into(),
            clock: Arc::new(wall_clock_ms),
        }
    }

    /// The storage adapter the engine reads through.
    pub fn storage(&self) -> TsdbStorage {
        TsdbStorage::new(Arc::clone(&self.db))
    }
}

/// Unix milliseconds from the system clock.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The `/api/v1` routes; every endpoint answers GET and POST.
pub fn router(state: ApiState) -> Router {
    use handlers as h;
    Router::new()
        .route("/api/v1/query", get(h::query).post(h::query))
        .route("/api/v1/query_range", get(h::query_range).post(h::query_range))
        .route("/api/v1/series", get(h::series).post(h::series))
        .route("/api/v1/labels", get(h::labels).post(h::labels))
        .route("/api/v1/label/{name}/values", get(h::label_values))
        .route("/api/v1/metadata", get(h::metadata).post(h::metadata))
        .route("/api/v1/query_exemplars", get(h::exemplars).post(h::exemplars))
        .route("/api/v1/format_query", get(h::format_query).post(h::format_query))
        .route("/api/v1/parse_query", get(h::parse_query).post(h::parse_query))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/tsdb", get(status::tsdb))
        .with_state(state)
}

#[cfg(test)]
mod tests;
