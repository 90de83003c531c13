//! `nfs`: NFS client RPC statistics from `/proc/net/rpc/nfs` (node_exporter compatible).
//!
//! Also home of the line format shared with `nfsd` (`/proc/net/rpc/nfsd`): `<key> <u64>...`,
//! where procedure lines start with the number of counters that follow.

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "nfs",
    default_enabled: true,
    help: "Exposes NFS client statistics.",
    flags: &[],
    build: |ctx| Ok(Box::new(Nfs { path: ctx.paths.proc("net/rpc/nfs") })),
};

/// Names of the NFSv2 procedures, in `proc2` column order (shared with `nfsd`).
pub(super) const V2_PROCS: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write", "Create", "Remove",
    "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// Names of the NFSv3 procedures, in `proc3` column order (shared with `nfsd`).
pub(super) const V3_PROCS: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// Names of the NFSv4 client operations, in `proc4` column order (as procfs maps them).
const V4_CLIENT_OPS: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "GetDeviceInfo",
    "LayoutGet",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// Reads `/proc/net/rpc/nfs`.
struct Nfs {
    path: PathBuf,
}

impl Collector for Nfs {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string_or_no_data(&self.path)?;
        let s = parse_client(&text).map_err(|m| CollectError::parse(&self.path, m))?;
        let packets = "Total NFSd network packets (sent+received) by protocol type.";
        out.counter_with("node_nfs_packets_total", packets, &[("protocol", "udp")], s.net[1] as f64);
        out.counter_with("node_nfs_packets_total", packets, &[("protocol", "tcp")], s.net[2] as f64);
        out.counter("node_nfs_connections_total", "Total number of NFSd TCP connections.", s.net[3] as f64);
        out.counter("node_nfs_rpcs_total", "Total number of RPCs performed.", s.rpc[0] as f64);
        out.counter("node_nfs_rpc_retransmissions_total", "Number of RPC transmissions performed.", s.rpc[1] as f64);
        out.counter(
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
            s.rpc[2] as f64,
        );
        let sets: [(&str, &[&str], &[u64]); 3] =
            [("2", &V2_PROCS, &s.v2), ("3", &V3_PROCS, &s.v3), ("4", &V4_CLIENT_OPS, &s.v4)];
        for (proto, names, values) in sets {
            for (method, v) in names.iter().zip(values) {
                out.counter_with(
                    "node_nfs_requests_total",
                    "Number of NFS procedures invoked.",
                    &[("proto", proto), ("method", method)],
                    *v as f64,
                );
            }
        }
        Ok(())
    }
}

/// The client counters of `/proc/net/rpc/nfs` (zero where a line is absent).
#[derive(Debug, PartialEq)]
struct ClientStats {
    /// `net`: packets, udp, tcp, tcp connections.
    net: [u64; 4],
    /// `rpc`: calls, retransmissions, auth refreshes.
    rpc: [u64; 3],
    /// `proc2` counters.
    v2: [u64; 18],
    /// `proc3` counters.
    v3: [u64; 22],
    /// `proc4` counters (older kernels report fewer; the rest stay zero).
    v4: [u64; 59],
}

/// Splits a line into its key and numbers; at least one number is required.
pub(super) fn split_line(line: &str) -> Result<(&str, Vec<u64>), String> {
    let mut parts = line.split_ascii_whitespace();
    let key = parts.next().ok_or_else(|| format!("invalid metric line {line:?}"))?;
    let values = parts
        .map(|p| p.parse::<u64>().map_err(|e| format!("line {key:?}: {e}: {p:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    if values.is_empty() {
        return Err(format!("invalid metric line {line:?}"));
    }
    Ok((key, values))
}

/// Copies exactly `N` values into an array.
pub(super) fn exact<const N: usize>(key: &str, v: &[u64]) -> Result<[u64; N], String> {
    v.try_into().map_err(|_| format!("line {key:?}: expected {N} values, got {}", v.len()))
}

/// The counters of a procedure line (`<count> <v1>...`), checking the count and that there
/// are at least `min` of them; the first `N` (padded with zeros) are returned.
pub(super) fn counted<const N: usize>(key: &str, v: &[u64], min: usize) -> Result<[u64; N], String> {
    let n = v.len() - 1;
    if v[0] != n as u64 || n < min {
        return Err(format!("line {key:?}: invalid procedure counters {v:?}"));
    }
    let mut out = [0; N];
    for (o, x) in out.iter_mut().zip(&v[1..]) {
        *o = *x;
    }
    Ok(out)
}

/// Parses `/proc/net/rpc/nfs`; any unknown or malformed line is an error (as in procfs).
fn parse_client(text: &str) -> Result<ClientStats, String> {
    let mut s = ClientStats { net: [0; 4], rpc: [0; 3], v2: [0; 18], v3: [0; 22], v4: [0; 59] };
    for line in text.lines() {
        let (key, v) = split_line(line)?;
        match key {
            "net" => s.net = exact(key, &v)?,
            "rpc" => s.rpc = exact(key, &v)?,
            "proc2" => s.v2 = counted(key, &v, 18)?,
            "proc3" => s.v3 = counted(key, &v, 22)?,
            "proc4" => s.v4 = counted(key, &v, 0)?,
            _ => return Err(format!("unknown NFS metric line {key:?}")),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_stats_and_pads_short_proc4() {
        let s = parse_client(
            "net 70 70 69 45\nrpc 1 2 3\nproc2 18 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\nproc4 3 5 6 7\n",
        )
        .unwrap();
        assert_eq!(s.net, [70, 70, 69, 45]);
        assert_eq!(s.rpc, [1, 2, 3]);
        assert_eq!(s.v2[17], 17);
        assert_eq!(s.v3, [0; 22]);
        assert_eq!(&s.v4[..4], &[5, 6, 7, 0]);
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse_client("net 1 2 3\n").is_err());
        assert!(parse_client("proc2 3 1 2 3\n").is_err(), "too few v2 procedures");
        assert!(parse_client("proc3 23 1\n").is_err(), "count mismatch");
        assert!(parse_client("bogus 1\n").is_err());
        assert!(parse_client("rpc\n").is_err());
        assert!(parse_client("rpc 1 x 3\n").is_err());
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("nfs", &|f| f.starts_with("node_nfs_"));
    }
}
