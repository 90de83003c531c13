//! Chunk codec and postings benchmarks. Besides criterion timings, prints bytes per sample on
//! the synthetic fleet mix for the Prometheus XOR chunk and for the packed codec with each
//! encoding turned off in turn, so the table shows what every encoding buys.

use criterion::{Criterion, criterion_group, criterion_main};
use osprey_tsdb::chunk::packed::{self, Choices};
use osprey_tsdb::chunk::{PackedIter, XorAppender, XorIter};
use osprey_tsdb::fleet::Fleet;
use osprey_tsdb::postings;
use std::hint::black_box;

/// Per series of a 200-series fleet: 7200 samples at 1 s (2 h), or at 15 s (`step_ms`).
fn fleet_series(step_ms: i64, n: usize) -> Vec<(String, Vec<i64>, Vec<f64>)> {
    let mut f = Fleet::new(2, 100, 11);
    let mut out: Vec<(String, Vec<i64>, Vec<f64>)> =
        f.labels.iter().map(|l| (l.get("__name__").unwrap_or("").to_owned(), Vec::new(), Vec::new())).collect();
    for k in 0..n {
        let vals = f.step().to_vec();
        for (s, v) in out.iter_mut().zip(vals) {
            s.1.push(1_700_000_000_000 + k as i64 * step_ms);
            s.2.push(v);
        }
    }
    out
}

fn xor_size(ts: &[i64], vs: &[f64]) -> usize {
    // Prometheus cuts XOR chunks at 120 samples.
    ts.chunks(120)
        .zip(vs.chunks(120))
        .map(|(t, v)| {
            let mut a = XorAppender::new();
            for (&t, &v) in t.iter().zip(v) {
                a.append(t, v);
            }
            a.bytes().len()
        })
        .sum()
}

fn packed_size(ts: &[i64], vs: &[f64], c: Choices) -> usize {
    ts.chunks(8192).zip(vs.chunks(8192)).map(|(t, v)| packed::encode_with(t, v, c).len()).sum()
}

type SizeFn = Box<dyn Fn(&[i64], &[f64]) -> usize>;

fn print_table() {
    for (label, step) in [("1 s", 1000), ("15 s", 15_000)] {
        let data = fleet_series(step, 7200 / (step as usize / 1000));
        let samples: usize = data.iter().map(|s| s.1.len()).sum();
        let all = Choices::default();
        let no_rice = Choices { rice: false, ..all };
        let variants: [(&str, SizeFn); 7] = [
            ("prometheus xor (120/chunk)", Box::new(xor_size)),
            (
                "packed: xor only",
                Box::new(move |t, v| {
                    packed_size(t, v, Choices { regular_ts: false, constant: false, max_scale: None, rice: false })
                }),
            ),
            (
                "packed: + regular ts",
                Box::new(move |t, v| packed_size(t, v, Choices { constant: false, max_scale: None, ..no_rice })),
            ),
            ("packed: + constant", Box::new(move |t, v| packed_size(t, v, Choices { max_scale: None, ..no_rice }))),
            ("packed: + integers", Box::new(move |t, v| packed_size(t, v, Choices { max_scale: Some(0), ..no_rice }))),
            ("packed: + decimals", Box::new(move |t, v| packed_size(t, v, no_rice))),
            ("packed: + rice (all)", Box::new(move |t, v| packed_size(t, v, all))),
        ];
        println!("\nfleet mix at {label}: {} series x {} samples; chunk bytes per sample", data.len(), data[0].1.len());
        for (name, f) in &variants {
            let bytes: usize = data.iter().map(|s| f(&s.1, &s.2)).sum();
            println!("  {name:<28} {:>7.3}", bytes as f64 / samples as f64);
        }
    }
}

fn bench(c: &mut Criterion) {
    print_table();
    let data = fleet_series(15_000, 480);
    let busy = data.iter().find(|s| s.0.contains("receive_bytes")).expect("counter");
    let (ts, vs) = (&busy.1, &busy.2);
    let mut g = c.benchmark_group("codec_480_counter_samples");
    g.bench_function("xor_encode", |b| {
        b.iter(|| {
            let mut a = XorAppender::new();
            for (&t, &v) in ts.iter().zip(vs.iter()).take(480) {
                a.append(t, v);
            }
            black_box(a.bytes().len())
        });
    });
    let mut a = XorAppender::new();
    for (&t, &v) in ts.iter().zip(vs.iter()).take(480) {
        a.append(t, v);
    }
    let xor = a.bytes().to_vec();
    g.bench_function("xor_decode", |b| b.iter(|| black_box(XorIter::new(&xor).count())));
    g.bench_function("packed_encode", |b| b.iter(|| black_box(packed::encode(ts, vs).len())));
    let p = packed::encode(ts, vs);
    g.bench_function("packed_decode", |b| b.iter(|| black_box(PackedIter::new(&p).map_or(0, Iterator::count))));
    g.finish();

    let a: Vec<u32> = (0..1_000_000).step_by(3).collect();
    let b2: Vec<u32> = (0..1_000_000).step_by(7).collect();
    let small: Vec<u32> = (0..1_000_000).step_by(9973).collect();
    let mut g = c.benchmark_group("postings");
    g.bench_function("intersect_333k_143k", |b| b.iter(|| black_box(postings::intersect(&a, &b2).len())));
    g.bench_function("intersect_100_333k", |b| b.iter(|| black_box(postings::intersect(&small, &a).len())));
    g.bench_function("union_333k_143k", |b| b.iter(|| black_box(postings::union(&[&a, &b2]).len())));
    g.bench_function("subtract_333k_143k", |b| b.iter(|| black_box(postings::subtract(&a, &b2).len())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
