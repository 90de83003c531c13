//! `osprey-collector` against stock Prometheus on the same fleet, with the same configuration:
//! one prometheus.yml (file_sd in JSON and YAML, DNS SD with SRV and A records through a real
//! `dnsmasq`, a static dead target, target relabeling with `hashmod` sharding, `labelmap`,
//! `labeldrop`, `uppercase`, and metric relabeling) is given to Prometheus as is and to our
//! collector as the TOML `convert-prometheus-config` makes of it. Both scrape the fleet
//! simulator; `/api/v1/targets` must agree on every target's `discoveredLabels`, `labels` and
//! `health` (and on the dropped targets), and `/federate` must return the same series set.
//!
//! Prometheus has no per-config DNS servers: it reads `/etc/resolv.conf`, on port 53. So dnsmasq
//! listens on port 53 of its own loopback address (127.53.x.y), and both servers run in a
//! private mount namespace (`unshare -m`) where `/etc/resolv.conf` names it. Both thus resolve
//! the SRV names and the SRV targets' host names through the same dnsmasq. This needs root
//! (as `.ci/run` runs); without it the test is skipped, or fails under `OSPREY_REQUIRE_PEERS=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::dns_and_api::{Dnsmasq, LabelMap, labels_of, sbin_peer, targets_json};
use crate::harness::{FleetSim, Proc, TempDir, built_bin, eventually, free_port, http_get, peer, run};

const SIM_TARGETS: usize = 12;
/// Four families of 20 series (int counters, gauges, float counters, constants); the last series
/// carries its own `job` and `instance`.
const SIM_SERIES: usize = 80;

/// Starts the simulator and returns it with its targets' ports.
fn start_sim(dir: &TempDir) -> (FleetSim, Vec<u16>) {
    let sim = FleetSim::start(SIM_TARGETS, SIM_SERIES, &dir.join("sim.json"));
    let text = &sim.sd_text;
    let v: Value = serde_json::from_str(text).expect("file_sd JSON of the simulator");
    let ports = v
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t.as_str().and_then(|a| a.rsplit_once(':')).and_then(|(_, p)| p.parse().ok()).expect("host:port"))
        .collect::<Vec<u16>>();
    assert_eq!(ports.len(), SIM_TARGETS);
    (sim, ports)
}

/// Whether this process may create a mount namespace and bind-mount over /etc/resolv.conf.
fn can_unshare_mounts() -> bool {
    Command::new("unshare")
        .args(["-m", "sh", "-c", "mount --bind /etc/hostname /etc/resolv.conf"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `bin args…` in a private mount namespace whose /etc/resolv.conf is `resolv`.
fn start_with_resolv(bin: &Path, args: &[String], resolv: &Path, port: u16, dir: &TempDir) -> Proc {
    let mut a = vec![
        "-m".to_owned(),
        "sh".to_owned(),
        "-c".to_owned(),
        format!("mount --bind '{}' /etc/resolv.conf && exec \"$0\" \"$@\"", resolv.display()),
        bin.display().to_string(),
    ];
    a.extend(args.iter().cloned());
    Proc::start(Path::new("/usr/bin/unshare"), &a, port, "/-/ready", dir)
}

fn prometheus_yml(sd: &Path, a_port: u16, dead_port: u16) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: files
    file_sd_configs:
      - files: ["{sd}/*.json", "{sd}/*.yml"]
    relabel_configs:
      - source_labels: [__address__]
        modulus: 2
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        regex: "0"
        action: keep
      - source_labels: [__meta_filepath]
        regex: '.*/(.*)\.(json|yml)'
        target_label: sd_file
      - regex: "team_(.+)"
        replacement: "owner_$1"
        action: labelmap
      - regex: "team_.*"
        action: labeldrop
      - source_labels: [env]
        target_label: env_upper
        action: uppercase
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "fleet_cpu_seconds_.*"
        action: drop
      - source_labels: [__name__, queue]
        regex: "fleet_queue_depth_1;q(1|2|3)"
        action: drop
      - regex: shard
        action: labeldrop
      - source_labels: [resource]
        regex: "r(.*)"
        target_label: resource_id
        replacement: "id-${{1}}"
  - job_name: dns
    dns_sd_configs:
      - names: ["_fleet._tcp.sim.test"]
        refresh_interval: 5s
      - names: ["single.sim.test"]
        type: A
        port: {a_port}
    relabel_configs:
      - source_labels: [__address__]
        modulus: 3
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        regex: "2"
        action: drop
      - source_labels: [__meta_dns_name]
        target_label: dns_name
      - source_labels: [__meta_dns_srv_record_target, __meta_dns_srv_record_port]
        separator: "/"
        target_label: srv
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "fleet_(http_requests|upstream).*"
        action: keep
  - job_name: dead
    static_configs:
      - targets: ["127.0.0.1:{dead_port}"]
        labels:
          kind: dead
"#,
        sd = sd.display()
    )
}

/// file_sd files over simulator targets 0..8: two JSON groups and one YAML group.
fn write_file_sd(sd: &Path, ports: &[u16]) {
    std::fs::create_dir_all(sd).expect("sd dir");
    let t = |r: std::ops::Range<usize>| ports[r].iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect::<Vec<_>>();
    let json = format!(
        r#"[{{"targets":[{}],"labels":{{"env":"prod","team_db":"alice"}}}},{{"targets":[{}],"labels":{{"env":"dev","team_web":"bob"}}}}]"#,
        t(0..3).join(","),
        t(3..6).join(",")
    );
    std::fs::write(sd.join("fleet.json"), json).expect("write fleet.json");
    let yml = format!("- labels:\n    env: staging\n  targets: [{}]\n", t(6..8).join(", "));
    std::fs::write(sd.join("edge.yml"), yml).expect("write edge.yml");
}

/// Active targets as labels → (discoveredLabels, health), and the dropped targets' labels.
type Targets = (BTreeMap<LabelMap, (LabelMap, String)>, BTreeSet<LabelMap>);

fn targets(port: u16) -> Option<Targets> {
    let v = targets_json(port)?;
    let active = v["data"]["activeTargets"]
        .as_array()?
        .iter()
        .map(|t| {
            (
                labels_of(&t["labels"]),
                (labels_of(&t["discoveredLabels"]), t["health"].as_str().unwrap_or("").to_owned()),
            )
        })
        .collect();
    let dropped = v["data"]["droppedTargets"].as_array()?.iter().map(|t| labels_of(&t["discoveredLabels"])).collect();
    Some((active, dropped))
}

/// Parses one exposition series, `name{a="b",…}`, into its labels (with `__name__`).
fn series_labels(s: &str) -> LabelMap {
    let (name, rest) = s.split_once('{').map_or((s, ""), |(n, r)| (n, r.strip_suffix('}').unwrap_or(r)));
    let mut out = LabelMap::from([("__name__".to_owned(), name.to_owned())]);
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            return out;
        }
        assert_eq!(chars.next(), Some('"'), "label value of {key} in {s}");
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(e) => val.push(e),
                    None => {}
                },
                '"' => break,
                c => val.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_owned(), val);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// The series set of `/federate?match[]={job=~".+"}`.
