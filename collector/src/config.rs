//! The collector's TOML configuration, mirroring `prometheus.yml`: `[global]`,
//! `[[scrape_configs]]` (with static/file/DNS/HTTP SD, relabeling, auth, TLS and limits),
//! `rule_files`, `[alerting]` and `[notify]`. Unknown keys are errors; every error names the file, the line
//! and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use osprey_discovery::relabel::is_valid_label_name;
use osprey_discovery::{DnsSdConfig, FileSdConfig, HttpSdConfig, Labels, PromDuration, RelabelConfig, StaticConfig};
use serde::{Deserialize, Serialize};

use crate::bytesize::ByteSize;
pub use crate::config_alerting::{AlertingConfig, AlertmanagerConfig, NotifyConfig};
use crate::locate::{Seg, line_of_key, line_of_offset};

/// The configuration used when no `--config` is given: scrape ourselves and a local agent.
pub const DEFAULT_CONFIG: &str = r#"# Embedded default: the collector scrapes itself and an osprey-agent on this host.
[global]
scrape_interval = "15s"

[[scrape_configs]]
job_name = "osprey-collector"
static_configs = [{ targets = ["localhost:9090"] }]

[[scrape_configs]]
job_name = "node"
static_configs = [{ targets = ["localhost:9100"] }]
"#;

/// A configuration error with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<embedded>`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path (`scrape_configs[1].scrape_timeout`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn d_1m() -> PromDuration {
    PromDuration::from_secs(60)
}
pub(crate) fn d_10s() -> PromDuration {
    PromDuration::from_secs(10)
}
fn yes() -> bool {
    true
}
fn metrics_path() -> String {
    "/metrics".into()
}
pub(crate) fn http() -> String {
    "http".into()
}

/// `[global]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// Default scrape interval (1m).
    #[serde(default = "d_1m")]
    pub scrape_interval: PromDuration,
    /// Default scrape timeout (10s, capped at the interval when not set).
    #[serde(default)]
    pub scrape_timeout: Option<PromDuration>,
    /// Rule evaluation interval (1m).
    #[serde(default = "d_1m")]
    pub evaluation_interval: PromDuration,
    /// Labels added to alerts and remote writes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_labels: Labels,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: d_1m(),
            scrape_timeout: None,
            evaluation_interval: d_1m(),
            external_labels: Labels::new(),
        }
    }
}

/// `basic_auth`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password (never logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// File holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .finish_non_exhaustive()
    }
}

fn bearer() -> String {
    "Bearer".into()
}

/// `authorization` (an `Authorization: <type> <credentials>` header).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Scheme (default `Bearer`).
    #[serde(default = "bearer", rename = "type")]
    pub auth_type: String,
    /// The credentials (never logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// File holding the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization").field("type", &self.auth_type).finish_non_exhaustive()
    }
}

/// `tls_config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA bundle (PEM) to verify the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Server name for SNI and verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Skip certificate verification.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// One `[[scrape_configs]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label and the job's identity.
    pub job_name: String,
    /// Keep the target's labels on conflict instead of prefixing them with `exported_`.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use the timestamps the target exposes (default true).
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    /// Scrape interval (defaults to the global one).
    #[serde(default)]
    pub scrape_interval: Option<PromDuration>,
    /// Scrape timeout (defaults to the global one, capped at the interval).
    #[serde(default)]
    pub scrape_timeout: Option<PromDuration>,
    /// URL path (default `/metrics`).
    #[serde(default = "metrics_path")]
    pub metrics_path: String,
    /// `http` (default) or `https`.
    #[serde(default = "http")]
    pub scheme: String,
    /// URL query parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header (bearer token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// TLS settings for https targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Static target lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    /// File-based discovery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// DNS-based discovery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_sd_configs: Vec<DnsSdConfig>,
    /// HTTP-based discovery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// Target relabeling.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Series relabeling after each scrape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Most samples per scrape (0 = no limit).
    #[serde(default)]
    pub sample_limit: u64,
    /// Most labels per series (0 = no limit).
    #[serde(default)]
    pub label_limit: u64,
    /// Longest label name (0 = no limit).
    #[serde(default)]
    pub label_name_length_limit: u64,
    /// Longest label value (0 = no limit).
    #[serde(default)]
    pub label_value_length_limit: u64,
    /// Largest uncompressed body (`"10MB"`; 0 = no limit).
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// Most targets after relabeling (0 = no limit).
    #[serde(default)]
    pub target_limit: u64,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[global]`.
    #[serde(default)]
    pub global: GlobalConfig,
    /// Prometheus rule files (globs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    /// `[alerting]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingConfig>,
    /// `[notify]`: built-in routes and receivers (Slack, Telegram, webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyConfig>,
    /// `[[scrape_configs]]`.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
}

