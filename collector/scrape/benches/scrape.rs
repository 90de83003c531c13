//! The scrape hot path without the network: parse a fleet-simulator exposition (1000 series)
//! and append it through a warm series cache into a storage that discards, versus parsing
//! alone, so the cost the scrape layer adds on top of the parser is visible; the collector's
//! steady state on issue 7's fleet (100 targets × 1000 series through 100 warm caches,
//! appended by series reference as into the TSDB); and the gunzip of one target's body.
//!
//! Run: `cargo bench -p osprey-scrape --bench scrape`. Compare ratios, not absolute times: the
//! machines are shared. On the shared 2-core box (load ≈ 5): parse alone ≈ 0.49 ms per 1000
//! series, parse + append through a warm cache ≈ 0.71 ms (the scrape layer adds ≈ 45%; it was
//! ≈ 70% with SipHash), cold cache ≈ 1.5 ms; the series cache keeps ≈ 285 resident bytes per
//! series. Before → after walking the cache in last-scrape order, zlib-rs and opt-level 3
//! (two back-to-back pairs of runs, load ≈ 5–6, very noisy): `fleet_100x1000` 24.5 → 18.8 ms
//! and 33.1 → 11.9 ms per round of 100 000 samples; `gunzip_1000_series` 79.5 → 64.0 µs and
//! 229 → 104 µs per body; single-target warm cache 224 → 362 µs and 296 → 203 µs; the caches'
//! resident bytes per series 316 → 286.

use std::hint::black_box;
use std::io::Write as _;
use std::sync::Arc;

use agent_core::encode::Format;
use agent_core::parse::{Limits, parse};
use criterion::{Criterion, Throughput, criterion_group};
use osprey_scrape::client::Gunzip;
use osprey_scrape::fleet::exposition;
use osprey_scrape::{AppendError, Appender, Counts, ScrapeTarget, SeriesCache, SeriesRef, count_sample_lines};

/// Counts and drops samples.
struct Discard(usize);

impl Appender for Discard {
    fn append(&mut self, labels: &[(String, String)], _t_ms: i64, _v: f64) -> Result<(), AppendError> {
        self.0 += labels.len();
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), AppendError> {
        Ok(())
    }

    fn rollback(self: Box<Self>) {}
}

/// Discards samples but hands out series references, as the TSDB does: the steady state
/// appends by reference (`append_ref`), not by labels.
struct DiscardRefs(usize);

impl Appender for DiscardRefs {
    fn append(&mut self, labels: &[(String, String)], _t_ms: i64, _v: f64) -> Result<(), AppendError> {
        self.0 += labels.len();
        Ok(())
    }

    fn append_get_ref(
        &mut self,
        labels: &[(String, String)],
        t_ms: i64,
        v: f64,
    ) -> Result<Option<SeriesRef>, AppendError> {
        self.append(labels, t_ms, v)?;
        Ok(Some(Arc::new(())))
    }

    fn append_ref(&mut self, _r: &SeriesRef, _t_ms: i64, v: f64) -> Option<Result<(), AppendError>> {
        self.0 += usize::from(v.is_finite());
        Some(Ok(()))
    }

    fn commit(self: Box<Self>) -> Result<(), AppendError> {
        Ok(())
    }

    fn rollback(self: Box<Self>) {}
}

fn fleet_target(i: usize) -> ScrapeTarget {
    ScrapeTarget::new(
        "fleet",
        vec![("job".into(), "fleet".into()), ("instance".into(), format!("10.0.{}.{}:9100", i / 256, i % 256))],
        format!("http://10.0.0.{i}:9100/metrics"),
    )
}

