//! `dns_sd_configs`: SRV, A, AAAA and MX lookups every `refresh_interval`, one target group per
//! name (source = the name), with Prometheus's `__meta_dns_*` labels. An optional
//! `nameservers` list (an Osprey extension) replaces the system resolver.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use serde::{Deserialize, Serialize};

use crate::duration::PromDuration;
use crate::manager::{Metrics, ProviderTx};
use crate::populate::ADDRESS_LABEL;
use crate::{Labels, TargetGroup};

/// `__meta_dns_name`: the name that was queried.
pub const DNS_NAME_LABEL: &str = "__meta_dns_name";
/// `__meta_dns_srv_record_target`: the SRV record's target, with its trailing dot.
pub const DNS_SRV_TARGET_LABEL: &str = "__meta_dns_srv_record_target";
/// `__meta_dns_srv_record_port`: the SRV record's port.
pub const DNS_SRV_PORT_LABEL: &str = "__meta_dns_srv_record_port";
/// `__meta_dns_mx_record_target`: the MX record's exchange, with its trailing dot.
pub const DNS_MX_TARGET_LABEL: &str = "__meta_dns_mx_record_target";

fn default_type() -> String {
    "SRV".into()
}

fn is_srv(s: &str) -> bool {
    s == "SRV"
}

fn default_refresh() -> PromDuration {
    PromDuration::from_secs(30)
}

fn is_default_refresh(d: &PromDuration) -> bool {
    *d == default_refresh()
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(p: &u16) -> bool {
    *p == 0
}

/// One `dns_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    /// Names to query.
    pub names: Vec<String>,
    /// Record type: `SRV` (default), `A`, `AAAA` or `MX`.
    #[serde(default = "default_type", rename = "type", skip_serializing_if = "is_srv")]
    pub record_type: String,
    /// Port for A, AAAA and MX targets (SRV records carry their own).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub port: u16,
    /// How often to query (default 30s).
    #[serde(default = "default_refresh", skip_serializing_if = "is_default_refresh")]
    pub refresh_interval: PromDuration,
    /// Name servers (`ip` or `ip:port`) to ask instead of the system resolver (Osprey extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
}

impl DnsSdConfig {
    /// Checks the config as Prometheus does (plus the nameserver addresses).
    pub fn validate(&self) -> Result<(), String> {
        if self.names.is_empty() {
            return Err("DNS-SD config must contain at least one SRV record name".into());
        }
        match self.record_type.as_str() {
            "SRV" => {}
            "A" | "AAAA" | "MX" => {
                if self.port == 0 {
                    return Err("a port is required in DNS-SD configs for all record types except SRV".into());
                }
            }
            other => return Err(format!("invalid DNS-SD records type {other}")),
        }
        if self.refresh_interval.0.is_zero() {
            return Err("DNS-SD refresh_interval must be greater than 0".into());
        }
        for ns in &self.nameservers {
            parse_nameserver(ns)?;
        }
        Ok(())
    }
}

/// `ip`, `ip:port` or `[v6]:port`; port 53 by default.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("invalid nameserver {s:?}: expected an IP address, optionally with :port"))
}

