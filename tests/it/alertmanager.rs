//! The Alertmanager v2 client against the real Debian `prometheus-alertmanager` on loopback:
//! the alert shows up in its `/api/v2/alerts` with our labels, then resolves.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use osprey_notify::alertmanager::{AmAlert, Config, Notifier};
use osprey_rules::api::rfc3339;

use crate::harness::{Proc, TempDir, eventually, free_port, http_get, peer};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn am_alerts(port: u16) -> Vec<serde_json::Value> {
    let r = http_get(port, "/api/v2/alerts").expect("GET /api/v2/alerts");
    assert_eq!(r.status, 200);
    serde_json::from_str::<serde_json::Value>(&r.text()).expect("json").as_array().cloned().unwrap_or_default()
}

#[test]
fn alert_reaches_real_alertmanager_then_resolves() {
    let Some(am) = peer("prometheus-alertmanager") else { return };
    let dir = TempDir::new("alertmanager");
    std::fs::write(dir.join("am.yml"), "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n")
        .unwrap();
    let port = free_port();
    let args = vec![
        format!("--config.file={}", dir.join("am.yml").display()),
        format!("--storage.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".to_string(),
    ];
    let _proc = Proc::start(&am, &args, port, "/-/ready", &dir);

    let notifier = Notifier::new(Config {
        alertmanagers: vec![format!("http://127.0.0.1:{port}")],
        timeout: Duration::from_secs(5),
        ..Config::default()
    })
    .expect("client");
    let labels: std::collections::BTreeMap<String, String> =
        [("alertname", "HostHighCpu"), ("instance", "web-1:9100"), ("severity", "warning")]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
    let t0 = now_ms();
    let firing = AmAlert {
        labels: labels.clone(),
        annotations: [("summary".to_string(), "CPU of web-1:9100 above 70% for 5 minutes".to_string())].into(),
        starts_at: rfc3339(t0 - 300_000),
        ends_at: rfc3339(t0 + 240_000),
        generator_url: "http://osprey.example/graph?g0.expr=cpu".into(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    notifier.enqueue(vec![firing.clone()]);
    assert_eq!(rt.block_on(notifier.flush()), 1, "batch accepted");
    let got = eventually(Duration::from_secs(10), || {
        am_alerts(port).into_iter().find(|a| a["labels"]["alertname"] == "HostHighCpu")
    })
    .expect("alert visible in Alertmanager");
    assert_eq!(got["labels"]["instance"], "web-1:9100");
    assert_eq!(got["labels"]["severity"], "warning");
    assert_eq!(got["annotations"]["summary"], "CPU of web-1:9100 above 70% for 5 minutes");
    assert_eq!(got["status"]["state"], "active");
    assert_eq!(got["generatorURL"], "http://osprey.example/graph?g0.expr=cpu");

    // Resolved: endsAt now.
    let resolved = AmAlert { ends_at: rfc3339(now_ms()), ..firing };
    notifier.enqueue(vec![resolved]);
    assert_eq!(rt.block_on(notifier.flush()), 1);
    let gone = eventually(Duration::from_secs(10), || {
        let still = am_alerts(port).into_iter().any(|a| a["labels"]["alertname"] == "HostHighCpu");
        (!still).then_some(())
    });
    assert!(gone.is_some(), "resolved alert still listed as active: {:?}", am_alerts(port));
    assert_eq!(notifier.stats.sent.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(notifier.stats.errors.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn unreachable_alertmanager_counts_errors() {
    let port = free_port();
    let notifier = Notifier::new(Config {
        alertmanagers: vec![format!("http://127.0.0.1:{port}")],
        timeout: Duration::from_secs(2),
        ..Config::default()
    })
    .expect("client");
    let a = AmAlert {
        labels: [("alertname".to_string(), "X".to_string())].into(),
        annotations: std::collections::BTreeMap::default(),
        starts_at: String::new(),
        ends_at: String::new(),
        generator_url: String::new(),
    };
    notifier.enqueue(vec![a]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(rt.block_on(notifier.flush()), 0);
    assert_eq!(notifier.stats.errors.load(std::sync::atomic::Ordering::Relaxed), 1);
}
