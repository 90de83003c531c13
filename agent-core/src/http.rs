//! HTTP serving: `/metrics` (with node_exporter's `collect[]` / `exclude[]`), `/`,
//! `/-/healthy`, `/-/ready`, `POST /-/reload`; a cap on concurrent scrapes; gzip;
//! graceful shutdown; the web config's TLS, basic auth and headers (see [`crate::auth`],
//! [`crate::conn`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::auth::WebHandle;
pub use crate::conn::serve;

use crate::encode::{Format, encode};
use crate::model::{MetricFamily, MetricType, Sample, Suffix, normalize};
use crate::registry::Registry;

/// Rebuilds the registry from the configuration files (SIGHUP, `POST /-/reload`).
pub type Reloader = Box<dyn Fn() -> Result<Registry, String> + Send + Sync>;

/// What the HTTP layer needs to know, resolved from flags and config.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Path of the metrics endpoint (`--web.telemetry-path`, default `/metrics`).
    pub telemetry_path: String,
    /// Maximum concurrent scrapes; more get 503 (`--web.max-requests`, 0 = unlimited).
    pub max_requests: usize,
    /// Leave out `process_*` and `osprey_agent_*` request metrics (`--web.disable-exporter-metrics`).
    pub disable_exporter_metrics: bool,
    /// Program name for the landing page and build info (e.g. `osprey-agent`).
    pub program: &'static str,
    /// Version string.
    pub version: &'static str,
}

/// Buckets of `osprey_agent_http_request_duration_seconds`.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Stats {
    scrapes: AtomicU64,
    rejected: AtomicU64,
    bad_requests: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// Shared state of the agent's HTTP server.
pub struct AgentState {
    registry: RwLock<Arc<Registry>>,
    reloader: Option<Reloader>,
    opts: ServeOptions,
    sem: Semaphore,
    stats: Stats,
    buffers: Mutex<Vec<Vec<u8>>>,
    compressors: Mutex<Vec<flate2::Compress>>,
    web: Arc<WebHandle>,
    last_reload_ok: AtomicBool,
    last_reload_success: AtomicU64,
}

impl AgentState {
    /// State serving `registry`, optionally reloadable.
    pub fn new(registry: Registry, opts: ServeOptions, reloader: Option<Reloader>) -> Arc<Self> {
        Self::with_web(registry, opts, reloader, WebHandle::plain())
    }

    /// State serving `registry` with the web config `web` (TLS, auth, headers).
    pub fn with_web(registry: Registry, opts: ServeOptions, reloader: Option<Reloader>, web: WebHandle) -> Arc<Self> {
        let permits = if opts.max_requests == 0 { Semaphore::MAX_PERMITS } else { opts.max_requests };
        Arc::new(Self {
            registry: RwLock::new(Arc::new(registry)),
            reloader,
            opts,
            sem: Semaphore::new(permits),
            stats: Stats::default(),
            buffers: Mutex::new(Vec::new()),
            compressors: Mutex::new(Vec::new()),
            web: Arc::new(web),
            last_reload_ok: AtomicBool::new(true),
            last_reload_success: AtomicU64::new(unix_now()),
        })
    }

    /// The web config handle (TLS, auth).
    pub fn web(&self) -> &Arc<WebHandle> {
        &self.web
    }

