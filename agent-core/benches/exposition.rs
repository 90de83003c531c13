//! Exposition hot paths: encoder samples/s (text and OpenMetrics) on a node_exporter-sized
//! synthetic registry, parser MB/s on node_exporter's e2e output.
//!
//! Run: `cargo bench -p agent-core --bench exposition`. Compare ratios, not absolute times:
//! the machines are shared. Numbers on the shared 2-core box (3 s runs): encode ≈ 5.1 M
//! samples/s text, ≈ 4.7 M OpenMetrics; parse ≈ 180 MiB/s text, ≈ 135 MiB/s OpenMetrics on
//! e2e-output.txt (377 KB, 1228 families, 3027 samples). perf: malloc/free of the owned
//! model strings is ~35% of sample parsing, SipHash lookups were ~10% before the
//! last-name cache in `parse::text`.

use std::hint::black_box;

use agent_core::encode::{Format, encode};
use agent_core::model::{MetricFamily, MetricType, Sample, Suffix, normalize};
use agent_core::parse::{Limits, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// About 2000 series shaped like node_exporter's: per-CPU counters, per-device and
/// per-mount gauges, a few histograms, long label values.
fn node_like() -> Vec<MetricFamily> {
    let mut fams = Vec::new();
    let mut cpu =
        MetricFamily::new("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", MetricType::Counter);
    for c in 0..32 {
        for mode in ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"] {
            cpu.push(&[("cpu", &c.to_string()), ("mode", mode)], 12_345.67 + f64::from(c));
        }
    }
    fams.push(cpu);
    for metric in [
        "read_bytes_total",
        "written_bytes_total",
        "reads_completed_total",
        "writes_completed_total",
        "io_time_seconds_total",
    ] {
        let mut f = MetricFamily::new(format!("node_disk_{metric}"), "Disk statistic.", MetricType::Counter);
        for d in 0..40 {
            f.push(&[("device", &format!("nvme{d}n1"))], 1.234_567_89e12 * f64::from(d + 1));
        }
        fams.push(f);
    }
    for metric in ["avail_bytes", "free_bytes", "size_bytes", "files", "files_free", "readonly"] {
        let mut f = MetricFamily::new(format!("node_filesystem_{metric}"), "Filesystem statistic.", MetricType::Gauge);
        for m in 0..50 {
            let mount = format!("/var/lib/kubelet/pods/{m:08x}-aaaa-bbbb-cccc/volumes/kubernetes.io~empty-dir");
            f.push(&[("device", "/dev/mapper/vg0-root"), ("fstype", "ext4"), ("mountpoint", &mount)], 9.87e10);
        }
        fams.push(f);
    }
    for metric in [
        "receive_bytes_total",
        "transmit_bytes_total",
        "receive_packets_total",
        "transmit_packets_total",
        "receive_drop_total",
        "transmit_drop_total",
    ] {
        let mut f =
            MetricFamily::new(format!("node_network_{metric}"), "Network device statistic.", MetricType::Counter);
        for i in 0..100 {
            f.push(&[("device", &format!("veth{i:06x}"))], f64::from(i) * 1_000.5);
        }
        fams.push(f);
    }
    for g in 0..300 {
        let mut f =
            MetricFamily::new(format!("node_memory_Thing{g}_bytes"), "Memory information field.", MetricType::Gauge);
        f.push(&[], 1.6e10 + f64::from(g));
        fams.push(f);
    }
    let mut h = MetricFamily::new("osprey_scrape_duration_seconds", "Scrape durations.", MetricType::Histogram);
    for collector in ["cpu", "diskstats", "filesystem", "meminfo", "netdev", "systemd"] {
        for le in ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"] {
            let mut s = Sample::new(vec![("collector".into(), collector.into()), ("le".into(), le.into())], 42.0);
            s.suffix = Suffix::Bucket;
            h.samples.push(s);
        }
        for suffix in [Suffix::Sum, Suffix::Count] {
            let mut s = Sample::new(vec![("collector".into(), collector.into())], 3.25);
            s.suffix = suffix;
            h.samples.push(s);
        }
    }
    fams.push(h);
    normalize(&mut fams);
    fams
}

fn encoder(c: &mut Criterion) {
    let fams = node_like();
    let samples: usize = fams.iter().map(|f| f.samples.len()).sum();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(samples as u64));
    let mut out = Vec::with_capacity(1 << 20);
    for (name, format) in [("text", Format::Text), ("openmetrics", Format::OpenMetrics)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode(&mut out, black_box(&fams), format);
                black_box(out.len())
            });
        });
    }
    g.finish();
}

fn parser(c: &mut Criterion) {
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/node_exporter/fixtures/e2e-output.txt");
    // Fall back to the synthetic set where the conformance data is not checked out.
    let text = std::fs::read(e2e).unwrap_or_else(|_| {
        let mut out = Vec::new();
        encode(&mut out, &node_like(), Format::Text);
        out
    });
    let limits = Limits::default();
    let Ok(fams) = parse(&text, Format::Text, &limits) else { panic!("bench input does not parse") };
    let mut om = Vec::new();
    encode(&mut om, &fams, Format::OpenMetrics);
    let mut g = c.benchmark_group("parse");
    for (name, format, input) in [("text", Format::Text, &text), ("openmetrics", Format::OpenMetrics, &om)] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse(black_box(input), format, &limits).map(|f| f.len())));
    }
    g.finish();
}

criterion_group!(benches, encoder, parser);
criterion_main!(benches);
