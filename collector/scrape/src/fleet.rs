//! The fleet simulator: one process serving N targets × M series over HTTP on 127.0.0.1, so
//! scale tests and benchmarks need no real hosts. Stock Prometheus scrapes it as well as we do.
//!
//! Every target exposes the same series names with its own values. Families cycle through
//! realistic shapes: constants (`*_info`-like gauges of 1, fixed sizes), integer counters
//! (requests), float counters (CPU seconds), and gauges (a slow sine around a base). Values are
//! a function of wall-clock time and the series, so two scrapers see consistent counters.
//!
//! The last series of every target carries its own `job` and `instance` labels (as federating
//! exporters do), so scrapers exercise their `honor_labels` / `exported_` handling.
//!
//! Rendering is cheap: label sets are formatted once; a scrape only appends values.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Series per family.
const FAMILY_SIZE: usize = 20;

/// The value shape of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Never changes.
    Constant,
    /// Counter growing by whole numbers.
    IntCounter,
    /// Counter growing by fractions.
    FloatCounter,
    /// Goes up and down.
    Gauge,
}

struct Series {
    /// `name{labels} `, ready to take a value.
    prefix: String,
    shape: Shape,
    /// Per-second growth (counters), amplitude (gauges) or the value (constants).
    a: f64,
    /// Base (gauges) or phase in seconds.
    b: f64,
}

/// What the fleet serves.
#[derive(Clone, Copy, Debug)]
pub struct FleetSpec {
    /// Number of targets.
    pub targets: usize,
    /// Series per target.
    pub series: usize,
    /// Gzip responses when the scraper accepts it (as node_exporter does).
    pub gzip: bool,
}

/// One target's exposition template.
struct Template {
    header_and_series: Vec<(Option<String>, Series)>,
}

/// A tiny deterministic generator (SplitMix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

impl Template {
    fn new(target: usize, series: usize) -> Self {
        let methods = ["get", "post", "put", "delete"];
        let codes = ["200", "404", "500", "503", "301"];
        let mut out = Vec::with_capacity(series);
        for i in 0..series {
            let fam = i / FAMILY_SIZE;
            let j = i % FAMILY_SIZE;
            let shape = match fam % 4 {
                0 => Shape::IntCounter,
                1 => Shape::Gauge,
                2 => Shape::FloatCounter,
                _ => Shape::Constant,
            };
            let (name, kind, help) = match shape {
                Shape::IntCounter => (format!("fleet_http_requests_{fam}_total"), "counter", "Requests served."),
                Shape::Gauge => (format!("fleet_queue_depth_{fam}"), "gauge", "Items waiting."),
                Shape::FloatCounter => (format!("fleet_cpu_seconds_{fam}_total"), "counter", "CPU time spent."),
                Shape::Constant => (format!("fleet_limit_bytes_{fam}"), "gauge", "Configured limit."),
            };
            let header = (j == 0).then(|| format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            let labels = match shape {
                Shape::IntCounter => {
                    format!("code=\"{}\",handler=\"/api/v1/h{}\",method=\"{}\"", codes[j % 5], j / 5, methods[j % 4])
                }
                Shape::Gauge => format!("queue=\"q{j}\",shard=\"{}\"", j % 3),
                Shape::FloatCounter => format!("cpu=\"{j}\",mode=\"{}\"", ["user", "system", "idle", "iowait"][j % 4]),
                Shape::Constant => format!("resource=\"r{j}\""),
            };
            let seed = (target as u64) << 32 | i as u64;
            let (a, b) = match shape {
                Shape::IntCounter => (0.1 + 50.0 * unit(seed), 1e6 * unit(seed ^ 1)),
                Shape::FloatCounter => (0.01 + unit(seed), 1e5 * unit(seed ^ 2)),
                Shape::Gauge => (10.0 + 100.0 * unit(seed), 300.0 * unit(seed ^ 3)),
                Shape::Constant => ((1u64 << (20 + mix(seed) % 10)) as f64, 0.0),
            };
            out.push((header, Series { prefix: format!("{name}{{{labels}}} "), shape, a, b }));
        }
        if series >= 2 {
            // As a federating or pushgateway-like exporter does: a series carrying its own
            // `job` and `instance`, which a scraper renames to `exported_*`.
            out.pop();
            let name = "fleet_upstream_up";
            let header = format!("# HELP {name} Whether the upstream is up.\n# TYPE {name} gauge\n");
            let prefix = format!("{name}{{instance=\"upstream-{target}\",job=\"upstream\"}} ");
            out.push((Some(header), Series { prefix, shape: Shape::Constant, a: 1.0, b: 0.0 }));
        }
        Self { header_and_series: out }
    }

    /// The text exposition at `t` seconds since the epoch.
    fn render(&self, t: f64, out: &mut String) {
        out.clear();
        for (header, s) in &self.header_and_series {
            if let Some(h) = header {
                out.push_str(h);
            }
            out.push_str(&s.prefix);
            let _ = match s.shape {
                Shape::Constant => write!(out, "{}", s.a),
                Shape::IntCounter => write!(out, "{}", (s.b + s.a * (t % 1e7)).floor()),
                Shape::FloatCounter => write!(out, "{:.3}", s.b + s.a * (t % 1e7)),
                Shape::Gauge => {
                    let period = 60.0 + s.b;
                    write!(out, "{}", (s.a * 2.0 + s.a * (std::f64::consts::TAU * t / period).sin()).round())
                }
            };
            out.push('\n');
        }
    }
}

/// The exposition target `target` of a fleet of `series` series serves at `t_secs` (for
/// benchmarks and tests that need the body without a server).
pub fn exposition(target: usize, series: usize, t_secs: f64) -> String {
    let mut out = String::new();
    Template::new(target, series).render(t_secs, &mut out);
    out
}

/// Counters of a running fleet.
#[derive(Debug, Default)]
pub struct FleetStats {
    /// TCP connections accepted, all targets.
    pub connections: AtomicU64,
    /// Scrapes served, all targets.
    pub scrapes: AtomicU64,
}

/// A running fleet.
pub struct Fleet {
    /// The listening address of each target, in target order.
    pub addrs: Vec<SocketAddr>,
    /// Counters.
    pub stats: Arc<FleetStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Fleet {
    /// Starts `spec.targets` listeners on 127.0.0.1: consecutive ports from `base_port`, or
    /// ports the system picks when `base_port` is 0. Each serves `/metrics`.
    pub async fn start(spec: FleetSpec, base_port: u16) -> std::io::Result<Self> {
        let stats = Arc::new(FleetStats::default());
        let mut addrs = Vec::with_capacity(spec.targets);
        let mut tasks = Vec::with_capacity(spec.targets);
        for i in 0..spec.targets {
            let port = if base_port == 0 { 0 } else { base_port + i as u16 };
            let listener = TcpListener::bind(("127.0.0.1", port)).await?;
            addrs.push(listener.local_addr()?);
            let template = Arc::new(Template::new(i, spec.series));
            tasks.push(tokio::spawn(serve(listener, template, spec.gzip, Arc::clone(&stats))));
        }
        Ok(Self { addrs, stats, tasks })
    }

    /// A file_sd document (JSON) listing the targets, with `labels` on the group.
    pub fn file_sd_json(&self, labels: &[(&str, &str)]) -> String {
        let targets: Vec<String> = self.addrs.iter().map(|a| format!("\"{a}\"")).collect();
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"")).collect();
        format!("[{{\"targets\":[{}],\"labels\":{{{}}}}}]\n", targets.join(","), labels.join(","))
    }
}