    /// Rebuilds the registry with the reloader and re-reads the web config; whatever fails
    /// keeps its running version, and `osprey_agent_config_last_reload_successful` says so.
    pub fn reload(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        match &self.reloader {
            Some(reloader) => match reloader() {
                Ok(new) => {
                    if let Ok(mut r) = self.registry.write() {
                        *r = Arc::new(new);
                    }
                }
                Err(e) => errors.push(e),
            },
            None => errors.push("reload is not configured".into()),
        }
        if let Err(e) = self.web.reload() {
            errors.push(format!("web config: {e}"));
        }
        self.record_reload(errors.is_empty());
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// Re-reads the web config when one of its files changed; `None` when nothing changed.
    pub fn reload_web_if_changed(&self) -> Option<Result<(), String>> {
        if !self.web.files_changed() {
            return None;
        }
        let r = self.web.reload().map_err(|e| format!("web config: {e}"));
        self.record_reload(r.is_ok());
        Some(r)
    }

    fn reload_families(&self, prefix: &str) -> [MetricFamily; 2] {
        let mut ok = MetricFamily::new(
            format!("{prefix}_config_last_reload_successful"),
            "Whether the last configuration reload attempt was successful.",
            MetricType::Gauge,
        );
        ok.push(&[], if self.last_reload_ok.load(Ordering::Relaxed) { 1.0 } else { 0.0 });
        let mut ts = MetricFamily::new(
            format!("{prefix}_config_last_reload_success_timestamp_seconds"),
            "Timestamp of the last successful configuration reload (or of the start).",
            MetricType::Gauge,
        );
        ts.push(&[], self.last_reload_success.load(Ordering::Relaxed) as f64);
        [ok, ts]
    }

    fn record_reload(&self, ok: bool) {
        self.last_reload_ok.store(ok, Ordering::Relaxed);
        if ok {
            self.last_reload_success.store(unix_now(), Ordering::Relaxed);
        }
    }

    fn registry(&self) -> Arc<Registry> {
        match self.registry.read() {
            Ok(r) => Arc::clone(&r),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn self_families(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        let mut info = MetricFamily::new(
            format!("{}_build_info", self.opts.program.replace('-', "_")),
            format!("A metric with a constant '1' value labeled by version of {}.", self.opts.program),
            MetricType::Gauge,
        );
        info.push(&[("version", self.opts.version)], 1.0);
        out.push(info);
        if self.opts.disable_exporter_metrics {
            return out;
        }
        let p = self.opts.program.replace('-', "_");
        let s = &self.stats;
        out.extend(self.reload_families(&p));
        let mut c = MetricFamily::new(
            format!("{p}_scrapes_total"),
            "Scrapes of the metrics endpoint served.",
            MetricType::Counter,
        );
        c.push(&[], s.scrapes.load(Ordering::Relaxed) as f64);
        out.push(c);
        let mut c = MetricFamily::new(
            format!("{p}_scrapes_rejected_total"),
            "Scrapes refused with 503 because --web.max-requests were already running.",
            MetricType::Counter,
        );
        c.push(&[], s.rejected.load(Ordering::Relaxed) as f64);
        out.push(c);
        let mut c = MetricFamily::new(
            format!("{p}_bad_requests_total"),
            "Scrapes refused with 400 (bad collect[]/exclude[] parameters).",
            MetricType::Counter,
        );
        c.push(&[], s.bad_requests.load(Ordering::Relaxed) as f64);
        out.push(c);
        let mut h = MetricFamily::new(
            format!("{p}_http_request_duration_seconds"),
            "Time to answer a scrape of the metrics endpoint, in seconds.",
            MetricType::Histogram,
        );
        let mut cumulative = 0;
        let mut buf = Vec::new();
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative = cumulative.max(s.buckets[i].load(Ordering::Relaxed));
            buf.clear();
            crate::encode::write_go_float(&mut buf, *le);
            let le = String::from_utf8_lossy(&buf).into_owned();
            h.samples.push(bucket_sample(le, cumulative as f64));
        }
        let count = s.count.load(Ordering::Relaxed) as f64;
        h.samples.push(bucket_sample("+Inf".into(), count));
        h.samples.push(Sample {
            suffix: Suffix::Sum,
            labels: vec![],
            value: s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            timestamp_ms: None,
        });
        h.samples.push(Sample { suffix: Suffix::Count, labels: vec![], value: count, timestamp_ms: None });
        out.push(h);
        out.extend(crate::process::process_families());
        out
    }

    /// gzip-compresses `data` with a pooled compressor: a fresh deflate state costs ~300 KB
    /// of zeroed memory, and allocating it per scrape dominated the agent's CPU (page faults
    /// on every scrape) before pooling.
    fn gzip(&self, data: &[u8]) -> Vec<u8> {
        let mut c = self
            .compressors
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| flate2::Compress::new(flate2::Compression::fast(), false));
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 4 + 64);
        // gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        loop {
            let before = c.total_in() as usize;
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(4096));
            }
            match c.compress_vec(&data[before.min(data.len())..], &mut out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "gzip failed");
                    return data.to_vec();
                }
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        if let Ok(mut pool) = self.compressors.lock()
            && pool.len() < 4
        {
            pool.push(c);
        }
        out
    }

    fn observe(&self, secs: f64) {
        let s = &self.stats;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                s.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        s.count.fetch_add(1, Ordering::Relaxed);
        s.sum_micros.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Polls the web config's files every `interval` and reloads it when one changed (certificate
/// renewals, edited users), logging the outcome.
pub async fn watch_web_config(state: Arc<AgentState>, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let st = Arc::clone(&state);
        let r = tokio::task::spawn_blocking(move || st.reload_web_if_changed()).await.ok().flatten();
        match r {
            Some(Ok(())) => tracing::info!("web config reloaded (files changed)"),
            Some(Err(e)) => tracing::error!(error = %e, "web config reload failed; keeping the running configuration"),
            None => {}
        }
    }
}

