//! The collector over the fixture trees (see `fixtures/README.md`).

use std::collections::HashMap;

use agent_core::encode::{Format, encode};
use agent_core::model::normalize;

use super::*;
use crate::catalog::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/collectors/cgroup/fixtures")
}

fn ctx(sysfs: &Path, flags: &[(&str, Value)]) -> Ctx {
    let mut values = HashMap::new();
    for f in DEF.flags {
        let v = match f.kind {
            FlagKind::Bool(b) => Value::Bool(b),
            FlagKind::Str(s) => Value::Str(s.to_owned()),
            FlagKind::List => Value::List(Vec::new()),
        };
        values.insert(f.name.to_owned(), v);
    }
    for (k, v) in flags {
        values.insert((*k).to_owned(), v.clone());
    }
    Ctx { paths: HostPaths { sysfs: sysfs.to_owned(), ..HostPaths::default() }, values }
}

fn text(sysfs: &Path, flags: &[(&str, Value)]) -> String {
    let c = (DEF.build)(&ctx(sysfs, flags)).unwrap();
    let mut sink = Sink::new();
    c.collect(&mut sink).unwrap();
    let mut fams = sink.into_families();
    normalize(&mut fams);
    let mut out = Vec::new();
    encode(&mut out, &fams, Format::Text);
    String::from_utf8(out).unwrap()
}

fn unit_lines(text: &str, unit: &str) -> Vec<String> {
    let needle = format!("name=\"{unit}\"");
    text.lines().filter(|l| !l.starts_with('#') && l.contains(&needle)).map(str::to_owned).collect()
}

