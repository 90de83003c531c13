//! Tests against real HTTP servers on 127.0.0.1: a well-behaved exposer (hyper), the fleet
//! simulator, and raw-TCP hostile targets. Time is a [`ManualClock`]: the tests move it tick by
//! tick and wait for results with [`eventually`], never with fixed sleeps.

mod append;
mod hostile;
mod loops;
mod tls;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{ManagerOptions, ManualClock, MemStorage, ScrapeManager, ScrapeTarget, TargetStatus};

/// Start of the manual clock: a multiple of every interval the tests use.
pub(crate) const T0: i64 = 1_700_000_000_000;

/// Waits (polling every 5 ms, at most 30 s) until `f` holds; panics with `what` otherwise.
pub(crate) async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A manager on a manual clock writing into a [`MemStorage`].
pub(crate) struct Rig {
    pub(crate) clock: ManualClock,
    pub(crate) store: MemStorage,
    pub(crate) mgr: ScrapeManager,
}

impl Rig {
    pub(crate) fn new() -> Self {
        let clock = ManualClock::new(T0);
        let store = MemStorage::new();
        // The manual clock jumps a whole interval at a time: every scrape starts "late", so
        // stamp them all with their scheduled tick to keep the test's timestamps exact.
        let opts = ManagerOptions {
            clock: Arc::new(clock.clone()),
            timestamp_tolerance: Some(Duration::from_secs(3600)),
            ..ManagerOptions::default()
        };
        let mgr = ScrapeManager::new(Arc::new(store.clone()), opts);
        Self { clock, store, mgr }
    }

    /// The status of the target scraping `url`.
    pub(crate) fn status(&self, url: &str) -> TargetStatus {
        self.mgr.targets().into_iter().find(|t| t.scrape_url == url).unwrap_or_else(|| panic!("no target {url}"))
    }

    /// Waits until the target at `url` has done `n` scrapes.
    pub(crate) async fn scrapes(&self, url: &str, n: u64) {
        let start = Instant::now();
        while self.status(url).scrapes < n {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {n} scrapes of {url}; clock at +{} ms; targets: {:#?}",
                crate::Clock::now_ms(&self.clock) - T0,
                self.mgr.targets()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Timestamps and values of `up` for `instance`.
    pub(crate) fn up(&self, instance: &str) -> Vec<(i64, f64)> {
        self.store.select(&[("__name__", "up"), ("instance", instance)]).into_iter().flat_map(|(_, s)| s).collect()
    }
}

/// A target for `addr` with job `test`, instance `addr`, the given interval and a timeout of a
/// fifth of it.
pub(crate) fn target(addr: SocketAddr, interval_ms: u64) -> ScrapeTarget {
    let mut t = ScrapeTarget::new(
        "test",
        vec![("job".into(), "test".into()), ("instance".into(), addr.to_string())],
        format!("http://{addr}/metrics"),
    );
    t.interval = Duration::from_millis(interval_ms);
    t.timeout = Duration::from_millis(interval_ms / 5);
    t
}

/// What an [`Exposer`] answers.
#[derive(Clone)]
pub(crate) struct Reply {
    pub(crate) content_type: &'static str,
    pub(crate) encoding: Option<&'static str>,
    pub(crate) body: Vec<u8>,
}

/// A well-behaved keep-alive HTTP server whose reply the test sets, recording requests.
pub(crate) struct Exposer {
    pub(crate) addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<HeaderMap>>>,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Exposer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Exposer {
    pub(crate) async fn start(body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = Arc::new(Mutex::new(Reply { content_type: TEXT, encoding: None, body: body.as_bytes().to_vec() }));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicU64::new(0));
        let (r, q, c) = (Arc::clone(&reply), Arc::clone(&requests), Arc::clone(&connections));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                c.fetch_add(1, Ordering::Relaxed);
                let (r, q) = (Arc::clone(&r), Arc::clone(&q));
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        q.lock().unwrap().push(req.headers().clone());
                        let reply = r.lock().unwrap().clone();
                        async move {
                            let mut b = Response::builder().header("content-type", reply.content_type);
                            if let Some(e) = reply.encoding {
                                b = b.header("content-encoding", e);
                            }
                            Ok::<_, Infallible>(b.body(Full::new(Bytes::from(reply.body))).unwrap())
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Self { addr, reply, requests, connections, task }
    }

    pub(crate) fn set(&self, body: &str) {
        self.reply.lock().unwrap().body = body.as_bytes().to_vec();
    }

    pub(crate) fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    pub(crate) fn requests(&self) -> Vec<HeaderMap> {
        self.requests.lock().unwrap().clone()
    }

    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
}

/// Misbehaving targets, served from raw TCP.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Hostile {
    /// A chunked body that never ends.
    EndlessBody,
    /// A body of this many bytes, delimited by closing the connection (no length announced).
    HugeBody(usize),
    /// Response headers trickling in, one byte every 20 ms, forever.
    SlowLoris,
    /// A gzip body that inflates to this many MiB.
    GzipBomb(usize),
    /// This many distinct series.
    ManySeries(usize),
    /// One series with a label value of this many bytes.
    HugeLabelValue(usize),
    /// A syntax error on line 3.
    Malformed,
    /// The same series twice.
    Duplicate,
    /// HTTP 500.
    Status500,
    /// A redirect to itself.
    RedirectLoop,
}

/// Starts a hostile target; it lives as long as the runtime.
pub(crate) async fn start_hostile(kind: Hostile) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let _ = serve_hostile(stream, kind).await;
            });
        }
    });
    addr
}