async fn web_guard(State(st): State<Arc<AgentState>>, req: Request, next: axum::middleware::Next) -> Response {
    crate::auth::guard(&st.web, req, next).await
}

fn bucket_sample(le: String, v: f64) -> Sample {
    Sample { suffix: Suffix::Bucket, labels: vec![("le".into(), le)], value: v, timestamp_ms: None }
}

/// The router for `state`.
pub fn router(state: Arc<AgentState>) -> Router {
    let path = state.opts.telemetry_path.clone();
    Router::new()
        .route(&path, get(metrics))
        .route("/", get(landing))
        .route("/-/healthy", get(|| async { "Healthy" }))
        .route("/-/ready", get(|| async { "Ready" }))
        .route("/-/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), web_guard))
        .with_state(state)
}

async fn landing(State(st): State<Arc<AgentState>>) -> Html<String> {
    let p = &st.opts.telemetry_path;
    Html(format!(
        "<!DOCTYPE html>\n<html><head><title>{prog}</title></head><body>\n<h1>{prog}</h1>\n<p>Version {ver}</p>\n\
         <ul><li><a href=\"{p}\">Metrics</a></li><li><a href=\"/-/healthy\">Health</a></li></ul>\n</body></html>\n",
        prog = st.opts.program,
        ver = st.opts.version,
    ))
}

async fn reload(State(st): State<Arc<AgentState>>) -> Response {
    match st.reload() {
        Ok(()) => {
            tracing::info!("configuration reloaded");
            (StatusCode::OK, "reloaded\n").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed; keeping the running configuration");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("reload failed: {e}\n")).into_response()
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `collect[]` and `exclude[]` values of a query string.
fn collector_params(query: Option<&str>) -> (Vec<String>, Vec<String>) {
    let (mut collect, mut exclude) = (Vec::new(), Vec::new());
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match url_decode(k).as_str() {
            "collect[]" => collect.push(url_decode(v)),
            "exclude[]" => exclude.push(url_decode(v)),
            _ => {}
        }
    }
    (collect, exclude)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |e| {
            let mut parts = e.split(';').map(str::trim);
            parts.next().is_some_and(|n| n.eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.strip_prefix("q=").and_then(|q| q.trim().parse::<f64>().ok()) == Some(0.0))
        },
    )
}

async fn metrics(State(st): State<Arc<AgentState>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let Ok(_permit) = st.sem.try_acquire() else {
        st.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(max = st.opts.max_requests, "too many concurrent scrapes; answering 503");
        return (StatusCode::SERVICE_UNAVAILABLE, "Limit of concurrent requests reached, try again later.\n")
            .into_response();
    };
    let start = Instant::now();
    let registry = st.registry();
    let (collect, exclude) = collector_params(query.as_deref());
    if !collect.is_empty() && !exclude.is_empty() {
        st.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::BAD_REQUEST, "Combining collect and exclude queries is not allowed.\n").into_response();
    }
    let names = registry.names();
    if let Some(missing) = collect.iter().chain(&exclude).find(|n| !names.contains(&n.as_str())) {
        st.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::BAD_REQUEST,
            format!("Couldn't create filtered metrics handler: missing collector: {missing}\n"),
        )
            .into_response();
    }
    let (mut families, _) = registry
        .gather(|n| if collect.is_empty() { !exclude.iter().any(|e| e == n) } else { collect.iter().any(|c| c == n) })
        .await;
    families.extend(st.self_families());
    normalize(&mut families);
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let mut buf = st.buffers.lock().ok().and_then(|mut b| b.pop()).unwrap_or_default();
    buf.clear();
    encode(&mut buf, &families, format);
    let gzip = accepts_gzip(&headers);
    let body = if gzip { st.gzip(&buf) } else { buf.clone() };
    if let Ok(mut pool) = st.buffers.lock()
        && pool.len() < 4
    {
        pool.push(buf);
    }
    st.stats.scrapes.fetch_add(1, Ordering::Relaxed);
    st.observe(start.elapsed().as_secs_f64());
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

/// Parses a listen address as node_exporter does: `:9100` means every interface.
pub fn parse_listen(addr: &str) -> Result<Vec<std::net::SocketAddr>, String> {
    use std::net::ToSocketAddrs as _;
    if let Some(port) = addr.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| format!("invalid port in listen address {addr:?}"))?;
        return Ok(vec![std::net::SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 0], port))]);
    }
    addr.to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|e| format!("invalid listen address {addr:?}: {e} (expected host:port or :port)"))
}

