//! Import paths against real Prometheus data: promtool builds blocks from an OpenMetrics file;
//! `import_prometheus` must reproduce every sample, and `import_openmetrics` the same data.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use crate::common::{TempDir, dump, test_opts};
use osprey_tsdb::fleet::Fleet;
use osprey_tsdb::{Db, import_openmetrics, import_prometheus};

/// A peer program from PATH; with `OSPREY_REQUIRE_PEERS=1` a missing peer fails the test.
fn peer(name: &str) -> Option<PathBuf> {
    let found =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        assert!(
            std::env::var("OSPREY_REQUIRE_PEERS").as_deref() != Ok("1"),
            "peer {name} not found on PATH and OSPREY_REQUIRE_PEERS=1 (install it: see .ci/run)"
        );
        eprintln!("SKIP: peer {name} not on PATH (set OSPREY_REQUIRE_PEERS=1 to make this a failure)");
    }
    found
}

/// Writes the fleet as OpenMetrics (series contiguous) and returns the expected data.
fn write_openmetrics(
    path: &std::path::Path,
    targets: usize,
    per: usize,
    scrapes: usize,
) -> Vec<(osprey_tsdb::Labels, Vec<(i64, u64)>)> {
    let mut fleet = Fleet::new(targets, per, 7);
    let start = 1_700_000_000_000i64;
    let mut per_series: Vec<Vec<(i64, f64)>> = vec![Vec::new(); fleet.len()];
    for k in 0..scrapes {
        let t = start + k as i64 * 15_000 + (k as i64 % 3);
        for (i, v) in fleet.step().iter().enumerate() {
            per_series[i].push((t, *v));
        }
    }
    // A series with special values.
    let special = osprey_tsdb::Labels::from_pairs([("__name__", "special"), ("q", "a\"b\\c")]);
    let special_samples =
        vec![(start, f64::INFINITY), (start + 1000, f64::NEG_INFINITY), (start + 2000, -0.0), (start + 3000, 1e-300)];
    let mut text = String::new();
    let mut expected = Vec::new();
    for (l, s) in fleet.labels.iter().zip(&per_series).chain([(&special, &special_samples)]) {
        for &(t, v) in s {
            let name = l.get("__name__").unwrap_or_default();
            let labels: Vec<String> = l
                .iter()
                .filter(|(n, _)| *n != "__name__")
                .map(|(n, v)| format!("{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let val = if v == f64::INFINITY {
                "+Inf".to_owned()
            } else if v == f64::NEG_INFINITY {
                "-Inf".to_owned()
            } else {
                format!("{v:?}")
            };
            let _ = writeln!(text, "{name}{{{}}} {val} {}.{:03}", labels.join(","), t / 1000, t % 1000);
        }
        expected.push((l.clone(), s.iter().map(|&(t, v)| (t, v.to_bits())).collect()));
    }
    text.push_str("# EOF\n");
    std::fs::write(path, text).expect("write openmetrics");
    expected.sort();
    expected
}

#[test]
fn promtool_blocks_import_sample_exact_and_match_openmetrics_import() {
    let Some(promtool) = peer("promtool") else { return };
    let dir = TempDir::new("import");
    let om = dir.0.join("input.om");
    // 3.5 h at 15 s: spans two 2 h windows.
    let expected = write_openmetrics(&om, 3, 50, 840);
    let prom = dir.0.join("prom");
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&prom)
        .output()
        .expect("run promtool");
    assert!(out.status.success(), "promtool failed: {}", String::from_utf8_lossy(&out.stderr));

    let from_prom = dir.0.join("from-prom");
    let r1 = import_prometheus(&prom, &from_prom).expect("import-prometheus");
    assert!(r1.blocks >= 2, "{r1:?}");
    let from_om = dir.0.join("from-om");
    let r2 = import_openmetrics(&om, &from_om).expect("import-openmetrics");
    assert_eq!(r1.samples, r2.samples);

    let db1 = Db::open(&from_prom, test_opts(7_200_000)).expect("open");
    let got1 = dump(&db1, i64::MIN, i64::MAX);
    assert_eq!(got1.len(), expected.len());
    assert_eq!(got1, expected, "every sample from the Prometheus blocks matches the input");
    let db2 = Db::open(&from_om, test_opts(7_200_000)).expect("open");
    assert_eq!(dump(&db2, i64::MIN, i64::MAX), got1, "both import paths give identical data");

    // Density side by side (the benchmark does this at scale).
    let prom_bytes: u64 = walk(&prom);
    let ours: u64 = db1.blocks().iter().map(|b| b.stats.num_bytes).sum();
    eprintln!("promtool blocks {prom_bytes} B, osprey blocks {ours} B, ratio {:.3}", ours as f64 / prom_bytes as f64);
    assert!(ours < prom_bytes, "osprey blocks must be smaller than Prometheus's");
}

fn walk(p: &std::path::Path) -> u64 {
    osprey_tsdb::wal::dir_size(p)
}

#[test]
fn bad_openmetrics_input_names_file_and_line() {
    let dir = TempDir::new("badom");
    let f = dir.0.join("bad.om");
    std::fs::write(&f, "up{job=\"a\"} 1 100\nup{job=\"a\" 2 200\n# EOF\n").expect("write");
    let err = import_openmetrics(&f, &dir.0.join("data")).expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("bad.om:2:"), "{msg}");
    std::fs::write(&f, "up 1 100\n").expect("write");
    let msg = import_openmetrics(&f, &dir.0.join("data")).expect_err("must fail").to_string();
    assert!(msg.contains("# EOF"), "{msg}");
    std::fs::write(&f, "up 1\n# EOF\n").expect("write");
    let msg = import_openmetrics(&f, &dir.0.join("data")).expect_err("must fail").to_string();
    assert!(msg.contains("bad.om:1: expected a timestamp"), "{msg}");
}

#[test]
fn analyze_reports_blocks_and_bytes_per_sample() {
    let dir = TempDir::new("analyze");
    let om = dir.0.join("in.om");
    write_openmetrics(&om, 2, 20, 600);
    let data = dir.0.join("data");
    let r = import_openmetrics(&om, &data).expect("import");
    let rep = osprey_tsdb::analyze(&data).expect("analyze");
    assert_eq!(rep.blocks.len() as u64, r.blocks);
    assert_eq!(rep.blocks.iter().map(|b| b.samples).sum::<u64>(), r.samples);
    assert!(rep.bytes_per_sample() > 0.0 && rep.bytes_per_sample() < 4.0, "{}", rep);
    let text = rep.to_string();
    assert!(text.contains("total bytes per sample") && text.contains("instance"), "{text}");
    // The breakdown accounts for every byte and every sample.
    for b in &rep.blocks {
        let s = &b.breakdown.sections;
        let sum = s.chunks + s.symbols + s.series + s.series_table + s.postings + s.postings_table + s.toc;
        assert_eq!(sum, b.bytes, "{s:?}");
        let ts: u64 = b.breakdown.timestamps.values().map(|u| u.samples).sum();
        let vs: u64 = b.breakdown.values.values().map(|u| u.samples).sum();
        assert_eq!((ts, vs), (b.samples, b.samples));
        assert_eq!(b.breakdown.timestamps.values().map(|u| u.chunks).sum::<u64>(), b.chunks);
    }
    assert!(text.contains("chunk bits by encoding") && text.contains("timestamps") && text.contains("series labels"));
}
