//! `infiniband`: InfiniBand (and Intel OmniPath) port state and counters from
//! `/sys/class/infiniband/<device>/ports/<port>/` (node_exporter compatible).

use std::io;

use crate::prelude::*;
use crate::sysfs::{ATTR_BUF, follow, parse_go_uint, read_attr};

/// Catalog entry.
pub static DEF: Def = Def {
    name: "infiniband",
    default_enabled: true,
    help: "Exposes network statistics specific to InfiniBand and Intel OmniPath configurations.",
    flags: &[
        Flag {
            name: "collector.infiniband.device-include",
            help: "Regexp of infiniband devices to include (mutually exclusive to device-exclude).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: "collector.infiniband.device-exclude",
            help: "Regexp of infiniband devices to exclude (mutually exclusive to device-include).",
            kind: FlagKind::Str(""),
        },
    ],
    build: |ctx| {
        Ok(Box::new(InfiniBand {
            dir: ctx.paths.sys("class/infiniband"),
            // Upstream applies both patterns when both are given (no mutual-exclusion check).
            filter: DeviceFilter {
                exclude: ctx.regex("collector.infiniband.device-exclude")?,
                include: ctx.regex("collector.infiniband.device-include")?,
            },
        }))
    },
};

/// Reports `node_infiniband_info` per device and state, rate and counters per port.
struct InfiniBand {
    /// `/sys/class/infiniband`.
    dir: PathBuf,
    /// Which devices to report.
    filter: DeviceFilter,
}

/// The per-port directory a statistic lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// `counters/` (kernel 2.6.12+).
    Counters,
    /// `counters_ext/` (64-bit counters before kernel 4.5).
    Ext,
    /// `hw_counters/` (kernel 4.6+, driver specific).
    Hw,
}

impl Dir {
    /// The directory name.
    fn name(self) -> &'static str {
        match self {
            Dir::Counters => "counters",
            Dir::Ext => "counters_ext",
            Dir::Hw => "hw_counters",
        }
    }
}

/// One statistic file and the counter it becomes.
struct Stat {
    /// Directory under the port.
    dir: Dir,
    /// File name.
    file: &'static str,
    /// Metric name after `node_infiniband_`.
    metric: &'static str,
    /// HELP text.
    help: &'static str,
    /// Data counters count 32-bit words per lane; upstream multiplies them by 4.
    times4: bool,
}