/// Binds every listen address (an IPv6 wildcard falls back to IPv4 where IPv6 is off).
pub async fn bind(addrs: &[String]) -> Result<Vec<TcpListener>, String> {
    let mut out = Vec::new();
    for a in addrs {
        let sockets = parse_listen(a)?;
        let first = sockets.first().copied().ok_or_else(|| format!("listen address {a:?} resolves to nothing"))?;
        match TcpListener::bind(first).await {
            Ok(l) => out.push(l),
            Err(e) if first.ip().is_unspecified() && first.is_ipv6() => {
                let v4 = std::net::SocketAddr::from(([0, 0, 0, 0], first.port()));
                out.push(TcpListener::bind(v4).await.map_err(|e2| format!("binding {a}: {e}; {e2}"))?);
            }
            Err(e) => return Err(format!("binding {a}: {e}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_decode() {
        let (c, e) = collector_params(Some("collect%5B%5D=cpu&collect[]=mem+info&x=1"));
        assert_eq!(c, ["cpu", "mem info"]);
        assert!(e.is_empty());
        assert_eq!(url_decode("a%2"), "a%2");
    }

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("deflate, gzip;q=0"));
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn pooled_gzip_round_trips() {
        use std::io::Read as _;
        let st = AgentState::new(
            Registry::new(std::time::Duration::from_secs(1)),
            ServeOptions {
                telemetry_path: "/metrics".into(),
                max_requests: 1,
                disable_exporter_metrics: false,
                program: "t",
                version: "0",
            },
            None,
        );
        for data in [Vec::new(), b"hello".to_vec(), (0..200_000u32).flat_map(u32::to_le_bytes).collect()] {
            for _ in 0..2 {
                let gz = st.gzip(&data);
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
                assert_eq!(back, data);
            }
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen(":9100").unwrap()[0].port(), 9100);
        assert!(parse_listen("127.0.0.1:9100").unwrap()[0].ip().is_loopback());
        assert!(parse_listen(":x").unwrap_err().contains("invalid port"));
    }
}
