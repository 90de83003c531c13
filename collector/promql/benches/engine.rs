//! Engine hot paths over 10 000 series: `rate(x[5m])` and `sum by (job) (rate(x[5m]))`, as
//! instant queries and as a 1 h range query at 60 s step.

use criterion::{Criterion, criterion_group, criterion_main};
use osprey_promql::{Engine, EngineOptions, Labels, MemStorage};
use std::hint::black_box;

const SERIES: usize = 10_000;
const SCRAPE_MS: i64 = 15_000;
const HOURS: i64 = 2;

fn storage() -> MemStorage {
    let mut s = MemStorage::new();
    let points = HOURS * 3_600_000 / SCRAPE_MS;
    for i in 0..SERIES {
        let job = format!("job{}", i % 10);
        let inst = format!("host{i}:9100");
        let l = Labels::from_pairs(&[("__name__", "http_requests_total"), ("job", &job), ("instance", &inst)]);
        for p in 0..points {
            s.add(&l, p * SCRAPE_MS, (p * (i as i64 % 7 + 1)) as f64);
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let store = storage();
    let engine = Engine::new(EngineOptions::default());
    let end = HOURS * 3_600_000;
    let mut g = c.benchmark_group("promql_10k_series");
    g.sample_size(10);
    for q in ["rate(http_requests_total[5m])", "sum by (job) (rate(http_requests_total[5m]))"] {
        g.bench_function(format!("instant {q}"), |b| {
            b.iter(|| black_box(engine.instant_query(&store, q, end).expect("query")));
        });
        g.bench_function(format!("range 1h/60s {q}"), |b| {
            b.iter(|| black_box(engine.range_query(&store, q, end - 3_600_000, end, 60_000).expect("query")));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
