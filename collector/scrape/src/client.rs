//! HTTP: one pooled client per TLS configuration (keep-alive across scrapes), the request
//! Prometheus sends, and a body reader bounded by `body_size_limit`, including after gzip
//! decompression (a gzip bomb stops at the limit).

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock};

use flate2::write::GzDecoder;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use rustls::RootCertStore;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Format, ScrapeError};
use crate::target::{Auth, ScrapeTarget, TlsConfig};

/// The `Accept` header: OpenMetrics first, then the text format, then anything, with the
/// weights Prometheus 3 sends by default (protobuf is not offered). Names are asked for in the
/// classic character set (`escaping=underscores`), which is all the parser accepts.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,\
application/openmetrics-text;version=0.0.1;q=0.4,\
text/plain;version=1.0.0;escaping=underscores;q=0.3,\
text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

/// `User-Agent` of every scrape.
pub const USER_AGENT: &str = concat!("osprey-collector/", env!("CARGO_PKG_VERSION"));

/// Most redirects followed per scrape (Go's default, as Prometheus).
const MAX_REDIRECTS: usize = 10;

/// HTTP clients shared by all targets with the same TLS settings.
#[derive(Default)]
pub(crate) struct Clients {
    by_tls: Mutex<HashMap<TlsConfig, reqwest::Client>>,
}

impl Clients {
    /// Keeps only the clients whose settings `keep` accepts.
    pub(crate) fn retain(&self, keep: impl Fn(&TlsConfig) -> bool) {
        self.by_tls.lock().expect("clients lock").retain(|k, _| keep(k));
    }

    /// The client for `tls`, built on first use.
    pub(crate) fn get(&self, tls: &TlsConfig) -> Result<reqwest::Client, String> {
        let mut map = self.by_tls.lock().expect("clients lock");
        if let Some(c) = map.get(tls) {
            return Ok(c.clone());
        }
        let c = build_client(tls)?;
        map.insert(tls.clone(), c.clone());
        Ok(c)
    }
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// The system's trust roots, loaded once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "loading a system CA certificate");
            }
            let (added, ignored) = store.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system CA certificates");
            Arc::new(store)
        })
        .clone()
}

fn build_client(tls: &TlsConfig) -> Result<reqwest::Client, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if tls.insecure_skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
            algs: provider().signature_verification_algorithms,
        }))
    } else {
        let roots = match &tls.ca_file {
            Some(path) => {
                let mut store = RootCertStore::empty();
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(Iterator::collect)
                    .map_err(|e| format!("reading ca_file {}: {e}", path.display()))?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("ca_file {}: no CA certificate found", path.display()));
                }
                Arc::new(store)
            }
            None => system_roots(),
        };
        match &tls.server_name {
            None => builder.with_root_certificates(roots),
            Some(name) => {
                let name =
                    ServerName::try_from(name.clone()).map_err(|e| format!("tls_config server_name {name:?}: {e}"))?;
                let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| format!("TLS: {e}"))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(FixedNameVerifier { inner, name }))
            }
        }
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(cert)
                    .and_then(Iterator::collect)
                    .map_err(|e| format!("reading cert_file {}: {e}", cert.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("reading key_file {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("tls_config: cert_file and key_file must be given together".into()),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| format!("building the HTTP client: {}", error_chain(&e)))
}

/// `server_name`: the usual WebPKI verification, against the configured name instead of the
/// URL's host.
#[derive(Debug)]
struct FixedNameVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for FixedNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    agent_core::rustls_signature_methods!(delegate inner);
}

/// `insecure_skip_verify`: any certificate is accepted; signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCert {
    algs: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    agent_core::rustls_signature_methods!(algorithms algs);
}

/// An error and its sources, `a: b: c`.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

/// The URL without user info, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A `Write` into `buf` that fails once more than `limit` bytes arrive.
pub(crate) struct Bounded<'a> {
    buf: &'a mut Vec<u8>,
    limit: usize,
}

/// Appends `data` unless `buf` would exceed `limit` bytes; grows the capacity by doubling but
/// never past `limit`, so a body buffer never holds more than the limit.
fn push_bounded(buf: &mut Vec<u8>, data: &[u8], limit: usize) -> bool {
    let need = buf.len() + data.len();
    if need > limit {
        return false;
    }
    if need > buf.capacity() {
        let target = (buf.capacity() * 2).max(need).max(8192).min(limit);
        buf.reserve_exact(target - buf.len());
    }
    buf.extend_from_slice(data);
    true
}

/// Marker carried in the `io::Error` when the limit is hit.
#[derive(Debug)]
struct LimitHit;

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body size limit exceeded")
    }
}

impl std::error::Error for LimitHit {}

impl Write for Bounded<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if push_bounded(self.buf, data, self.limit) { Ok(data.len()) } else { Err(io::Error::other(LimitHit)) }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn gzip_error(e: &io::Error, limit: usize) -> ScrapeError {
    if e.get_ref().is_some_and(<dyn std::error::Error + Send + Sync>::is::<LimitHit>) {
        ScrapeError::BodyTooLarge { limit }
    } else {
        ScrapeError::Gzip(e.to_string())
    }
}