/// Reads one request's head (bounded); `false` at end of stream.
async fn read_head(s: &mut TcpStream) -> std::io::Result<bool> {
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(false);
        }
        head.extend_from_slice(&b[..n]);
    }
    Ok(true)
}

async fn fixed(s: &mut TcpStream, status: &str, extra: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {TEXT}\r\n{extra}Content-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await
}

/// Streams `next()` chunks after a close-delimited 200 head until it returns `None` or the
/// peer goes away.
async fn stream_body(s: &mut TcpStream, extra: &str, mut next: impl FnMut() -> Option<Vec<u8>>) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await?;
    while let Some(chunk) = next() {
        s.write_all(&chunk).await?;
    }
    s.shutdown().await
}

async fn serve_hostile(mut s: TcpStream, kind: Hostile) -> std::io::Result<()> {
    while read_head(&mut s).await? {
        match kind {
            Hostile::EndlessBody => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nTransfer-Encoding: chunked\r\n\r\n");
                s.write_all(head.as_bytes()).await?;
                let line = "endless_metric 1\n".repeat(4096);
                let chunk = format!("{:x}\r\n{line}\r\n", line.len());
                loop {
                    s.write_all(chunk.as_bytes()).await?;
                }
            }
            Hostile::HugeBody(total) => {
                let block = vec![b'#'; 64 * 1024];
                let mut sent = 0;
                return stream_body(&mut s, "", || {
                    (sent < total).then(|| {
                        sent += block.len();
                        block.clone()
                    })
                })
                .await;
            }
            Hostile::SlowLoris => {
                s.write_all(b"HTTP/1.1 200 OK\r\n").await?;
                loop {
                    s.write_all(b"X").await?;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Hostile::GzipBomb(mib) => {
                let (first, repeat) = gzip_bomb_parts();
                let mut left = mib;
                let mut started = false;
                return stream_body(&mut s, "Content-Encoding: gzip\r\n", || {
                    if !started {
                        started = true;
                        return Some(first.clone());
                    }
                    (left > 0).then(|| {
                        left -= 1;
                        repeat.clone()
                    })
                })
                .await;
            }
            Hostile::ManySeries(n) => {
                let mut i = 0;
                return stream_body(&mut s, "", || {
                    (i < n).then(|| {
                        let mut chunk = String::with_capacity(64 * 1024);
                        while i < n && chunk.len() < 60 * 1024 {
                            let _ = writeln!(chunk, "bomb_series{{id=\"{i:07}\"}} 1");
                            i += 1;
                        }
                        chunk.into_bytes()
                    })
                })
                .await;
            }
            Hostile::HugeLabelValue(n) => {
                let body = format!("big{{v=\"{}\"}} 1\n", "v".repeat(n));
                fixed(&mut s, "200 OK", "", body.as_bytes()).await?;
            }
            Hostile::Malformed => {
                fixed(&mut s, "200 OK", "", b"ok_metric 1\nok_metric2 2\nbroken{a=\"1\" 3\n").await?;
            }
            Hostile::Duplicate => {
                fixed(&mut s, "200 OK", "", b"dup{a=\"1\"} 1\nother 2\ndup{a=\"1\"} 3\n").await?;
            }
            Hostile::Status500 => fixed(&mut s, "500 Internal Server Error", "", b"oops\n").await?,
            Hostile::RedirectLoop => fixed(&mut s, "302 Found", "Location: /metrics\r\n", b"").await?,
        }
    }
    Ok(())
}

/// A gzip stream cut in two: the gzip header with the first MiB of zeros, then a deflate
/// segment that adds one more MiB of zeros each time it is repeated (it only copies from the
/// all-zero window). The stream never ends properly; a bounded reader stops first.
pub(crate) fn gzip_bomb_parts() -> (Vec<u8>, Vec<u8>) {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::fast(), false);
    let mut seg = |input: &[u8]| {
        let mut out = Vec::with_capacity(64 * 1024);
        let before = c.total_in();
        loop {
            let done = (c.total_in() - before) as usize;
            c.compress_vec(&input[done..], &mut out, FlushCompress::Sync).unwrap();
            if (c.total_in() - before) as usize == input.len() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(64 * 1024);
        }
    };
    let a = seg(&zeros);
    let b = seg(&zeros);
    let mut first = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    first.extend_from_slice(&a);
    (first, b)
}

/// Peak resident memory of this process in bytes, from `/proc/self/status`.
pub(crate) fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// Whether each test runs in its own process (cargo-nextest), so [`peak_rss`] is its own.
pub(crate) fn own_process() -> bool {
    std::env::var_os("NEXTEST").is_some()
}
