//! Engine hot paths: `rate(x[5m])`, `sum by (job) (rate(…))`, `histogram_quantile(0.99, sum by
//! (le) (rate(…_bucket[5m])))` and `topk(10, rate(…))` over 10 000 series (instant and 1 h range
//! at 60 s step), and a 24 h range query at 60 s step over 1 000 series.

use criterion::{Criterion, criterion_group, criterion_main};
use osprey_promql::{Engine, EngineOptions, Labels, MemStorage};
use std::hint::black_box;

const SERIES: usize = 10_000;

fn storage(series: usize, scrape_ms: i64, hours: i64, buckets: bool) -> MemStorage {
    let mut s = MemStorage::new();
    let points = hours * 3_600_000 / scrape_ms;
    for i in 0..series {
        let job = format!("job{}", i % 10);
        let inst = format!("host{i}:9100");
        let l = Labels::from_pairs(&[("__name__", "http_requests_total"), ("job", &job), ("instance", &inst)]);
        for p in 0..points {
            s.add(&l, p * scrape_ms, (p * (i as i64 % 7 + 1)) as f64);
        }
    }
    if buckets {
        // 1 000 histograms of 10 buckets.
        let les = ["0.005", "0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"];
        for i in 0..series / les.len() {
            let inst = format!("host{i}:9100");
            for (k, le) in les.iter().enumerate() {
                let l = Labels::from_pairs(&[
                    ("__name__", "http_request_duration_seconds_bucket"),
                    ("instance", &inst),
                    ("le", le),
                ]);
                for p in 0..points {
                    s.add(&l, p * scrape_ms, (p * (k as i64 + 1) * (i as i64 % 5 + 1)) as f64);
                }
            }
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let engine = Engine::new(EngineOptions::default());
    let store = storage(SERIES, 15_000, 2, true);
    let end = 2 * 3_600_000;
    let mut g = c.benchmark_group("promql_10k_series");
    g.sample_size(10);
    for q in [
        "rate(http_requests_total[5m])",
        "sum by (job) (rate(http_requests_total[5m]))",
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        "topk(10, rate(http_requests_total[5m]))",
    ] {
        g.bench_function(format!("instant {q}"), |b| {
            b.iter(|| black_box(engine.instant_query(&store, q, end).expect("query")));
        });
        g.bench_function(format!("range 1h/60s {q}"), |b| {
            b.iter(|| black_box(engine.range_query(&store, q, end - 3_600_000, end, 60_000).expect("query")));
        });
    }
    g.finish();
    drop(store);
    let store = storage(1_000, 60_000, 25, false);
    let end = 25 * 3_600_000;
    let mut g = c.benchmark_group("promql_1k_series_24h");
    g.sample_size(10);
    let q = "sum by (job) (rate(http_requests_total[5m]))";
    g.bench_function(format!("range 24h/60s {q}"), |b| {
        b.iter(|| black_box(engine.range_query(&store, q, end - 24 * 3_600_000, end, 60_000).expect("query")));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
