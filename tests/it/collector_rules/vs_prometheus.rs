//! The collector beside the real Prometheus on the same rules and data: the API's JSON shapes,
//! and the same alerts pending, firing and resolving at the same steps.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The structure of a JSON value: object keys with their shapes, each array element's shape,
/// leaf types. Two bodies with equal shapes have the same fields of the same JSON types.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

#[test]
fn rules_and_alerts_json_match_real_prometheus_on_the_same_rules_and_data() {
    let Some(prom) = peer("prometheus") else { return };
    let dir = TempDir::new("rules-vs-prom");
    let fake = Fake::start("value 7\n");
    write_config(&dir, fake.port, "");
    let rules = "groups:\n- name: g\n  rules:\n  - record: job:value:sum\n    expr: sum by (job) (value)\n  - alert: ValueHigh\n    expr: value > 5\n    for: 2s\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.instance }} has {{ $value }}'\n      total: '{{ with query \"sum(value) * 2\" }}{{ . | first | value | humanize }}{{ end }} in {{ $externalLabels.cluster }}'\n";
    std::fs::write(dir.join("rules/r.yml"), rules).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels: {{cluster: test}}\nrule_files: [\"{}\"]\nscrape_configs:\n- job_name: fake\n  static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            dir.join("rules/r.yml").display(),
            fake.port
        ),
    )
    .unwrap();
    let pport = free_port();
    let pargs = vec![
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
        format!("--web.listen-address=127.0.0.1:{pport}"),
    ];
    let p = Proc::start(&prom, &pargs, pport, "/-/ready", &dir);
    let c = start_collector(&dir, &[]);
    let firing = |port: u16| {
        let a = get_json(port, "/api/v1/alerts");
        (a["data"]["alerts"][0]["state"] == "firing").then_some(a)
    };
    let theirs = eventually(Duration::from_secs(30), || firing(p.port)).expect("Prometheus fires");
    let ours = eventually(Duration::from_secs(30), || firing(c.port)).expect("we fire");
    assert_eq!(shape(&ours), shape(&theirs), "/api/v1/alerts shape\nours:   {ours}\ntheirs: {theirs}");
    let (a, b) = (&ours["data"]["alerts"][0], &theirs["data"]["alerts"][0]);
    assert_eq!(a["labels"], b["labels"], "same alert labels");
    assert_eq!(a["annotations"], b["annotations"], "same rendered annotations");
    assert_eq!(a["annotations"]["total"], "14 in test", "query template and $externalLabels");
    assert_eq!(a["value"], b["value"]);
    let ours = get_json(c.port, "/api/v1/rules");
    let theirs = get_json(p.port, "/api/v1/rules");
    assert_eq!(shape(&ours), shape(&theirs), "/api/v1/rules shape\nours:   {ours}\ntheirs: {theirs}");
    let (og, tg) = (&ours["data"]["groups"][0], &theirs["data"]["groups"][0]);
    for k in ["name", "file", "interval", "limit"] {
        assert_eq!(og[k], tg[k], "group {k}");
    }
    for i in 0..2 {
        for k in ["name", "query", "labels", "type", "health", "state", "duration", "annotations"] {
            assert_eq!(og["rules"][i][k], tg["rules"][i][k], "rule {i} {k}");
        }
    }
}

/// When each alert was first seen pending, firing, and gone after firing (seconds since start).
#[derive(Debug, Default, Clone)]
struct Timeline {
    pending: Option<f64>,
    firing: Option<f64>,
    resolved: Option<f64>,
    firing_alert: Option<Value>,
}

fn observe(port: u16, t: f64, tl: &mut std::collections::BTreeMap<String, Timeline>) {
    let alerts = get_json(port, "/api/v1/alerts")["data"]["alerts"].as_array().cloned().unwrap_or_default();
    let mut present = std::collections::BTreeSet::new();
    for a in alerts {
        let name = a["labels"]["alertname"].as_str().unwrap_or("").to_owned();
        present.insert(name.clone());
        let e = tl.entry(name).or_default();
        if a["state"] == "pending" && e.pending.is_none() && e.firing.is_none() {
            e.pending = Some(t);
        }
        if a["state"] == "firing" && e.firing.is_none() {
            e.firing = Some(t);
            e.firing_alert = Some(a.clone());
        }
    }
    for (name, e) in tl.iter_mut() {
        if e.firing.is_some() && e.resolved.is_none() && !present.contains(name) {
            e.resolved = Some(t);
        }
    }
}

