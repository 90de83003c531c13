//! The web config in force and what it enforces per request: the rate limit, the extra
//! response headers and basic auth with bcrypt, whose verification results are cached (as
//! exporter-toolkit does) so that a scrape with the right password does not pay a bcrypt.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ratelog::RateLog;
use crate::web_config::{Fingerprint, WebConfig, WebConfigError};

/// A bcrypt hash of "fakepassword", checked for unknown users so that a wrong user name costs
/// the same time as a wrong password (no user enumeration by timing).
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// Verification results kept; the cache is emptied when full.
const CACHE_MAX: usize = 128;

/// The peer address of a connection, put into each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The web config file, the config loaded from it and the per-server state that outlives
/// reloads (verification cache, rate limiter, log limiters).
#[derive(Debug)]
pub struct WebHandle {
    path: Option<PathBuf>,
    current: RwLock<Arc<WebConfig>>,
    seen: Mutex<Fingerprint>,
    cache: Mutex<HashMap<[u8; 32], bool>>,
    bcrypt: Mutex<()>,
    bucket: Mutex<(f64, Option<Instant>)>,
    /// Limits "authentication failed" lines.
    pub auth_log: RateLog,
    /// Limits "TLS handshake failed" and "plain HTTP on TLS port" lines.
    pub tls_log: RateLog,
}

impl WebHandle {
    fn with(path: Option<PathBuf>, cfg: WebConfig) -> Self {
        let seen = Fingerprint::of(&cfg.files);
        Self {
            path,
            current: RwLock::new(Arc::new(cfg)),
            seen: Mutex::new(seen),
            cache: Mutex::new(HashMap::new()),
            bcrypt: Mutex::new(()),
            bucket: Mutex::new((0.0, None)),
            auth_log: RateLog::new(Duration::from_secs(10)),
            tls_log: RateLog::new(Duration::from_secs(10)),
        }
    }

    /// Plain HTTP, no auth (no `--web.config.file`).
    pub fn plain() -> Self {
        Self::with(None, WebConfig::plain())
    }

    /// Loads `path`; an error means the agent must not start.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        Ok(Self::with(Some(path.to_path_buf()), crate::web_config::load(path)?))
    }

    /// The config in force.
    pub fn current(&self) -> Arc<WebConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Re-reads the file; on error the running config stays.
    pub fn reload(&self) -> Result<(), WebConfigError> {
        let Some(path) = &self.path else { return Ok(()) };
        let new = crate::web_config::load(path);
        // Remember what was read even on failure, so a bad file is not retried until it changes.
        let files = match &new {
            Ok(c) => c.files.clone(),
            Err(_) => self.current().files.clone(),
        };
        *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Fingerprint::of(&files);
        let new = new?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
        Ok(())
    }

    /// True when a watched file changed since the last load.
    pub fn files_changed(&self) -> bool {
        if self.path.is_none() {
            return false;
        }
        let files = self.current().files.clone();
        *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) != Fingerprint::of(&files)
    }

    /// Token bucket of `rate_limit`: one token per interval, at most `burst` (at least 1).
    fn rate_allows(&self, cfg: &WebConfig, now: Instant) -> bool {
        let Some((burst, interval)) = cfg.rate_limit else { return true };
        let cap = f64::from(burst.max(1));
        let mut b = self.bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tokens = match b.1 {
            Some(last) => (b.0 + now.saturating_duration_since(last).as_secs_f64() / interval.as_secs_f64()).min(cap),
            None => cap,
        };
        if tokens >= 1.0 {
            *b = (tokens - 1.0, Some(now));
            true
        } else {
            *b = (tokens, Some(now));
            false
        }
    }

    /// Checks `user`/`pass` against `cfg`, using and filling the verification cache. bcrypt
    /// runs on the blocking pool, one at a time (it is deliberately CPU-heavy).
    pub async fn verify(self: &Arc<Self>, cfg: &WebConfig, user: &str, pass: &str) -> bool {
        let (hash, known) = match cfg.users.get(user) {
            Some(h) => (h.clone(), true),
            None => (DUMMY_HASH.to_owned(), false),
        };
        let key = cache_key(user, &hash, pass);
        if let Some(ok) = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return *ok && known;
        }
        let me = Arc::clone(self);
        let pass = pass.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let _one = me.bcrypt.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // bcrypt's verify compares the digests in constant time.
            bcrypt::verify(pass.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let mut c = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(key, ok);
        ok && known
    }

    /// Number of cached verification results (for tests).
    pub fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }
}

