//! `--web.config.file`: the `web-config.yml` of Prometheus' exporter-toolkit (TLS, basic auth,
//! response headers, request rate limit), read so that a file written for node_exporter works
//! unchanged. Unknown keys are errors naming the file, the key and the reason.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;

/// The file as written: exporter-toolkit's `Config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebConfig {
    /// TLS settings; absent means plain HTTP.
    #[serde(default)]
    pub tls_server_config: Option<RawTls>,
    /// HTTP settings (HTTP/2 switch, extra response headers).
    #[serde(default)]
    pub http_server_config: Option<RawHttp>,
    /// A server-wide request rate limit.
    #[serde(default)]
    pub rate_limit: Option<RawRateLimit>,
    /// User name → bcrypt hash of the password.
    #[serde(default)]
    pub basic_auth_users: Option<BTreeMap<String, String>>,
}

/// `tls_server_config`: exporter-toolkit's `TLSConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Server certificate chain, PEM, inline.
    #[serde(default)]
    pub cert: Option<String>,
    /// Server private key, PEM, inline.
    #[serde(default)]
    pub key: Option<String>,
    /// CA certificates for client certificates, PEM, inline.
    #[serde(default)]
    pub client_ca: Option<String>,
    /// Server certificate chain file (relative to the config file's directory).
    #[serde(default)]
    pub cert_file: Option<String>,
    /// Server private key file.
    #[serde(default)]
    pub key_file: Option<String>,
    /// `NoClientCert`, `RequestClientCert`, `RequireAnyClientCert`, `VerifyClientCertIfGiven`
    /// or `RequireAndVerifyClientCert`.
    #[serde(default)]
    pub client_auth_type: Option<String>,
    /// CA certificates file for client certificates.
    #[serde(default)]
    pub client_ca_file: Option<String>,
    /// Go cipher suite names allowed for TLS 1.2.
    #[serde(default)]
    pub cipher_suites: Option<Vec<String>>,
    /// Key exchange groups (`CurveP256`, `CurveP384`, `CurveP521`, `X25519`).
    #[serde(default)]
    pub curve_preferences: Option<Vec<String>>,
    /// `TLS10` … `TLS13`; default `TLS12`.
    #[serde(default)]
    pub min_version: Option<String>,
    /// `TLS10` … `TLS13`; default `TLS13`.
    #[serde(default)]
    pub max_version: Option<String>,
    /// Server picks the cipher suite by its own order (default true).
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
    /// Client certificate subject alternative names accepted (DNS names and IP addresses).
    #[serde(default)]
    pub client_allowed_sans: Option<Vec<String>>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Offer HTTP/2 (accepted for compatibility; the agent serves HTTP/1.1).
    #[serde(default)]
    pub http2: Option<bool>,
    /// Extra response headers (only the security headers exporter-toolkit allows).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// `rate_limit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Requests allowed at once above the steady rate.
    #[serde(default)]
    pub burst: Option<u32>,
    /// One request per this interval (Go duration, e.g. `100ms`); `0` or absent = no limit.
    #[serde(default)]
    pub interval: Option<String>,
}

/// Headers a web config may add, with their allowed values (empty = any), as exporter-toolkit.
const EXTRA_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A web config error: the file, the key (dotted path) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfigError {
    /// The web config file.
    pub file: PathBuf,
    /// Line in the file, when known.
    pub line: Option<usize>,
    /// Dotted key, when the error belongs to one.
    pub key: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for WebConfigError {}

/// A loaded and validated web config, ready to serve with.
#[derive(Debug)]
pub struct WebConfig {
    /// TLS server settings; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `(burst, interval)` of the request rate limit.
    pub rate_limit: Option<(u32, Duration)>,
    /// Files whose change triggers a reload (the config and the files it names).
    pub files: Vec<PathBuf>,
}

impl WebConfig {
    /// The config in force without `--web.config.file`: plain HTTP, no auth.
    pub fn plain() -> Self {
        Self { tls: None, users: BTreeMap::new(), headers: Vec::new(), rate_limit: None, files: Vec::new() }
    }
}

/// Reads, parses and validates `path`, loading every certificate and key it names.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let err = |key: Option<&str>, reason: String| WebConfigError {
        file: path.to_path_buf(),
        line: None,
        key: key.map(str::to_owned),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(None, format!("reading the file: {e}")))?;
    let raw = parse(&text).map_err(|mut e| {
        e.file = path.to_path_buf();
        e
    })?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut files = vec![path.to_path_buf()];
    let tls = match &raw.tls_server_config {
        Some(t) if crate::tls::enabled(t) => {
            let built = crate::tls::server_config(t, dir, &mut files).map_err(|(k, r)| err(Some(&k), r))?;
            Some(Arc::new(built))
        }
        _ => None,
    };
    let users = raw.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        validate_bcrypt(hash).map_err(|r| err(Some(&format!("basic_auth_users.{user}")), r))?;
    }
    let mut headers = Vec::new();
    if let Some(http) = &raw.http_server_config {
        for (k, v) in http.headers.iter().flatten() {
            let key = format!("http_server_config.headers.{k}");
            let Some((_, allowed)) = EXTRA_HEADERS.iter().find(|(n, _)| n == k) else {
                let names: Vec<&str> = EXTRA_HEADERS.iter().map(|(n, _)| *n).collect();
                return Err(err(
                    Some(&key),
                    format!("HTTP header {k:?} can not be configured; allowed: {}", names.join(", ")),
                ));
            };
            if !allowed.is_empty() && !allowed.contains(&v.as_str()) {
                return Err(err(Some(&key), format!("invalid value {v:?}; expected one of {allowed:?}")));
            }
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| err(Some(&key), e.to_string()))?;
            let value = HeaderValue::from_str(v).map_err(|e| err(Some(&key), format!("invalid header value: {e}")))?;
            headers.push((name, value));
        }
    }
    let rate_limit = match &raw.rate_limit {
        Some(RawRateLimit { burst, interval: Some(i) }) => {
            let d = parse_duration(i).map_err(|r| err(Some("rate_limit.interval"), r))?;
            (!d.is_zero()).then(|| (burst.unwrap_or(0), d))
        }
        _ => None,
    };
    Ok(WebConfig { tls, users, headers, rate_limit, files })
}

