//! `ipvs`: IP Virtual Server totals from `/proc/net/ip_vs_stats` and per-backend state from
//! `/proc/net/ip_vs` (node_exporter compatible, including `--collector.ipvs.backend-labels`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::prelude::*;

/// Every backend label, in node_exporter's order.
const ALL_LABELS: [&str; 6] = ["local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"];

/// Catalog entry.
pub static DEF: Def = Def {
    name: "ipvs",
    default_enabled: true,
    help: "Exposes IPVS status from /proc/net/ip_vs and stats from /proc/net/ip_vs_stats.",
    flags: &[Flag {
        name: "collector.ipvs.backend-labels",
        help: "Comma separated list for IPVS backend stats labels.",
        kind: FlagKind::Str("local_address,local_port,remote_address,remote_port,proto,local_mark"),
    }],
    build: |ctx| {
        let labels = parse_labels(ctx.str("collector.ipvs.backend-labels"))
            .map_err(|e| anyhow::anyhow!("--collector.ipvs.backend-labels: {e}"))?;
        Ok(Box::new(Ipvs { stats: ctx.paths.proc("net/ip_vs_stats"), backends: ctx.paths.proc("net/ip_vs"), labels }))
    },
};

/// The selected backend labels, in node_exporter's order; unknown names are an error.
fn parse_labels(flag: &str) -> Result<Vec<&'static str>, String> {
    let wanted: Vec<&str> = flag.split(',').filter(|l| !l.is_empty()).collect();
    let mut unknown: Vec<&str> = wanted.iter().copied().filter(|l| !ALL_LABELS.contains(l)).collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        return Err(format!("unknown IPVS backend labels: {:?}", unknown.join(", ")));
    }
    Ok(ALL_LABELS.into_iter().filter(|l| wanted.contains(l)).collect())
}

/// Reads the IPVS files.
struct Ipvs {
    stats: PathBuf,
    backends: PathBuf,
    labels: Vec<&'static str>,
}

impl Collector for Ipvs {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string_or_no_data(&self.stats)?;
        let [conns, in_pkts, out_pkts, in_bytes, out_bytes] =
            parse_stats(&text).map_err(|m| CollectError::parse(&self.stats, m))?;
        out.counter("node_ipvs_connections_total", "The total number of connections made.", conns as f64);
        out.counter("node_ipvs_incoming_packets_total", "The total number of incoming packets.", in_pkts as f64);
        out.counter("node_ipvs_outgoing_packets_total", "The total number of outgoing packets.", out_pkts as f64);
        out.counter("node_ipvs_incoming_bytes_total", "The total amount of incoming data.", in_bytes as f64);
        out.counter("node_ipvs_outgoing_bytes_total", "The total amount of outgoing data.", out_bytes as f64);

        let text = read_string(&self.backends)?;
        let backends = parse_backends(&text).map_err(|m| CollectError::parse(&self.backends, m))?;
        // Backends that share the selected label values are summed.
        let mut sums: HashMap<Vec<String>, [u64; 3]> = HashMap::new();
        for b in &backends {
            let key: Vec<String> = self.labels.iter().map(|l| b.label(l)).collect();
            let s = sums.entry(key).or_default();
            s[0] += b.active;
            s[1] += b.inactive;
            s[2] += b.weight;
        }
        for (values, [active, inactive, weight]) in sums {
            let labels: Vec<(String, String)> =
                self.labels.iter().zip(values).map(|(n, v)| ((*n).to_owned(), v)).collect();
            for (name, help, v) in [
                (
                    "node_ipvs_backend_connections_active",
                    "The current active connections by local and remote address.",
                    active,
                ),
                (
                    "node_ipvs_backend_connections_inactive",
                    "The current inactive connections by local and remote address.",
                    inactive,
                ),
                ("node_ipvs_backend_weight", "The current backend weight by local and remote address.", weight),
            ] {
                out.add_owned(name, help, MetricType::Gauge, labels.clone(), v as f64);
            }
        }
        Ok(())
    }
}

