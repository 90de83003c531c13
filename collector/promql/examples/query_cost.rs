//! Runs one query over synthetic data, for instruction counts that do not depend on machine
//! load: `valgrind --tool=callgrind --toggle-collect='*Engine*query*' \
//!   target/release/examples/query_cost 2000 range 'sum by (job) (rate(http_requests_total[5m]))'`.

use osprey_promql::{Engine, Labels, MemStorage};

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mode = args.next().unwrap_or_else(|| "instant".into());
    let query = args.next().unwrap_or_else(|| "rate(http_requests_total[5m])".into());
    let mut s = MemStorage::new();
    let points = 2 * 3600 / 15;
    for i in 0..series {
        let job = format!("job{}", i % 10);
        let inst = format!("host{i}:9100");
        let l = Labels::from_pairs(&[("__name__", "http_requests_total"), ("job", &job), ("instance", &inst)]);
        for p in 0..points {
            s.add(&l, p * 15_000, (p * (i as i64 % 7 + 1)) as f64);
        }
    }
    let engine = Engine::default_engine();
    let end = 2 * 3_600_000;
    let r = if mode == "range" {
        engine.range_query(&s, &query, end - 3_600_000, end, 60_000)
    } else {
        engine.instant_query(&s, &query, end)
    };
    match r {
        Ok(r) => println!("ok: {:?} warnings", r.warnings.len()),
        Err(e) => println!("error: {e}"),
    }
}
