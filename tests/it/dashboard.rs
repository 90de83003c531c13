//! The Grafana dashboard `packaging/grafana/osprey-host.json` against live data: a real
//! `osprey-agent` (with a TCP probe of itself, a process group for itself, `fake-systemd` on a
//! private D-Bus as its systemd, and a service cgroup made for the test) scraped every second
//! by a real `osprey-collector`. The `job`/`instance` variables are resolved the way
//! Grafana resolves `label_values(metric{…}, label)` (`/api/v1/label/<label>/values` with
//! `match[]`), then every panel target is run as Grafana runs it: `$__interval`,
//! `$__rate_interval`, `$job` and `$instance` substituted, POSTed to `/api/v1/query_range`
//! with float `start`/`end`/`step`. Every target must succeed; every panel must return data
//! unless it is listed in [`NO_DATA_HERE`] with the reason (and, where the reason is a metric
//! this machine does not have, that metric really is absent).
//!
//! Grafana's interval variables (grafana/grafana `packages/grafana-prometheus/src/datasource.ts`):
//! `$__interval` is the range divided by the panel's max data points, at least the data
//! source's scrape interval; `$__rate_interval = max($__interval + scrape interval,
//! 4 × scrape interval)`. With a 1 s scrape interval and a 2 minute range both come to whole
//! seconds here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::grafana::http_post_form;
use crate::harness::{Proc, TempDir, agent_bin, built_bin, eventually, free_port, http_get, workspace};

/// Panels that legitimately have no data on a machine like this one:
/// `(title, metric that must then be absent (if the reason is its absence), reason)`.
const NO_DATA_HERE: &[(&str, Option<&str>, &str)] = &[
    (
        "systemd unit states",
        Some("node_systemd_unit_state"),
        "no systemd: the test serves fake-systemd on a private bus, which needs dbus-daemon (package dbus)",
    ),
    (
        "Failed units",
        Some("node_systemd_unit_state"),
        "no systemd: the test serves fake-systemd on a private bus, which needs dbus-daemon (package dbus)",
    ),
    (
        "Service CPU (cgroup)",
        Some("systemd_unit_cpu_seconds_total"),
        "no systemd service cgroup: the test could not create one (needs root and a writable cgroup fs)",
    ),
    (
        "Service memory (cgroup)",
        Some("osprey_service_memory_bytes"),
        "no systemd service cgroup: the test could not create one (needs root and a writable cgroup fs)",
    ),
    ("Filesystems predicted full within 24h", None, "empty unless a filesystem is on track to fill within a day"),
];

/// A cgroup named like a systemd service (`osprey-dash-<pid>.service`) in every cgroup
/// hierarchy the host has, holding a sleeping child, so the service panels have a unit to
/// show; removed (child killed first) on drop. Without root or a writable cgroup fs there is
/// none, and the service panels stay in [`NO_DATA_HERE`].
struct ServiceCgroup {
    dirs: Vec<PathBuf>,
    child: Option<Child>,
}

impl ServiceCgroup {
    fn create() -> Self {
        let root = Path::new("/sys/fs/cgroup");
        let unit = format!("osprey-dash-{}.service", std::process::id());
        let mut t = Self { dirs: Vec::new(), child: None };
        // cgroup v2: the root itself; v1/hybrid: the named hierarchies that carry unit data.
        let hier: Vec<PathBuf> = if root.join("cgroup.controllers").is_file() {
            vec![root.to_owned()]
        } else {
            ["systemd", "unified", "cpu,cpuacct", "cpu", "cpuacct", "memory", "pids", "blkio"]
                .iter()
                .map(|h| root.join(h))
                .filter(|h| h.is_dir())
                .collect()
        };
        for h in hier {
            let d = h.join(&unit);
            match std::fs::create_dir(&d) {
                Ok(()) => t.dirs.push(d),
                // `cpu` and `cpuacct` are often one mount seen twice.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    println!("no service cgroup: cannot create {} ({e})", d.display());
                    return t;
                }
            }
        }
        let mut cmd = Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let Ok(child) = cmd.arg("300").stdin(Stdio::null()).spawn() else { return t };
        let pid = child.id().to_string();
        t.child = Some(child);
        for d in &t.dirs {
            let _ = std::fs::write(d.join("cgroup.procs"), &pid);
        }
        t
    }
}

