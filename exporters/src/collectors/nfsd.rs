//! `nfsd`: NFS server RPC statistics from `/proc/net/rpc/nfsd` (node_exporter compatible).

use super::nfs::{V2_PROCS, V3_PROCS, counted, exact, split_line};
use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "nfsd",
    default_enabled: true,
    help: "Exposes NFS kernel server statistics.",
    flags: &[],
    build: |ctx| Ok(Box::new(Nfsd { path: ctx.paths.proc("net/rpc/nfsd") })),
};

/// Names of the NFSv4 server operations in `proc4ops` column order; "" = not exported
/// (the unused operation numbers 0–2, PutPubFH and PutRootFH, as node_exporter does).
const V4_OPS: [&str; 40] = [
    "",
    "",
    "",
    "Access",
    "Close",
    "Commit",
    "Create",
    "DelegPurge",
    "DelegReturn",
    "GetAttr",
    "GetFH",
    "Link",
    "Lock",
    "Lockt",
    "Locku",
    "Lookup",
    "LookupRoot",
    "Nverify",
    "Open",
    "OpenAttr",
    "OpenConfirm",
    "OpenDgrd",
    "PutFH",
    "",
    "",
    "Read",
    "ReadDir",
    "ReadLink",
    "Remove",
    "Rename",
    "Renew",
    "RestoreFH",
    "SaveFH",
    "SecInfo",
    "SetAttr",
    "SetClientID",
    "SetClientIDConfirm",
    "Verify",
    "Write",
    "RelLockOwner",
];

/// Reads `/proc/net/rpc/nfsd`.
struct Nfsd {
    path: PathBuf,
}

/// HELP of `node_nfsd_requests_total`.
const REQUESTS_HELP: &str = "Total number NFSd Requests by method and protocol.";

impl Collector for Nfsd {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string_or_no_data(&self.path)?;
        let s = parse_server(&text).map_err(|m| CollectError::parse(&self.path, m))?;
        let c = |out: &mut Sink, name: &str, help: &str, v: u64| out.counter(name, help, v as f64);
        c(
            out,
            "node_nfsd_reply_cache_hits_total",
            "Total number of NFSd Reply Cache hits (client lost server response).",
            s.rc[0],
        );
        c(
            out,
            "node_nfsd_reply_cache_misses_total",
            "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
            s.rc[1],
        );
        c(
            out,
            "node_nfsd_reply_cache_nocache_total",
            "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
            s.rc[2],
        );
        c(out, "node_nfsd_file_handles_stale_total", "Total number of NFSd stale file handles", s.fh_stale);
        c(out, "node_nfsd_disk_bytes_read_total", "Total NFSd bytes read.", s.io[0]);
        c(out, "node_nfsd_disk_bytes_written_total", "Total NFSd bytes written.", s.io[1]);
        out.gauge(
            "node_nfsd_server_threads",
            "Total number of NFSd kernel threads that are running.",
            s.threads as f64,
        );
        out.gauge(
            "node_nfsd_read_ahead_cache_size_blocks",
            "How large the read ahead cache is in blocks.",
            s.ra_size as f64,
        );
        c(
            out,
            "node_nfsd_read_ahead_cache_not_found_total",
            "Total number of NFSd read ahead cache not found.",
            s.ra_not_found,
        );
        let packets = "Total NFSd network packets (sent+received) by protocol type.";
        out.counter_with("node_nfsd_packets_total", packets, &[("proto", "udp")], s.net[1] as f64);
        out.counter_with("node_nfsd_packets_total", packets, &[("proto", "tcp")], s.net[2] as f64);
        c(out, "node_nfsd_connections_total", "Total number of NFSd TCP connections.", s.net[3]);
        let errors = "Total number of NFSd RPC errors by error type.";
        for (kind, v) in [("fmt", s.rpc[2]), ("auth", s.rpc[3]), ("cInt", s.rpc[4])] {
            out.counter_with("node_nfsd_rpc_errors_total", errors, &[("error", kind)], v as f64);
        }
        c(out, "node_nfsd_server_rpcs_total", "Total number of NFSd RPCs.", s.rpc[0]);
        // v2 and v3 skip the Null procedure.
        let sets: [(&str, &[&str], &[u64]); 3] =
            [("2", &V2_PROCS[1..], &s.v2[1..]), ("3", &V3_PROCS[1..], &s.v3[1..]), ("4", &V4_OPS, &s.v4_ops)];
        for (proto, names, values) in sets {
            for (method, v) in names.iter().zip(values).filter(|(m, _)| !m.is_empty()) {
                out.counter_with(
                    "node_nfsd_requests_total",
                    REQUESTS_HELP,
                    &[("proto", proto), ("method", method)],
                    *v as f64,
                );
            }
        }
        out.counter_with(
            "node_nfsd_requests_total",
            REQUESTS_HELP,
            &[("proto", "4"), ("method", "WdelegGetattr")],
            s.wdeleg_getattr as f64,
        );
        Ok(())
    }
}

