//! `sockstat`: socket counts from `/proc/net/sockstat` and `/proc/net/sockstat6`
//! (node_exporter compatible).

use crate::prelude::*;
use crate::sysfs::parse_go_int;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "sockstat",
    default_enabled: true,
    help: "Exposes various statistics from /proc/net/sockstat.",
    flags: &[],
    build: |ctx| {
        Ok(Box::new(SockStat {
            v4: ctx.paths.proc("net/sockstat"),
            v6: ctx.paths.proc("net/sockstat6"),
            page_size: rustix::param::page_size() as i64,
        }))
    },
};

/// Reports `node_sockstat_sockets_used` and `node_sockstat_<PROTO>_<state>` gauges.
struct SockStat {
    /// `/proc/net/sockstat`.
    v4: PathBuf,
    /// `/proc/net/sockstat6`.
    v6: PathBuf,
    /// Bytes per page, for `mem_bytes`.
    page_size: i64,
}

/// Per-protocol keys node_exporter reports, in its order (`inuse` is always reported).
const KEYS: [&str; 6] = ["inuse", "orphan", "tw", "alloc", "mem", "memory"];

/// One sockstat file.
#[derive(Debug, Default, PartialEq)]
struct Sockstat<'a> {
    /// `sockets: used N` (`Some(0)` when the line lacks `used`).
    used: Option<i64>,
    /// Protocol lines: name and the values of [`KEYS`].
    protocols: Vec<(&'a str, [Option<i64>; 6])>,
}

impl Collector for SockStat {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        for (path, ipv6) in [(&self.v4, false), (&self.v6, true)] {
            // Either file is missing when its IP version is disabled.
            let text = match read_string(path) {
                Ok(t) => t,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let stat = parse(&text).map_err(|m| CollectError::parse(path, m))?;
            self.emit(out, ipv6, &stat);
        }
        Ok(())
    }
}

impl SockStat {
    /// Writes one file's metrics.
    fn emit(&self, out: &mut Sink, ipv6: bool, stat: &Sockstat<'_>) {
        if let (false, Some(used)) = (ipv6, stat.used) {
            out.gauge("node_sockstat_sockets_used", "Number of IPv4 sockets in use.", used as f64);
        }
        let mut name = String::new();
        let mut help = String::new();
        for (proto, values) in &stat.protocols {
            let mem_bytes = values[4].map(|m| m.wrapping_mul(self.page_size));
            let pairs = KEYS.iter().zip(values).chain(std::iter::once((&"mem_bytes", &mem_bytes)));
            for (key, value) in pairs {
                let value = match (*key, value) {
                    ("inuse", None) => 0,
                    (_, Some(v)) => *v,
                    (_, None) => continue,
                };
                name.clear();
                name.push_str("node_sockstat_");
                name.push_str(proto);
                name.push('_');
                name.push_str(key);
                help.clear();
                help.push_str("Number of ");
                help.push_str(proto);
                help.push_str(" sockets in state ");
                help.push_str(key);
                help.push('.');
                out.gauge_with(&name, &help, &[], value as f64);
            }
        }
    }
}

/// Parses a sockstat file: `PROTO: key value key value…` lines, split on single spaces.
fn parse(text: &str) -> Result<Sockstat<'_>, String> {
    let mut stat = Sockstat::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 3 {
            return Err(format!("malformed sockstat line: {line:?}"));
        }
        if fields.len().is_multiple_of(2) {
            return Err(format!("odd number of fields in key/value pairs: {line:?}"));
        }
        let mut values = [None; 6];
        let mut used = None;
        for kv in fields[1..].chunks_exact(2) {
            let v = parse_go_int(kv[1]).ok_or_else(|| format!("invalid value {:?} in {line:?}", kv[1]))?;
            if let Some(i) = KEYS.iter().position(|k| *k == kv[0]) {
                values[i] = Some(v);
            }
            if kv[0] == "used" {
                used = Some(v);
            }
        }
        let proto = fields[0].strip_suffix(':').unwrap_or(fields[0]);
        if proto == "sockets" {
            stat.used = Some(used.unwrap_or(0));
        } else {
            stat.protocols.push((proto, values));
        }
    }
    Ok(stat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sockstat() {
        let s =
            parse("sockets: used 229\nTCP: inuse 4 orphan 0 tw 4 alloc 17 mem 1\nFRAG: inuse 0 memory 0\n").unwrap();
        assert_eq!(s.used, Some(229));
        assert_eq!(s.protocols[0], ("TCP", [Some(4), Some(0), Some(4), Some(17), Some(1), None]));
        assert_eq!(s.protocols[1], ("FRAG", [Some(0), None, None, None, None, Some(0)]));
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(parse("TCP: inuse\n").is_err());
        assert!(parse("TCP: inuse 1 tw\n").is_err());
        assert!(parse("TCP: inuse x\n").is_err());
        assert!(parse("TCP:  inuse 1\n").is_err());
    }

    #[test]
    fn reports_mem_bytes_and_missing_inuse() {
        let sock = SockStat { v4: PathBuf::new(), v6: PathBuf::new(), page_size: 4096 };
        let mut out = Sink::new();
        sock.emit(&mut out, true, &parse("sockets: used 3\nUDP: mem 2\n").unwrap());
        let names: Vec<_> = out.families().iter().map(|f| (f.name.as_str(), f.samples[0].value)).collect();
        assert_eq!(
            names,
            vec![
                ("node_sockstat_UDP_inuse", 0.0),
                ("node_sockstat_UDP_mem", 2.0),
                ("node_sockstat_UDP_mem_bytes", 8192.0)
            ]
        );
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("sockstat", &|f| f.starts_with("node_sockstat_"));
    }
}
