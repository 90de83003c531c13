//! Tests against the real Prometheus tooling: `promtool check metrics`, a stock `prometheus`
//! scraping the agent, and a live side-by-side with Debian's `prometheus-node-exporter`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Proc, TempDir, agent_bin, eventually, free_port, http_get, peer, run, start_agent};

#[test]
fn promtool_check_metrics_finds_no_errors() {
    let Some(promtool) = peer("promtool") else { return };
    let dir = TempDir::new("promtool");
    let agent = start_agent(&[], &dir);
    let body = http_get(agent.port, "/metrics").expect("scrape").body;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child.stdin.take().expect("stdin").write_all(&body).expect("write");
    let out = child.wait_with_output().expect("promtool output");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("promtool check metrics:\n{report}");
    // promtool exits 3 for lint findings only and 1 for errors; lint findings are allowed
    // where node_exporter has the same (see README), errors never.
    assert_ne!(out.status.code(), Some(1), "promtool reported errors:\n{report}");
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        assert!(lint_allowed(line), "promtool finding not shared with node_exporter: {line}");
    }
}

/// promtool lint findings that node_exporter's own output has too (same names, same HELP).
fn lint_allowed(line: &str) -> bool {
    // node_exporter's counters that lack `_total` and non-base units are upstream names we
    // must keep for dashboard compatibility.
    const SHARED: &[&str] = &[
        "non-counter metrics should not have \"_total\" suffix",
        "counter metrics should have \"_total\" suffix",
        "use base unit",
        "metric names should be written in 'snake_case' not 'camelCase'",
    ];
    SHARED.iter().any(|s| line.contains(s))
}

fn query(port: u16, expr: &str) -> Option<String> {
    let q: String = expr
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let r = http_get(port, &format!("/api/v1/query?query={q}")).ok()?;
    (r.status == 200).then(|| r.text())
}

#[test]
fn stock_prometheus_scrapes_the_agent() {
    let Some(prom) = peer("prometheus") else { return };
    let dir = TempDir::new("prometheus");
    let agent = start_agent(&[], &dir);
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: osprey\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            agent.port
        ),
    )
    .expect("write config");
    let port = free_port();
    let args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    let p = Proc::start(&prom, &args, port, "/-/ready", &dir);
    let up = eventually(Duration::from_secs(30), || query(port, "up").filter(|b| b.contains("\"1\"]")));
    assert!(up.is_some(), "up == 1 never seen: {:?}\n{}", query(port, "up"), p.log_text());
    let load =
        eventually(Duration::from_secs(15), || query(port, "node_load1").filter(|b| b.contains("\"job\":\"osprey\"")));
    assert!(load.is_some(), "node_load1 not readable through Prometheus: {:?}", query(port, "node_load1"));
    let health = eventually(Duration::from_secs(15), || {
        http_get(port, "/api/v1/targets").ok().map(|r| r.text()).filter(|t| t.contains("\"health\":\"up\""))
    });
    assert!(health.is_some(), "target health is not up");
}

/// Collectors both binaries have, minus those whose output changes between two reads in ways
/// a set comparison cannot handle.
fn common_collectors(ne: &Path) -> Vec<String> {
    let ne_help = String::from_utf8_lossy(&run(ne, &["--help"]).stderr).into_owned()
        + &String::from_utf8_lossy(&run(ne, &["--help"]).stdout);
    let ours = String::from_utf8_lossy(&run(agent_bin(), &["--help"]).stdout).into_owned();
    let ours: BTreeSet<&str> = ours.lines().filter_map(|l| l.split("Enable the ").nth(1)?.split(' ').next()).collect();
    ours.into_iter()
        .filter(|c| ne_help.contains(&format!("collector.{c} ")) || ne_help.contains(&format!("collector.{c}\n")))
        .map(str::to_owned)
        .collect()
}