/// Every statistic upstream reports; the last one, [`LIFESPAN`], is a gauge in seconds.
#[rustfmt::skip]
const STATS: [Stat; 60] = [
    Stat { dir: Dir::Ext, file: "port_multicast_rcv_packets", metric: "legacy_multicast_packets_received_total", help: "Number of multicast packets received", times4: false },
    Stat { dir: Dir::Ext, file: "port_multicast_xmit_packets", metric: "legacy_multicast_packets_transmitted_total", help: "Number of multicast packets transmitted", times4: false },
    Stat { dir: Dir::Ext, file: "port_rcv_data_64", metric: "legacy_data_received_bytes_total", help: "Number of data octets received on all links", times4: true },
    Stat { dir: Dir::Ext, file: "port_rcv_packets_64", metric: "legacy_packets_received_total", help: "Number of data packets received on all links", times4: false },
    Stat { dir: Dir::Ext, file: "port_unicast_rcv_packets", metric: "legacy_unicast_packets_received_total", help: "Number of unicast packets received", times4: false },
    Stat { dir: Dir::Ext, file: "port_unicast_xmit_packets", metric: "legacy_unicast_packets_transmitted_total", help: "Number of unicast packets transmitted", times4: false },
    Stat { dir: Dir::Ext, file: "port_xmit_data_64", metric: "legacy_data_transmitted_bytes_total", help: "Number of data octets transmitted on all links", times4: true },
    Stat { dir: Dir::Ext, file: "port_xmit_packets_64", metric: "legacy_packets_transmitted_total", help: "Number of data packets received on all links", times4: false },
    Stat { dir: Dir::Counters, file: "excessive_buffer_overrun_errors", metric: "excessive_buffer_overrun_errors_total", help: "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.", times4: false },
    Stat { dir: Dir::Counters, file: "link_downed", metric: "link_downed_total", help: "Number of times the link failed to recover from an error state and went down", times4: false },
    Stat { dir: Dir::Counters, file: "link_error_recovery", metric: "link_error_recovery_total", help: "Number of times the link successfully recovered from an error state", times4: false },
    Stat { dir: Dir::Counters, file: "local_link_integrity_errors", metric: "local_link_integrity_errors_total", help: "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.", times4: false },
    Stat { dir: Dir::Counters, file: "multicast_rcv_packets", metric: "multicast_packets_received_total", help: "Number of multicast packets received (including errors)", times4: false },
    Stat { dir: Dir::Counters, file: "multicast_xmit_packets", metric: "multicast_packets_transmitted_total", help: "Number of multicast packets transmitted (including errors)", times4: false },
    Stat { dir: Dir::Counters, file: "port_rcv_constraint_errors", metric: "port_constraint_errors_received_total", help: "Number of packets received on the switch physical port that are discarded", times4: false },
    Stat { dir: Dir::Counters, file: "port_xmit_constraint_errors", metric: "port_constraint_errors_transmitted_total", help: "Number of packets not transmitted from the switch physical port", times4: false },
    Stat { dir: Dir::Counters, file: "port_rcv_data", metric: "port_data_received_bytes_total", help: "Number of data octets received on all links", times4: true },
    Stat { dir: Dir::Counters, file: "port_xmit_data", metric: "port_data_transmitted_bytes_total", help: "Number of data octets transmitted on all links", times4: true },
    Stat { dir: Dir::Counters, file: "port_rcv_discards", metric: "port_discards_received_total", help: "Number of inbound packets discarded by the port because the port is down or congested", times4: false },
    Stat { dir: Dir::Counters, file: "port_xmit_discards", metric: "port_discards_transmitted_total", help: "Number of outbound packets discarded by the port because the port is down or congested", times4: false },
    Stat { dir: Dir::Counters, file: "port_rcv_errors", metric: "port_errors_received_total", help: "Number of packets containing an error that were received on this port", times4: false },
    Stat { dir: Dir::Counters, file: "port_rcv_packets", metric: "port_packets_received_total", help: "Number of packets received on all VLs by this port (including errors)", times4: false },
    Stat { dir: Dir::Counters, file: "port_xmit_packets", metric: "port_packets_transmitted_total", help: "Number of packets transmitted on all VLs from this port (including errors)", times4: false },
    Stat { dir: Dir::Counters, file: "port_xmit_wait", metric: "port_transmit_wait_total", help: "Number of ticks during which the port had data to transmit but no data was sent during the entire tick", times4: false },
    Stat { dir: Dir::Counters, file: "unicast_rcv_packets", metric: "unicast_packets_received_total", help: "Number of unicast packets received (including errors)", times4: false },
    Stat { dir: Dir::Counters, file: "unicast_xmit_packets", metric: "unicast_packets_transmitted_total", help: "Number of unicast packets transmitted (including errors)", times4: false },
    Stat { dir: Dir::Counters, file: "port_rcv_remote_physical_errors", metric: "port_receive_remote_physical_errors_total", help: "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.", times4: false },
    Stat { dir: Dir::Counters, file: "port_rcv_switch_relay_errors", metric: "port_receive_switch_relay_errors_total", help: "Number of packets that could not be forwarded by the switch.", times4: false },
    Stat { dir: Dir::Counters, file: "symbol_error", metric: "symbol_error_total", help: "Number of minor link errors detected on one or more physical lanes.", times4: false },
    Stat { dir: Dir::Counters, file: "VL15_dropped", metric: "vl15_dropped_total", help: "Number of incoming VL15 packets dropped due to resource limitations.", times4: false },
    Stat { dir: Dir::Hw, file: "duplicate_request", metric: "duplicate_requests_packets_total", help: "The number of received packets. A duplicate request is a request that had been previously executed.", times4: false },
    Stat { dir: Dir::Hw, file: "implied_nak_seq_err", metric: "implied_nak_seq_errors_total", help: "The number of time the requested decided an ACK. with a PSN larger than the expected PSN for an RDMA read or response.", times4: false },
    Stat { dir: Dir::Hw, file: "local_ack_timeout_err", metric: "local_ack_timeout_errors_total", help: "The number of times QP's ack timer expired for RC, XRC, DCT QPs at the sender side. The QP retry limit was not exceed, therefore it is still recoverable error.", times4: false },
    Stat { dir: Dir::Hw, file: "np_cnp_sent", metric: "np_cnp_packets_sent_total", help: "The number of CNP packets sent by the Notification Point when it noticed congestion experienced in the RoCEv2 IP header (ECN bits). The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "np_ecn_marked_roce_packets", metric: "np_ecn_marked_roce_packets_received_total", help: "The number of RoCEv2 packets received by the notification point which were marked for experiencing the congestion (ECN bits where '11' on the ingress RoCE traffic) . The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "out_of_buffer", metric: "out_of_buffer_drops_total", help: "The number of drops occurred due to lack of WQE for the associated QPs.", times4: false },
    Stat { dir: Dir::Hw, file: "out_of_sequence", metric: "out_of_sequence_packets_received_total", help: "The number of out of sequence packets received.", times4: false },
    Stat { dir: Dir::Hw, file: "packet_seq_err", metric: "packet_sequence_errors_total", help: "The number of received NAK sequence error packets. The QP retry limit was not exceeded.", times4: false },
    Stat { dir: Dir::Hw, file: "req_cqe_error", metric: "req_cqes_errors_total", help: "The number of times requester detected CQEs completed with errors. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "req_cqe_flush_error", metric: "req_cqes_flush_errors_total", help: "The number of times requester detected CQEs completed with flushed errors. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "req_remote_access_errors", metric: "req_remote_access_errors_total", help: "The number of times requester detected remote access errors. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "req_remote_invalid_request", metric: "req_remote_invalid_request_errors_total", help: "The number of times requester detected remote invalid request errors. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "resp_cqe_error", metric: "resp_cqes_errors_total", help: "The number of times responder detected CQEs completed with errors. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "resp_cqe_flush_error", metric: "resp_cqes_flush_errors_total", help: "The number of times responder detected CQEs completed with flushed errors. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "resp_local_length_error", metric: "resp_local_length_errors_total", help: "The number of times responder detected local length errors. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "resp_remote_access_errors", metric: "resp_remote_access_errors_total", help: "The number of times responder detected remote access errors. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "rnr_nak_retry_err", metric: "rnr_nak_retry_packets_received_total", help: "The number of received RNR NAK packets. The QP retry limit was not exceeded.", times4: false },
    Stat { dir: Dir::Hw, file: "roce_adp_retrans", metric: "roce_adp_retransmits_total", help: "The number of adaptive retransmissions for RoCE traffic. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", times4: false },
    Stat { dir: Dir::Hw, file: "roce_adp_retrans_to", metric: "roce_adp_retransmits_timeout_total", help: "The number of times RoCE traffic reached timeout due to adaptive retransmission. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", times4: false },
    Stat { dir: Dir::Hw, file: "roce_slow_restart", metric: "roce_slow_restart_used_total", help: "The number of times RoCE slow restart was used. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", times4: false },
    Stat { dir: Dir::Hw, file: "roce_slow_restart_cnps", metric: "roce_slow_restart_cnps_total", help: "The number of times RoCE slow restart generated CNP packets. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", times4: false },
    Stat { dir: Dir::Hw, file: "roce_slow_restart_trans", metric: "roce_slow_restart_total", help: "The number of times RoCE slow restart changed state to slow restart. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", times4: false },
    Stat { dir: Dir::Hw, file: "rp_cnp_handled", metric: "rp_cnp_packets_handled_total", help: "The number of CNP packets handled by the Reaction Point HCA to throttle the transmission rate. The counters was added in MLNX_OFED 4.1", times4: false },
    Stat { dir: Dir::Hw, file: "rp_cnp_ignored", metric: "rp_cnp_ignored_packets_received_total", help: "The number of CNP packets received and ignored by the Reaction Point HCA. This counter should not raise if RoCE Congestion Control was enabled in the network. If this counter raise, verify that ECN was enabled on the adapter.", times4: false },
    Stat { dir: Dir::Hw, file: "rx_atomic_requests", metric: "rx_atomic_requests_total", help: "The number of received ATOMIC request for the associated QPs.", times4: false },
    Stat { dir: Dir::Hw, file: "rx_dct_connect", metric: "rx_dct_connect_requests_total", help: "The number of received connection requests for the associated DCTs.", times4: false },
    Stat { dir: Dir::Hw, file: "rx_read_requests", metric: "rx_read_requests_total", help: "The number of received READ requests for the associated QPs.", times4: false },
    Stat { dir: Dir::Hw, file: "rx_write_requests", metric: "rx_write_requests_total", help: "The number of received WRITE requests for the associated QPs.", times4: false },
    Stat { dir: Dir::Hw, file: "rx_icrc_encapsulated", metric: "rx_icrc_encapsulated_errors_total", help: "The number of RoCE packets with ICRC errors. This counter was added in MLNX_OFED 4.4 and kernel 4.19", times4: false },
    Stat { dir: Dir::Hw, file: "lifespan", metric: "lifespan_seconds", help: "The maximum period in ms which defines the aging of the counter reads. Two consecutive reads within this period might return the same values.", times4: false },
];