/// SHA-256 over the length-prefixed user, hash and password: the cache holds no password.
fn cache_key(user: &str, hash: &str, pass: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, pass] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Splits an `Authorization: Basic …` header into user and password.
fn basic_credentials(v: Option<&HeaderValue>) -> Option<(String, String)> {
    let v = v?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = decode_base64(b64.trim())?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Standard base64 with padding (RFC 4648), as HTTP basic auth uses.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let b = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(b.len() * 3 / 4);
    for chunk in b.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The per-request gate: rate limit, extra headers, basic auth.
pub async fn guard(web: &Arc<WebHandle>, req: Request<Body>, next: axum::middleware::Next) -> Response {
    let cfg = web.current();
    if !web.rate_allows(&cfg, Instant::now()) {
        return with_headers(&cfg, (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response());
    }
    if !cfg.users.is_empty() {
        let creds = basic_credentials(req.headers().get(header::AUTHORIZATION));
        let ok = match &creds {
            Some((u, p)) => web.verify(&cfg, u, p).await,
            None => false,
        };
        if !ok {
            if let Some(held) = web.auth_log.allow(Instant::now()) {
                let peer = req.extensions().get::<Peer>().map(|p| p.0.to_string()).unwrap_or_default();
                // The user name is logged (it is not a secret; it helps find a misconfigured
                // scraper), the password never.
                let user = creds.as_ref().map_or("", |c| c.0.as_str());
                tracing::warn!(peer, user, held_back = held, path = req.uri().path(), "basic authentication failed");
            }
            let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            return with_headers(&cfg, r);
        }
    }
    with_headers(&cfg, next.run(req).await)
}

fn with_headers(cfg: &WebConfig, mut r: Response) -> Response {
    for (k, v) in &cfg.headers {
        r.headers_mut().insert(k.clone(), v.clone());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_decodes() {
        let h = HeaderValue::from_static("Basic YWxpY2U6czNjcjN0Ok9r");
        assert_eq!(basic_credentials(Some(&h)), Some(("alice".into(), "s3cr3t:Ok".into())));
        assert_eq!(basic_credentials(Some(&HeaderValue::from_static("Bearer x"))), None);
        assert_eq!(basic_credentials(Some(&HeaderValue::from_static("Basic !!!!"))), None);
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn verification_is_cached_and_unknown_users_fail() {
        let mut cfg = WebConfig::plain();
        cfg.users.insert("alice".into(), bcrypt::hash("right", 4).unwrap());
        let web = Arc::new(WebHandle::plain());
        assert!(web.verify(&cfg, "alice", "right").await);
        assert_eq!(web.cached(), 1);
        assert!(web.verify(&cfg, "alice", "right").await);
        assert_eq!(web.cached(), 1, "a repeated good login must hit the cache");
        assert!(!web.verify(&cfg, "alice", "wrong").await);
        assert!(!web.verify(&cfg, "mallory", "fakepassword").await, "the dummy hash's password must not log in");
        assert_eq!(web.cached(), 3);
        // A changed hash for the same user and password is a different key.
        cfg.users.insert("alice".into(), bcrypt::hash("other", 4).unwrap());
        assert!(!web.verify(&cfg, "alice", "right").await);
    }

    #[test]
    fn rate_limit_bucket() {
        let mut cfg = WebConfig::plain();
        cfg.rate_limit = Some((2, Duration::from_secs(1)));
        let web = WebHandle::plain();
        let t = Instant::now();
        assert!(web.rate_allows(&cfg, t));
        assert!(web.rate_allows(&cfg, t));
        assert!(!web.rate_allows(&cfg, t));
        assert!(web.rate_allows(&cfg, t + Duration::from_secs(1)));
    }
}
