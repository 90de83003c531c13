//! What every collector module imports.

pub use std::path::{Path, PathBuf};

pub use agent_core::collector::{
    AttrDir, list_dir, list_dir_or_no_data, read_i64, read_string, read_string_or_no_data, read_trimmed, read_u64,
    sysfs_dir,
};
pub use agent_core::{CollectError, Collector, HostPaths, MetricFamily, MetricType, Sample, Sink};

pub use crate::catalog::{Ctx, Def, DeviceFilter, Flag, FlagKind};