/// Index of `hw_counters/lifespan` (milliseconds, reported as whole seconds) in [`STATS`].
const LIFESPAN: usize = 59;

/// One InfiniBand device.
#[derive(Debug, Default)]
struct Device {
    /// Device name (`mlx4_0`).
    name: String,
    /// `board_id` (empty when absent).
    board_id: String,
    /// `fw_ver`.
    firmware_version: String,
    /// `hca_type` (empty when absent).
    hca_type: String,
    /// The device's ports.
    ports: Vec<Port>,
}

/// One port of a device.
#[derive(Debug)]
struct Port {
    /// Port number.
    number: u32,
    /// Numeric part of `state`.
    state_id: u32,
    /// Numeric part of `phys_state`.
    phys_state_id: u32,
    /// `rate` in bytes per second.
    rate: u64,
    /// Values of [`STATS`] (`None` when absent or not available).
    stats: [Option<u64>; 60],
}

impl Collector for InfiniBand {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        // As upstream: read everything first; a file missing anywhere means "no data".
        let devices = self.gather().map_err(CollectError::missing_as_no_data)?;
        for d in &devices {
            emit(out, d);
        }
        Ok(())
    }
}

impl InfiniBand {
    /// Reads every device the filter keeps.
    fn gather(&self) -> Result<Vec<Device>, CollectError> {
        let mut devices = Vec::new();
        for name in list_dir(&self.dir)? {
            if self.filter.ignored(&name) {
                continue;
            }
            devices.push(read_device(&follow(self.dir.join(&name)), name)?);
        }
        Ok(devices)
    }
}

