//! `arp`: ARP table entries per device from `/proc/net/arp` (node_exporter compatible).
//!
//! node_exporter reads the table over rtnetlink by default (`--collector.arp.netlink`); the
//! kernel's `/proc/net/arp` lists the same IPv4 neighbours (it skips `NUD_NOARP` entries, as
//! node_exporter's netlink path does), so this collector reads the file either way.

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "arp",
    default_enabled: true,
    help: "Exposes ARP statistics from /proc/net/arp.",
    flags: &[
        Flag {
            name: "collector.arp.device-include",
            help: "Regexp of arp devices to include (mutually exclusive to device-exclude).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: "collector.arp.device-exclude",
            help: "Regexp of arp devices to exclude (mutually exclusive to device-include).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: "collector.arp.netlink",
            help: "Use netlink to gather stats instead of /proc/net/arp.",
            kind: FlagKind::Bool(true),
        },
    ],
    build: |ctx| {
        // node_exporter accepts both filters at once for arp (exclude is checked first).
        let filter = DeviceFilter {
            exclude: ctx.regex("collector.arp.device-exclude")?,
            include: ctx.regex("collector.arp.device-include")?,
        };
        Ok(Box::new(Arp { path: ctx.paths.proc("net/arp"), filter }))
    },
};

/// Reports `node_arp_entries{device}`.
struct Arp {
    /// `/proc/net/arp`.
    path: PathBuf,
    /// Which devices to report.
    filter: DeviceFilter,
}

impl Collector for Arp {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        let counts = count_entries(&text).map_err(|m| CollectError::parse(&self.path, m))?;
        for (device, n) in counts.iter().filter(|(d, _)| !self.filter.ignored(d)) {
            out.gauge_with("node_arp_entries", "ARP entries by device", &[("device", device)], f64::from(*n));
        }
        Ok(())
    }
}

/// Entries per device in `/proc/net/arp` (9-column header skipped, 6-column rows validated
/// as procfs does: a MAC address and an 8-bit flags value).
fn count_entries(text: &str) -> Result<Vec<(&str, u32)>, String> {
    let mut counts: Vec<(&str, u32)> = Vec::new();
    let mut cols = Vec::with_capacity(9);
    for line in text.split('\n') {
        cols.clear();
        cols.extend(line.split_ascii_whitespace());
        match cols.len() {
            0 | 9 => continue,
            6 => {}
            n => return Err(format!("{n} columns found, but expected 6")),
        }
        if !is_mac(cols[3]) {
            return Err(format!("invalid MAC address {:?}", cols[3]));
        }
        if parse_flags(cols[2]).is_none() {
            return Err(format!("invalid flags {:?}", cols[2]));
        }
        let device = cols[5];
        match counts.iter_mut().find(|(d, _)| *d == device) {
            Some((_, n)) => *n += 1,
            None => counts.push((device, 1)),
        }
    }
    Ok(counts)
}

/// Go's `strconv.ParseUint(s, 0, 8)` (decimal, `0x`, `0o`, `0b` or leading-`0` octal).
fn parse_flags(s: &str) -> Option<u8> {
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
    u8::from_str_radix(digits, radix).ok()
}

/// Go's `net.ParseMAC` forms: 6, 8 or 20 hex pairs separated by `:` or `-`, or groups of four
/// hex digits separated by `.`.
fn is_mac(s: &str) -> bool {
    let hex = |g: &str, n: usize| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit());
    let sep = s.as_bytes().get(2).copied();
    let (groups, width): (Vec<&str>, usize) = match sep {
        Some(b':') => (s.split(':').collect(), 2),
        Some(b'-') => (s.split('-').collect(), 2),
        _ if s.as_bytes().get(4) == Some(&b'.') => (s.split('.').collect(), 4),
        _ => return false,
    };
    let bytes = groups.len() * width / 2;
    matches!(bytes, 6 | 8 | 20) && groups.iter().all(|g| hex(g, width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_entries_per_device() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device
192.168.1.1    0x1         0x2         cc:aa:dd:ee:aa:bb     *        eth0
192.168.1.4    0x1         0x0         00:00:00:00:00:00     *        eth1
192.168.1.2    0x1         0x2         bb:cc:dd:ee:ff:aa     *        eth0
";
        assert_eq!(count_entries(text).unwrap(), vec![("eth0", 2), ("eth1", 1)]);
    }

    #[test]
    fn rejects_malformed_rows() {
        assert!(count_entries("1.2.3.4 0x1 0x2 zz:aa:dd:ee:aa:bb * eth0\n").is_err());
        assert!(count_entries("1.2.3.4 0x1 0x200 cc:aa:dd:ee:aa:bb * eth0\n").is_err());
        assert!(count_entries("1.2.3.4 0x1 0x2 cc:aa:dd:ee:aa:bb eth0\n").is_err());
    }

    #[test]
    fn parses_mac_forms_like_go() {
        assert!(is_mac("cc:aa:dd:ee:aa:bb"));
        assert!(is_mac("CC-AA-DD-EE-AA-BB"));
        assert!(is_mac("0000.5e00.5301"));
        assert!(is_mac("00:00:00:00:fe:80:00:00"));
        assert!(!is_mac("cc:aa:dd:ee:aa"));
        assert!(!is_mac("cc:aa:dd:ee:aa:b"));
        assert_eq!(parse_flags("0x2"), Some(2));
        assert_eq!(parse_flags("6"), Some(6));
        assert_eq!(parse_flags("0x100"), None);
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("arp", &|f| f.starts_with("node_arp_"));
    }
}