/// Parses `/proc/net/ip_vs_stats`: the third line holds five hex totals (connections,
/// incoming/outgoing packets, incoming/outgoing bytes).
fn parse_stats(text: &str) -> Result<[u64; 5], String> {
    let mut lines = text.splitn(4, '\n');
    let (Some(_), Some(_), Some(totals), Some(_)) = (lines.next(), lines.next(), lines.next(), lines.next()) else {
        return Err("ip_vs_stats corrupt: too short".into());
    };
    let fields: Vec<&str> = totals.split_ascii_whitespace().collect();
    let fields: [&str; 5] =
        fields.try_into().map_err(|_| "ip_vs_stats corrupt: unexpected number of fields".to_owned())?;
    let mut out = [0; 5];
    for (o, f) in out.iter_mut().zip(fields) {
        *o = u64::from_str_radix(f, 16).map_err(|e| format!("{e}: {f:?}"))?;
    }
    Ok(out)
}

/// One virtual/real server pair of `/proc/net/ip_vs`.
#[derive(Debug, PartialEq)]
struct Backend {
    /// Virtual address (`None` for firewall-mark services).
    local_address: Option<IpAddr>,
    /// Virtual port (0 for firewall-mark services).
    local_port: u16,
    /// Real server address.
    remote_address: IpAddr,
    /// Real server port.
    remote_port: u16,
    /// `TCP`, `UDP` or `FWM`.
    proto: String,
    /// Firewall mark (empty unless `FWM`).
    local_mark: String,
    /// Active connections.
    active: u64,
    /// Inactive connections.
    inactive: u64,
    /// Weight.
    weight: u64,
}

impl Backend {
    /// The value of backend label `name`.
    fn label(&self, name: &str) -> String {
        match name {
            "local_address" => self.local_address.map(go_ip).unwrap_or_default(),
            "local_port" => self.local_port.to_string(),
            "remote_address" => go_ip(self.remote_address),
            "remote_port" => self.remote_port.to_string(),
            "proto" => self.proto.clone(),
            "local_mark" => self.local_mark.clone(),
            _ => String::new(),
        }
    }
}

/// An address as Go's `net.IP.String` prints it (IPv4-mapped IPv6 addresses as IPv4).
fn go_ip(a: IpAddr) -> String {
    let mut s = String::new();
    let _ = match a {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => write!(s, "{v4}"),
            None => write!(s, "{v6}"),
        },
        IpAddr::V4(v4) => write!(s, "{v4}"),
    };
    s
}