fn units(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.split("name=\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn v2_service_with_every_controller() {
    let t = text(&fixtures().join("v2/sys"), &[]);
    let got = unit_lines(&t, "nginx.service");
    let want = vec![
        "osprey_service_cpu_throttled_seconds_total{name=\"nginx.service\"} 1.203811",
        "osprey_service_io_read_bytes_total{device=\"259:7\",name=\"nginx.service\"} 0",
        "osprey_service_io_read_bytes_total{device=\"vda\",name=\"nginx.service\"} 2.215936e+06",
        "osprey_service_io_read_bytes_total{device=\"zram0\",name=\"nginx.service\"} 4096",
        "osprey_service_io_reads_total{device=\"259:7\",name=\"nginx.service\"} 0",
        "osprey_service_io_reads_total{device=\"vda\",name=\"nginx.service\"} 112",
        "osprey_service_io_reads_total{device=\"zram0\",name=\"nginx.service\"} 1",
        "osprey_service_io_writes_total{device=\"259:7\",name=\"nginx.service\"} 2",
        "osprey_service_io_writes_total{device=\"vda\",name=\"nginx.service\"} 61",
        "osprey_service_io_writes_total{device=\"zram0\",name=\"nginx.service\"} 293",
        "osprey_service_io_written_bytes_total{device=\"259:7\",name=\"nginx.service\"} 8192",
        "osprey_service_io_written_bytes_total{device=\"vda\",name=\"nginx.service\"} 487424",
        "osprey_service_io_written_bytes_total{device=\"zram0\",name=\"nginx.service\"} 1.200128e+06",
        "osprey_service_memory_bytes{name=\"nginx.service\"} 9.433088e+06",
        "osprey_service_memory_peak_bytes{name=\"nginx.service\"} 1.4229504e+07",
        "osprey_service_pressure_cpu_stalled_seconds_total{name=\"nginx.service\"} 0.002804",
        "osprey_service_pressure_cpu_waiting_seconds_total{name=\"nginx.service\"} 0.002805",
        "osprey_service_pressure_io_stalled_seconds_total{name=\"nginx.service\"} 4.656745",
        "osprey_service_pressure_io_waiting_seconds_total{name=\"nginx.service\"} 5.004639",
        "osprey_service_pressure_memory_stalled_seconds_total{name=\"nginx.service\"} 0",
        "osprey_service_pressure_memory_waiting_seconds_total{name=\"nginx.service\"} 0",
        "osprey_service_swap_bytes{name=\"nginx.service\"} 0",
        "systemd_unit_cpu_seconds_total{mode=\"system\",name=\"nginx.service\",type=\"service\"} 31.020522",
        "systemd_unit_cpu_seconds_total{mode=\"user\",name=\"nginx.service\",type=\"service\"} 85.206132",
        "systemd_unit_tasks_current{name=\"nginx.service\"} 5",
        "systemd_unit_tasks_max{name=\"nginx.service\",type=\"service\"} 4915",
    ];
    assert_eq!(got, want, "full output:\n{t}");
    assert!(t.contains("# TYPE systemd_unit_cpu_seconds_total counter"));
    assert!(t.contains("# TYPE osprey_service_memory_bytes gauge"));
}

#[test]
fn controllers_not_enabled_leave_their_metrics_out() {
    let t = text(&fixtures().join("v2/sys"), &[]);
    // cron.service: real files of a subtree with only the core and PSI files.
    let cron = unit_lines(&t, "cron.service");
    assert!(
        cron.iter().any(|l| l.starts_with("systemd_unit_cpu_seconds_total{mode=\"user\"") && l.ends_with(" 0.998781"))
    );
    assert!(cron.iter().any(|l| l.starts_with("osprey_service_pressure_io_waiting_seconds_total")));
    for absent in ["osprey_service_memory", "osprey_service_io_", "systemd_unit_tasks", "osprey_service_cpu_throttled"]
    {
        assert!(!cron.iter().any(|l| l.starts_with(absent)), "{absent} for cron: {cron:?}");
    }
    // getty: pids.max = "max" means no limit series.
    let getty = unit_lines(&t, "getty@tty1.service");
    assert!(getty.iter().any(|l| l.starts_with("systemd_unit_tasks_current")));
    assert!(!getty.iter().any(|l| l.starts_with("systemd_unit_tasks_max")), "{getty:?}");
}

#[test]
fn slices_and_scopes_are_opt_in_and_user_units_are_not_walked() {
    let sys = fixtures().join("v2/sys");
    let t = text(&sys, &[]);
    assert_eq!(units(&t), ["cron.service", "getty@tty1.service", "nginx.service", "user@1000.service"]);
    let t =
        text(&sys, &[("collector.cgroup.slices", Value::Bool(true)), ("collector.cgroup.scopes", Value::Bool(true))]);
    assert_eq!(
        units(&t),
        [
            "cron.service",
            "getty@tty1.service",
            "init.scope",
            "nginx.service",
            "session-2.scope",
            "system.slice",
            "user@1000.service"
        ]
    );
    assert!(t.contains("systemd_unit_cpu_seconds_total{mode=\"user\",name=\"init.scope\",type=\"scope\"} 2.5"), "{t}");
    assert!(t.contains("osprey_service_memory_bytes{name=\"system.slice\"} 5.12e+08"), "{t}");
}

#[test]
fn include_and_exclude_are_anchored() {
    let sys = fixtures().join("v2/sys");
    let t = text(&sys, &[("collector.cgroup.unit-include", Value::Str("nginx|cron\\.service".into()))]);
    assert_eq!(units(&t), ["cron.service"]);
    let t = text(&sys, &[("collector.cgroup.unit-exclude", Value::Str(".*@.*".into()))]);
    assert_eq!(units(&t), ["cron.service", "nginx.service"]);
    let e = (DEF.build)(&ctx(&sys, &[("collector.cgroup.unit-exclude", Value::Str("(".into()))])).err().unwrap();
    assert!(e.to_string().contains("--collector.cgroup.unit-exclude"), "{e}");
}

#[test]
fn v1_hybrid_reports_what_exists_under_the_same_names() {
    let t = text(&fixtures().join("v1/sys"), &[]);
    assert_eq!(units(&t), ["nginx.service"], "cron has no controller files: {t}");
    let got = unit_lines(&t, "nginx.service");
    let want = vec![
        "osprey_service_io_read_bytes_total{device=\"vda\",name=\"nginx.service\"} 1.048576e+06",
        "osprey_service_io_reads_total{device=\"vda\",name=\"nginx.service\"} 20",
        "osprey_service_io_writes_total{device=\"vda\",name=\"nginx.service\"} 1",
        "osprey_service_io_written_bytes_total{device=\"vda\",name=\"nginx.service\"} 4096",
        "osprey_service_memory_bytes{name=\"nginx.service\"} 8.32282624e+08",
        "osprey_service_memory_peak_bytes{name=\"nginx.service\"} 8.80078848e+08",
        "osprey_service_pressure_cpu_stalled_seconds_total{name=\"nginx.service\"} 0",
        "osprey_service_pressure_cpu_waiting_seconds_total{name=\"nginx.service\"} 18.132713",
        "osprey_service_pressure_io_stalled_seconds_total{name=\"nginx.service\"} 4.656745",
        "osprey_service_pressure_io_waiting_seconds_total{name=\"nginx.service\"} 5.004639",
        "osprey_service_pressure_memory_stalled_seconds_total{name=\"nginx.service\"} 0",
        "osprey_service_pressure_memory_waiting_seconds_total{name=\"nginx.service\"} 0",
        "osprey_service_swap_bytes{name=\"nginx.service\"} 266240",
        "systemd_unit_cpu_seconds_total{mode=\"system\",name=\"nginx.service\",type=\"service\"} 42.680698887",
        "systemd_unit_cpu_seconds_total{mode=\"user\",name=\"nginx.service\",type=\"service\"} 122.171404525",
        "systemd_unit_tasks_current{name=\"nginx.service\"} 7",
    ];
    assert_eq!(got, want, "full output:\n{t}");
}

/// Copies a fixture tree into a fresh temp dir (tests that modify it).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn unit_disappearing_mid_scrape_is_skipped() {
    let tmp = std::env::temp_dir().join(format!("osprey-cgroup-gone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_tree(&fixtures().join("v2/sys"), &tmp);
    let c = Cgroup {
        root: tmp.join("fs/cgroup"),
        dev_block: tmp.join("dev/block"),
        slices: false,
        scopes: false,
        include: None,
        exclude: None,
    };
    let layout = c.layout().unwrap();
    let found = c.discover(&c.root);
    assert_eq!(found.len(), 4);
    // The unit is listed, then stopped (systemd removes its cgroup) before it is read.
    let nginx = found.iter().find(|u| u.name == "nginx.service").unwrap();
    std::fs::remove_dir_all(c.root.join(&nginx.rel)).unwrap();
    assert!(Cgroup::read_unit(&layout, nginx).is_none());
    let cron = found.iter().find(|u| u.name == "cron.service").unwrap();
    assert!(Cgroup::read_unit(&layout, cron).is_some());
    // A whole scrape after the removal succeeds without it.
    let mut sink = Sink::new();
    c.collect(&mut sink).unwrap();
    assert!(sink.families().iter().all(|f| f.samples.iter().all(|s| s.label("name") != Some("nginx.service"))));
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn no_cgroup_file_system_is_no_data() {
    let c = (DEF.build)(&ctx(Path::new("/nonexistent/sys"), &[])).unwrap();
    let mut sink = Sink::new();
    assert!(matches!(c.collect(&mut sink), Err(CollectError::NoData)));
}
