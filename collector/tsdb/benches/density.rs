//! Density and head benchmarks (run by hand: `cargo bench -p osprey-tsdb --bench density`).
//!
//! 1. Bytes per sample on disk for the fleet mix at 1 s over one 2 h block: Osprey's block
//!    (cut from the head) vs the Prometheus block `promtool tsdb create-blocks-from
//!    openmetrics` builds from the same samples.
//! 2. Head RSS per active series, append throughput on one core, WAL replay time and peak
//!    RSS (in a fresh process), and `select` latency for 1 / 1 000 / 100 000 series.
//!
//! Sizes: `OSPREY_BENCH_DENSITY_SERIES` (default 1000), `OSPREY_BENCH_SERIES` (default
//! 1 000 000), `OSPREY_BENCH_SCRAPES` (default 240, i.e. 1 h at 15 s);
//! `OSPREY_BENCH_SKIP_DENSITY=1` runs only part 2.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use osprey_tsdb::fleet::Fleet;
use osprey_tsdb::{Db, MatchOp, Matcher, Options};

mod common;
use common::{env_usize, status_kb};

/// User + system CPU seconds of this process so far.
fn process_cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<u64>().ok()).sum();
    ticks as f64 / 100.0
}

fn opts(block_range_ms: i64) -> Options {
    Options { block_range_ms, maintenance_interval: None, retention_time_ms: None, ..Options::default() }
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("osprey-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("tmp");
    p
}

fn dir_bytes(p: &Path) -> u64 {
    osprey_tsdb::wal::dir_size(p)
}

fn density() {
    let n = env_usize("OSPREY_BENCH_DENSITY_SERIES", 1000);
    let scrapes: usize = 7200;
    let t0 = 1_700_006_400_000i64; // 2 h aligned
    let dir = tmp("density");
    let mut fleet = Fleet::new(n.div_ceil(100), 100, 3);
    let db = Db::open(dir.join("osprey"), opts(7_200_000)).expect("open");
    let om_path = dir.join("fleet.om");
    let mut om = std::io::BufWriter::new(std::fs::File::create(&om_path).expect("om"));
    let mut lines: Vec<Vec<u8>> = vec![Vec::new(); fleet.len()];
    let prom = which("promtool");
    // 3 h of scrapes so the head cuts the first 2 h into a block.
    for k in 0..=scrapes * 3 / 2 {
        let t = t0 + k as i64 * 1000;
        let vals = fleet.step().to_vec();
        let mut app = db.appender();
        for (i, (l, v)) in fleet.labels.iter().zip(&vals).enumerate() {
            app.append(l, t, *v).expect("append");
            if prom.is_some() && k < scrapes {
                let _ = writeln!(lines[i], "{} {v:?} {}.{:03}", om_series(l), t / 1000, t % 1000);
            }
        }
        app.commit().expect("commit");
        if k + 1 == scrapes && prom.is_some() {
            for l in &lines {
                om.write_all(l).expect("write om");
            }
            lines = Vec::new();
        }
    }
    let (cpu0, wall) = (process_cpu_secs(), Instant::now());
    db.maintain().expect("cut");
    let cut_cpu = process_cpu_secs() - cpu0;
    let blocks = db.blocks();
    let b = blocks.first().expect("a block was cut");
    let ours = b.stats.num_bytes as f64 / b.stats.num_samples as f64;
    println!("density: fleet mix, {} series x {scrapes} samples at 1 s (one 2 h block)", fleet.len());
    println!("  osprey block: {} bytes, {} samples, {ours:.3} B/sample", b.stats.num_bytes, b.stats.num_samples);
    println!("  head cut (maintain) of that block: {:?} wall, {cut_cpu:.2} s CPU", wall.elapsed());
    if let Some(promtool) = prom {
        om.write_all(b"# EOF\n").expect("eof");
        drop(om);
        let out = dir.join("prom");
        let started = Instant::now();
        let st = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(&om_path)
            .arg(&out)
            .status()
            .expect("promtool");
        assert!(st.success(), "promtool failed");
        let pb = dir_bytes(&out);
        let theirs = pb as f64 / b.stats.num_samples as f64;
        println!("  prometheus blocks (promtool, {:?}): {pb} bytes, {theirs:.3} B/sample", started.elapsed());
        println!("  ratio osprey/prometheus: {:.3}", ours / theirs);
    } else {
        println!("  promtool not on PATH: no Prometheus comparison");
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

fn om_series(l: &osprey_tsdb::Labels) -> String {
    let rest: Vec<String> = l.iter().filter(|(n, _)| *n != "__name__").map(|(n, v)| format!("{n}=\"{v}\"")).collect();
    format!("{}{{{}}}", l.get("__name__").unwrap_or(""), rest.join(","))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
}

fn head() {
    let n = env_usize("OSPREY_BENCH_SERIES", 1_000_000);
    let scrapes = env_usize("OSPREY_BENCH_SCRAPES", 240);
    let dir = tmp("head");
    let mut fleet = Fleet::new(n.div_ceil(1000), 1000.min(n), 5);
    let db = Db::open(&dir, opts(7_200_000)).expect("open");
    let before = status_kb("VmRSS:");
    let t0 = 1_700_006_400_000i64;
    let started = Instant::now();
    let per_target = 1000.min(n);
    for k in 0..scrapes {
        let t = t0 + k as i64 * 15_000;
        let vals = fleet.step().to_vec();
        for (ls, vs) in fleet.labels.chunks(per_target).zip(vals.chunks(per_target)) {
            let mut app = db.appender();
            for (l, v) in ls.iter().zip(vs) {
                app.append(l, t, *v).expect("append");
            }
            app.commit().expect("commit");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let after = status_kb("VmRSS:");
    let samples = (n * scrapes) as f64;
    println!("head: {n} series x {scrapes} samples at 15 s");
    println!("  append throughput (one thread, WAL on): {:.0} samples/s", samples / secs);
    println!(
        "  RSS growth {} MiB = {:.0} bytes per active series (sample data {:.0} B/series)",
        (after - before) / 1024,
        (after - before) as f64 * 1024.0 / n as f64,
        db.head_sample_bytes() as f64 / n as f64
    );
    for (what, ms) in [
        ("1 series", vec![Matcher::eq("instance", "host-0000:9100"), Matcher::eq("device", "5")]),
        ("1000 series", vec![Matcher::eq("instance", "host-0000:9100")]),
        ("100000 series", vec![Matcher::new(MatchOp::Re, "instance", "host-00[0-9][0-9]:9100").expect("re")]),
    ] {
        let q = db.querier(i64::MIN, i64::MAX);
        let started = Instant::now();
        let sel = q.select(&ms);
        let count: usize = sel.iter().map(|s| s.samples().count()).sum();
        println!("  select {what}: {} series, {count} samples in {:?}", sel.len(), started.elapsed());
    }
    db.close().expect("close");
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe).arg("--replay").arg(&dir).output().expect("replay run");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

fn replay(dir: &str) {
    let base = status_kb("VmHWM:");
    let started = Instant::now();
    let db = Db::open(dir, opts(7_200_000)).expect("reopen");
    println!(
        "  WAL replay: {} series in {:?}, peak RSS {} MiB (process start {} MiB)",
        db.stats().head_series,
        started.elapsed(),
        status_kb("VmHWM:") / 1024,
        base / 1024
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--replay") {
        replay(&args[i + 1]);
        return;
    }
    if std::env::var_os("OSPREY_BENCH_SKIP_DENSITY").is_none() {
        density();
    }
    head();
}
