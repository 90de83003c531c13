//! `udp_queues`: bytes queued in UDP sockets, from `/proc/net/udp` and `/proc/net/udp6`
//! (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "udp_queues",
    default_enabled: true,
    help: "Exposes UDP total lengths of the rx_queue and tx_queue from /proc/net/udp and /proc/net/udp6.",
    flags: &[],
    build: |ctx| Ok(Box::new(UdpQueues { v4: ctx.paths.proc("net/udp"), v6: ctx.paths.proc("net/udp6") })),
};

/// Reports `node_udp_queues{queue="tx|rx",ip="v4|v6"}`.
struct UdpQueues {
    /// `/proc/net/udp`.
    v4: PathBuf,
    /// `/proc/net/udp6`.
    v6: PathBuf,
}

impl Collector for UdpQueues {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let mut missing = 0;
        for (path, ip) in [(&self.v4, "v4"), (&self.v6, "v6")] {
            let text = match read_string(path) {
                Ok(t) => t,
                Err(e) if e.is_not_found() => {
                    missing += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let (tx, rx) = queue_totals(&text).map_err(|m| CollectError::parse(path, m))?;
            let help = "Number of allocated memory in the kernel for UDP datagrams in bytes.";
            out.gauge_with("node_udp_queues", help, &[("queue", "tx"), ("ip", ip)], tx as f64);
            out.gauge_with("node_udp_queues", help, &[("queue", "rx"), ("ip", ip)], rx as f64);
        }
        if missing == 2 { Err(CollectError::NoData) } else { Ok(()) }
    }
}

/// Sums the `tx_queue:rx_queue` column of a `/proc/net/udp{,6}` table, validating each row
/// the way procfs does (a malformed row fails the whole file).
fn queue_totals(text: &str) -> Result<(u64, u64), String> {
    let (mut tx, mut rx) = (0u64, 0u64);
    let mut f: Vec<&str> = Vec::with_capacity(16);
    for line in text.lines().skip(1) {
        f.clear();
        f.extend(line.split_ascii_whitespace());
        if f.len() < 10 {
            return Err(format!("less than 10 columns found {line:?}"));
        }
        let bad = |what: &str| format!("cannot parse {what} in {line:?}");
        let (sl, rest) = f[0].split_once(':').ok_or_else(|| bad("sl"))?;
        if rest.contains(':') || go_uint(sl).is_none() {
            return Err(bad("sl"));
        }
        for addr in [f[1], f[2]] {
            let (ip, port) = addr.split_once(':').ok_or_else(|| bad("address"))?;
            let ip_ok = matches!(ip.len(), 8 | 32) && ip.bytes().all(|b| b.is_ascii_hexdigit());
            if !ip_ok || port.contains(':') || hex(port).is_none() {
                return Err(bad("address"));
            }
        }
        hex(f[3]).ok_or_else(|| bad("st"))?;
        let (t, r) = f[4].split_once(':').ok_or_else(|| bad("tx/rx queues"))?;
        if r.contains(':') {
            return Err(bad("tx/rx queues"));
        }
        let t = hex(t).ok_or_else(|| bad("tx_queue"))?;
        let r = hex(r).ok_or_else(|| bad("rx_queue"))?;
        go_uint(f[7]).ok_or_else(|| bad("uid"))?;
        go_uint(f[9]).ok_or_else(|| bad("inode"))?;
        f.get(12).copied().and_then(go_uint).ok_or_else(|| bad("drops"))?;
        tx = tx.wrapping_add(t);
        rx = rx.wrapping_add(r);
    }
    Ok((tx, rx))
}

/// An unsigned hexadecimal number without prefix (Go's `ParseUint(s, 16, 64)`).
fn hex(s: &str) -> Option<u64> {
    if s.starts_with('+') {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Go's `ParseUint(s, 0, 64)`: decimal, or `0x`/`0o`/`0b`/leading-`0` prefixed.
fn go_uint(s: &str) -> Option<u64> {
    let lower = s.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &s[2..]),
        Some("0o") => (8, &s[2..]),
        Some("0b") => (2, &s[2..]),
        _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..]),
        _ => (10, s),
    };
    if digits.starts_with('+') {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    #[test]
    fn sums_queues() {
        let text = format!(
            "{HEADER}   0: 00000000:0016 00000000:0000 0A 00000015:00000000 00:00000000 00000000     0        0 2740 1 ffff88003d3af3c0 100 0 0 10 0
   1: 0100007F:0035 00000000:0000 07 00000001:00000100 00:00000000 00000000   101        0 2741 2 ffff88003d3af3c0 0
"
        );
        assert_eq!(queue_totals(&text), Ok((0x16, 0x100)));
        assert_eq!(queue_totals(HEADER), Ok((0, 0)));
    }

    #[test]
    fn rejects_malformed_rows() {
        let short =
            format!("{HEADER}   0: 00000000:0016 00000000:0000 0A 00000015:00000000 00:00000000 00000000 0 0 2740\n");
        assert!(queue_totals(&short).is_err(), "no drops column");
        let bad_ip = format!(
            "{HEADER}   0: 000000:0016 00000000:0000 0A 00000015:00000000 00:00000000 00000000 0 0 2740 1 f 0\n"
        );
        assert!(queue_totals(&bad_ip).is_err());
        let bad_q = format!(
            "{HEADER}   0: 00000000:0016 00000000:0000 0A 0000001500000000 00:00000000 00000000 0 0 2740 1 f 0\n"
        );
        assert!(queue_totals(&bad_q).is_err());
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("udp_queues", &|f| f == "node_udp_queues");
    }
}
