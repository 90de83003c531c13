//! Helpers shared by the collector's discovery, differential and notification tests: a real
//! `dnsmasq` serving fixed records, and the `/api/v1/targets` JSON read as label maps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{eventually, http_get, peer};

/// A peer Debian installs in /usr/sbin (not on every user's PATH), else one on PATH.
pub fn sbin_peer(name: &str) -> Option<PathBuf> {
    let p = Path::new("/usr/sbin").join(name);
    if p.is_file() { Some(p) } else { peer(name) }
}

/// A dnsmasq serving `records` (its `--host-record=`/`--srv-host=` options) on `addr`:`port`
/// over UDP and TCP, and nothing else; killed on drop.
pub struct Dnsmasq(Child);

impl Dnsmasq {
    /// Starts it and waits until its TCP port answers.
    pub fn start(bin: &Path, addr: &str, port: u16, records: &[String]) -> Self {
        let child = Command::new(bin)
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--bind-interfaces",
                &format!("--listen-address={addr}"),
                &format!("--port={port}"),
            ])
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dnsmasq");
        let dns = Self(child);
        let ok = eventually(Duration::from_secs(10), || std::net::TcpStream::connect((addr, port)).ok());
        assert!(ok.is_some(), "dnsmasq did not start on {addr}:{port}");
        dns
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Label names to values.
pub type LabelMap = BTreeMap<String, String>;

/// `/api/v1/targets` of the server on `port`, when it answers 200 with JSON.
pub fn targets_json(port: u16) -> Option<Value> {
    let r = http_get(port, "/api/v1/targets").ok().filter(|r| r.status == 200)?;
    serde_json::from_str(&r.text()).ok()
}

/// A JSON object of strings as a label map (empty for anything else).
pub fn labels_of(v: &Value) -> LabelMap {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}
