//! `netstat`: protocol counters from `/proc/net/netstat`, `/proc/net/snmp` and
//! `/proc/net/snmp6` (node_exporter compatible).

use regex::Regex;

use crate::prelude::*;

/// node_exporter's default for `--collector.netstat.fields`.
const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// Catalog entry.
pub static DEF: Def = Def {
    name: "netstat",
    default_enabled: true,
    help: "Exposes network statistics from /proc/net/netstat. This is the same information as netstat -s.",
    flags: &[Flag {
        name: "collector.netstat.fields",
        help: "Regexp of fields to return for netstat collector.",
        kind: FlagKind::Str(DEFAULT_FIELDS),
    }],
    build: |ctx| {
        // An empty pattern matches every field, as in node_exporter.
        let fields = Regex::new(ctx.str("collector.netstat.fields"))
            .map_err(|e| anyhow::anyhow!("--collector.netstat.fields: invalid regular expression: {e}"))?;
        Ok(Box::new(NetStat {
            netstat: ctx.paths.proc("net/netstat"),
            snmp: ctx.paths.proc("net/snmp"),
            snmp6: ctx.paths.proc("net/snmp6"),
            fields,
            matched: std::sync::Mutex::default(),
        }))
    },
};

/// Most keys remembered in [`NetStat::matched`] (the kernel defines a few hundred).
const MATCH_MEMO_MAX: usize = 4096;

/// Reports `node_netstat_<Protocol>_<Field>` (untyped) for fields matching the pattern.
struct NetStat {
    /// `/proc/net/netstat`.
    netstat: PathBuf,
    /// `/proc/net/snmp`.
    snmp: PathBuf,
    /// `/proc/net/snmp6` (absent when IPv6 is disabled).
    snmp6: PathBuf,
    /// Which `<Protocol>_<Field>` keys to report.
    fields: Regex,
    /// `fields.is_match(key)` by key: the same few hundred keys come every scrape, and
    /// matching them all was ~1 % of the agent's CPU per scrape.
    matched: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

impl NetStat {
    /// Whether `key` is reported (memoized [`NetStat::fields`] match).
    fn wanted(&self, memo: &mut std::collections::HashMap<String, bool>, key: &str) -> bool {
        if let Some(&m) = memo.get(key) {
            return m;
        }
        let m = self.fields.is_match(key);
        if memo.len() < MATCH_MEMO_MAX {
            memo.insert(key.to_owned(), m);
        }
        m
    }
}

/// Fields by protocol: (protocol, [(field, value text)]), later duplicates replacing earlier.
type Stats<'a> = Vec<(&'a str, Vec<(&'a str, &'a str)>)>;

impl Collector for NetStat {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let netstat = read_string(&self.netstat)?;
        let snmp = read_string(&self.snmp)?;
        let snmp6 = match read_string(&self.snmp6) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => String::new(),
            Err(e) => return Err(e),
        };
        let mut stats = parse_pairs(&netstat).map_err(|m| CollectError::parse(&self.netstat, m))?;
        for (proto, fields) in parse_pairs(&snmp).map_err(|m| CollectError::parse(&self.snmp, m))? {
            set_protocol(&mut stats, proto, fields);
        }
        for (proto, fields) in parse_snmp6(&snmp6) {
            set_protocol(&mut stats, proto, fields);
        }
        let mut key = String::new();
        let mut help = String::new();
        let mut memo = self.matched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (proto, fields) in &stats {
            for &(field, text) in fields {
                let value: f64 =
                    text.parse().map_err(|e| CollectError::Other(format!("invalid value {text} in netstats: {e}")))?;
                key.clear();
                key.push_str(proto);
                key.push('_');
                key.push_str(field);
                if !self.wanted(&mut memo, &key) {
                    continue;
                }
                key.insert_str(0, "node_netstat_");
                help.clear();
                help.push_str("Statistic ");
                help.push_str(proto);
                help.push_str(field);
                help.push('.');
                out.add(&key, &help, MetricType::Untyped, &[], value);
            }
        }
        Ok(())
    }
}

/// Replaces (or adds) a protocol's fields, as node_exporter's map merge does.
fn set_protocol<'a>(stats: &mut Stats<'a>, proto: &'a str, fields: Vec<(&'a str, &'a str)>) {
    match stats.iter_mut().find(|(p, _)| *p == proto) {
        Some(slot) => slot.1 = fields,
        None => stats.push((proto, fields)),
    }
}