impl Drop for ServiceCgroup {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            let _ = eventually(Duration::from_secs(5), || std::fs::remove_dir(d).ok());
        }
    }
}

const SCRAPE_S: u64 = 1;
/// The dashboard range the panels are queried over, and Grafana's default max data points.
const RANGE_S: u64 = 120;
const MAX_DATA_POINTS: u64 = 1000;

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn get_json(port: u16, path: &str) -> Value {
    let r = http_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

fn enc(s: &str) -> String {
    crate::grafana::form_encode(&[("", s)]).trim_start_matches('=').to_owned()
}

/// `label_values(metric{…}, label)` as Grafana's variable support runs it.
fn label_values(port: u16, def: &str, start: f64, end: f64) -> Vec<String> {
    let inner = def.strip_prefix("label_values(").and_then(|d| d.strip_suffix(')')).expect("label_values(…)");
    let (selector, label) = inner.rsplit_once(',').expect("label_values(selector, label)");
    let path = format!(
        "/api/v1/label/{}/values?start={}&end={}&match%5B%5D={}",
        label.trim(),
        start as i64,
        end as i64,
        enc(selector.trim())
    );
    let v = get_json(port, &path);
    assert_eq!(v["status"], "success", "{path}: {v}");
    v["data"].as_array().expect("values").iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut out = expr.to_owned();
    // Longest names first, so `$__rate_interval` is not cut by `$__interval`.
    let mut vars = vars.to_vec();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
    }
    out
}

