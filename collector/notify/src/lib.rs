//! Osprey's notifications. [`alertmanager`]: the Alertmanager v2 client (`POST /api/v2/alerts`)
//! with a bounded queue, batching, timeouts, basic auth and TLS (rustls), as Prometheus's
//! notifier does.

pub mod alertmanager;
pub mod receivers;
pub mod route;

/// The HTTP client type the receivers post with (see [`alertmanager::build_client`]).
pub type HttpClient = reqwest::Client;
