//! `probe`: checks local services from the host's side, configured by `[[probe]]` entries in
//! the agent's config file (opt-in: enabled when entries exist):
//!
//! ```toml
//! [[probe]]
//! name = "web"                      # the `name` label; unique
//! kind = "http"                     # tcp | http | unix
//! target = "https://127.0.0.1:8443/healthz"
//! timeout = "2s"                    # default 5s; never more than --collector.timeout
//! expected_status = 200             # http only; default: any 2xx
//! ca_file = "/etc/ssl/local-ca.pem" # https only; default: the system's roots
//! ```
//!
//! `tcp` connects to `host:port`, `unix` connects to a stream socket path, `http` sends one
//! `GET` (HTTP/1.1, `Connection: close`; HTTPS via rustls) and reads the status line. All
//! probes of a scrape run concurrently; each is cut off at its timeout, and every timeout is
//! capped below the collector's own, so a hanging service never fails the scrape.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::prelude::*;

/// Default per-probe timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bytes read looking for the status line.
const MAX_STATUS_LINE: usize = 8192;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "probe",
    default_enabled: false,
    help: "Checks local services (TCP, HTTP(S), unix socket) configured by [[probe]] entries in the config file.",
    flags: &[],
    build: |ctx| {
        let collector_timeout =
            crate::cli::parse_duration(ctx.str("collector.timeout")).unwrap_or(Duration::from_secs(10));
        let cap = collector_timeout.mul_f64(0.9);
        let probes = ctx
            .section::<Vec<Probe>>("probe")
            .map(|p| p.iter().map(|p| Probe { timeout: p.timeout.min(cap), ..p.clone() }).collect())
            .unwrap_or_default();
        Ok(Box::new(Probes { probes }))
    },
};

/// One `[[probe]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeConfig {
    /// The `name` label; unique among probes.
    name: String,
    /// What to check.
    kind: Kind,
    /// `host:port` (tcp), a URL (http), or a socket path (unix).
    target: String,
    /// A duration like `2s` or `500ms`; default 5s, capped below `--collector.timeout`.
    timeout: Option<String>,
    /// HTTP only: the status that counts as success (default: any 2xx).
    expected_status: Option<u16>,
    /// HTTPS only: PEM file with the CA certificates to trust instead of the system's.
    ca_file: Option<PathBuf>,
}

/// A probe kind.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Tcp,
    Http,
    Unix,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Unix => "unix",
        }
    }
}

/// A validated probe.
#[derive(Clone)]
struct Probe {
    name: String,
    kind: Kind,
    timeout: Duration,
    how: How,
}

/// What a probe does, resolved at start-up.
#[derive(Clone)]
enum How {
    Tcp(String),
    Unix(PathBuf),
    Http { url: Url, expected: Option<u16>, tls: Option<Arc<rustls::ClientConfig>> },
}

/// The parts of an `http(s)://host[:port]/path` URL a GET needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Url {
    https: bool,
    /// Host as written (brackets kept for IPv6), for `Host:` and connecting.
    host: String,
    port: u16,
    /// Path and query, at least `/`.
    path: String,
}

impl Url {
    fn parse(s: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else {
            return Err("expected an http:// or https:// URL".into());
        };
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        if authority.is_empty() || authority.contains('@') {
            return Err("expected a host (without user info)".into());
        }
        let default = if https { 443 } else { 80 };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().map_err(|_| format!("invalid port {p:?}"))?),
            _ => (authority, default),
        };
        if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err("the path must not contain spaces or control characters".into());
        }
        Ok(Self { https, host: host.to_owned(), port, path: path.to_owned() })
    }

    /// The host without IPv6 brackets (for connecting and TLS server names).
    fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// The config file's `[[probe]]` section, validated when the file is read (timeouts are
/// capped below `--collector.timeout` when the collector is built).
pub fn parse_section(
    text: &str,
    origin: &str,
    v: &toml::Spanned<toml::de::DeValue<'_>>,
) -> Result<crate::catalog::Value, crate::cli::ConfigError> {
    let probes = load(text, origin, v, Duration::MAX)?;
    Ok(crate::catalog::Value::Section(crate::catalog::Section(Arc::new(probes))))
}

