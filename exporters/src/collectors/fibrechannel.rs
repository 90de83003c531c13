//! `fibrechannel`: Fibre Channel host properties and statistics from `/sys/class/fc_host`
//! (node_exporter compatible).

use std::io;

use crate::prelude::*;
use crate::sysfs::{ATTR_BUF, follow, parse_go_uint, read_attr};

/// Catalog entry.
pub static DEF: Def = Def {
    name: "fibrechannel",
    default_enabled: true,
    help: "Exposes fibre channel information and statistics from /sys/class/fc_host/.",
    flags: &[],
    build: |ctx| Ok(Box::new(FibreChannel { dir: ctx.paths.sys("class/fc_host") })),
};

/// Reports `node_fibrechannel_info` and the statistics counters of every FC host.
struct FibreChannel {
    /// `/sys/class/fc_host`.
    dir: PathBuf,
}

/// Host attributes in `node_fibrechannel_info` (file name = label name), in [`Host::attrs`] order.
const ATTRS: [&str; 10] = [
    "speed",
    "port_state",
    "port_type",
    "port_id",
    "port_name",
    "fabric_name",
    "symbolic_name",
    "supported_classes",
    "supported_speeds",
    "dev_loss_tmo",
];

/// Index of `port_state` in [`ATTRS`].
const PORT_STATE: usize = 1;

/// Attributes printed as `0x…` by the kernel whose prefix upstream strips.
const HEX_ATTRS: [&str; 3] = ["port_id", "port_name", "fabric_name"];

/// Statistics: (file in `statistics/`, metric suffix, HELP), in [`Host::counters`] order.
const COUNTERS: [(&str, &str, &str); 14] = [
    ("dumped_frames", "dumped_frames_total", "Number of dumped frames"),
    ("error_frames", "error_frames_total", "Number of errors in frames"),
    ("invalid_crc_count", "invalid_crc_total", "Invalid Cyclic Redundancy Check count"),
    ("rx_frames", "rx_frames_total", "Number of frames received"),
    ("rx_words", "rx_words_total", "Number of words received by host port"),
    ("tx_frames", "tx_frames_total", "Number of frames transmitted by host port"),
    ("tx_words", "tx_words_total", "Number of words transmitted by host port"),
    ("seconds_since_last_reset", "seconds_since_last_reset_total", "Number of seconds since last host port reset"),
    ("invalid_tx_word_count", "invalid_tx_words_total", "Number of invalid words transmitted by host port"),
    ("link_failure_count", "link_failure_total", "Number of times the host port link has failed"),
    ("loss_of_sync_count", "loss_of_sync_total", "Number of failures on either bit or transmission word boundaries"),
    ("loss_of_signal_count", "loss_of_signal_total", "Number of times signal has been lost"),
    ("nos_count", "nos_total", "Number Not_Operational Primitive Sequence received by host port"),
    ("fcp_packet_aborts", "fcp_packet_aborts_total", "Number of aborted packets"),
];

/// What one `/sys/class/fc_host/<host>` directory holds.
#[derive(Debug, Default, PartialEq)]
struct Host {
    /// Host name (`host0`).
    name: String,
    /// Values of [`ATTRS`] (`None` when the driver does not expose the file).
    attrs: [Option<String>; 10],
    /// Values of [`COUNTERS`] (`None` when absent).
    counters: [Option<u64>; 14],
}

impl Collector for FibreChannel {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let names = list_dir_or_no_data(&self.dir)?;
        // As upstream: read every host first; any failure reports nothing.
        let hosts = names.into_iter().map(|n| read_host(&self.dir, n)).collect::<Result<Vec<_>, _>>()?;
        let mut name = String::new();
        for h in &hosts {
            emit(out, h, &mut name);
        }
        Ok(())
    }
}

