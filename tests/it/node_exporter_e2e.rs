//! Upstream conformance: run `osprey-agent` over node_exporter's fixture tree with the flags
//! upstream's end-to-end test uses, scrape it, and compare with `e2e-output.txt` series by
//! series (name, labels, value; HELP and TYPE too), per collector.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::harness::{TempDir, agent_bin, conformance, eventually, free_port, http_get, run};

/// The collectors issue #3 requires at 100 %.
const REQUIRED: &[&str] = &[
    "arp",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "edac",
    "entropy",
    "filefd",
    "filesystem",
    "hwmon",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "os",
    "powersupplyclass",
    "pressure",
    "schedstat",
    "sockstat",
    "softnet",
    "stat",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "udp_queues",
    "uname",
    "vmstat",
];

/// Required collectors known not to pass yet, with the reason; printed in the test output.
/// The test fails if one of them starts passing (so this list only shrinks).
const KNOWN_FAILING: &[(&str, &str)] = &[];

/// Collectors upstream's e2e run disables because their output depends on the live machine
/// (the live comparison with node_exporter covers them).
const DISABLED_UPSTREAM: &[&str] = &["filesystem", "selinux", "timex", "uname"];

/// Upstream's extra flags for the e2e run (x86_64), from the conformance README.
const UPSTREAM_FLAGS: &[&str] = &[
    "--collector.cpu.info",
    "--collector.cpu.info.bugs-include=^(cpu_meltdown|spectre_.*|mds)$",
    "--collector.cpu.info.flags-include=^(aes|avx.?|constant_tsc)$",
    "--collector.arp.device-exclude=nope",
    "--no-collector.arp.netlink",
    "--collector.bcache.priorityStats",
    "--collector.hwmon.chip-include=(applesmc|asus_nb_wmi|coretemp|hwmon4|ieee80211|nct6779)",
    "--collector.netclass.ignore-invalid-speed",
    "--collector.netclass.ignored-devices=(dmz|int)",
    "--collector.netdev.device-include=lo",
    "--collector.qdisc.device-include=(wlan0|eth0)",
    "--collector.qdisc.fixtures=fixtures/qdisc/",
    "--collector.stat.softirq",
    "--collector.sysctl.include-info=kernel.seccomp.actions_avail",
    "--collector.sysctl.include=fs.file-nr",
    "--collector.sysctl.include=fs.file-nr:total,current,max",
    "--collector.sysctl.include=kernel.threads-max",
    "--collector.textfile.directory=fixtures/textfile/two_metric_files/",
    "--collector.wifi.fixtures=fixtures/wifi",
];

/// Upstream's filter of run-dependent lines (applied to sample lines only, as upstream does).
fn filtered(line: &str) -> bool {
    const P: &[&str] = &[
        "go_",
        "node_exporter_build_info",
        "node_scrape_collector_duration_seconds",
        "process_",
        "node_textfile_mtime_seconds",
        "node_time_zone",
        "node_time_seconds",
    ];
    P.iter().any(|p| line.starts_with(p))
        || [
            "node_network_receive_bytes_total",
            "node_network_transmit_bytes_total",
            "node_network_receive_packets_total",
            "node_network_transmit_packets_total",
        ]
        .iter()
        .any(|p| line.starts_with(p))
}

/// The family a line belongs to.
fn family(line: &str) -> &str {
    match line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
        Some(rest) => rest.split(' ').next().unwrap_or(""),
        None => line.split(['{', ' ']).next().unwrap_or(""),
    }
}