/// Reads and validates the `[[probe]]` entries; errors carry file and line.
fn load(
    text: &str,
    origin: &str,
    v: &toml::Spanned<toml::de::DeValue<'_>>,
    cap: Duration,
) -> Result<Vec<Probe>, crate::cli::ConfigError> {
    let mut probes: Vec<Probe> = Vec::new();
    for (line, p) in crate::config_file::table_array::<ProbeConfig>(text, origin, "probe", v)? {
        let at = |msg: String| crate::cli::ConfigError(format!("{origin}:{line}: [[probe]] {:?}: {msg}", p.name));
        if p.name.is_empty() {
            return Err(at("`name` must not be empty".into()));
        }
        if probes.iter().any(|q| q.name == p.name) {
            return Err(at("duplicate probe name".into()));
        }
        let timeout = match &p.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => crate::cli::parse_duration(t)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| at(format!("`timeout`: expected a duration like 2s or 500ms, got {t:?}")))?,
        }
        .min(cap);
        if p.kind != Kind::Http && (p.expected_status.is_some() || p.ca_file.is_some()) {
            return Err(at("`expected_status` and `ca_file` apply to kind = \"http\" only".into()));
        }
        let how = match p.kind {
            Kind::Tcp => {
                if p.target.rsplit_once(':').is_none_or(|(h, port)| h.is_empty() || port.parse::<u16>().is_err()) {
                    return Err(at(format!("`target`: expected host:port, got {:?}", p.target)));
                }
                How::Tcp(p.target.clone())
            }
            Kind::Unix => How::Unix(PathBuf::from(&p.target)),
            Kind::Http => {
                let url = Url::parse(&p.target).map_err(|e| at(format!("`target`: {e}")))?;
                if p.ca_file.is_some() && !url.https {
                    return Err(at("`ca_file` needs an https:// target".into()));
                }
                let tls = if url.https { Some(tls_config(p.ca_file.as_deref()).map_err(at)?) } else { None };
                How::Http { url, expected: p.expected_status, tls }
            }
        };
        probes.push(Probe { name: p.name, kind: p.kind, timeout, how });
    }
    Ok(probes)
}

/// A rustls client config trusting `ca_file`'s certificates, or the system's roots.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        use rustls::pki_types::pem::PemObject as _;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("`ca_file` {}: {e}", path.display()))?;
        for c in certs {
            let c = c.map_err(|e| format!("`ca_file` {}: {e}", path.display()))?;
            roots.add(c).map_err(|e| format!("`ca_file` {}: {e}", path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("`ca_file` {}: no certificates found", path.display()));
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err("no system CA certificates found; set `ca_file`".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The collector.
struct Probes {
    probes: Vec<Probe>,
}

/// One probe's outcome.
struct Outcome {
    success: bool,
    duration: Duration,
    status: Option<u16>,
}

impl Collector for Probes {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let run = async { futures_util::future::join_all(self.probes.iter().map(run_probe)).await };
        let outcomes = match tokio::runtime::Handle::try_current() {
            Ok(h) => h.block_on(run),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CollectError::Other(format!("starting a runtime: {e}")))?
                .block_on(run),
        };
        for (p, o) in self.probes.iter().zip(outcomes) {
            let labels = [("name", p.name.as_str()), ("kind", p.kind.label())];
            out.gauge_with(
                "osprey_probe_success",
                "Whether the probe succeeded (1) or failed (0).",
                &labels,
                if o.success { 1.0 } else { 0.0 },
            );
            out.gauge_with(
                "osprey_probe_duration_seconds",
                "How long the probe took, in seconds (its timeout when it timed out).",
                &labels,
                o.duration.as_secs_f64(),
            );
            if p.kind == Kind::Http {
                out.gauge_with(
                    "osprey_probe_http_status_code",
                    "HTTP status code of the probe's response; 0 when none arrived.",
                    &[("name", p.name.as_str())],
                    f64::from(o.status.unwrap_or(0)),
                );
            }
        }
        Ok(())
    }
}

async fn run_probe(p: &Probe) -> Outcome {
    let start = Instant::now();
    let res = tokio::time::timeout(p.timeout, attempt(p)).await;
    let duration = start.elapsed();
    match res {
        Ok(Ok(status)) => {
            let success = match (&p.how, status) {
                (How::Http { expected: Some(want), .. }, Some(got)) => got == *want,
                (How::Http { .. }, Some(got)) => (200..300).contains(&got),
                _ => true,
            };
            Outcome { success, duration, status }
        }
        Ok(Err(e)) => {
            tracing::debug!(probe = %p.name, error = %e, "probe failed");
            Outcome { success: false, duration, status: None }
        }
        Err(_) => {
            tracing::debug!(probe = %p.name, "probe timed out");
            Outcome { success: false, duration, status: None }
        }
    }
}

/// Runs the check; `Some(status)` for HTTP.
async fn attempt(p: &Probe) -> std::io::Result<Option<u16>> {
    match &p.how {
        How::Tcp(target) => {
            tokio::net::TcpStream::connect(target.as_str()).await?;
            Ok(None)
        }
        How::Unix(path) => {
            tokio::net::UnixStream::connect(path).await?;
            Ok(None)
        }
        How::Http { url, tls, .. } => {
            let tcp = tokio::net::TcpStream::connect((url.bare_host(), url.port)).await?;
            let _ = tcp.set_nodelay(true);
            let status = if let Some(cfg) = tls {
                let name = rustls::pki_types::ServerName::try_from(url.bare_host().to_owned())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(cfg)).connect(name, tcp).await?;
                http_get(stream, url).await?
            } else {
                http_get(tcp, url).await?
            };
            Ok(Some(status))
        }
    }
}

