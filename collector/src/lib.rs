//! The collector's configuration (TOML mirroring `prometheus.yml`), its conversion from
//! `prometheus.yml`, the target set built from configuration and discovery, and the server loop.

pub mod api;
pub mod bytesize;
pub mod config;
pub mod config_alerting;
pub mod convert;
pub mod endpoints;
pub mod locate;
pub mod ruler;
pub mod rules_cli;
pub mod rules_eval;
pub mod server;
pub mod storage;
pub mod targets;
pub mod to_scrape;