impl Config {
    /// Reads, parses and validates `path`; relative paths in it are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("reading: {e}"),
        })?;
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self::parse(&text, &file, &dir)
    }

    /// Parses and validates `text`; `file` names it in errors, `dir` anchors relative paths.
    pub fn parse(text: &str, file: &str, dir: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(text, s.start));
            let message = e.message().trim().to_owned();
            let named =
                message.strip_prefix("unknown field `").and_then(|r| r.split_once('`')).map(|(k, _)| k.to_owned());
            let key = named.or_else(|| line.and_then(|l| key_on_line(text, l)));
            ConfigError { file: file.to_owned(), line, key, message }
        })?;
        cfg.finish(dir).map_err(|(path, message)| {
            let key = path.iter().map(ToString::to_string).collect::<Vec<_>>().join(".").replace(".[", "[");
            ConfigError { file: file.to_owned(), line: line_of_key(text, &path), key: Some(key), message }
        })?;
        Ok(cfg)
    }

    /// Applies defaults and Prometheus's validation rules.
    fn finish(&mut self, dir: &Path) -> Result<(), (Vec<Seg>, String)> {
        let g = &mut self.global;
        let err = |p: Vec<Seg>, m: String| Err((p, m));
        match g.scrape_timeout {
            Some(t) if t > g.scrape_interval => {
                return err(
                    vec![Seg::k("global"), Seg::k("scrape_timeout")],
                    "global scrape timeout greater than scrape interval".into(),
                );
            }
            None => g.scrape_timeout = Some(d_10s().min(g.scrape_interval)),
            Some(_) => {}
        }
        for k in g.external_labels.keys() {
            if !is_valid_label_name(k) {
                return err(
                    vec![Seg::k("global"), Seg::k("external_labels"), Seg::k(k)],
                    format!("{k:?} is not a valid label name"),
                );
            }
        }
        let global_iv = g.scrape_interval;
        let global_to = g.scrape_timeout.unwrap_or_else(d_10s);
        for f in &mut self.rule_files {
            if let Err(e) = glob::Pattern::new(f) {
                return err(vec![Seg::k("rule_files")], format!("invalid rule file path {f:?}: {e}"));
            }
            if Path::new(f).is_relative() {
                *f = dir.join(&*f).to_string_lossy().into_owned();
            }
        }
        let mut seen = BTreeMap::new();
        for (i, sc) in self.scrape_configs.iter_mut().enumerate() {
            let at = |k: &str| vec![Seg::k("scrape_configs"), Seg::i(i), Seg::k(k)];
            if sc.job_name.is_empty() {
                return err(at("job_name"), "job_name is empty".into());
            }
            if let Some(prev) = seen.insert(sc.job_name.clone(), i) {
                return err(
                    at("job_name"),
                    format!(
                        "found multiple scrape configs with job name {:?} (also scrape_configs[{prev}])",
                        sc.job_name
                    ),
                );
            }
            let iv = *sc.scrape_interval.get_or_insert(global_iv);
            if iv.0.is_zero() {
                return err(at("scrape_interval"), "scrape interval must be greater than 0".into());
            }
            match sc.scrape_timeout {
                Some(t) if t > iv => {
                    return err(
                        at("scrape_timeout"),
                        format!(
                            "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                            sc.job_name
                        ),
                    );
                }
                Some(t) if t.0.is_zero() => {
                    return err(at("scrape_timeout"), "scrape timeout must be greater than 0".into());
                }
                Some(_) => {}
                None => sc.scrape_timeout = Some(global_to.min(iv)),
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                return err(at("scheme"), format!("invalid scheme {:?}: expected \"http\" or \"https\"", sc.scheme));
            }
            if !sc.metrics_path.starts_with('/') {
                return err(at("metrics_path"), format!("metrics_path {:?} must start with '/'", sc.metrics_path));
            }
            check_auth(sc).map_err(|(k, m)| (at(k), m))?;
            for (j, s) in sc.static_configs.iter().enumerate() {
                s.to_group(String::new())
                    .map_err(|m| (vec![Seg::k("scrape_configs"), Seg::i(i), Seg::k("static_configs"), Seg::i(j)], m))?;
            }
            let sub = |k: &str, j: usize| vec![Seg::k("scrape_configs"), Seg::i(i), Seg::k(k), Seg::i(j)];
            for (j, f) in sc.file_sd_configs.iter_mut().enumerate() {
                f.validate().map_err(|m| (sub("file_sd_configs", j), m))?;
                f.set_directory(dir);
            }
            for (j, d) in sc.dns_sd_configs.iter().enumerate() {
                d.validate().map_err(|m| (sub("dns_sd_configs", j), m))?;
            }
            for (j, h) in sc.http_sd_configs.iter().enumerate() {
                h.validate().map_err(|m| (sub("http_sd_configs", j), m))?;
            }
            for (j, r) in sc.relabel_configs.iter().enumerate() {
                r.validate().map_err(|m| (sub("relabel_configs", j), m))?;
            }
            for (j, r) in sc.metric_relabel_configs.iter().enumerate() {
                r.validate().map_err(|m| (sub("metric_relabel_configs", j), m))?;
            }
            resolve_files(sc, dir);
        }
        if let Some(a) = &mut self.alerting {
            a.finish(dir)?;
        }
        if let Some(n) = &mut self.notify {
            n.finish(dir)?;
        }
        Ok(())
    }
}

