//! `osprey-collector` discovery against real peers: DNS SD through a real `dnsmasq`, file_sd
//! watching, `check config` messages, `convert-prometheus-config` checked with `promtool`, and
//! relabeling (hashmod sharding included) compared target by target with a running Prometheus.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::dns_and_api::{Dnsmasq, LabelMap, labels_of, sbin_peer, targets_json};
use crate::harness::{Proc, TempDir, eventually, free_port, http_get, http_request, peer, run};

/// Path of the `osprey-collector` binary, built once per test run.
fn collector_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| crate::harness::built_bin("osprey-collector"))
}

fn start_collector(config: &Path, dir: &TempDir) -> Proc {
    let port = free_port();
    let args = vec![
        format!("--config={}", config.display()),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--discovery.debounce=100ms".to_owned(),
    ];
    Proc::start(collector_bin(), &args, port, "/-/ready", dir)
}

/// (labels, discoveredLabels) of active targets and discoveredLabels of dropped ones.
fn target_sets(v: &Value) -> (BTreeSet<(LabelMap, LabelMap)>, BTreeSet<LabelMap>) {
    let active = v["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (labels_of(&t["labels"]), labels_of(&t["discoveredLabels"])))
        .collect();
    let dropped = v["data"]["droppedTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| labels_of(&t["discoveredLabels"]))
        .collect();
    (active, dropped)
}

fn dns_targets(port: u16) -> BTreeMap<String, LabelMap> {
    let Some(v) = targets_json(port) else { return BTreeMap::new() };
    v["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["labels"]["instance"].as_str().unwrap_or_default().to_owned(), labels_of(&t["discoveredLabels"])))
        .collect()
}

#[test]
fn dns_sd_discovers_srv_a_aaaa_from_dnsmasq_and_follows_changes() {
    let Some(dnsmasq) = sbin_peer("dnsmasq") else { return };
    let dir = TempDir::new("dns-sd");
    let dns_port = free_port();
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let first = vec![
        format!("--srv-host=_agent._tcp.fleet.test,node1.fleet.test,{p1}"),
        format!("--srv-host=_agent._tcp.fleet.test,node2.fleet.test,{p2}"),
        "--host-record=node1.fleet.test,127.0.0.11".to_owned(),
        "--host-record=node2.fleet.test,127.0.0.12".to_owned(),
        "--host-record=v4.fleet.test,127.0.0.21".to_owned(),
        "--host-record=v6.fleet.test,::1".to_owned(),
    ];
    let mut dns = Dnsmasq::start(&dnsmasq, "127.0.0.1", dns_port, &first);
    let cfg = dir.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[scrape_configs]]
job_name = "fleet"
scrape_interval = "5s"
dns_sd_configs = [
  {{ names = ["_agent._tcp.fleet.test"], refresh_interval = "1s", nameservers = ["127.0.0.1:{dns_port}"] }},
  {{ names = ["v4.fleet.test"], type = "A", port = 9100, refresh_interval = "1s", nameservers = ["127.0.0.1:{dns_port}"] }},
  {{ names = ["v6.fleet.test"], type = "AAAA", port = 9100, refresh_interval = "1s", nameservers = ["127.0.0.1:{dns_port}"] }},
]
relabel_configs = [{{ source_labels = ["__meta_dns_srv_record_target"], regex = "(.+)\\.fleet\\.test\\.", target_label = "node" }}]
"#
        ),
    )
    .expect("write config");
    let col = start_collector(&cfg, &dir);
    let want_first: BTreeSet<String> = [
        format!("node1.fleet.test:{p1}"),
        format!("node2.fleet.test:{p2}"),
        "127.0.0.21:9100".into(),
        "[::1]:9100".into(),
    ]
    .into();
    let got = eventually(Duration::from_secs(20), || {
        Some(dns_targets(col.port)).filter(|t| t.keys().cloned().collect::<BTreeSet<_>>() == want_first)
    });
    let got = got.unwrap_or_else(|| {
        panic!("DNS targets never matched {want_first:?}; last {:?}\n{}", dns_targets(col.port), col.log_text())
    });
    let n1 = &got[&format!("node1.fleet.test:{p1}")];
    assert_eq!(n1["__meta_dns_name"], "_agent._tcp.fleet.test");
    assert_eq!(n1["__meta_dns_srv_record_target"], "node1.fleet.test.");
    assert_eq!(n1["__meta_dns_srv_record_port"], p1.to_string());
    let v6 = &got["[::1]:9100"];
    assert_eq!(v6["__meta_dns_name"], "v6.fleet.test");
    assert!(!v6.contains_key("__meta_dns_srv_record_target"), "A/AAAA targets have no SRV labels: {v6:?}");
    let v = targets_json(col.port).expect("targets");
    let node_label = v["data"]["activeTargets"]
        .as_array()
        .expect("active")
        .iter()
        .find(|t| t["labels"]["instance"] == format!("node2.fleet.test:{p2}"))
        .map(|t| t["labels"]["node"].clone());
    assert_eq!(node_label, Some(Value::String("node2".into())), "relabeling on __meta_dns_* labels");

    // Change the records: node2 leaves, node3 joins, the A record moves.
    drop(dns);
    let second = vec![
        format!("--srv-host=_agent._tcp.fleet.test,node1.fleet.test,{p1}"),
        format!("--srv-host=_agent._tcp.fleet.test,node3.fleet.test,{p3}"),
        "--host-record=v4.fleet.test,127.0.0.22".to_owned(),
        "--host-record=v6.fleet.test,::1".to_owned(),
    ];
    dns = Dnsmasq::start(&dnsmasq, "127.0.0.1", dns_port, &second);
    let want_second: BTreeSet<String> = [
        format!("node1.fleet.test:{p1}"),
        format!("node3.fleet.test:{p3}"),
        "127.0.0.22:9100".into(),
        "[::1]:9100".into(),
    ]
    .into();
    // refresh_interval is 1s: allow a few refreshes plus the debounce.
    let changed = eventually(Duration::from_secs(10), || {
        Some(dns_targets(col.port)).filter(|t| t.keys().cloned().collect::<BTreeSet<_>>() == want_second)
    });
    assert!(changed.is_some(), "record change not picked up: {:?}\n{}", dns_targets(col.port), col.log_text());
    drop(dns);
}