#[test]
fn dashboard_panels_run_against_a_live_agent() {
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("packaging/grafana/osprey-host.json")).expect("read dashboard"),
    )
    .expect("dashboard JSON");
    let vars = dash["templating"]["list"].as_array().expect("templating.list");
    assert!(vars.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"));

    let dir = TempDir::new("dashboard");
    // systemd's D-Bus API from `fake-systemd` on a private bus (this container has no systemd).
    let bus = crate::systemd::Bus::start(&dir);
    let _systemd = bus.as_ref().map(|b| crate::systemd::FakeSystemd::start(b, 0));
    let _service = ServiceCgroup::create();
    let agent_port = free_port();
    std::fs::write(
        dir.join("agent.toml"),
        format!(
            "[[probe]]\nname = \"self\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:{agent_port}\"\n\n\
             [[processes.group]]\nname = \"{{{{.Comm}}}}\"\ncomm = [\"osprey-agent\"]\n"
        ),
    )
    .expect("agent config");
    let mut agent_args = vec![
        format!("--config={}", dir.join("agent.toml").display()),
        format!("--web.listen-address=127.0.0.1:{agent_port}"),
    ];
    if let Some(b) = &bus {
        agent_args.push(format!("--collector.systemd.bus={}", b.address));
    }
    let _agent = Proc::start(agent_bin(), &agent_args, agent_port, "/-/healthy", &dir);
    std::fs::write(
        dir.join("collector.toml"),
        format!(
            "[global]\nscrape_interval = \"{SCRAPE_S}s\"\nscrape_timeout = \"{SCRAPE_S}s\"\n\n\
             [[scrape_configs]]\njob_name = \"node\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{agent_port}\"] }}]\n"
        ),
    )
    .expect("collector config");
    let port = free_port();
    let args = vec![
        format!("--config={}", dir.join("collector.toml").display()),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--discovery.debounce=100ms".to_owned(),
    ];
    let collector = Proc::start(&built_bin("osprey-collector"), &args, port, "/-/ready", &dir);

    // A few scrapes, so rates over $__rate_interval have two samples or more.
    let scrapes = eventually(Duration::from_secs(40), || {
        let v = get_json(port, &format!("/api/v1/query?query={}", enc("count_over_time(up{job=\"node\"}[1m])")));
        let n: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= 6.0).then_some(n)
    });
    assert!(scrapes.is_some(), "collector did not scrape the agent: {}", collector.log_text());

    let end = now_s();
    let start = end - RANGE_S as f64;
    let job_def =
        vars.iter().find(|v| v["name"] == "job").and_then(|v| v["definition"].as_str()).expect("job variable");
    let jobs = label_values(port, job_def, start, end);
    assert_eq!(jobs, ["node"], "{job_def}");
    let inst_def =
        vars.iter().find(|v| v["name"] == "instance").and_then(|v| v["definition"].as_str()).expect("instance");
    let insts = label_values(port, &substitute(inst_def, &[("job", "node")]), start, end);
    let instance = format!("127.0.0.1:{agent_port}");
    assert_eq!(insts, std::slice::from_ref(&instance), "{inst_def}");

    let names: Vec<String> = get_json(port, "/api/v1/label/__name__/values")["data"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    // 120 s over ~1000 data points rounds up to 1 s; at least the scrape interval.
    let interval = SCRAPE_S.max(RANGE_S.div_ceil(MAX_DATA_POINTS));
    let rate_interval = (interval + SCRAPE_S).max(4 * SCRAPE_S);
    let (iv, riv) = (format!("{interval}s"), format!("{rate_interval}s"));
    let subst = [
        ("__interval", iv.as_str()),
        ("__rate_interval", riv.as_str()),
        ("__range", "120s"),
        ("job", "node"),
        ("instance", instance.as_str()),
    ];
    let (start_t, end_t, step) = (format!("{start:.3}"), format!("{end:.3}"), interval.to_string());

    let (mut targets, mut with_data, mut failures, mut empty_ok) = (0, 0, Vec::new(), Vec::new());
    let panels: Vec<&Value> =
        dash["panels"].as_array().expect("panels").iter().filter(|p| p["type"] != "row").collect();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?");
        let mut panel_has_data = false;
        for t in p["targets"].as_array().map_or(&[][..], Vec::as_slice) {
            targets += 1;
            let expr = substitute(t["expr"].as_str().expect("expr"), &subst);
            assert!(!expr.contains('$'), "unsubstituted variable in {title}: {expr}");
            let r = http_post_form(
                port,
                "/api/v1/query_range",
                &[("query", &expr), ("start", &start_t), ("end", &end_t), ("step", &step), ("timeout", "60s")],
            )
            .expect("query_range");
            let v: Value = serde_json::from_slice(&r.body).expect("JSON");
            if v["status"] != "success" || v["data"]["resultType"] != "matrix" {
                failures.push(format!("{title}: {expr}: {v}"));
                continue;
            }
            let series = v["data"]["result"].as_array().map_or(0, Vec::len);
            if series > 0 {
                with_data += 1;
                panel_has_data = true;
            }
        }
        match NO_DATA_HERE.iter().find(|(t, _, _)| *t == title) {
            _ if panel_has_data => {}
            Some((_, absent, why)) => {
                if let Some(m) = absent
                    && names.iter().any(|n| n == m)
                {
                    failures.push(format!("{title}: no data although {m} exists here"));
                }
                empty_ok.push(format!("{title}: {why}"));
            }
            None => failures.push(format!("{title}: no data")),
        }
    }
    println!(
        "dashboard: {} panels, {targets} targets all executed; {with_data} targets returned data; {} panels without data here",
        panels.len(),
        empty_ok.len()
    );
    for e in &empty_ok {
        println!("NO DATA (expected here) {e}");
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} dashboard failures", failures.len());
    assert!(panels.len() >= 20 && targets >= 30, "{} panels, {targets} targets", panels.len());

    // The query limits are the collector's flags, and a request's timeout is honoured.
    let flags = get_json(port, "/api/v1/status/flags");
    assert_eq!(flags["data"]["query.max-samples"], "50000000", "{flags}");
    assert_eq!(flags["data"]["query.max-concurrency"], "20", "{flags}");
    assert_eq!(flags["data"]["query.timeout"], "2m", "{flags}");
    let r = http_post_form(
        port,
        "/api/v1/query_range",
        &[
            ("query", "rate(node_cpu_seconds_total[1m])"),
            ("start", &start_t),
            ("end", &end_t),
            ("step", "1"),
            ("timeout", "0s"),
        ],
    )
    .expect("query_range");
    let v: Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!((r.status, v["errorType"].as_str()), (503, Some("timeout")), "{v}");
}