/// The credentials a scrape sends, with secret files read (and trimmed, as Prometheus does).
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No authentication.
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: <scheme> <credentials>`.
    Header {
        /// The scheme (`Bearer`).
        scheme: String,
        /// The credentials.
        credentials: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <secret>)"),
            Self::Header { scheme, .. } => write!(f, "Header({scheme}, <secret>)"),
        }
    }
}

pub(crate) fn read_secret(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map(|s| s.trim().to_owned()).map_err(|e| format!("reading {}: {e}", p.display()))
}

impl ScrapeConfig {
    /// The credentials to send; reads `password_file` / `credentials_file` now (call per scrape
    /// or on reload to follow rotated secrets).
    pub fn credentials(&self) -> Result<Credentials, String> {
        if let Some(b) = &self.basic_auth {
            let password = match (&b.password, &b.password_file) {
                (_, Some(f)) => read_secret(f)?,
                (Some(p), None) => p.clone(),
                (None, None) => String::new(),
            };
            return Ok(Credentials::Basic { username: b.username.clone(), password });
        }
        if let Some(a) = &self.authorization {
            let credentials = match (&a.credentials, &a.credentials_file) {
                (_, Some(f)) => read_secret(f)?,
                (Some(c), None) => c.clone(),
                (None, None) => String::new(),
            };
            return Ok(Credentials::Header { scheme: a.auth_type.clone(), credentials });
        }
        Ok(Credentials::None)
    }
}

fn check_auth(sc: &ScrapeConfig) -> Result<(), (&'static str, String)> {
    if let Some(b) = &sc.basic_auth {
        if b.password.is_some() && b.password_file.is_some() {
            return Err(("basic_auth", "at most one of basic_auth password & password_file must be configured".into()));
        }
        if sc.authorization.is_some() {
            return Err((
                "authorization",
                "at most one of basic_auth, oauth2 & authorization must be configured".into(),
            ));
        }
    }
    if let Some(a) = &sc.authorization {
        if a.credentials.is_some() && a.credentials_file.is_some() {
            return Err((
                "authorization",
                "at most one of authorization credentials & credentials_file must be configured".into(),
            ));
        }
        if a.auth_type.eq_ignore_ascii_case("basic") {
            return Err((
                "authorization",
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead".into(),
            ));
        }
    }
    Ok(())
}

/// Makes `p` absolute against `dir` when relative.
pub(crate) fn fix_path(p: &mut PathBuf, dir: &Path) {
    if p.is_relative() {
        *p = dir.join(&*p);
    }
}

fn resolve_files(sc: &mut ScrapeConfig, dir: &Path) {
    let fix = |p: &mut PathBuf| fix_path(p, dir);
    if let Some(b) = &mut sc.basic_auth {
        b.password_file.as_mut().map(fix);
    }
    if let Some(a) = &mut sc.authorization {
        a.credentials_file.as_mut().map(fix);
    }
    if let Some(t) = &mut sc.tls_config {
        for p in [&mut t.ca_file, &mut t.cert_file, &mut t.key_file].into_iter().flatten() {
            fix(p);
        }
    }
}

/// The key assigned on `line` (1-based), for errors the TOML parser reports by position.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (k, _) = l.split_once('=')?;
    let k = k.trim().trim_start_matches('{').trim();
    (!k.is_empty() && !k.contains(['[', '"'])).then(|| k.to_owned())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
