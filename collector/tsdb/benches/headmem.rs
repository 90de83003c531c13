//! Head memory on issue 7's benchmark fleet, without the network (run by hand:
//! `cargo bench -p osprey-tsdb --bench headmem`): 100 targets × 1000 series (+5 synthetic
//! series each) appended at 1 s with 2 m blocks and a maintenance round every 30 s, as the
//! collector does under `benches/collector_vs_prometheus.sh`. Every minute it prints the
//! head's bytes per series by structure (`Db::head_memory`) and the process RSS.
//!
//! The series mirror the fleet simulator (`osprey-fleet-sim`): integer counters, gauges
//! rounded to integers, counters with three decimals and constants, 20 series per family.
//! Sizes: `OSPREY_BENCH_TARGETS` (100), `OSPREY_BENCH_SERIES` (1000),
//! `OSPREY_BENCH_SECONDS` (360).

use std::time::Instant;

use osprey_tsdb::{Db, Labels, Options};

mod common;
use common::{env_usize, status_kb};

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

struct Series {
    labels: Labels,
    shape: u8,
    a: f64,
    b: f64,
}

fn target(index: usize, count: usize) -> Vec<Series> {
    let methods = ["get", "post", "put", "delete"];
    let codes = ["200", "404", "500", "503", "301"];
    let instance = format!("127.0.0.1:{}", 40_000 + index);
    let mut out = Vec::with_capacity(count + 5);
    for i in 0..count {
        let (fam, j) = (i / 20, i % 20);
        let shape = (fam % 4) as u8;
        let name = match shape {
            0 => format!("fleet_http_requests_{fam}_total"),
            1 => format!("fleet_queue_depth_{fam}"),
            2 => format!("fleet_cpu_seconds_{fam}_total"),
            _ => format!("fleet_limit_bytes_{fam}"),
        };
        let mut l: Vec<(String, String)> =
            vec![("__name__".into(), name), ("instance".into(), instance.clone()), ("job".into(), "fleet".into())];
        match shape {
            0 => {
                l.push(("code".into(), codes[j % 5].into()));
                l.push(("handler".into(), format!("/api/v1/h{}", j / 5)));
                l.push(("method".into(), methods[j % 4].into()));
            }
            1 => {
                l.push(("queue".into(), format!("q{j}")));
                l.push(("shard".into(), (j % 3).to_string()));
            }
            2 => {
                l.push(("cpu".into(), j.to_string()));
                l.push(("mode".into(), ["user", "system", "idle", "iowait"][j % 4].into()));
            }
            _ => l.push(("resource".into(), format!("r{j}"))),
        }
        let seed = (index as u64) << 32 | i as u64;
        let (a, b) = match shape {
            0 => (0.1 + 50.0 * unit(seed), 1e6 * unit(seed ^ 1)),
            1 => (10.0 + 100.0 * unit(seed), 300.0 * unit(seed ^ 3)),
            2 => (0.01 + unit(seed), 1e5 * unit(seed ^ 2)),
            _ => ((1u64 << (20 + mix(seed) % 10)) as f64, 0.0),
        };
        out.push(Series { labels: Labels::from_owned(l), shape, a, b });
    }
    for name in [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        let l = Labels::from_pairs([("__name__", name), ("instance", &instance), ("job", "fleet")]);
        out.push(Series { labels: l, shape: 4, a: count as f64, b: 0.0 });
    }
    out
}

fn value(s: &Series, t: f64, rng: u64) -> f64 {
    match s.shape {
        0 => (s.b + s.a * (t % 1e7)).floor(),
        1 => (s.a * 2.0 + s.a * (std::f64::consts::TAU * t / (60.0 + s.b)).sin()).round(),
        2 => ((s.b + s.a * (t % 1e7)) * 1000.0).round() / 1000.0,
        3 => s.a,
        _ if s.labels.get("__name__") == Some("scrape_duration_seconds") => 0.001 + unit(rng) * 0.01,
        _ if s.labels.get("__name__") == Some("up") => 1.0,
        _ if s.labels.get("__name__") == Some("scrape_series_added") => 0.0,
        _ => s.a,
    }
}