fn resolver(cfg: &DnsSdConfig) -> Result<TokioResolver, String> {
    let mut builder = if cfg.nameservers.is_empty() {
        Resolver::builder_tokio().map_err(|e| format!("reading the system resolver configuration: {e}"))?
    } else {
        let servers = cfg
            .nameservers
            .iter()
            .map(|s| {
                let addr = parse_nameserver(s)?;
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                Ok(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), TokioRuntimeProvider::default())
    };
    let opts = builder.options_mut();
    // Every refresh must ask the server: no cache, so a changed record shows at the next refresh.
    opts.cache_size = 0;
    opts.timeout = Duration::from_secs(5).min(cfg.refresh_interval.0.max(Duration::from_millis(500)));
    opts.attempts = 2;
    builder.build().map_err(|e| format!("building the DNS resolver: {e}"))
}

/// `host:port`, with brackets for IPv6 (Go's `net.JoinHostPort`).
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Looks up one name: a missing name or an empty answer gives an empty group (its targets go
/// away, as in Prometheus); a transport failure is an error (the caller keeps the last group).
async fn lookup_one(res: &TokioResolver, cfg: &DnsSdConfig, name: &str) -> Result<TargetGroup, String> {
    let rtype = match cfg.record_type.as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        "MX" => RecordType::MX,
        _ => RecordType::SRV,
    };
    let mut group = TargetGroup { source: name.to_owned(), ..TargetGroup::default() };
    let lookup = match res.lookup(name, rtype).await {
        Ok(l) => l,
        Err(NetError::Dns(DnsError::NoRecordsFound(_))) => return Ok(group),
        Err(e) => return Err(format!("looking up {name} ({}): {e}", cfg.record_type)),
    };
    for rec in lookup.answers() {
        let (addr, srv_target, srv_port, mx_target) = match &rec.data {
            RData::SRV(srv) => {
                let t = srv.target.to_string();
                (join_host_port(t.trim_end_matches('.'), srv.port), t, srv.port.to_string(), String::new())
            }
            RData::MX(mx) => {
                let t = mx.exchange.to_string();
                (join_host_port(t.trim_end_matches('.'), cfg.port), String::new(), String::new(), t)
            }
            RData::A(a) => (join_host_port(&a.0.to_string(), cfg.port), String::new(), String::new(), String::new()),
            RData::AAAA(a) => (join_host_port(&a.0.to_string(), cfg.port), String::new(), String::new(), String::new()),
            // CNAMEs come along with A/AAAA answers.
            _ => continue,
        };
        group.targets.push(Labels::from([
            (ADDRESS_LABEL.to_owned(), addr),
            (DNS_NAME_LABEL.to_owned(), name.to_owned()),
            (DNS_SRV_TARGET_LABEL.to_owned(), srv_target),
            (DNS_SRV_PORT_LABEL.to_owned(), srv_port),
            (DNS_MX_TARGET_LABEL.to_owned(), mx_target),
        ]));
    }
    Ok(group)
}

/// Runs the provider: queries every name now and every `refresh_interval`; a failing name keeps
/// its last group.
pub(crate) async fn run(cfg: DnsSdConfig, tx: ProviderTx, metrics: Arc<Metrics>) {
    let res = match resolver(&cfg) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "dns_sd: no resolver");
            metrics.dns_lookup_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
    };
    let mut last: Vec<Option<TargetGroup>> = vec![None; cfg.names.len()];
    let mut tick = tokio::time::interval(cfg.refresh_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let results = futures_join(&res, &cfg).await;
        for (slot, r) in last.iter_mut().zip(results) {
            match r {
                Ok(g) => *slot = Some(g),
                Err(e) => {
                    metrics.dns_lookup_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, "dns_sd: lookup failed; keeping the last targets");
                }
            }
        }
        tx.send(last.iter().flatten().cloned().collect());
    }
}

/// Queries all names concurrently.
async fn futures_join(res: &TokioResolver, cfg: &DnsSdConfig) -> Vec<Result<TargetGroup, String>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, name) in cfg.names.iter().enumerate() {
        let (res, cfg, name) = (res.clone(), cfg.clone(), name.clone());
        set.spawn(async move { (i, lookup_one(&res, &cfg, &name).await) });
    }
    let mut out: Vec<Result<TargetGroup, String>> =
        (0..cfg.names.len()).map(|_| Err("lookup task failed".to_owned())).collect();
    while let Some(r) = set.join_next().await {
        if let Ok((i, v)) = r {
            out[i] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let mut c = DnsSdConfig {
            names: vec!["_x._tcp.example".into()],
            record_type: "SRV".into(),
            port: 0,
            refresh_interval: default_refresh(),
            nameservers: vec![],
        };
        assert!(c.validate().is_ok());
        c.record_type = "A".into();
        assert!(c.validate().expect_err("port").contains("port is required"));
        c.port = 9100;
        assert!(c.validate().is_ok());
        c.record_type = "TXT".into();
        assert!(c.validate().expect_err("type").contains("invalid DNS-SD records type TXT"));
        c.record_type = "A".into();
        c.nameservers = vec!["127.0.0.1:5353".into(), "::1".into(), "[::1]:53".into()];
        assert!(c.validate().is_ok());
        c.nameservers = vec!["dns.example".into()];
        assert!(c.validate().expect_err("ns").contains("invalid nameserver"));
        c.names.clear();
        assert!(c.validate().is_err());
    }

    #[test]
    fn host_port_joins_like_go() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
        assert_eq!(join_host_port("a.example", 1), "a.example:1");
    }
}
