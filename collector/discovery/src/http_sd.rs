//! `http_sd_configs`: Prometheus's HTTP SD format (a JSON array of `{targets, labels}`) fetched
//! every `refresh_interval` with reqwest over rustls. Groups get `__meta_url` and sources
//! `url:index`; a failed fetch keeps the last targets.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::TargetGroup;
use crate::duration::PromDuration;
use crate::group::{DocFormat, parse_groups};
use crate::manager::{Metrics, ProviderTx};

/// `__meta_url`: the SD endpoint a group came from.
pub const URL_LABEL: &str = "__meta_url";

/// The largest SD response accepted.
const MAX_BODY_BYTES: usize = 32 << 20;

fn default_refresh() -> PromDuration {
    PromDuration::from_secs(60)
}

fn is_default_refresh(d: &PromDuration) -> bool {
    *d == default_refresh()
}

/// One `http_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    /// The endpoint (`http://` or `https://`).
    pub url: String,
    /// How often to fetch (default 1m).
    #[serde(default = "default_refresh", skip_serializing_if = "is_default_refresh")]
    pub refresh_interval: PromDuration,
}

impl HttpSdConfig {
    /// Checks the config as Prometheus does.
    pub fn validate(&self) -> Result<(), String> {
        if self.url.is_empty() {
            return Err("URL is missing".into());
        }
        let rest = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"))
            .ok_or("URL scheme must be 'http' or 'https'")?;
        if rest.split(['/', '?', '#']).next().unwrap_or("").is_empty() {
            return Err("host is missing in URL".into());
        }
        if self.refresh_interval.0.is_zero() {
            return Err("http_sd refresh_interval must be greater than 0".into());
        }
        Ok(())
    }
}

/// An HTTP client with rustls (ring) and the system's root certificates.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Fetches and parses the groups once.
pub async fn fetch(client: &reqwest::Client, cfg: &HttpSdConfig) -> Result<Vec<TargetGroup>, String> {
    let mut resp = client
        .get(&cfg.url)
        .header("Accept", "application/json")
        .header("X-Prometheus-Refresh-Interval-Seconds", cfg.refresh_interval.0.as_secs().to_string())
        .send()
        .await
        .map_err(|e| format!("{}: {e}", cfg.url))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let ct_ok = ctype.strip_prefix("application/json").is_some_and(|rest| rest.is_empty() || rest.starts_with(';'));
    if !ct_ok {
        return Err(format!("unsupported content type {ctype:?}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{}: {e}", cfg.url))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("response larger than {MAX_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).map_err(|_| "response is not UTF-8".to_owned())?;
    let cfgs = parse_groups(&text, DocFormat::Json)?;
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| {
            let mut g = c.to_group(format!("{}:{i}", cfg.url))?;
            g.labels.insert(URL_LABEL.to_owned(), cfg.url.clone());
            Ok(g)
        })
        .collect()
}

/// Runs the provider until aborted.
pub(crate) async fn run(cfg: HttpSdConfig, tx: ProviderTx, metrics: Arc<Metrics>) {
    let client = match http_client(cfg.refresh_interval.0.min(Duration::from_secs(30)).max(Duration::from_secs(1))) {
        Ok(c) => c,
        Err(e) => {
            metrics.http_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "http_sd: no client");
            return;
        }
    };
    let mut tick = tokio::time::interval(cfg.refresh_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match fetch(&client, &cfg).await {
            Ok(groups) => tx.send(groups),
            Err(e) => {
                metrics.http_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %cfg.url, error = %e, "http_sd: refresh failed; keeping the last targets");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn validation() {
        let v = |u: &str| HttpSdConfig { url: u.into(), refresh_interval: default_refresh() }.validate();
        assert!(v("http://sd.example/targets").is_ok());
        assert!(v("https://sd.example").is_ok());
        assert!(v("ftp://sd.example").is_err());
        assert!(v("http:///x").is_err());
        assert!(v("").is_err());
    }

    async fn serve_once(status: &'static str, ctype: &'static str, body: &'static str) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
        format!("http://{addr}/sd")
    }

    #[tokio::test]
    async fn fetches_groups_with_url_label() {
        let url =
            serve_once("200 OK", "application/json; charset=utf-8", r#"[{"targets":["a:1"],"labels":{"x":"y"}}]"#)
                .await;
        let cfg = HttpSdConfig { url: url.clone(), refresh_interval: default_refresh() };
        let g = fetch(&http_client(Duration::from_secs(5)).expect("client"), &cfg).await.expect("fetch");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].source, format!("{url}:0"));
        assert_eq!(g[0].labels[URL_LABEL], url);
        assert_eq!(g[0].labels["x"], "y");
    }

    #[tokio::test]
    async fn rejects_bad_status_and_content_type() {
        let c = http_client(Duration::from_secs(5)).expect("client");
        let url = serve_once("500 Internal Server Error", "application/json", "[]").await;
        let e = fetch(&c, &HttpSdConfig { url, refresh_interval: default_refresh() }).await.expect_err("500");
        assert!(e.contains("500"), "{e}");
        let url = serve_once("200 OK", "text/plain", "[]").await;
        let e = fetch(&c, &HttpSdConfig { url, refresh_interval: default_refresh() }).await.expect_err("ctype");
        assert!(e.contains("content type"), "{e}");
    }
}
