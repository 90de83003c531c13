//! Test helpers: run collectors over node_exporter's fixture tree and compare with upstream's
//! `e2e-output.txt`, family by family.

use std::collections::HashMap;
use std::path::PathBuf;

use agent_core::encode::{Format, encode};
use agent_core::model::normalize;
use agent_core::{HostPaths, Sink};

use crate::catalog::{Ctx, FlagKind, Value};
use crate::collectors::ALL;

/// `../shared/conformance/node_exporter` (or `$OSPREY_CONFORMANCE_DIR/node_exporter`).
pub fn conformance_dir() -> PathBuf {
    match std::env::var_os("OSPREY_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d).join("node_exporter"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/node_exporter"),
    }
}

/// The fixture tree upstream's e2e test runs on.
pub fn fixtures() -> PathBuf {
    conformance_dir().join("fixtures")
}

/// The non-default flags upstream's e2e run uses (from the conformance README).
pub fn e2e_flags() -> Vec<(&'static str, Value)> {
    let s = |v: &str| Value::Str(v.to_owned());
    let fx = fixtures();
    vec![
        ("collector.cpu.info", Value::Bool(true)),
        ("collector.cpu.info.bugs-include", s("^(cpu_meltdown|spectre_.*|mds)$")),
        ("collector.cpu.info.flags-include", s("^(aes|avx.?|constant_tsc)$")),
        ("collector.arp.device-exclude", s("nope")),
        ("collector.arp.netlink", Value::Bool(false)),
        ("collector.bcache.priorityStats", Value::Bool(true)),
        ("collector.hwmon.chip-include", s("(applesmc|asus_nb_wmi|coretemp|hwmon4|ieee80211|nct6779)")),
        ("collector.netclass.ignore-invalid-speed", Value::Bool(true)),
        ("collector.netclass.ignored-devices", s("(dmz|int)")),
        ("collector.netdev.device-include", s("lo")),
        ("collector.qdisc.device-include", s("(wlan0|eth0)")),
        ("collector.stat.softirq", Value::Bool(true)),
        ("collector.sysctl.include-info", Value::List(vec!["kernel.seccomp.actions_avail".to_owned()])),
        (
            "collector.sysctl.include",
            Value::List(
                ["fs.file-nr", "fs.file-nr:total,current,max", "kernel.threads-max"].map(str::to_owned).to_vec(),
            ),
        ),
        ("collector.textfile.directory", s(&fx.join("textfile/two_metric_files/").to_string_lossy())),
    ]
}

/// A context with every flag at its default, the fixture paths, and `overrides` applied.
pub fn fixture_ctx(overrides: &[(&str, Value)]) -> Ctx {
    let fx = fixtures();
    let paths = HostPaths {
        procfs: fx.join("proc"),
        sysfs: fx.join("sys"),
        rootfs: fx.clone(),
        udev_data: fx.join("udev/data"),
    };
    let mut values = HashMap::new();
    for def in ALL {
        for f in def.flags {
            let v = match f.kind {
                FlagKind::Bool(b) => Value::Bool(b),
                FlagKind::Str(s) => Value::Str(s.to_owned()),
                FlagKind::List => Value::List(Vec::new()),
            };
            values.insert(f.name.to_owned(), v);
        }
    }
    // Collector toggles, as cli.rs records them (upstream's e2e run enables cpufreq).
    for def in ALL {
        values.insert(format!("collector.{}", def.name), Value::Bool(def.default_enabled));
    }
    values.insert("collector.cpufreq".to_owned(), Value::Bool(true));
    for (k, v) in overrides {
        values.insert((*k).to_owned(), v.clone());
    }
    Ctx { paths, values }
}

/// Runs collector `name` once over the fixtures with upstream's e2e flags; returns text 0.0.4.
pub fn run_on_fixtures(name: &str) -> String {
    let def = ALL.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("no collector {name}"));
    let ctx = fixture_ctx(&e2e_flags());
    let c = (def.build)(&ctx).unwrap_or_else(|e| panic!("building {name}: {e:#}"));
    render(c.as_ref())
}

/// One collection by `c`, as sorted text exposition; panics if it fails.
pub fn render(c: &dyn agent_core::Collector) -> String {
    let mut sink = Sink::new();
    if let Err(e) = c.collect(&mut sink) {
        panic!("collector {} failed: {e}", c.name());
    }
    let mut fams = sink.into_families();
    normalize(&mut fams);
    let mut out = Vec::new();
    encode(&mut out, &fams, Format::Text);
    String::from_utf8(out).expect("utf-8")
}

/// Upstream's filter of run-dependent lines.
fn upstream_filtered(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "go_",
        "node_exporter_build_info",
        "node_scrape_collector_duration_seconds",
        "process_",
        "node_textfile_mtime_seconds",
        "node_time_zone",
        "node_time_seconds",
    ];
    PREFIXES.iter().any(|p| line.starts_with(p))
        || ["node_network_receive_", "node_network_transmit_"].iter().any(|p| {
            line.strip_prefix(p).is_some_and(|r| r.starts_with("bytes_total") || r.starts_with("packets_total"))
        })
}

/// The family a line of exposition text belongs to (HELP/TYPE name, or sample name).
fn line_family(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
        rest.split(' ').next().unwrap_or("")
    } else {
        line.split(['{', ' ']).next().unwrap_or("")
    }
}

/// Lines of `text` (upstream-filtered) whose family satisfies `pick`.
pub fn select_lines(text: &str, pick: &dyn Fn(&str) -> bool) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty() && !upstream_filtered(l))
        .filter(|l| {
            let fam = line_family(l);
            pick(fam) || ["_bucket", "_sum", "_count"].iter().any(|s| fam.strip_suffix(s).is_some_and(pick))
        })
        .map(str::to_owned)
        .collect()
}

/// Asserts that collector `name` on the fixtures prints exactly the e2e lines of the
/// families selected by `pick` (and nothing else).
pub fn assert_matches_e2e(name: &str, pick: &dyn Fn(&str) -> bool) {
    assert_matches_e2e_mapped(name, pick, &str::to_owned);
}

/// Like [`assert_matches_e2e`], with `map` applied to our output first (e.g. to print the
/// absolute fixture paths our run uses as upstream's relative ones).
pub fn assert_matches_e2e_mapped(name: &str, pick: &dyn Fn(&str) -> bool, map: &dyn Fn(&str) -> String) {
    let expected_text = std::fs::read_to_string(fixtures().join("e2e-output.txt")).expect("e2e-output.txt");
    let expected = select_lines(&expected_text, pick);
    let ours_text = map(&run_on_fixtures(name));
    let ours: Vec<String> = ours_text.lines().filter(|l| !upstream_filtered(l)).map(str::to_owned).collect();
    if expected != ours {
        let missing: Vec<_> = expected.iter().filter(|l| !ours.contains(l)).collect();
        let extra: Vec<_> = ours.iter().filter(|l| !expected.contains(l)).collect();
        panic!(
            "collector {name} differs from e2e-output.txt\n--- missing ({}):\n{}\n--- unexpected ({}):\n{}\n--- order differs: {}",
            missing.len(),
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
            extra.len(),
            extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
            missing.is_empty() && extra.is_empty()
        );
    }
}