/// The format a `Content-Type` announces. A missing or unknown type is read as the text
/// format, as Prometheus 2 did (Prometheus 3 would need `fallback_scrape_protocol`).
pub fn format_of(content_type: Option<&str>) -> Format {
    let media = content_type.and_then(|ct| ct.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/openmetrics-text") => Format::OpenMetrics,
        _ => Format::Text,
    }
}

/// GETs the target and reads the (decompressed) body into `buf`, which is cleared first.
/// Returns the announced format. The caller applies the timeout.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    target: &ScrapeTarget,
    buf: &mut Vec<u8>,
) -> Result<Format, ScrapeError> {
    buf.clear();
    let url = &target.url;
    let http_err = |e: &reqwest::Error| ScrapeError::Http { url: redact_url(url), cause: error_chain(e) };
    let mut req = client
        .get(url.as_str())
        .header(ACCEPT, ACCEPT_HEADER)
        .header(ACCEPT_ENCODING, "gzip")
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", target.timeout.as_secs_f64()));
    match &target.auth {
        Some(Auth::Basic { username, password }) => req = req.basic_auth(username, Some(password)),
        Some(Auth::Bearer(token)) => req = req.bearer_auth(token),
        None => {}
    }
    let mut resp = req.send().await.map_err(|e| http_err(&e))?;
    let status = resp.status();
    if status != reqwest::StatusCode::OK {
        return Err(ScrapeError::Status(status.to_string()));
    }
    let format = format_of(resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()));
    let gzip = resp.headers().get(CONTENT_ENCODING).is_some_and(is_gzip);
    let limit = target.limits.effective_body_size_limit();
    if !gzip {
        if let Some(len) = resp.content_length()
            && len > limit as u64
        {
            return Err(ScrapeError::BodyTooLarge { limit });
        }
        while let Some(chunk) = resp.chunk().await.map_err(|e| http_err(&e))? {
            if !push_bounded(buf, &chunk, limit) {
                return Err(ScrapeError::BodyTooLarge { limit });
            }
        }
        return Ok(format);
    }
    let mut dec = Gunzip::new(buf, limit);
    while let Some(chunk) = resp.chunk().await.map_err(|e| http_err(&e))? {
        dec.write(&chunk)?;
    }
    dec.finish()?;
    Ok(format)
}

/// A gzip body decompressed into a buffer of at most `limit` bytes, fed chunk by chunk as
/// they arrive (public for the benchmark).
pub struct Gunzip<'a> {
    dec: GzDecoder<Bounded<'a>>,
    limit: usize,
}

impl<'a> Gunzip<'a> {
    /// Decompresses into `buf` (appending), failing past `limit` bytes.
    pub fn new(buf: &'a mut Vec<u8>, limit: usize) -> Self {
        Self { dec: GzDecoder::new(Bounded { buf, limit }), limit }
    }

    /// Feeds the next compressed bytes.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ScrapeError> {
        self.dec.write_all(chunk).map_err(|e| gzip_error(&e, self.limit))
    }

    /// Checks the end of the stream (trailer, CRC).
    pub fn finish(mut self) -> Result<(), ScrapeError> {
        self.dec.try_finish().map_err(|e| gzip_error(&e, self.limit))
    }
}

fn is_gzip(v: &HeaderValue) -> bool {
    v.to_str().is_ok_and(|s| s.trim().eq_ignore_ascii_case("gzip"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_selects_the_parser() {
        assert_eq!(format_of(Some("application/openmetrics-text; version=1.0.0; charset=utf-8")), Format::OpenMetrics);
        assert_eq!(format_of(Some("text/plain; version=0.0.4")), Format::Text);
        assert_eq!(format_of(None), Format::Text);
        assert_eq!(format_of(Some("application/json")), Format::Text);
    }

    #[test]
    fn our_agent_negotiates_openmetrics_from_our_accept_header() {
        assert_eq!(agent_core::encode::Format::negotiate(Some(ACCEPT_HEADER)), Format::OpenMetrics);
    }

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(redact_url("http://u:secret@h:1/m"), "http://h:1/m");
        assert_eq!(redact_url("http://h:1/m"), "http://h:1/m");
    }

    #[test]
    fn bounded_gzip_stops_at_the_limit() {
        use flate2::write::GzEncoder;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        let mut out = Vec::new();
        let mut dec = GzDecoder::new(Bounded { buf: &mut out, limit: 4096 });
        let err = dec.write_all(&gz).and_then(|()| dec.try_finish()).unwrap_err();
        assert_eq!(gzip_error(&err, 4096), ScrapeError::BodyTooLarge { limit: 4096 });
        drop(dec);
        assert!(out.capacity() <= 4096, "capacity {} beyond the limit", out.capacity());
    }
}
