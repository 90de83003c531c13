//! Osprey's service discovery: Prometheus-style target groups from `static_configs`,
//! `file_sd_configs`, `dns_sd_configs` and `http_sd_configs`, a manager that debounces provider
//! updates and publishes the full set of groups per job, and Prometheus's relabeling and
//! `PopulateLabels` to turn discovered targets into scrape targets.

pub mod dns_sd;
pub mod duration;
pub mod file_sd;
pub mod goregex;
pub mod group;
pub mod http_sd;
pub mod manager;
pub mod populate;
pub mod relabel;

use std::collections::BTreeMap;

/// A label set: name → value, sorted by name.
pub type Labels = BTreeMap<String, String>;

pub use dns_sd::DnsSdConfig;
pub use duration::{PromDuration, format_duration, parse_duration};
pub use file_sd::FileSdConfig;
pub use group::{StaticConfig, TargetGroup};
pub use http_sd::HttpSdConfig;
pub use manager::{Discovered, JobConfigs, Manager, Metrics, SdConfig};
pub use populate::{DropReason, Populated, ScrapeSettings, populate_labels, public_labels, target_url};
pub use relabel::{Action, RelabelConfig, RelabelRegex, process};