/// The server counters of `/proc/net/rpc/nfsd` (zero where a line is absent).
#[derive(Debug, PartialEq)]
struct ServerStats {
    /// `rc`: reply cache hits, misses, nocache.
    rc: [u64; 3],
    /// `fh`: stale file handles (the other columns are unused by the kernel).
    fh_stale: u64,
    /// `io`: bytes read, written.
    io: [u64; 2],
    /// `th`: number of threads.
    threads: u64,
    /// `ra`: read-ahead cache size.
    ra_size: u64,
    /// `ra`: read-ahead cache misses.
    ra_not_found: u64,
    /// `net`: packets, udp, tcp, tcp connections.
    net: [u64; 4],
    /// `rpc`: calls, bad calls, bad format, bad auth, bad client.
    rpc: [u64; 5],
    /// `proc2` counters.
    v2: [u64; 18],
    /// `proc3` counters.
    v3: [u64; 22],
    /// `proc4ops` counters (39 on old kernels: the 40th stays zero).
    v4_ops: [u64; 40],
    /// `wdeleg_getattr`.
    wdeleg_getattr: u64,
}

/// Parses `/proc/net/rpc/nfsd`; any unknown or malformed line is an error (as in procfs).
fn parse_server(text: &str) -> Result<ServerStats, String> {
    let mut s = ServerStats {
        rc: [0; 3],
        fh_stale: 0,
        io: [0; 2],
        threads: 0,
        ra_size: 0,
        ra_not_found: 0,
        net: [0; 4],
        rpc: [0; 5],
        v2: [0; 18],
        v3: [0; 22],
        v4_ops: [0; 40],
        wdeleg_getattr: 0,
    };
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        if words.next() == Some("th") {
            // Threads, "full count", then a histogram of floats nobody needs.
            let (Some(t), Some(_full)) = (words.next(), words.next()) else {
                return Err(format!("invalid NFSd th metric line {line:?}"));
            };
            s.threads = t.parse().map_err(|e| format!("line \"th\": {e}: {t:?}"))?;
            continue;
        }
        let (key, v) = split_line(line)?;
        match key {
            "rc" => s.rc = exact(key, &v)?,
            "fh" => s.fh_stale = exact::<5>(key, &v)?[0],
            "io" => s.io = exact(key, &v)?,
            "ra" => {
                let ra: [u64; 12] = exact(key, &v)?;
                (s.ra_size, s.ra_not_found) = (ra[0], ra[11]);
            }
            "net" => s.net = exact(key, &v)?,
            "rpc" => s.rpc = exact(key, &v)?,
            "proc2" => s.v2 = counted(key, &v, 18)?,
            "proc3" => s.v3 = counted(key, &v, 22)?,
            "proc4" => {
                // Only validated: null and compound calls are not exported.
                if v.len() != 3 || v[0] != 2 {
                    return Err(format!("invalid V4Stats line {v:?}"));
                }
            }
            "proc4ops" => s.v4_ops = counted(key, &v, 39)?,
            "wdeleg_getattr" => s.wdeleg_getattr = v[0],
            _ => return Err(format!("unknown NFSd metric line {key:?}")),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_stats() {
        let s = parse_server(
            "rc 0 6 18622\nfh 7 0 0 0 0\nio 157286400 72864\nth 8 0 0.000 0.000\nra 32 0 0 0 0 0 0 0 0 0 0 9\n\
             net 972 55 917 1\nrpc 18628 3 1 2 0\nproc4 2 2 10853\nwdeleg_getattr 15\n",
        )
        .unwrap();
        assert_eq!(s.rc, [0, 6, 18622]);
        assert_eq!(s.fh_stale, 7);
        assert_eq!(s.threads, 8);
        assert_eq!((s.ra_size, s.ra_not_found), (32, 9));
        assert_eq!(s.rpc, [18628, 3, 1, 2, 0]);
        assert_eq!(s.wdeleg_getattr, 15);
    }

    #[test]
    fn proc4ops_with_39_columns_leaves_rel_lock_owner_zero() {
        let cols: Vec<String> = (1..=39).map(|i| i.to_string()).collect();
        let line = format!("proc4ops 39 {}", cols.join(" "));
        let s = parse_server(&line).unwrap();
        assert_eq!(s.v4_ops[38], 39);
        assert_eq!(s.v4_ops[39], 0);
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse_server("th 8\n").is_err());
        assert!(parse_server("proc4 3 1 2 3\n").is_err());
        assert!(parse_server("ra 1 2\n").is_err());
        assert!(parse_server("proc4ops 2 1 2\n").is_err());
        assert!(parse_server("xx 1\n").is_err());
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("nfsd", &|f| f.starts_with("node_nfsd_"));
    }
}
