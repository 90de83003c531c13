//! The Osprey agent: node_exporter-compatible host collectors and the `osprey-agent` binary.
//!
//! * [`catalog`]: how collectors declare themselves (name, default, flags, constructor).
//! * [`collectors`]: one module per collector, listed in [`collectors::ALL`].
//! * [`sysfs`]: sysfs attribute reads and Go-compatible parsing shared by collectors.

pub mod catalog;
pub mod cli;
pub mod collectors;
pub mod config_file;
pub(crate) mod netlink;
pub mod prelude;
pub mod sysfs;
#[cfg(test)]
pub mod testutil;