/// Which node_exporter collector emits a family (by upstream's naming).
fn collector_of(fam: &str) -> &'static str {
    let base = fam
        .strip_suffix("_bucket")
        .or_else(|| fam.strip_suffix("_sum"))
        .or_else(|| fam.strip_suffix("_count"))
        .unwrap_or(fam);
    let starts = |p: &str| base.starts_with(p);
    // node_cpu_frequency_hertz comes from the cpu collector (/proc/cpuinfo) when cpufreq is on.
    if starts("node_cpu_scaling_") {
        return "cpufreq";
    }
    if base == "node_cpu_vulnerabilities_info" {
        return "cpu_vulnerabilities";
    }
    if let Some(rest) = base.strip_prefix("node_network_") {
        return if (rest.starts_with("receive_") || rest.starts_with("transmit_")) && rest.ends_with("_total") {
            "netdev"
        } else {
            "netclass"
        };
    }
    if starts("node_memory_numa_") {
        return "meminfo_numa";
    }
    if [
        "node_boot_time_seconds",
        "node_context_switches_total",
        "node_forks_total",
        "node_intr_total",
        "node_procs_blocked",
        "node_procs_running",
        "node_softirqs_total",
    ]
    .contains(&base)
    {
        return "stat";
    }
    if base == "node_softirqs_functions_total" {
        return "softirqs";
    }
    if base.starts_with("testmetric") || starts("node_textfile_") {
        return "textfile";
    }
    const TABLE: &[(&str, &str)] = &[
        ("node_arp_", "arp"),
        ("node_bcachefs_", "bcachefs"),
        ("node_bcache_", "bcache"),
        ("node_bonding_", "bonding"),
        ("node_btrfs_", "btrfs"),
        ("node_buddyinfo_", "buddyinfo"),
        ("node_cgroups_", "cgroups"),
        ("node_cooling_device_", "thermal_zone"),
        ("node_cpu_", "cpu"),
        ("node_disk_", "diskstats"),
        ("node_dmi_", "dmi"),
        ("node_dmmultipath_", "dmmultipath"),
        ("node_drbd_", "drbd"),
        ("node_edac_", "edac"),
        ("node_entropy_", "entropy"),
        ("node_fibrechannel_", "fibrechannel"),
        ("node_filefd_", "filefd"),
        ("node_filesystem_", "filesystem"),
        ("node_hwmon_", "hwmon"),
        ("node_infiniband_", "infiniband"),
        ("node_interrupts_", "interrupts"),
        ("node_ipvs_", "ipvs"),
        ("node_kernel_hung_", "kernel_hung"),
        ("node_ksmd_", "ksmd"),
        ("node_lnstat_", "lnstat"),
        ("node_load", "loadavg"),
        ("node_md_", "mdadm"),
        ("node_memory_", "meminfo"),
        ("node_mountstats_", "mountstats"),
        ("node_netstat_", "netstat"),
        ("node_nfsd_", "nfsd"),
        ("node_nfs_", "nfs"),
        ("node_nf_conntrack_", "conntrack"),
        ("node_nvme_", "nvme"),
        ("node_os_", "os"),
        ("node_pcidevice_", "pcidevice"),
        ("node_power_supply_", "powersupplyclass"),
        ("node_pressure_", "pressure"),
        ("node_processes_", "processes"),
        ("node_qdisc_", "qdisc"),
        ("node_rapl_", "rapl"),
        ("node_schedstat_", "schedstat"),
        ("node_slabinfo_", "slabinfo"),
        ("node_sockstat_", "sockstat"),
        ("node_softnet_", "softnet"),
        ("node_sysctl_", "sysctl"),
        ("node_tape_", "tapestats"),
        ("node_thermal_zone_", "thermal_zone"),
        ("node_timex_", "timex"),
        ("node_time_", "time"),
        ("node_udp_queues", "udp_queues"),
        ("node_uname_", "uname"),
        ("node_vmstat_", "vmstat"),
        ("node_watchdog_", "watchdog"),
        ("node_wifi_", "wifi"),
        ("node_xfrm_", "xfrm"),
        ("node_xfs_", "xfs"),
        ("node_zfs_", "zfs"),
        ("node_zoneinfo_", "zoneinfo"),
    ];
    TABLE.iter().find(|(p, _)| starts(p)).map_or("(unassigned)", |(_, c)| c)
}