/// Writes one device's info and its ports' metrics.
fn emit(out: &mut Sink, d: &Device) {
    out.gauge_with(
        "node_infiniband_info",
        "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
        &[
            ("device", &d.name),
            ("board_id", &d.board_id),
            ("firmware_version", &d.firmware_version),
            ("hca_type", &d.hca_type),
        ],
        1.0,
    );
    let mut name = String::new();
    let mut port_label = String::new();
    for p in &d.ports {
        port_label.clear();
        port_label.push_str(&p.number.to_string());
        let labels = [("device", d.name.as_str()), ("port", port_label.as_str())];
        out.gauge_with(
            "node_infiniband_state_id",
            "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
            &labels,
            f64::from(p.state_id),
        );
        out.gauge_with(
            "node_infiniband_physical_state_id",
            "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
            &labels,
            f64::from(p.phys_state_id),
        );
        out.gauge_with("node_infiniband_rate_bytes_per_second", "Maximum signal transfer rate", &labels, p.rate as f64);
        for (i, (stat, value)) in STATS.iter().zip(p.stats).enumerate() {
            let Some(v) = value else { continue };
            name.clear();
            name.push_str("node_infiniband_");
            name.push_str(stat.metric);
            if i == LIFESPAN {
                out.gauge_with(&name, stat.help, &labels, (v / 1000) as f64);
            } else {
                out.counter_with(&name, stat.help, &labels, v as f64);
            }
        }
    }
}