/// Sets `field` in `fields`, replacing an earlier value of the same name.
fn set_field<'a>(fields: &mut Vec<(&'a str, &'a str)>, field: &'a str, value: &'a str) {
    match fields.iter_mut().find(|(f, _)| *f == field) {
        Some(slot) => slot.1 = value,
        None => fields.push((field, value)),
    }
}

/// Parses `/proc/net/netstat` or `/proc/net/snmp`: line pairs `Proto: names…` / `Proto: values…`,
/// split on single spaces.
fn parse_pairs(text: &str) -> Result<Stats<'_>, String> {
    let mut stats = Stats::new();
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let values = lines.next().unwrap_or("");
        let mut names = names.split(' ');
        let mut values = values.split(' ');
        let head = names.next().unwrap_or("");
        values.next();
        let proto = head.strip_suffix(':').unwrap_or_else(|| &head[..head.len().saturating_sub(1)]);
        if head.is_empty() {
            return Err("empty protocol name".into());
        }
        let mut fields = Vec::new();
        loop {
            match (names.next(), values.next()) {
                (Some(n), Some(v)) => set_field(&mut fields, n, v),
                (None, None) => break,
                _ => return Err(format!("mismatch field count mismatch: {proto}")),
            }
        }
        set_protocol(&mut stats, proto, fields);
    }
    Ok(stats)
}

/// Parses `/proc/net/snmp6`: `Ip6InReceives  7` lines, the protocol ending at the first `6`.
fn parse_snmp6(text: &str) -> Stats<'_> {
    let mut stats = Stats::new();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(name), Some(value)) = (it.next(), it.next()) else {
            continue;
        };
        let Some(six) = name.find('6') else { continue };
        let (proto, field) = name.split_at(six + 1);
        match stats.iter_mut().find(|(p, _)| *p == proto) {
            Some((_, fields)) => set_field(fields, field, value),
            None => stats.push((proto, vec![(field, value)])),
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_line_pairs() {
        let text = "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 3\nIpExt: InOctets\nIpExt: 42\n";
        let s = parse_pairs(text).unwrap();
        assert_eq!(
            s,
            vec![
                ("TcpExt", vec![("SyncookiesSent", "0"), ("SyncookiesRecv", "3")]),
                ("IpExt", vec![("InOctets", "42")])
            ]
        );
    }

    #[test]
    fn rejects_mismatched_pairs() {
        assert!(parse_pairs("Tcp: A B\nTcp: 1\n").is_err());
        assert!(parse_pairs("Tcp: A B\n").is_err());
    }

    #[test]
    fn later_protocol_block_replaces_earlier() {
        let s = parse_pairs("Ip: A\nIp: 1\nIp: B\nIp: 2\n").unwrap();
        assert_eq!(s, vec![("Ip", vec![("B", "2")])]);
    }

    #[test]
    fn parses_snmp6() {
        let s = parse_snmp6("Ip6InReceives \t7\nIcmp6OutType133 2\nbogus\nUdpLite6InErrors 0\nnosix 1\n");
        assert_eq!(
            s,
            vec![
                ("Ip6", vec![("InReceives", "7")]),
                ("Icmp6", vec![("OutType133", "2")]),
                ("UdpLite6", vec![("InErrors", "0")]),
            ]
        );
    }
}

#[cfg(test)]
mod memo {
    use super::*;

    #[test]
    fn memoized_field_filter_answers_like_the_regex() {
        let n = NetStat {
            netstat: PathBuf::new(),
            snmp: PathBuf::new(),
            snmp6: PathBuf::new(),
            fields: Regex::new("^(Tcp_.*|Udp_InDatagrams)$").unwrap(),
            matched: std::sync::Mutex::default(),
        };
        let mut memo = std::collections::HashMap::new();
        for _ in 0..2 {
            assert!(n.wanted(&mut memo, "Tcp_ActiveOpens"));
            assert!(n.wanted(&mut memo, "Udp_InDatagrams"));
            assert!(!n.wanted(&mut memo, "Udp_InErrors"));
        }
        assert_eq!(memo.len(), 3);
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("netstat", &|f| f.starts_with("node_netstat_"));
    }
}