/// The collector a line belongs to (scrape success lines by their label).
fn line_collector(line: &str) -> &'static str {
    let fam = family(line);
    if fam == "node_scrape_collector_success" {
        if let Some(rest) = line.split("collector=\"").nth(1) {
            let name = rest.split('"').next().unwrap_or("");
            return Box::leak(name.to_owned().into_boxed_str());
        }
        return "(scrape)";
    }
    collector_of(fam)
}

/// The collectors `osprey-agent --help` lists.
fn ported_collectors() -> BTreeSet<String> {
    let out = run(agent_bin(), &["--help"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter_map(|l| l.split("Enable the ").nth(1))
        .filter_map(|r| r.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Flags `osprey-agent --help` knows.
fn known_flags() -> String {
    String::from_utf8_lossy(&run(agent_bin(), &["--help"]).stdout).into_owned()
}

#[derive(Default)]
struct Score {
    expected: usize,
    matched: usize,
    meta_expected: usize,
    meta_matched: usize,
    missing: Vec<String>,
    extra: Vec<String>,
    order_ok: bool,
}

#[test]
fn agent_matches_node_exporter_e2e_output_per_collector() {
    let conf = conformance();
    let expected_text = std::fs::read_to_string(conf.join("fixtures/e2e-output.txt")).expect("e2e-output.txt");
    let ported = ported_collectors();
    let help = known_flags();
    let upstream_enabled: BTreeSet<String> = expected_text
        .lines()
        .filter(|l| l.starts_with("node_scrape_collector_success{"))
        .map(|l| line_collector(l).to_owned())
        .collect();

    let port = free_port();
    let mut args: Vec<String> = vec![
        "--path.rootfs=collector/fixtures".into(),
        "--path.procfs=collector/fixtures/proc".into(),
        "--path.sysfs=collector/fixtures/sys".into(),
        "--path.udev.data=collector/fixtures/udev/data".into(),
        "--collector.disable-defaults".into(),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    let mut skipped_flags = Vec::new();
    for c in &upstream_enabled {
        if ported.contains(c) {
            args.push(format!("--collector.{c}"));
        }
    }
    for f in UPSTREAM_FLAGS {
        let name = f.split('=').next().unwrap_or(f).trim_start_matches("--");
        let name = name.strip_prefix("no-").unwrap_or(name);
        if help.contains(&format!("--{name} ")) || help.contains(&format!("--{name}\n")) {
            args.push(f.replace("=fixtures/", "=collector/fixtures/"));
        } else {
            skipped_flags.push(*f);
        }
    }
    // Upstream runs from its repository root, where the fixtures are `collector/fixtures`
    // (file paths appear in textfile HELP text and rapl labels): recreate that layout. `sys`
    // and `udev` come from upstream's archives, as upstream's own run unpacks them (the
    // unpacked copies lost empty directories and store symlinks as files).
    let dir = TempDir::new("e2e");
    let fixtures = dir.join("collector/fixtures");
    std::fs::create_dir_all(&fixtures).expect("mkdir");
    for entry in std::fs::read_dir(conf.join("fixtures")).expect("fixtures").flatten() {
        let name = entry.file_name();
        if name != "sys" && name != "udev" {
            std::os::unix::fs::symlink(entry.path(), fixtures.join(&name)).expect("symlink");
        }
    }
    crate::ttar::unpack(&conf.join("fixtures/sys.ttar"), &fixtures);
    crate::ttar::unpack(&conf.join("fixtures/udev.ttar"), &fixtures);
    let log = std::fs::File::create(dir.join("agent.log")).expect("log");
    let mut child = std::process::Command::new(agent_bin())
        .args(&args)
        .current_dir(&dir.0)
        .stderr(log)
        .spawn()
        .expect("start agent");
    let body = eventually(Duration::from_secs(30), || http_get(port, "/metrics").ok().filter(|r| r.status == 200));
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    let ours_text = body.unwrap_or_else(|| panic!("agent did not serve /metrics: {log}")).text();

    let keep = |l: &&str| !l.is_empty() && (l.starts_with('#') || !filtered(l));
    let mut expected: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in expected_text.lines().filter(keep) {
        expected.entry(line_collector(l)).or_default().push(l);
    }
    let mut ours: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in ours_text.lines().filter(keep) {
        ours.entry(line_collector(l)).or_default().push(l);
    }

    let mut failures = Vec::new();
    println!("\nnode_exporter e2e conformance (series = sample lines; meta = HELP/TYPE lines)");
    println!("{:<22} {:>16} {:>12}  status", "collector", "series", "meta");
    let mut all: BTreeSet<&str> = upstream_enabled.iter().map(String::as_str).collect();
    all.extend(REQUIRED.iter().copied());
    let (mut total_exp, mut total_match) = (0, 0);
    for c in all {
        let required = REQUIRED.contains(&c);
        if DISABLED_UPSTREAM.contains(&c) {
            println!(
                "{c:<22} {:>16} {:>12}  disabled in upstream's e2e run (covered by the live node_exporter test)",
                "-", "-"
            );
            continue;
        }
        if !ported.contains(c) {
            println!("{c:<22} {:>16} {:>12}  NOT PORTED{}", "-", "-", if required { " (required!)" } else { "" });
            if let Some((_, why)) = KNOWN_FAILING.iter().find(|(k, _)| *k == c) {
                println!("{:<22} known failing: {why}", "");
            } else if required {
                failures.push(format!("{c}: required but not ported"));
            }
            continue;
        }
        let exp = expected.get(c).cloned().unwrap_or_default();
        let got = ours.get(c).cloned().unwrap_or_default();
        let got_set: BTreeSet<&str> = got.iter().copied().collect();
        let exp_set: BTreeSet<&str> = exp.iter().copied().collect();
        let mut s = Score { order_ok: exp == got, ..Score::default() };
        for l in &exp {
            let meta = l.starts_with('#');
            if meta {
                s.meta_expected += 1;
            } else {
                s.expected += 1;
            }
            if got_set.contains(l) {
                if meta {
                    s.meta_matched += 1;
                } else {
                    s.matched += 1;
                }
            } else {
                s.missing.push((*l).to_owned());
            }
        }
        s.extra = got.iter().filter(|l| !exp_set.contains(*l)).map(|l| (*l).to_owned()).collect();
        total_exp += s.expected;
        total_match += s.matched;
        let ok = s.missing.is_empty() && s.extra.is_empty();
        let status = match (ok, s.order_ok) {
            (true, true) => "ok".to_owned(),
            (true, false) => "ok (order differs)".to_owned(),
            (false, _) => format!("{} missing, {} unexpected", s.missing.len(), s.extra.len()),
        };
        println!(
            "{c:<22} {:>16} {:>12}  {status}",
            format!("{}/{}", s.matched, s.expected),
            format!("{}/{}", s.meta_matched, s.meta_expected)
        );
        if !ok {
            for l in s.missing.iter().take(5) {
                println!("    missing:    {l}");
            }
            for l in s.extra.iter().take(5) {
                println!("    unexpected: {l}");
            }
            if let Some((_, why)) = KNOWN_FAILING.iter().find(|(k, _)| *k == c) {
                println!("    known failing: {why}");
            } else if required {
                failures.push(format!("{c}: {status}"));
            }
        } else if KNOWN_FAILING.iter().any(|(k, _)| *k == c) {
            failures.push(format!("{c}: passes now; remove it from KNOWN_FAILING"));
        }
    }
    println!("total over ported collectors: {total_match}/{total_exp} series match");
    if !skipped_flags.is_empty() {
        println!("upstream flags of collectors not ported (not passed): {}", skipped_flags.join(" "));
    }
    assert!(failures.is_empty(), "required collectors below 100 %:\n{}\nagent log:\n{log}", failures.join("\n"));
}