/// Parses the YAML text (no file access); errors carry line and key but no file name.
pub fn parse(text: &str) -> Result<RawWebConfig, WebConfigError> {
    if text.trim().is_empty() {
        return Ok(RawWebConfig::default());
    }
    serde_saphyr::from_str::<RawWebConfig>(text).map_err(|e| {
        let line = e.location().map(|l| l.line() as usize).filter(|l| *l > 0);
        let rendered = e.to_string();
        // The library's rendering adds a source snippet after the first line; the first line
        // is the message.
        let mut reason = rendered.lines().next().unwrap_or("invalid YAML").trim();
        reason = reason.strip_prefix("error:").unwrap_or(reason).trim();
        // Drop the library's own "line N column M:" prefix; the line is reported separately.
        if reason.starts_with("line ")
            && let Some((_, rest)) = reason.split_once(": ")
        {
            reason = rest;
        }
        let key = line.and_then(|l| key_at_line(text, l));
        WebConfigError { file: PathBuf::new(), line, key, reason: reason.to_owned() }
    })
}

/// The dotted key defined on 1-based line `line` of a block-style YAML text: its own name
/// plus the names of the less-indented keys above it.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let name_of = |l: &str| -> Option<(usize, String)> {
        let indent = l.len() - l.trim_start().len();
        let t = l.trim_start().trim_start_matches("- ");
        let (k, _) = t.split_once(':')?;
        (!k.is_empty() && !k.starts_with('#')).then(|| (indent, k.trim().trim_matches(['"', '\'']).to_owned()))
    };
    let (mut indent, name) = name_of(lines.get(line.checked_sub(1)?)?)?;
    let mut parts = vec![name];
    for l in lines[..line - 1].iter().rev() {
        if let Some((i, k)) = name_of(l)
            && i < indent
        {
            parts.push(k);
            indent = i;
        }
    }
    parts.reverse();
    Some(parts.join("."))
}

/// Checks that `hash` is a bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, cost 4–31).
fn validate_bcrypt(hash: &str) -> Result<(), String> {
    // The error leaves the value out: a non-hash here is often a password pasted by mistake.
    hash.parse::<bcrypt::HashParts>().map(|_| ()).map_err(|_| {
        "not a bcrypt hash (expected $2a$, $2b$ or $2y$, a two-digit cost, then 53 characters of \
         salt and hash; create one with `htpasswd -nBC 10 USER`)"
            .to_owned()
    })
}

/// Parses a Go duration string (`1h2m3s`, `500ms`, `1.5s`, `0`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (expected e.g. 100ms, 1s, 1m)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// What identifies a version of the watched files: modification time, size and inode of each
/// (a renamed-over file or a swapped symlink changes the inode).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<Option<(SystemTime, u64, u64)>>);

impl Fingerprint {
    /// The current fingerprint of `files`.
    pub fn of(files: &[PathBuf]) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        Self(
            files
                .iter()
                .map(|f| {
                    std::fs::metadata(f)
                        .ok()
                        .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), m.ino()))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_toolkit_example_parses() {
        let raw = parse(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n",
        )
        .unwrap();
        let t = raw.tls_server_config.unwrap();
        assert_eq!(t.cert_file.as_deref(), Some("server.crt"));
        assert_eq!(t.client_auth_type.as_deref(), Some("RequireAndVerifyClientCert"));
        assert_eq!(raw.basic_auth_users.unwrap().len(), 1);
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = parse("tls_server_config:\n  cert_file: a\n  cert_flie: b\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key.as_deref(), Some("tls_server_config.cert_flie"), "{e}");
        assert!(e.reason.starts_with("unknown field `cert_flie`, expected one of"), "{e}");
    }

    #[test]
    fn empty_file_is_plain_http() {
        assert!(parse("").unwrap().tls_server_config.is_none());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5 seconds").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn non_bcrypt_hash_is_refused_with_the_user_key() {
        let dir = std::env::temp_dir().join(format!("osprey-webcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("web.yml");
        std::fs::write(&f, "basic_auth_users:\n  bob: plaintext\n").unwrap();
        let e = load(&f).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("basic_auth_users.bob"));
        assert!(e.reason.contains("not a bcrypt hash"), "{e}");
        assert!(!e.to_string().contains("plaintext"), "the secret must not be echoed: {e}");
        std::fs::write(&f, "http_server_config:\n  headers:\n    X-Frame-Options: allow\n").unwrap();
        assert!(load(&f).unwrap_err().to_string().contains("X-Frame-Options"));
        std::fs::write(&f, "http_server_config:\n  headers:\n    Server: x\n").unwrap();
        assert!(load(&f).unwrap_err().reason.contains("can not be configured"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