/// The collector's steady state on issue 7's fleet, without network and storage: 100
/// targets × 1000 series, each through its own warm series cache (so the caches do not all
/// fit the CPU caches, as in the server), appended by series reference; and the gunzip of one
/// target's body as the simulator sends it.
fn fleet(c: &mut Criterion) {
    let bodies: Vec<String> = (0..100).map(|i| exposition(i, 1000, 1_700_000_000.0)).collect();
    let targets: Vec<ScrapeTarget> = (0..100).map(fleet_target).collect();
    let mut caches: Vec<SeriesCache> = (0..100).map(|_| SeriesCache::default()).collect();
    let mut ts = 0;
    let round = |caches: &mut [SeriesCache], ts: i64| {
        let mut n = 0;
        for ((cache, t), body) in caches.iter_mut().zip(&targets).zip(&bodies) {
            let mut app = DiscardRefs(0);
            let mut counts = Counts::default();
            cache.append(t, body.as_bytes(), Format::Text, ts, &mut app, &mut counts).unwrap();
            n += app.0;
        }
        n
    };
    for _ in 0..2 {
        ts += 1000;
        round(&mut caches, ts);
    }
    let mut g = c.benchmark_group("fleet_100x1000");
    g.throughput(Throughput::Elements(100 * 1000));
    g.sample_size(30);
    g.bench_function("warm_caches_append_by_ref", |b| {
        b.iter(|| {
            ts += 1000;
            black_box(round(&mut caches, ts))
        });
    });
    g.finish();

    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bodies[0].as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let mut g = c.benchmark_group("gunzip_1000_series");
    g.throughput(Throughput::Bytes(bodies[0].len() as u64));
    let mut buf = Vec::new();
    g.bench_function("body_in_16k_chunks", |b| {
        b.iter(|| {
            buf.clear();
            let mut dec = Gunzip::new(&mut buf, 64 << 20);
            for chunk in gz.chunks(16 << 10) {
                dec.write(chunk).unwrap();
            }
            dec.finish().unwrap();
            black_box(buf.len())
        });
    });
    g.finish();
}

fn target() -> ScrapeTarget {
    ScrapeTarget::new(
        "fleet",
        vec![("job".into(), "fleet".into()), ("instance".into(), "127.0.0.1:9100".into())],
        "http://127.0.0.1:9100/metrics",
    )
}

fn scrape(c: &mut Criterion) {
    let body = exposition(7, 1000, 1_700_000_000.0);
    let mut g = c.benchmark_group("scrape_1000_series");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("parse_only", |b| {
        b.iter(|| black_box(parse(body.as_bytes(), Format::Text, &Limits::default()).unwrap()));
    });
    let t = target();
    let mut cache = SeriesCache::default();
    let mut ts = 0;
    g.bench_function("parse_and_append_warm_cache", |b| {
        b.iter(|| {
            ts += 1000;
            let mut app = Discard(0);
            let mut counts = Counts::default();
            cache.append(&t, body.as_bytes(), Format::Text, ts, &mut app, &mut counts).unwrap();
            black_box((app.0, counts))
        });
    });
    g.bench_function("parse_and_append_cold_cache", |b| {
        b.iter(|| {
            let mut cache = SeriesCache::default();
            let mut app = Discard(0);
            let mut counts = Counts::default();
            cache.append(&t, body.as_bytes(), Format::Text, 1000, &mut app, &mut counts).unwrap();
            black_box((app.0, counts))
        });
    });
    g.finish();
    let mut g = c.benchmark_group("prescan");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("count_sample_lines", |b| b.iter(|| black_box(count_sample_lines(body.as_bytes()))));
    g.finish();
}

/// Resident bytes of this process (`/proc/self/statm`).
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

/// Memory the scrape layer keeps per active series: 100 targets × 1000 series through their
/// series caches (steady state after two scrapes), as an RSS difference.
fn cache_memory() {
    let bodies: Vec<String> = (0..100).map(|i| exposition(i, 1000, 1_700_000_000.0)).collect();
    let targets: Vec<ScrapeTarget> = (0..100)
        .map(|i| {
            ScrapeTarget::new(
                "fleet",
                vec![("job".into(), "fleet".into()), ("instance".into(), format!("10.0.{}.{}:9100", i / 256, i % 256))],
                format!("http://10.0.0.{i}:9100/metrics"),
            )
        })
        .collect();
    let before = resident();
    let mut caches: Vec<SeriesCache> = (0..100).map(|_| SeriesCache::default()).collect();
    for round in 0..2 {
        for ((cache, t), body) in caches.iter_mut().zip(&targets).zip(&bodies) {
            let mut app = Discard(0);
            let mut counts = Counts::default();
            cache.append(t, body.as_bytes(), Format::Text, 1000 * (round + 1), &mut app, &mut counts).unwrap();
        }
    }
    let after = resident();
    let series: usize = caches.iter().map(SeriesCache::len).sum();
    println!(
        "series cache: {series} series, {:.0} bytes resident per series",
        after.saturating_sub(before) as f64 / series as f64
    );
    black_box(caches);
}

criterion_group!(benches, scrape, fleet);

fn main() {
    cache_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