/// Sends one GET and returns the status code of the response.
async fn http_get<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, url: &Url) -> std::io::Result<u16> {
    let default_port = if url.https { 443 } else { 80 };
    let host = if url.port == default_port { url.host.clone() } else { format!("{}:{}", url.host, url.port) };
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: osprey-agent/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        env!("CARGO_PKG_VERSION")
    );
    s.write_all(req.as_bytes()).await?;
    s.flush().await?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        if buf.len() >= MAX_STATUS_LINE {
            return Err(std::io::Error::other("no HTTP status line in the first 8 KiB"));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a status line",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf).ok_or_else(|| std::io::Error::other("malformed HTTP status line"))
}

/// The code of `HTTP/1.x NNN reason`.
fn parse_status_line(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten().filter(|c| (100..600).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probes of a whole config text, timeouts capped at 0.9 × `collector_timeout`.
    fn load(text: &str, collector_timeout: Duration) -> Result<Vec<Probe>, String> {
        let doc = toml::de::DeTable::parse(text).unwrap();
        let v = doc.get_ref().get("probe").unwrap();
        super::load(text, "agent.toml", v, collector_timeout.mul_f64(0.9)).map_err(|e| e.0)
    }

    #[test]
    fn urls_parse() {
        let u = Url::parse("https://example.org:8443/a?b=c").unwrap();
        assert_eq!(u, Url { https: true, host: "example.org".into(), port: 8443, path: "/a?b=c".into() });
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!((u.bare_host(), u.port), ("::1", 80));
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("http://x:99999/").is_err());
        assert!(Url::parse("http://u@x/").is_err());
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 500\r\n"), Some(500));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 x\r\n"), None);
    }

    #[test]
    fn config_errors_name_file_line_and_reason() {
        let ten = Duration::from_secs(10);
        let e =
            load("[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"x:1\"\ntimout = \"1s\"\n", ten).err().unwrap();
        assert!(e.starts_with("agent.toml:") && e.contains("unknown field `timout`"), "{e}");
        let two = "[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"x:1\"\n\n[[probe]]\nname = \"a\"\nkind = \"unix\"\ntarget = \"/s\"\n";
        let e = load(two, ten).err().unwrap();
        assert_eq!(e, "agent.toml:6: [[probe]] \"a\": duplicate probe name");
        let e = load("[[probe]]\nname = \"a\"\nkind = \"udp\"\ntarget = \"x:1\"\n", ten).err().unwrap();
        assert!(e.starts_with("agent.toml:3:") && e.contains("udp"), "{e}");
        let e = load("[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"nope\"\n", ten).err().unwrap();
        assert!(e.contains("expected host:port"), "{e}");
        let e = load("[[probe]]\nname = \"a\"\nkind = \"http\"\ntarget = \"http://x/\"\ntimeout = \"soon\"\n", ten)
            .err()
            .unwrap();
        assert!(e.contains("`timeout`"), "{e}");
    }

    #[test]
    fn timeouts_are_capped_below_the_collector_timeout() {
        let p = load(
            "[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"x:1\"\ntimeout = \"1m\"\n",
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(p[0].timeout, Duration::from_millis(1800));
    }
}