fn file_targets(port: u16) -> BTreeSet<String> {
    targets_json(port)
        .map(|v| {
            v["data"]["activeTargets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["labels"]["instance"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn file_sd_follows_writes_keeps_last_good_targets_of_a_broken_file() {
    let dir = TempDir::new("file-sd");
    std::fs::create_dir_all(dir.join("sd")).expect("sd dir");
    std::fs::write(dir.join("sd/a.json"), r#"[{"targets":["a1:9100","a2:9100"],"labels":{"env":"prod"}}]"#)
        .expect("write");
    std::fs::write(dir.join("sd/b.yml"), "- targets: ['b1:9100']\n").expect("write");
    let cfg = dir.join("collector.toml");
    // A long refresh_interval: changes must arrive through the file watch.
    std::fs::write(&cfg, "[[scrape_configs]]\njob_name = \"files\"\nfile_sd_configs = [{ files = [\"sd/*.json\", \"sd/*.yml\"], refresh_interval = \"10m\" }]\n").expect("write");
    let col = start_collector(&cfg, &dir);
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    let first = eventually(Duration::from_secs(15), || {
        Some(file_targets(col.port)).filter(|t| *t == set(&["a1:9100", "a2:9100", "b1:9100"]))
    });
    assert!(first.is_some(), "initial file targets: {:?}\n{}", file_targets(col.port), col.log_text());
    let v = targets_json(col.port).expect("targets");
    let a1 = v["data"]["activeTargets"]
        .as_array()
        .expect("active")
        .iter()
        .find(|t| t["labels"]["instance"] == "a1:9100")
        .cloned()
        .expect("a1");
    assert_eq!(a1["labels"]["env"], "prod");
    assert_eq!(a1["discoveredLabels"]["__meta_filepath"], dir.join("sd/a.json").display().to_string());

    // Rewrite through rename, as config management tools do.
    std::fs::write(dir.join("sd/.a.tmp"), r#"[{"targets":["a1:9100","a3:9100"]}]"#).expect("write");
    std::fs::rename(dir.join("sd/.a.tmp"), dir.join("sd/a.json")).expect("rename");
    let changed = eventually(Duration::from_secs(10), || {
        Some(file_targets(col.port)).filter(|t| *t == set(&["a1:9100", "a3:9100", "b1:9100"]))
    });
    assert!(changed.is_some(), "file change not picked up: {:?}", file_targets(col.port));

    // A broken file keeps its last good targets and is reported.
    std::fs::write(dir.join("sd/a.json"), "[{\"targets\": [\"a1:9100\"").expect("write");
    let logged =
        eventually(Duration::from_secs(10), || Some(col.log_text()).filter(|l| l.contains("error reading file")));
    assert!(logged.is_some(), "broken file not reported: {}", col.log_text());
    assert_eq!(file_targets(col.port), set(&["a1:9100", "a3:9100", "b1:9100"]));
    // A new file in the directory is picked up, and deleting one removes its targets.
    std::fs::write(dir.join("sd/c.yml"), "- targets: ['c1:9100']\n").expect("write");
    std::fs::remove_file(dir.join("sd/b.yml")).expect("rm");
    let last = eventually(Duration::from_secs(10), || {
        Some(file_targets(col.port)).filter(|t| *t == set(&["a1:9100", "a3:9100", "c1:9100"]))
    });
    assert!(last.is_some(), "new/deleted files not picked up: {:?}", file_targets(col.port));
}

#[test]
fn reload_keeps_old_config_when_new_one_is_bad() {
    let dir = TempDir::new("collector-reload");
    let cfg = dir.join("collector.toml");
    std::fs::write(&cfg, "[[scrape_configs]]\njob_name = \"one\"\nstatic_configs = [{ targets = [\"x:1\"] }]\n")
        .expect("write");
    let col = start_collector(&cfg, &dir);
    let one = |port| file_targets(port) == BTreeSet::from(["x:1".to_owned()]);
    assert!(eventually(Duration::from_secs(10), || one(col.port).then_some(())).is_some());
    std::fs::write(
        &cfg,
        "[[scrape_configs]]\njob_name = \"one\"\nstatic_configs = [{ targets = [\"y:1\"] }]\nbogus = 1\n",
    )
    .expect("write");
    let r = http_request(col.port, "POST", "/-/reload", &[]).expect("reload");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("bogus"), "{}", r.text());
    assert!(one(col.port));
    std::fs::write(&cfg, "[[scrape_configs]]\njob_name = \"one\"\nstatic_configs = [{ targets = [\"y:1\"] }]\n")
        .expect("write");
    col.signal("HUP");
    let y = eventually(Duration::from_secs(10), || {
        (file_targets(col.port) == BTreeSet::from(["y:1".to_owned()])).then_some(())
    });
    assert!(y.is_some(), "SIGHUP reload not applied: {:?}", file_targets(col.port));
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = TempDir::new("check-config");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[global]\nscrape_interval = \"15s\"\n\n[[scrape_configs]]\njob_name = \"node\"\nscrape_interval = \"10s\"\nscrape_timeout = \"30s\"\n").expect("write");
    let out = run(collector_bin(), &["check", "config", &bad.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let want = format!(
        "{}:7: key `scrape_configs[0].scrape_timeout`: scrape timeout greater than scrape interval",
        bad.display()
    );
    assert!(err.contains(&want), "expected {want:?} in {err}");
    std::fs::write(
        &bad,
        "[[scrape_configs]]\njob_name = \"node\"\nrelabel_configs = [{ action = \"keep\", sourcelabels = [\"a\"] }]\n",
    )
    .expect("write");
    let out = run(collector_bin(), &["check", "config", &bad.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3: key `sourcelabels`: unknown field `sourcelabels`", bad.display())), "{err}");
    let good = dir.join("good.toml");
    std::fs::write(&good, "[[scrape_configs]]\njob_name = \"node\"\nstatic_configs = [{ targets = [\"a:1\"] }]\n")
        .expect("write");
    let out = run(collector_bin(), &["check", "config", &good.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
}

/// A realistic prometheus.yml: static, file and DNS SD, relabeling with hashmod sharding,
/// metric relabeling, auth, limits, and keys we do not support.
fn realistic_prometheus_yml(sd_dir: &Path) -> String {
    format!(
        r#"global:
  scrape_interval: 15s
  scrape_timeout: 10s
  evaluation_interval: 30s
  external_labels:
    cluster: eu-1
    replica: "a"
remote_write:
  - url: http://mimir.example:9009/api/v1/push
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
  - job_name: node
    scrape_interval: 30s
    scrape_timeout: 20s
    sample_limit: 50000
    label_limit: 64
    body_size_limit: 20MB
    follow_redirects: false
    file_sd_configs:
      - files: ["{sd}/*.json", "{sd}/*.yml"]
        refresh_interval: 2m
    relabel_configs:
      - source_labels: [__address__]
        modulus: 3
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        regex: "1"
        action: keep
      - source_labels: [__meta_filepath]
        regex: '.*/(.*)\.(json|yml)'
        target_label: sd_file
        replacement: "${{1}}"
      - regex: "team_(.+)"
        replacement: "owner_$1"
        action: labelmap
      - source_labels: [__address__]
        regex: '([^:]+):(\d+)'
        target_label: host
        replacement: "$1"
      - source_labels: [env]
        target_label: env_upper
        action: uppercase
      - regex: "team_.*"
        action: labeldrop
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "go_gc_.*"
        action: drop
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    bearer_token: not-a-real-token
    static_configs:
      - targets: ["example.org", "example.net"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
  - job_name: dns
    dns_sd_configs:
      - names: ["_node._tcp.example.internal"]
        refresh_interval: 30s
  - job_name: ec2-nodes
    ec2_sd_configs:
      - region: eu-west-1
"#,
        sd = sd_dir.display()
    )
}

fn write_fleet_files(sd: &Path) {
    std::fs::create_dir_all(sd).expect("sd dir");
    let mut json = Vec::new();
    for i in 0..4 {
        let targets: Vec<String> = (0..10).map(|j| format!("\"10.0.{i}.{j}:9100\"")).collect();
        json.push(format!(
            r#"{{"targets":[{}],"labels":{{"env":"prod","team_{}":"t{i}"}}}}"#,
            targets.join(","),
            ["db", "web", "ops", "ml"][i]
        ));
    }
    std::fs::write(sd.join("fleet.json"), format!("[{}]", json.join(","))).expect("write");
    let yml = (0..10).map(|j| format!("      - host-{j}.example:9100")).collect::<Vec<_>>().join("\n");
    std::fs::write(sd.join("edge.yml"), format!("- labels:\n    env: staging\n  targets:\n{yml}\n")).expect("write");
}

#[test]
fn convert_prometheus_config_round_trip_checked_by_promtool() {
    let Some(promtool) = peer("promtool") else { return };
    let dir = TempDir::new("convert");
    let sd = dir.join("sd");
    write_fleet_files(&sd);
    let yml = dir.join("prometheus.yml");
    std::fs::write(&yml, realistic_prometheus_yml(&sd)).expect("write");
    let out = run(&promtool, &["check", "config", &yml.display().to_string()]);
    assert!(
        out.status.success(),
        "promtool rejects the input: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = dir.join("collector.toml");
    let out = run(
        collector_bin(),
        &["convert-prometheus-config", &yml.display().to_string(), "-o", &toml.display().to_string()],
    );
    let warnings = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "convert failed: {warnings}");
    for named in [
        "unsupported key `remote_write` dropped",
        "unsupported key `scrape_configs[1].follow_redirects` (job \"node\") dropped",
        "unsupported key `scrape_configs[4].ec2_sd_configs` (job \"ec2-nodes\") dropped",
        "deprecated key `scrape_configs[2].bearer_token` converted to `authorization.credentials`",
    ] {
        assert!(warnings.contains(named), "warning {named:?} missing in:\n{warnings}");
    }
    let text = std::fs::read_to_string(&toml).expect("read toml");
    assert!(text.contains("modulus = 3") && text.contains("body_size_limit = \"20MB\""), "{text}");
    let out = run(collector_bin(), &["check", "config", &toml.display().to_string()]);
    assert!(out.status.success(), "converted config fails check: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 scrape configs"));
}

/// Writes `yml` as prometheus.yml, converts it with `convert-prometheus-config`, and starts a
/// stock Prometheus on the YAML and our collector on the TOML.
fn start_prometheus_and_converted_collector(prom: &Path, yml: &str, dir: &TempDir) -> (Proc, Proc) {
    let yml_path = dir.join("prometheus.yml");
    std::fs::write(&yml_path, yml).expect("write prometheus.yml");
    let out = run(collector_bin(), &["convert-prometheus-config", &yml_path.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = dir.join("collector.toml");
    std::fs::write(&toml, &out.stdout).expect("write toml");
    let port = free_port();
    let args = vec![
        format!("--config.file={}", yml_path.display()),
        format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    let p = Proc::start(prom, &args, port, "/-/ready", dir);
    (p, start_collector(&toml, dir))
}

#[test]
fn relabeling_and_hashmod_agree_with_prometheus() {
    let Some(prom) = peer("prometheus") else { return };
    let dir = TempDir::new("relabel-diff");
    let sd = dir.join("sd");
    write_fleet_files(&sd);
    // Only the file_sd and static jobs: Prometheus cannot be pointed at our dnsmasq (no per-config
    // nameservers), and the EC2 job is unsupported by us.
    let full = realistic_prometheus_yml(&sd);
    let yml_text: String = full.split("  - job_name: dns\n").next().expect("head").to_owned();
    let (p, col) = start_prometheus_and_converted_collector(&prom, &yml_text, &dir);
    let port = p.port;
    // Prometheus applies discovery after its 5 s debounce; wait until both show all jobs.
    let settled = |port: u16| {
        targets_json(port).map(|v| target_sets(&v)).filter(|(a, d)| {
            let jobs: BTreeSet<&str> = a.iter().filter_map(|(l, _)| l.get("job").map(String::as_str)).collect();
            jobs.len() == 3 && a.len() + d.len() == 1 + 50 + 2
        })
    };
    let theirs = eventually(Duration::from_secs(40), || settled(port))
        .unwrap_or_else(|| panic!("Prometheus targets did not settle: {:?}\n{}", targets_json(port), p.log_text()));
    let ours = eventually(Duration::from_secs(20), || settled(col.port))
        .unwrap_or_else(|| panic!("our targets did not settle: {:?}\n{}", targets_json(col.port), col.log_text()));
    let (their_active, their_dropped) = theirs;
    let (our_active, our_dropped) = ours;
    // The hashmod shard keeps about a third of the 50 file targets.
    let kept = their_active.iter().filter(|(l, _)| l.get("job").map(String::as_str) == Some("node")).count();
    assert!((5..=30).contains(&kept), "hashmod kept {kept} of 50");
    assert_eq!(our_active.len(), their_active.len(), "active target counts differ");
    for t in &their_active {
        assert!(our_active.contains(t), "Prometheus target {t:?} missing or different in ours");
    }
    assert_eq!(our_dropped, their_dropped, "dropped targets differ");
    // Spot-check the relabel results themselves.
    let (l, _) =
        their_active.iter().find(|(l, _)| l.get("owner_db").is_some()).expect("the shard keeps some db targets");
    assert_eq!(l["env_upper"], "PROD");
    assert_eq!(l["sd_file"], "fleet");
    assert_eq!(l["host"], l["instance"].split(':').next().unwrap_or_default());
    assert!(!l.keys().any(|k| k.starts_with("team_")));
    let bb: Vec<_> =
        our_active.iter().filter(|(l, _)| l["job"] == "blackbox").map(|(l, _)| l["instance"].clone()).collect();
    assert_eq!(bb, ["example.net", "example.org"]);
}

#[test]
fn dns_sd_large_srv_answers_fall_back_to_tcp() {
    let Some(dnsmasq) = sbin_peer("dnsmasq") else { return };
    let dir = TempDir::new("dns-sd-large");
    let dns_port = free_port();
    // 3 names × 100 SRV records: each answer is far over 512 bytes, so UDP truncates and the
    // resolver must retry over TCP.
    let mut records = Vec::new();
    for n in 0..3 {
        for i in 0..100 {
            records.push(format!("--srv-host=_n{n}._tcp.fleet.test,h{i}.fleet.test,{}", 10_000 + n * 100 + i));
        }
    }
    let _dns = Dnsmasq::start(&dnsmasq, "127.0.0.1", dns_port, &records);
    let cfg = dir.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[scrape_configs]]\njob_name = \"big\"\ndns_sd_configs = [{{ names = [\"_n0._tcp.fleet.test\", \"_n1._tcp.fleet.test\", \"_n2._tcp.fleet.test\"], refresh_interval = \"1s\", nameservers = [\"127.0.0.1:{dns_port}\"] }}]\n"
        ),
    )
    .expect("write config");
    let col = start_collector(&cfg, &dir);
    let got = eventually(Duration::from_secs(20), || Some(dns_targets(col.port)).filter(|t| t.len() == 300));
    assert!(got.is_some(), "expected 300 SRV targets, got {}\n{}", dns_targets(col.port).len(), col.log_text());
    let t = dns_targets(col.port);
    assert_eq!(t["h7.fleet.test:10207"]["__meta_dns_name"], "_n2._tcp.fleet.test");
}

/// Serves `body` as `application/json` to every request on a free port, until the test ends.
fn serve_json_forever(body: String) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                use std::io::{BufRead, BufReader, Write};
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

#[test]
fn http_sd_agrees_with_prometheus() {
    let Some(prom) = peer("prometheus") else { return };
    let dir = TempDir::new("http-sd");
    let sd_port = serve_json_forever(
        r#"[{"targets":["10.1.0.1:9100","10.1.0.2:9100"],"labels":{"env":"prod","rack":"r1"}},{"targets":["10.1.0.3:9100"],"labels":{"env":"dev"}}]"#.to_owned(),
    );
    let yml = format!(
        "scrape_configs:\n  - job_name: cmdb\n    http_sd_configs:\n      - url: http://127.0.0.1:{sd_port}/sd\n        refresh_interval: 5s\n    relabel_configs:\n      - source_labels: [env]\n        regex: dev\n        action: drop\n      - source_labels: [__meta_url]\n        target_label: sd_url\n"
    );
    let (p, col) = start_prometheus_and_converted_collector(&prom, &yml, &dir);
    let port = p.port;
    let settled = |port: u16| targets_json(port).map(|v| target_sets(&v)).filter(|(a, d)| a.len() == 2 && d.len() == 1);
    let theirs = eventually(Duration::from_secs(40), || settled(port))
        .unwrap_or_else(|| panic!("Prometheus: {:?}\n{}", targets_json(port), p.log_text()));
    let ours = eventually(Duration::from_secs(20), || settled(col.port))
        .unwrap_or_else(|| panic!("ours: {:?}\n{}", targets_json(col.port), col.log_text()));
    assert_eq!(ours, theirs);
    let (active, _) = ours;
    assert!(
        active
            .iter()
            .all(|(l, d)| l["sd_url"] == format!("http://127.0.0.1:{sd_port}/sd") && d["__meta_url"] == l["sd_url"])
    );
}

#[test]
fn embedded_default_config_targets_itself_and_the_local_agent() {
    let dir = TempDir::new("collector-default");
    let port = free_port();
    let args = vec![
        format!("--data-dir={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--discovery.debounce=100ms".to_owned(),
    ];
    let col = Proc::start(collector_bin(), &args, port, "/-/healthy", &dir);
    assert!(dir.join("data").is_dir(), "data dir not created");
    let cfg = http_get(col.port, "/api/v1/status/config").expect("status/config");
    let v: Value = serde_json::from_str(&cfg.text()).expect("json");
    assert_eq!(v["status"], "success");
    assert!(v["data"]["yaml"].as_str().is_some_and(|t| t.contains("localhost:9100")), "{v}");
    let jobs = eventually(Duration::from_secs(10), || {
        let v = targets_json(col.port)?;
        let jobs: BTreeMap<String, String> = v["data"]["activeTargets"]
            .as_array()?
            .iter()
            .map(|t| {
                (
                    t["labels"]["job"].as_str().unwrap_or_default().to_owned(),
                    t["scrapeUrl"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        (jobs.len() == 2).then_some(jobs)
    });
    let jobs = jobs.unwrap_or_else(|| panic!("default targets missing: {:?}", targets_json(col.port)));
    assert_eq!(jobs["node"], "http://localhost:9100/metrics");
    assert_eq!(jobs["osprey-collector"], "http://localhost:9090/metrics");
}