/// Reads one device directory.
fn read_device(dir: &Path, name: String) -> Result<Device, CollectError> {
    let mut buf = [0u8; ATTR_BUF];
    let fw = dir.join("fw_ver");
    let mut d = Device {
        firmware_version: read_attr(&fw, &mut buf).map_err(|e| CollectError::io(fw, e))?.to_owned(),
        name,
        ..Device::default()
    };
    for (file, slot) in [("board_id", &mut d.board_id), ("hca_type", &mut d.hca_type)] {
        let path = dir.join(file);
        match read_attr(&path, &mut buf) {
            Ok(v) => v.clone_into(slot),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CollectError::io(path, e)),
        }
    }
    let ports = dir.join("ports");
    for port in list_dir(&ports)? {
        d.ports.push(read_port(&ports.join(&port), &port)?);
    }
    Ok(d)
}

/// Reads one port directory: state, physical state, rate and every statistic present.
fn read_port(dir: &Path, name: &str) -> Result<Port, CollectError> {
    let number = name.parse().map_err(|_| CollectError::parse(dir, format!("invalid port number {name:?}")))?;
    // Not reported, but required like upstream.
    read_string(&dir.join("link_layer"))?;
    let parsed = |file: &str, parse: fn(&str) -> Option<u64>| {
        let path = dir.join(file);
        let text = read_string(&path)?;
        parse(&text).ok_or_else(|| CollectError::parse(&path, format!("unexpected content {text:?}")))
    };
    let state_id = parsed("state", |s| parse_state(s).map(u64::from))? as u32;
    let phys_state_id = parsed("phys_state", |s| parse_state(s).map(u64::from))? as u32;
    let rate = parsed("rate", parse_rate)?;
    let mut port = Port { number, state_id, phys_state_id, rate, stats: [None; 60] };
    for kind in [Dir::Counters, Dir::Ext, Dir::Hw] {
        read_stats(&dir.join(kind.name()), kind, &mut port.stats)?;
    }
    Ok(port)
}

/// Reads the known statistics of one counters directory into `stats`. `counters/` and
/// `hw_counters/` are read only when present; `counters_ext/` may be missing too.
fn read_stats(dir: &Path, kind: Dir, stats: &mut [Option<u64>; 60]) -> Result<(), CollectError> {
    if kind != Dir::Ext && std::fs::metadata(dir).is_err() {
        return Ok(());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if kind == Dir::Ext && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CollectError::io(dir, e)),
    };
    let mut buf = [0u8; ATTR_BUF];
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file = entry.file_name();
        let Some(i) = STATS.iter().position(|s| s.dir == kind && file.to_str() == Some(s.file)) else { continue };
        let path = entry.path();
        let text = match read_attr(&path, &mut buf) {
            Ok(t) => t,
            Err(e) if skippable(&e, kind) => continue,
            Err(e) => return Err(CollectError::io(path, e)),
        };
        match counter_value(text) {
            Ok(Some(v)) => stats[i] = Some(if STATS[i].times4 { v.wrapping_mul(4) } else { v }),
            Ok(None) => {}
            Err(msg) => return Err(CollectError::parse(path, msg)),
        }
    }
    Ok(())
}

/// Read errors that skip a statistic: missing, forbidden, unsupported, and (in `counters/`)
/// invalid.
fn skippable(e: &io::Error, kind: Dir) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied)
        || e.raw_os_error() == Some(95)
        || (kind == Dir::Counters && e.raw_os_error() == Some(22))
}