fn federated(port: u16) -> BTreeSet<LabelMap> {
    let Ok(r) = http_get(port, "/federate?match[]=%7Bjob%3D~%22.%2B%22%7D") else { return BTreeSet::new() };
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            // `series value timestamp`; label values may hold spaces, so cut from the right.
            let (rest, _ts) = l.rsplit_once(' ')?;
            let (series, _v) = rest.rsplit_once(' ')?;
            Some(series_labels(series))
        })
        .collect()
}

fn diff<T: Ord + std::fmt::Debug>(ours: &BTreeSet<T>, theirs: &BTreeSet<T>) -> String {
    let only_ours: Vec<_> = ours.difference(theirs).take(10).collect();
    let only_theirs: Vec<_> = theirs.difference(ours).take(10).collect();
    format!(
        "{} only in ours (first 10: {only_ours:#?}), {} only in Prometheus (first 10: {only_theirs:#?})",
        ours.difference(theirs).count(),
        theirs.difference(ours).count()
    )
}

#[test]
fn targets_and_federate_agree_with_prometheus_on_file_dns_relabel_and_shards() {
    let Some(prom) = peer("prometheus") else { return };
    let Some(dnsmasq) = sbin_peer("dnsmasq") else { return };
    if !can_unshare_mounts() {
        assert!(
            std::env::var("OSPREY_REQUIRE_PEERS").as_deref() != Ok("1"),
            "this test needs root (a mount namespace over /etc/resolv.conf) and OSPREY_REQUIRE_PEERS=1"
        );
        eprintln!("SKIP: cannot create a mount namespace (needs root) for the DNS part of the differential");
        return;
    }
    let dir = TempDir::new("collector-diff");
    let (_sim, ports) = start_sim(&dir);
    // A loopback address of our own for dnsmasq's port 53, so parallel tests do not collide.
    let pid = std::process::id();
    let dns_addr = format!("127.53.{}.{}", (pid >> 8) % 250 + 1, pid % 250 + 1);
    let mut records =
        vec!["--host-record=sim.test,127.0.0.1".to_owned(), "--host-record=single.sim.test,127.0.0.1".to_owned()];
    records.extend(ports[8..].iter().map(|p| format!("--srv-host=_fleet._tcp.sim.test,sim.test,{p}")));
    let _dns = Dnsmasq::start(&dnsmasq, &dns_addr, 53, &records);
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {dns_addr}\n")).expect("resolv.conf");

    let sd = dir.join("sd");
    write_file_sd(&sd, &ports);
    let yml = dir.join("prometheus.yml");
    std::fs::write(&yml, prometheus_yml(&sd, ports[8], free_port())).expect("write prometheus.yml");
    let out = run(&built_bin("osprey-collector"), &["convert-prometheus-config", &yml.display().to_string()]);
    assert!(out.status.success(), "convert: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "every key is supported: {}", String::from_utf8_lossy(&out.stderr));
    let toml = dir.join("collector.toml");
    std::fs::write(&toml, &out.stdout).expect("write collector.toml");

    let pport = free_port();
    let pargs = vec![
        format!("--config.file={}", yml.display()),
        format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
        format!("--web.listen-address=127.0.0.1:{pport}"),
    ];
    let p = start_with_resolv(&prom, &pargs, &resolv, pport, &dir);
    let oport = free_port();
    let oargs = vec![
        format!("--config={}", toml.display()),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{oport}"),
        "--discovery.debounce=100ms".to_owned(),
    ];
    let o = start_with_resolv(&built_bin("osprey-collector"), &oargs, &resolv, oport, &dir);

    // Prometheus applies discovery after its 5 s debounce. Settled: every job has targets, every
    // target has been scraped, and the set is the same twice in a row.
    let settled = |port: u16| {
        let mut last = None;
        eventually(Duration::from_secs(45), || {
            let t = targets(port)?;
            let jobs: BTreeSet<&str> = t.0.keys().filter_map(|l| l.get("job").map(String::as_str)).collect();
            let done = jobs.len() == 3 && t.0.values().all(|(_, h)| h != "unknown");
            let same = last.as_ref() == Some(&t);
            last = Some(t.clone());
            (done && same).then_some(t)
        })
    };
    let theirs = settled(pport)
        .unwrap_or_else(|| panic!("Prometheus targets did not settle: {:?}\n{}", targets_json(pport), p.log_text()));
    let ours = settled(oport)
        .unwrap_or_else(|| panic!("our targets did not settle: {:?}\n{}", targets_json(oport), o.log_text()));

    // The configuration exercised what it should.
    let (active, dropped) = &theirs;
    let by_job = |job: &str| active.keys().filter(|l| l["job"] == job).count();
    // How many targets a shard keeps depends on the (random) ports in the addresses, so only
    // bounds are asserted here; the comparison below checks both servers shard alike.
    assert!((1..=8).contains(&by_job("files")), "the files shard keeps up to 8: {}", by_job("files"));
    assert!((1..=5).contains(&by_job("dns")), "the dns shard keeps up to 5: {}", by_job("dns"));
    eprintln!("shards keep files {}/8, dns {}/5", by_job("files"), by_job("dns"));
    // Both DNS names were discovered; which of their targets the shard keeps depends on the
    // (random) ports, so a name may sit among the dropped targets only.
    for name in ["single.sim.test", "_fleet._tcp.sim.test"] {
        let kept = active.keys().any(|l| l["job"] == "dns" && l["dns_name"] == name);
        let shed = dropped.iter().any(|l| l.get("__meta_dns_name").map(String::as_str) == Some(name));
        assert!(kept || shed, "no target discovered from {name}: {theirs:#?}");
    }
    assert_eq!(active.len() + dropped.len(), 8 + 5 + 1, "every discovered target is active or dropped");
    let dead: Vec<_> = active.iter().filter(|(l, _)| l["job"] == "dead").collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1.1, "down");
    assert!(active.iter().filter(|(l, _)| l["job"] != "dead").all(|(_, (_, h))| h == "up"), "{active:#?}");

    // Targets: the same set of label sets, each with the same discovered labels and health.
    let ours_keys: BTreeSet<_> = ours.0.keys().cloned().collect();
    let theirs_keys: BTreeSet<_> = theirs.0.keys().cloned().collect();
    assert_eq!(ours_keys, theirs_keys, "active target labels: {}", diff(&ours_keys, &theirs_keys));
    for (labels, (disc, health)) in &theirs.0 {
        let (odisc, ohealth) = &ours.0[labels];
        assert_eq!(odisc, disc, "discoveredLabels of {labels:?}");
        assert_eq!(ohealth, health, "health of {labels:?}");
    }
    assert_eq!(ours.1, theirs.1, "dropped targets: {}", diff(&ours.1, &theirs.1));

    // /federate: the same series set (values and timestamps differ by scrape time).
    let want = federated(pport);
    assert!(want.len() > 100, "Prometheus federates {} series", want.len());
    assert!(want.iter().any(|l| l.get("resource_id").is_some_and(|v| v.starts_with("id-"))), "metric relabel replace");
    assert!(want.iter().all(|l| !l["__name__"].starts_with("fleet_cpu_seconds")), "metric relabel drop");
    assert!(want.iter().any(|l| l.contains_key("exported_instance")), "honor_labels=false renames");
    let got = eventually(Duration::from_secs(20), || Some(federated(oport)).filter(|g| *g == federated(pport)));
    let now_theirs = federated(pport);
    let got = got.unwrap_or_else(|| {
        let ours = federated(oport);
        panic!("/federate series differ: {}", diff(&ours, &now_theirs))
    });
    assert_eq!(got.len(), now_theirs.len());
    drop(o);
    drop(p);
}