/// Bytes per sample of this fleet's series in one chunk of `n` samples, Gorilla vs packed.
fn chunk_sizes(fleet: &[Vec<Series>], n: usize) -> (f64, f64) {
    let (mut xor, mut packed, mut samples) = (0, 0, 0);
    for (ti, tgt) in fleet.iter().enumerate().take(10) {
        for (i, s) in tgt.iter().enumerate() {
            let mut a = osprey_tsdb::chunk::XorAppender::new();
            let (mut ts, mut vs) = (Vec::new(), Vec::new());
            for k in 0..n {
                let t = 1_700_000_040_000i64 + k as i64 * 1000 + (mix(ti as u64) % 1000) as i64;
                let v = value(s, t as f64 / 1000.0, (k * 7919 + i) as u64);
                a.append(t, v);
                ts.push(t);
                vs.push(v);
            }
            xor += a.bytes().len();
            packed += osprey_tsdb::chunk::packed::encode(&ts, &vs).len();
            samples += n;
        }
    }
    (xor as f64 / samples as f64, packed as f64 / samples as f64)
}

fn main() {
    let targets = env_usize("OSPREY_BENCH_TARGETS", 100);
    let n = env_usize("OSPREY_BENCH_SERIES", 1000);
    let seconds = env_usize("OSPREY_BENCH_SECONDS", 360);
    let dir = std::env::temp_dir().join(format!("osprey-bench-headmem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(
        &dir,
        Options { block_range_ms: 120_000, maintenance_interval: None, retention_time_ms: None, ..Options::default() },
    )
    .expect("open");
    let fleet: Vec<Vec<Series>> = (0..targets).map(|t| target(t, n)).collect();
    for n in [30, 60, 120, 240] {
        let (x, p) = chunk_sizes(&fleet, n);
        println!("chunk of {n} samples: Gorilla {x:.2} B/sample, packed {p:.2} B/sample");
    }
    let rss0 = status_kb("VmRSS:");
    let t0 = 1_700_000_040_000i64;
    let started = Instant::now();
    let mut commit_secs = 0.0;
    let mut sum = Vec::new();
    println!("{targets} targets x {n} series (+5) at 1 s, 2 m blocks; bytes per series:");
    for k in 0..seconds {
        for (ti, tgt) in fleet.iter().enumerate() {
            let t = t0 + k as i64 * 1000 + (mix(ti as u64) % 1000) as i64;
            let mut app = db.appender();
            for (i, s) in tgt.iter().enumerate() {
                let v = value(s, t as f64 / 1000.0, (k * 7919 + i) as u64);
                app.append(&s.labels, t, v).expect("append");
            }
            let c = Instant::now();
            app.commit().expect("commit");
            commit_secs += c.elapsed().as_secs_f64();
        }
        if k % 30 == 29 {
            db.maintain().expect("maintain");
        }
        if k >= 60 && k % 10 == 9 {
            let m = db.head_memory();
            sum.push(m);
        }
        if k % 60 == 44 {
            let m = db.head_memory();
            let per = |b: usize| b as f64 / m.series.max(1) as f64;
            println!(
                "t={:>4}s series {} | structs {:.0} labels {:.0} open {:.0} (used {:.0}) sealed {:.0} index {:.0} \
                 postings {:.0} symbols {:.0} = {:.0} (+{:.1} allocs) | RSS growth {:.0} B/series",
                k + 1,
                m.series,
                per(m.series_structs),
                per(m.labels),
                per(m.open_chunks),
                per(m.open_chunks_used),
                per(m.sealed_chunks),
                per(m.index_maps),
                per(m.postings),
                per(m.symbols),
                per(m.total()),
                per(m.allocations),
                (status_kb("VmRSS:") - rss0) as f64 * 1024.0 / m.series.max(1) as f64,
            );
        }
    }
    if !sum.is_empty() {
        let k = sum.len() as f64 * sum[0].series.max(1) as f64;
        let mean = |f: fn(&osprey_tsdb::head::HeadMemory) -> usize| sum.iter().map(f).sum::<usize>() as f64 / k;
        println!(
            "mean of {} snapshots (every 10 s after the first minute): structs {:.0} labels {:.0} open {:.0} \
             sealed {:.0} index {:.0} postings {:.0} symbols {:.0} = {:.0} B/series (+{:.1} allocs)",
            sum.len(),
            mean(|m| m.series_structs),
            mean(|m| m.labels),
            mean(|m| m.open_chunks),
            mean(|m| m.sealed_chunks),
            mean(|m| m.index_maps),
            mean(|m| m.postings),
            mean(|m| m.symbols),
            mean(osprey_tsdb::head::HeadMemory::total),
            mean(|m| m.allocations),
        );
    }
    let samples = (seconds * targets * (n + 5)) as f64;
    println!(
        "{samples:.0} samples in {:.1} s: {:.0} ns per sample in all, {:.0} ns per sample in commit",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() * 1e9 / samples,
        commit_secs * 1e9 / samples
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