#[test]
fn same_alerts_pend_fire_and_resolve_as_in_real_prometheus_on_a_scripted_fleet() {
    let Some(prom) = peer("prometheus") else { return };
    let dir = TempDir::new("rules-differential");
    // Target a: a CPU spike from 4s to 14s and a counter that resets at 10s; target b: down
    // (HTTP 500) from 6s to 14s.
    let target_a = Fake::start("cpu_busy_ratio 0.2\njobs_total 100\n");
    let target_b = Fake::start("svc_ok 1\n");
    let rules = "groups:\n- name: fleet\n  rules:\n  - alert: CpuSpike\n    expr: cpu_busy_ratio > 0.7\n    for: 3s\n    labels: {severity: warning}\n    annotations: {summary: 'CPU of {{ $labels.instance }} at {{ $value | humanizePercentage }}'}\n  - alert: TargetDown\n    expr: up{instance=\"127.0.0.1:PORT_B\"} == 0\n    for: 2s\n    annotations: {summary: '{{ $labels.instance }} down'}\n  - alert: CounterReset\n    expr: resets(jobs_total[5s]) > 0\n"
        .replace("PORT_B", &target_b.port.to_string());
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/fleet.yml"), rules).unwrap();
    let cfg = format!(
        "rule_files = [\"rules/*.yml\"]\n[global]\nscrape_interval = \"1s\"\nevaluation_interval = \"1s\"\n[[scrape_configs]]\njob_name = \"fleet\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"] }}]\n",
        target_a.port, target_b.port
    );
    std::fs::write(dir.join("collector.toml"), cfg).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [\"{}\"]\nscrape_configs:\n- job_name: fleet\n  static_configs: [{{targets: ['127.0.0.1:{}', '127.0.0.1:{}']}}]\n",
            dir.join("rules/fleet.yml").display(),
            target_a.port,
            target_b.port
        ),
    )
    .unwrap();
    let pport = free_port();
    let pargs = vec![
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
        format!("--web.listen-address=127.0.0.1:{pport}"),
    ];
    let prom_proc = Proc::start(&prom, &pargs, pport, "/-/ready", &dir);
    let coll = start_collector(&dir, &[]);
    // Both scrape a few baseline samples first.
    let warm =
        |port: u16| get_json(port, "/api/v1/query?query=count(up%3D%3D1)")["data"]["result"][0]["value"][1] == "2";
    assert!(eventually(Duration::from_secs(20), || (warm(prom_proc.port) && warm(coll.port)).then_some(())).is_some());
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    let (mut ours, mut theirs) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new());
    while start.elapsed() < Duration::from_secs(24) {
        let now = start.elapsed().as_secs_f64();
        let cpu = if (4.0..14.0).contains(&now) { 0.9 } else { 0.2 };
        let jobs = if now < 10.0 { 100.0 + now.floor() } else { now.floor() - 10.0 };
        target_a.set(&format!("cpu_busy_ratio {cpu}\njobs_total {jobs}\n"));
        target_b.set(if (6.0..14.0).contains(&now) { FAIL_SCRAPE } else { "svc_ok 1\n" });
        observe(coll.port, now, &mut ours);
        observe(prom_proc.port, now, &mut theirs);
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("ours:   {ours:?}\ntheirs: {theirs:?}");
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "same alerts");
    assert_eq!(ours.keys().collect::<Vec<_>>(), ["CounterReset", "CpuSpike", "TargetDown"]);
    // Scrapes and evaluations run at different phases in the two servers (up to 1s each), and
    // the alerts are polled every 100ms: each event may differ by up to 2.5s.
    for (name, o) in &ours {
        let t = &theirs[name];
        for (what, x, y) in
            [("pending", o.pending, t.pending), ("firing", o.firing, t.firing), ("resolved", o.resolved, t.resolved)]
        {
            match (x, y) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 2.5, "{name} {what}: ours {x:.1}s, Prometheus {y:.1}s"),
                (None, None) => {}
                _ => panic!("{name} {what}: ours {x:?}, Prometheus {y:?}"),
            }
        }
        // Pending lasts `for` (to the evaluation, plus polling) in both.
        let hold = match name.as_str() {
            "CpuSpike" => 3.0,
            "TargetDown" => 2.0,
            _ => 0.0,
        };
        for (who, tl) in [("ours", o), ("Prometheus", t)] {
            if let (Some(pe), Some(fi)) = (tl.pending, tl.firing) {
                assert!((fi - pe - hold).abs() <= 1.2, "{name} {who}: pending {pe:.1}s, firing {fi:.1}s, for {hold}s");
            }
        }
        let (oa, ta) = (o.firing_alert.as_ref().unwrap(), t.firing_alert.as_ref().unwrap());
        assert_eq!(oa["labels"], ta["labels"], "{name} labels");
        assert_eq!(oa["annotations"], ta["annotations"], "{name} annotations");
    }
}