async fn serve(listener: TcpListener, template: Arc<Template>, gzip: bool, stats: Arc<FleetStats>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let template = Arc::clone(&template);
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let template = Arc::clone(&template);
                let stats = Arc::clone(&stats);
                async move { Ok::<_, Infallible>(respond(&req, &template, gzip, &stats)) }
            });
            let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

fn respond(req: &Request<Incoming>, template: &Template, gzip: bool, stats: &FleetStats) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    }
    stats.scrapes.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let mut body = String::with_capacity(template.header_and_series.len() * 64);
    template.render(t, &mut body);
    let accepts_gzip = req
        .headers()
        .get(hyper::header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let builder = Response::builder().header(hyper::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    let resp = if gzip && accepts_gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
        let _ = enc.write_all(body.as_bytes());
        let gz = enc.finish().unwrap_or_default();
        builder.header(hyper::header::CONTENT_ENCODING, "gzip").body(Full::new(Bytes::from(gz)))
    } else {
        builder.body(Full::new(Bytes::from(body)))
    };
    resp.unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::encode::Format;

    #[test]
    fn the_exposition_parses_and_has_every_shape() {
        let t = Template::new(3, 1000);
        let mut out = String::new();
        t.render(1_700_000_000.5, &mut out);
        let fams =
            agent_core::parse::parse(out.as_bytes(), Format::Text, &agent_core::parse::Limits::default()).unwrap();
        assert_eq!(fams.iter().map(|f| f.samples.len()).sum::<usize>(), 1000);
        assert_eq!(fams.len(), 51);
        let up = fams.iter().find(|f| f.name == "fleet_upstream_up").unwrap();
        assert_eq!(up.samples[0].label("job"), Some("upstream"));
        let mut later = String::new();
        t.render(1_700_000_010.5, &mut later);
        let fams2 =
            agent_core::parse::parse(later.as_bytes(), Format::Text, &agent_core::parse::Limits::default()).unwrap();
        for (f1, f2) in fams.iter().zip(&fams2) {
            for (s1, s2) in f1.samples.iter().zip(&f2.samples) {
                if f1.name.ends_with("_total") {
                    assert!(s2.value > s1.value, "{} grows", f1.name);
                }
                if f1.name.starts_with("fleet_limit_bytes") {
                    assert_eq!(s2.value, s1.value, "{} is constant", f1.name);
                }
            }
        }
        let ints = fams.iter().find(|f| f.name.starts_with("fleet_http_requests")).unwrap();
        assert!(ints.samples.iter().all(|s| s.value.fract() == 0.0));
        let floats = fams.iter().find(|f| f.name.starts_with("fleet_cpu_seconds")).unwrap();
        assert!(floats.samples.iter().any(|s| s.value.fract() != 0.0));
    }

    #[test]
    fn targets_differ_in_values_not_in_series() {
        let (a, b) = (Template::new(0, 40), Template::new(1, 40));
        let (mut ra, mut rb) = (String::new(), String::new());
        a.render(1e9, &mut ra);
        b.render(1e9, &mut rb);
        assert_ne!(ra, rb);
        // The same series but for the upstream one, whose `instance` names the target.
        let names = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("fleet_upstream_up{"))
                .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&ra), names(&rb));
    }
}