/// Series lines (`name{labels}` → value) of a scrape, without self-metrics.
fn series(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|l| {
            ![
                "go_",
                "process_",
                "promhttp_",
                "node_exporter_build_info",
                "osprey_agent_",
                "node_scrape_collector_duration_seconds",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .filter_map(|l| {
            let split = l.rfind(' ')?;
            Some((l[..split].to_owned(), l[split + 1..].to_owned()))
        })
        .collect()
}

/// The reviewed allow-list: `regex<TAB>reason` lines; a series matching one may differ.
fn allow_list() -> Vec<(regex::Regex, String)> {
    include_str!("live_allowlist.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (re, reason) = l.split_once('\t').unwrap_or((l, "no reason given"));
            (
                regex::Regex::new(re.trim()).unwrap_or_else(|e| panic!("bad allow-list regex {re}: {e}")),
                reason.trim().to_owned(),
            )
        })
        .collect()
}

/// Labels current upstream added after node_exporter 1.5, removed from our series before the
/// comparison (so values are still compared): (family prefix, label, reason).
const NEW_LABELS: &[(&str, &str, &str)] = &[
    ("node_network_info", "adminstate", "upstream added `adminstate` after 1.5"),
    ("node_disk_info", "rotational", "upstream added `rotational` after 1.5"),
    ("node_filesystem_", "device_error", "upstream added `device_error` to every filesystem series after 1.5"),
];

fn strip_new_labels(key: &str) -> String {
    let mut k = key.to_owned();
    for (prefix, label, _) in NEW_LABELS {
        if !k.starts_with(prefix) {
            continue;
        }
        if let Some(start) = k.find(&format!("{label}=\"")) {
            let value_start = start + label.len() + 2;
            let mut end = value_start;
            let bytes = k.as_bytes();
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let mut cut_end = end + 1;
            let mut cut_start = start;
            if k.as_bytes().get(cut_end) == Some(&b',') {
                cut_end += 1;
            } else if cut_start > 0 && k.as_bytes()[cut_start - 1] == b',' {
                cut_start -= 1;
            }
            k.replace_range(cut_start..cut_end, "");
        }
    }
    k
}

/// Values that cannot change between two reads.
const STABLE: &[&str] = &[
    "node_uname_info",
    "node_os_info",
    "node_os_version",
    "node_filesystem_size_bytes",
    "node_memory_MemTotal_bytes",
    "node_memory_SwapTotal_bytes",
    "node_boot_time_seconds",
    "node_network_mtu_bytes",
    "node_network_info",
    "node_filefd_maximum",
    "node_entropy_pool_size_bits",
    "node_cpu_info",
    "node_time_clocksource_current_info",
];

#[test]
fn live_series_match_debian_node_exporter() {
    let Some(ne) = peer("prometheus-node-exporter") else { return };
    let dir = TempDir::new("live");
    let collectors = common_collectors(&ne);
    let mut args: Vec<String> = vec!["--collector.disable-defaults".into()];
    args.extend(collectors.iter().map(|c| format!("--collector.{c}")));
    // Where Debian's 1.5 has other defaults than current upstream (which we follow), pass the
    // same explicit value to both, so both read the same devices.
    for (collector, flag) in [
        // Debian patches the default to exclude `lo`; upstream includes it.
        ("netdev", "--collector.netdev.device-exclude=^lo$"),
        // 1.5 did not exclude zram devices yet.
        ("diskstats", r"--collector.diskstats.device-exclude=^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"),
        // Debian excludes /run, /mnt and /media; upstream only /run/credentials.
        (
            "filesystem",
            "--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
        ),
        // Upstream added erofs after 1.5.
        (
            "filesystem",
            "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$",
        ),
    ] {
        if collectors.iter().any(|c| c == collector) {
            args.push(flag.into());
        }
    }
    let ne_port = free_port();
    let mut ne_args = args.clone();
    ne_args.push(format!("--web.listen-address=127.0.0.1:{ne_port}"));
    let ne_proc = Proc::start(&ne, &ne_args, ne_port, "/metrics", &dir);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = start_agent(&arg_refs, &dir);
    let theirs = series(&http_get(ne_proc.port, "/metrics").expect("node_exporter scrape").text());
    let ours: BTreeMap<String, String> = series(&http_get(agent.port, "/metrics").expect("agent scrape").text())
        .into_iter()
        .map(|(k, v)| (strip_new_labels(&k), v))
        .collect();
    let allow = allow_list();
    let allowed = |s: &str| allow.iter().find(|(re, _)| re.is_match(s)).map(|(_, r)| r.clone());

    let mut problems = Vec::new();
    let mut explained = BTreeMap::<String, usize>::new();
    for k in theirs.keys().filter(|k| !ours.contains_key(*k)) {
        match allowed(k) {
            Some(r) => *explained.entry(r).or_default() += 1,
            None => problems.push(format!("missing in osprey: {k}")),
        }
    }
    for k in ours.keys().filter(|k| !theirs.contains_key(*k)) {
        match allowed(k) {
            Some(r) => *explained.entry(r).or_default() += 1,
            None => problems.push(format!("only in osprey:    {k}")),
        }
    }
    for (k, v) in &ours {
        let name = k.split('{').next().unwrap_or(k);
        if STABLE.contains(&name)
            && let Some(tv) = theirs.get(k)
            && tv != v
            && allowed(k).is_none()
        {
            problems.push(format!("value differs: {k}: osprey {v}, node_exporter {tv}"));
        }
    }
    println!("live comparison over collectors: {}", collectors.join(" "));
    for (prefix, label, reason) in NEW_LABELS {
        println!("  label `{label}` on {prefix}* ignored: {reason}");
    }
    println!("node_exporter series: {}, osprey series: {}", theirs.len(), ours.len());
    for (reason, n) in &explained {
        println!("  allowed ({n} series): {reason}");
    }
    assert!(problems.is_empty(), "{} unexplained differences:\n{}", problems.len(), problems.join("\n"));
}