/// Parses `/proc/net/ip_vs`: service lines (`TCP`/`UDP addr:port`, `FWM mark`) followed by
/// their real servers (`-> addr:port forward weight active inactive`).
fn parse_backends(text: &str) -> Result<Vec<Backend>, String> {
    let mut out = Vec::new();
    let (mut proto, mut mark, mut local, mut local_port) = ("", "", None, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        match f.as_slice() {
            [] | ["IP" | "Prot", ..] | [_, "RemoteAddress:Port", ..] => {}
            [p @ ("TCP" | "UDP"), addr, ..] => {
                let (a, port) = parse_ip_port(addr)?;
                (proto, mark, local, local_port) = (p, "", Some(a), port);
            }
            ["FWM", m, ..] => (proto, mark, local, local_port) = ("FWM", m, None, 0),
            ["->", addr, _forward, weight, active, inactive, ..] => {
                let (remote_address, remote_port) = parse_ip_port(addr)?;
                let num = |s: &str| s.parse::<u64>().map_err(|e| format!("{e}: {s:?}"));
                out.push(Backend {
                    local_address: local,
                    local_port,
                    remote_address,
                    remote_port,
                    proto: proto.to_owned(),
                    local_mark: mark.to_owned(),
                    weight: num(weight)?,
                    active: num(active)?,
                    inactive: num(inactive)?,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Parses `C0A80016:0CEA` (hex IPv4) or `[2620:0:0:0:0:0:0:1]:0CEA` (IPv6) with a hex port.
fn parse_ip_port(s: &str) -> Result<(IpAddr, u16), String> {
    let bad = || format!("unexpected IP:Port {s:?}");
    let ip = match s.len() {
        13 => {
            let hex = s.get(..8).ok_or_else(bad)?;
            IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(hex, 16).map_err(|_| bad())?))
        }
        46 => IpAddr::V6(s.get(1..40).and_then(|a| a.parse::<Ipv6Addr>().ok()).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    let port = s.get(s.len() - 4..).and_then(|p| u16::from_str_radix(p, 16).ok()).ok_or_else(bad)?;
    Ok((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_totals_in_hex() {
        let text = "   Total Incoming\n   Conns  Packets\n 16AA370 E33656E5 0 51D8C8883AB3 0\n\n Conns/s\n";
        assert_eq!(parse_stats(text).unwrap(), [0x16AA370, 0xE33656E5, 0, 0x51D8C8883AB3, 0]);
        assert!(parse_stats("a\nb\n").is_err());
        assert!(parse_stats("a\nb\n1 2 3\n").is_err());
    }

    #[test]
    fn parses_services_and_backends() {
        let text = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  \
                    -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  C0A80016:0CEA wlc\n  \
                    -> C0A85216:0CEA      Tunnel  100    248        2\nFWM  10001000 wlc\n  \
                    -> [fe80:0000:0000:0000:0000:0000:0000:0001]:0050 Route 1 2 3\n";
        let b = parse_backends(text).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].label("local_address"), "192.168.0.22");
        assert_eq!(b[0].label("remote_port"), "3306");
        assert_eq!((b[0].weight, b[0].active, b[0].inactive), (100, 248, 2));
        assert_eq!(b[1].label("local_address"), "");
        assert_eq!(b[1].label("local_port"), "0");
        assert_eq!(b[1].label("local_mark"), "10001000");
        assert_eq!(b[1].label("remote_address"), "fe80::1");
        assert_eq!(b[1].label("remote_port"), "80");
        assert!(parse_backends("TCP zz:0CEA wlc\n").is_err());
    }

    #[test]
    fn go_prints_mapped_addresses_as_ipv4() {
        assert_eq!(go_ip("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[test]
    fn backend_labels_keep_node_exporter_order_and_reject_unknown() {
        assert_eq!(parse_labels("local_port,local_address").unwrap(), ["local_address", "local_port"]);
        assert!(parse_labels("").unwrap().is_empty());
        assert_eq!(
            parse_labels("invalid_label,bad_label,local_port").unwrap_err(),
            r#"unknown IPVS backend labels: "bad_label, invalid_label""#
        );
    }
}

#[cfg(test)]
mod conformance {
    use agent_core::encode::{Format, encode};
    use agent_core::model::normalize;

    use crate::catalog::Value;
    use crate::testutil::{fixture_ctx, fixtures};

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("ipvs", &|f| f.starts_with("node_ipvs_"));
    }

    /// Upstream's per-flag expected outputs (`ip_vs_result*.txt`).
    #[test]
    fn backend_label_variants_match_upstream() {
        for (flag, file) in [
            (None, "ip_vs_result.txt"),
            (Some(""), "ip_vs_result_lbs_none.txt"),
            (Some("local_port"), "ip_vs_result_lbs_local_port.txt"),
            (Some("local_address,local_port"), "ip_vs_result_lbs_local_address_local_port.txt"),
        ] {
            let overrides: Vec<_> =
                flag.map(|f| ("collector.ipvs.backend-labels", Value::Str(f.to_owned()))).into_iter().collect();
            let c = (super::DEF.build)(&fixture_ctx(&overrides)).unwrap();
            let mut sink = agent_core::Sink::new();
            c.collect(&mut sink).unwrap();
            let mut fams = sink.into_families();
            normalize(&mut fams);
            let mut text = Vec::new();
            encode(&mut text, &fams, Format::Text);
            let expected = std::fs::read_to_string(fixtures().join(file)).unwrap();
            assert_eq!(String::from_utf8(text).unwrap(), expected, "{file}");
        }
    }
}