/// Writes one host's info and counters.
fn emit(out: &mut Sink, h: &Host, name: &mut String) {
    let host = h.name.as_str();
    let attr = |i: usize| h.attrs[i].as_deref().unwrap_or("");
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(ATTRS.len() + 1);
    labels.push(("fc_host", host));
    labels.extend(ATTRS.iter().enumerate().map(|(i, &a)| (a, attr(i))));
    out.gauge_with(
        "node_fibrechannel_info",
        "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
        &labels,
        1.0,
    );
    // A host without a known port state reports every counter as zero (upstream's rule for
    // disabled hosts, which expose no statistics).
    let disabled = matches!(h.attrs[PORT_STATE].as_deref(), None | Some("Unknown"));
    for (&(_, suffix, help), value) in COUNTERS.iter().zip(h.counters) {
        let value = if disabled { Some(0) } else { value };
        // u64::MAX marks a counter the HBA firmware does not implement.
        let Some(v) = value.filter(|&v| v != u64::MAX) else { continue };
        name.clear();
        name.push_str("node_fibrechannel_");
        name.push_str(suffix);
        out.counter_with(name, help, &[("fc_host", host)], v as f64);
    }
}

/// Reads one host directory (or fixture symlink stub) and its `statistics/`.
fn read_host(class_dir: &Path, name: String) -> Result<Host, CollectError> {
    let dir = follow(class_dir.join(&name));
    let mut host = Host { name, ..Host::default() };
    let mut buf = [0u8; ATTR_BUF];
    for (slot, &file) in host.attrs.iter_mut().zip(ATTRS.iter()) {
        let path = dir.join(file);
        match read_attr(&path, &mut buf) {
            Ok(v) => *slot = Some(attr_value(file, v).to_owned()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CollectError::io(path, e)),
        }
    }
    let stats = dir.join("statistics");
    let entries = match std::fs::read_dir(&stats) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(host),
        Err(e) => return Err(CollectError::io(stats, e)),
    };
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file = entry.file_name();
        let Some(i) = COUNTERS.iter().position(|&(f, _, _)| file.to_str() == Some(f)) else { continue };
        let path = entry.path();
        let text = match read_attr(&path, &mut buf) {
            Ok(t) => t,
            // Write-only or unsupported statistics.
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(95) => continue,
            Err(e) => return Err(CollectError::io(path, e)),
        };
        let v = parse_go_uint(text).ok_or_else(|| CollectError::parse(&path, format!("invalid counter {text:?}")))?;
        host.counters[i] = Some(v);
    }
    Ok(host)
}

/// An attribute's label value: the `0x` prefix of port and fabric names removed.
fn attr_value<'a>(file: &str, value: &'a str) -> &'a str {
    if HEX_ATTRS.contains(&file) && value.len() > 2 { value.get(2..).unwrap_or(value) } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hex_prefix_of_names_only() {
        assert_eq!(attr_value("port_name", "0x1000e0071bce95f2"), "1000e0071bce95f2");
        assert_eq!(attr_value("fabric_name", "0x0"), "0");
        assert_eq!(attr_value("port_id", "0x"), "0x");
        assert_eq!(attr_value("speed", "16 Gbit"), "16 Gbit");
    }

    #[test]
    fn reads_fixture_host() {
        let dir = crate::testutil::fixtures().join("sys/class/fc_host");
        let h = read_host(&dir, "host1".into()).unwrap();
        assert_eq!(h.attrs[0].as_deref(), Some("8 Gbit"));
        assert_eq!(h.attrs[2], None);
        assert_eq!(h.counters[0], Some(0));
        assert_eq!(h.counters[13], Some(u64::MAX));
    }

    #[test]
    fn hosts_without_port_state_report_zero_counters() {
        let mut out = Sink::new();
        let h = Host { name: "host9".into(), ..Host::default() };
        emit(&mut out, &h, &mut String::new());
        assert_eq!(out.len(), 1 + COUNTERS.len());
        assert!(out.families()[1..].iter().all(|f| f.samples[0].value == 0.0));
    }

    #[test]
    fn missing_class_is_no_data() {
        let c = FibreChannel { dir: "/nonexistent/fc_host".into() };
        assert!(matches!(c.collect(&mut Sink::new()), Err(CollectError::NoData)));
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("fibrechannel", &|f| f.starts_with("node_fibrechannel_"));
    }
}