/// A statistic's value; `None` for the `N/A (no PMA)` of ports without a performance
/// management agent.
fn counter_value(text: &str) -> Result<Option<u64>, String> {
    match parse_go_uint(text) {
        Some(v) => Ok(Some(v)),
        None if text.contains("N/A (no PMA)") => Ok(None),
        None => Err(format!("invalid counter {text:?}")),
    }
}

/// The number of a `<id>: <NAME>` state (`4: ACTIVE`).
fn parse_state(text: &str) -> Option<u32> {
    let (id, name) = text.split_once(':')?;
    if name.contains(':') {
        return None;
    }
    id.trim().parse().ok()
}

/// A `rate` (`40 Gb/sec (4X QDR)`) in bytes per second. Like upstream, the number is read at
/// single precision.
fn parse_rate(text: &str) -> Option<u64> {
    let (num, _) = text.split_once(' ')?;
    let gbit = f64::from(num.trim().parse::<f32>().ok()?);
    Some((gbit * 125_000_000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_states() {
        assert_eq!(parse_state("4: ACTIVE\n"), Some(4));
        assert_eq!(parse_state("5: LinkUp"), Some(5));
        assert_eq!(parse_state("ACTIVE"), None);
        assert_eq!(parse_state("4: A: B"), None);
        assert_eq!(parse_state("x: ACTIVE"), None);
    }

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("40 Gb/sec (4X QDR)\n"), Some(5_000_000_000));
        assert_eq!(parse_rate("10 Gb/sec"), Some(1_250_000_000));
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)"), Some(312_500_000));
        assert_eq!(parse_rate("40"), None);
        assert_eq!(parse_rate("fast Gb/sec"), None);
    }

    #[test]
    fn counter_values_tolerate_missing_pma() {
        assert_eq!(counter_value("93"), Ok(Some(93)));
        assert_eq!(counter_value("0x10"), Ok(Some(16)));
        assert_eq!(counter_value("N/A (no PMA)"), Ok(None));
        assert!(counter_value("lots").is_err());
    }

    #[test]
    fn table_is_consistent() {
        assert_eq!(STATS[LIFESPAN].metric, "lifespan_seconds");
        assert_eq!(STATS.iter().filter(|s| s.times4).count(), 4);
        for (i, s) in STATS.iter().enumerate() {
            assert!(!STATS[..i].iter().any(|o| o.metric == s.metric), "{} twice", s.metric);
        }
    }

    #[test]
    fn include_and_exclude_apply_together() {
        let ctx = crate::testutil::fixture_ctx(&[
            ("collector.infiniband.device-include", crate::catalog::Value::Str("0$".into())),
            ("collector.infiniband.device-exclude", crate::catalog::Value::Str("^i40".into())),
        ]);
        let c = (DEF.build)(&ctx).unwrap();
        let mut out = Sink::new();
        c.collect(&mut out).unwrap();
        let info = out.families().iter().find(|f| f.name == "node_infiniband_info").unwrap();
        let devices: Vec<_> = info.samples.iter().filter_map(|s| s.label("device")).collect();
        assert_eq!(devices, ["mlx4_0"]);
    }

    #[test]
    fn missing_class_is_no_data() {
        let c = InfiniBand { dir: "/nonexistent/infiniband".into(), filter: DeviceFilter::default() };
        assert!(matches!(c.collect(&mut Sink::new()), Err(CollectError::NoData)));
    }

    #[test]
    fn reads_fixture_port_with_data_counters_times_four() {
        let dir = crate::testutil::fixtures().join("sys/class/infiniband/mlx4_0/ports/1");
        let p = read_port(&dir, "1").unwrap();
        assert_eq!((p.state_id, p.phys_state_id, p.rate), (4, 5, 5_000_000_000));
        let rcv = STATS.iter().position(|s| s.file == "port_rcv_data").unwrap();
        assert_eq!(p.stats[rcv], Some(4_631_917 * 4));
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("infiniband", &|f| f.starts_with("node_infiniband_"));
    }
}
