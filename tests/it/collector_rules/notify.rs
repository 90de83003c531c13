//! Alerts leaving the collector: the real Alertmanager (static and DNS-discovered), the built-in
//! webhook, Slack and Telegram receivers (grouping, retries, repeat, no re-page after a
//! restart) and silences.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::dns_and_api::{Dnsmasq, sbin_peer};

#[test]
fn alert_fires_in_real_alertmanager_with_our_labels_then_resolves() {
    let Some(am) = peer("prometheus-alertmanager") else { return };
    let dir = TempDir::new("rules-am");
    std::fs::write(dir.join("am.yml"), "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n")
        .unwrap();
    let am_port = free_port();
    let am_args = vec![
        format!("--config.file={}", dir.join("am.yml").display()),
        format!("--storage.path={}", dir.join("am-data").display()),
        format!("--web.listen-address=127.0.0.1:{am_port}"),
        "--cluster.listen-address=".to_owned(),
    ];
    let _am = Proc::start(&am, &am_args, am_port, "/-/ready", &dir);
    let fake = Fake::start("cpu_busy_ratio 0.2\n");
    write_config(
        &dir,
        fake.port,
        &format!(
            "[alerting]\nresend_delay = \"1s\"\n[[alerting.alertmanagers]]\nstatic_configs = [{{ targets = [\"127.0.0.1:{am_port}\"] }}]\n"
        ),
    );
    std::fs::write(
        dir.join("rules/cpu.yml"),
        "groups:\n- name: host\n  rules:\n  - alert: HostHighCpu\n    expr: cpu_busy_ratio > 0.7\n    for: 2s\n    labels: {severity: warning}\n    annotations:\n      summary: 'CPU of {{ $labels.instance }} at {{ $value | humanizePercentage }}'\n",
    )
    .unwrap();
    let c = start_collector(&dir, &["--web.external-url=http://osprey.example:9090"]);
    fake.set("cpu_busy_ratio 0.9\n");
    let am_alerts = || -> Vec<Value> { get_json(am_port, "/api/v2/alerts").as_array().cloned().unwrap_or_default() };
    // Pending first (not sent), then firing and in Alertmanager.
    assert!(
        eventually(Duration::from_secs(20), || (state_of(&c, "HostHighCpu").as_deref() == Some("pending"))
            .then_some(()))
        .is_some(),
        "never pending: {:?}\n{}",
        alerts(&c),
        c.log_text()
    );
    let got = eventually(Duration::from_secs(20), || {
        am_alerts().into_iter().find(|a| a["labels"]["alertname"] == "HostHighCpu")
    })
    .unwrap_or_else(|| panic!("alert never reached Alertmanager: {:?}\n{}", alerts(&c), c.log_text()));
    assert_eq!(state_of(&c, "HostHighCpu").as_deref(), Some("firing"));
    let l = &got["labels"];
    assert_eq!(l["job"], "fake");
    assert_eq!(l["instance"], format!("127.0.0.1:{}", fake.port));
    assert_eq!(l["severity"], "warning");
    assert_eq!(l["cluster"], "test", "external labels are added to sent alerts");
    assert_eq!(got["annotations"]["summary"], format!("CPU of 127.0.0.1:{} at 90%", fake.port));
    assert_eq!(got["status"]["state"], "active");
    assert!(
        got["generatorURL"]
            .as_str()
            .unwrap_or("")
            .starts_with("http://osprey.example:9090/graph?g0.expr=cpu_busy_ratio"),
        "{got}"
    );
    // The ALERTS series is in the TSDB, queryable like Prometheus's.
    let q = get_json(c.port, "/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D");
    assert_eq!(q["data"]["result"][0]["metric"]["alertname"], "HostHighCpu", "{q}");
    // The condition clears: the alert resolves in Alertmanager.
    fake.set("cpu_busy_ratio 0.1\n");
    let gone = eventually(Duration::from_secs(20), || {
        (!am_alerts().iter().any(|a| a["labels"]["alertname"] == "HostHighCpu")).then_some(())
    });
    assert!(gone.is_some(), "still active in Alertmanager: {:?}", am_alerts());
    assert_eq!(state_of(&c, "HostHighCpu"), None);
    let m = http_get(c.port, "/metrics").unwrap().text();
    assert!(m.contains("prometheus_notifications_alertmanagers_discovered 1"), "{m}");
    assert!(m.contains("prometheus_notifications_errors_total 0"), "{m}");
    assert!(m.contains("prometheus_rule_group_rules{rule_group="), "{m}");
    let sent: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("prometheus_notifications_sent_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(sent >= 2.0, "firing and resolved sent: {m}");
}

fn ten_series(v: u32) -> String {
    (0..10).fold(String::new(), |mut s, i| {
        let _ = writeln!(s, "disk_errors{{disk=\"sd{i}\"}} {v}");
        s
    })
}

const RECEIVERS_RULES: &str = "groups:\n- name: disks\n  rules:\n  - alert: DiskErrors\n    expr: disk_errors > 0\n    labels: {severity: page}\n    annotations: {summary: 'errors on {{ $labels.disk }}'}\n";

fn receivers_config(fake: u16) -> String {
    format!(
        r##"
[[notify.receiver]]
type = "webhook"
name = "hook"
url = "http://127.0.0.1:{fake}/hook"
[[notify.receiver]]
type = "slack"
name = "slack"
api_url = "http://127.0.0.1:{fake}/slack"
channel = "#ops"
[[notify.receiver]]
type = "telegram"
name = "tg"
api_url = "http://127.0.0.1:{fake}"
bot_token = "123:secret"
chat_id = -1001
message_thread_id = 7
[[notify.route]]
receiver = "hook"
group_by = ["alertname"]
group_wait = 1
group_interval = 1
repeat_interval = 3600
continue = true
[[notify.route]]
receiver = "slack"
group_by = ["alertname"]
group_wait = 1
group_interval = 1
repeat_interval = 3600
continue = true
[[notify.route]]
receiver = "tg"
matchers = ['severity="page"']
group_by = ["alertname"]
group_wait = 1
group_interval = 1
repeat_interval = 3600
"##
    )
}

#[test]
fn builtin_receivers_group_ten_alerts_into_one_message_and_do_not_repage_after_restart() {
    let dir = TempDir::new("rules-receivers");
    let fake = Fake::start(&ten_series(0));
    write_config(&dir, fake.port, &receivers_config(fake.port));
    std::fs::write(dir.join("rules/disk.yml"), RECEIVERS_RULES).unwrap();
    let c = start_collector(&dir, &[]);
    fake.set(&ten_series(3));
    let tg_path = "/bot123:secret/sendMessage";
    let all = || (fake.posts_to("/hook").len(), fake.posts_to("/slack").len(), fake.posts_to(tg_path).len());
    assert!(
        eventually(Duration::from_secs(20), || (all() == (1, 1, 1)).then_some(())).is_some(),
        "one message per receiver expected, got {:?}: {:?}\n{}",
        all(),
        fake.posts.lock().unwrap(),
        c.log_text()
    );
    let hook = &fake.posts_to("/hook")[0];
    assert_eq!(hook["version"], "4");
    assert_eq!(hook["status"], "firing");
    assert_eq!(hook["receiver"], "hook");
    assert_eq!(hook["groupLabels"], serde_json::json!({"alertname": "DiskErrors"}));
    assert_eq!(hook["commonLabels"]["severity"], "page");
    assert_eq!(hook["commonLabels"]["cluster"], "test");
    assert_eq!(hook["alerts"].as_array().map(Vec::len), Some(10), "10 alerts of one group in one message");
    assert!(hook["alerts"].as_array().unwrap().iter().all(|a| a["status"] == "firing"));
    let slack = &fake.posts_to("/slack")[0];
    assert_eq!(slack["channel"], "#ops");
    let text = slack["text"].as_str().unwrap();
    assert!(text.starts_with("*[FIRING:10] DiskErrors*"), "{text}");
    assert!(text.contains("errors on sd0") && text.contains("errors on sd9"), "{text}");
    let tg = &fake.posts_to(tg_path)[0];
    assert_eq!(tg["chat_id"], -1001);
    assert_eq!(tg["message_thread_id"], 7);
    assert_eq!(tg["parse_mode"], "HTML");
    assert!(tg["text"].as_str().unwrap().starts_with("<b>[FIRING:10] DiskErrors</b>"), "{tg}");

    // Restart (kill -9): the alerts fire again, but what was sent is remembered: no new page.
    // The observation window is several group intervals (1s) after the alerts fire again.
    drop(c);
    let c = start_collector(&dir, &[]);
    assert!(eventually(Duration::from_secs(20), || (alerts(&c).len() == 10).then_some(())).is_some());
    let settle = Instant::now() + Duration::from_secs(4);
    while Instant::now() < settle {
        assert_eq!(all(), (1, 1, 1), "re-paged after restart: {:?}", fake.posts.lock().unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }

    // Resolved: one resolved message each.
    fake.set(&ten_series(0));
    assert!(
        eventually(Duration::from_secs(20), || (all() == (2, 2, 2)).then_some(())).is_some(),
        "resolved messages: {:?}",
        all()
    );
    let hook = &fake.posts_to("/hook")[1];
    assert_eq!(hook["status"], "resolved");
    assert_eq!(hook["alerts"].as_array().map(Vec::len), Some(10));
    assert!(fake.posts_to("/slack")[1]["text"].as_str().unwrap().starts_with("*[RESOLVED] DiskErrors*"));
}

#[test]
fn silences_api_mutes_builtin_notifications() {
    let dir = TempDir::new("rules-silences");
    let fake = Fake::start(&ten_series(0));
    write_config(&dir, fake.port, &receivers_config(fake.port));
    std::fs::write(dir.join("rules/disk.yml"), RECEIVERS_RULES).unwrap();
    let c = start_collector(&dir, &[]);
    let (st, body) = post_json(
        c.port,
        "/api/v1/silences",
        r#"{"matchers":["alertname=\"DiskErrors\""],"duration":"1h","createdBy":"test","comment":"maintenance"}"#,
    );
    assert_eq!(st, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["data"]["silenceId"].as_str().unwrap().to_owned();
    let list = get_json(c.port, "/api/v1/silences");
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["status"], "active");
    assert_eq!(post_json(c.port, "/api/v1/silences", r#"{"matchers":[],"duration":"1h"}"#).0, 400);
    assert_eq!(post_json(c.port, "/api/v1/silences", r#"{"matchers":["a=~\"(\""],"duration":"1h"}"#).0, 400);
    fake.set(&ten_series(1));
    assert!(eventually(Duration::from_secs(20), || (alerts(&c).len() == 10).then_some(())).is_some());
    // Firing for several group intervals under the silence: nothing sent.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(fake.posts.lock().unwrap().is_empty(), "silenced alerts notified: {:?}", fake.posts.lock().unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Silences survive a restart (kill -9).
    drop(c);
    let c = start_collector(&dir, &[]);
    assert_eq!(get_json(c.port, "/api/v1/silences")["data"][0]["id"], id.as_str(), "silence lost in restart");
    assert!(eventually(Duration::from_secs(20), || (alerts(&c).len() == 10).then_some(())).is_some());
    std::thread::sleep(Duration::from_secs(2));
    assert!(fake.posts.lock().unwrap().is_empty(), "silenced after restart: {:?}", fake.posts.lock().unwrap());
    let r = http_request(c.port, "DELETE", &format!("/api/v1/silences/{id}"), &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(http_request(c.port, "DELETE", &format!("/api/v1/silences/{id}"), &[]).unwrap().status, 404);
    assert!(
        eventually(Duration::from_secs(20), || (!fake.posts_to("/hook").is_empty()).then_some(())).is_some(),
        "no notification after the silence was deleted"
    );
}

#[test]
fn dns_discovered_alertmanager_gets_relabeled_alerts_in_batches_with_basic_auth() {
    let Some(dnsmasq) = sbin_peer("dnsmasq") else { return };
    let dir = TempDir::new("rules-am-dns");
    let dns_port = free_port();
    let _dns =
        Dnsmasq::start(&dnsmasq, "127.0.0.1", dns_port, &["--host-record=am.alerting.test,127.0.0.1".to_owned()]);
    // The fake stands in for the Alertmanager (it records every POST) and is the scrape target.
    let fake = Fake::start(&ten_series(1));
    write_config(
        &dir,
        fake.port,
        &format!(
            r#"
[alerting]
batch_size = 4
alert_relabel_configs = [
  {{ source_labels = ["disk"], regex = "sd9", action = "drop" }},
  {{ target_label = "team", replacement = "storage" }},
]
[[alerting.alertmanagers]]
path_prefix = "/am"
basic_auth = {{ username = "osprey", password = "s3cret" }}
dns_sd_configs = [{{ names = ["am.alerting.test"], type = "A", port = {}, refresh_interval = "1s", nameservers = ["127.0.0.1:{dns_port}"] }}]
"#,
            fake.port
        ),
    );
    std::fs::write(dir.join("rules/disk.yml"), RECEIVERS_RULES).unwrap();
    let c = start_collector(&dir, &[]);
    let path = "/am/api/v2/alerts";
    let disks = || -> std::collections::BTreeSet<String> {
        fake.posts_to(path)
            .iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .map(|a| a["labels"]["disk"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let want: std::collections::BTreeSet<String> = (0..9).map(|i| format!("sd{i}")).collect();
    assert!(
        eventually(Duration::from_secs(20), || (disks() == want).then_some(())).is_some(),
        "alerts at the discovered Alertmanager: {:?}\n{}",
        disks(),
        c.log_text()
    );
    let posts = fake.posts_to(path);
    assert!(posts.len() >= 3, "9 alerts in batches of at most 4: {} posts", posts.len());
    for b in &posts {
        let a = b.as_array().unwrap();
        assert!(!a.is_empty() && a.len() <= 4, "batch of {}", a.len());
        for x in a {
            assert_eq!(x["labels"]["team"], "storage");
            assert_eq!(x["labels"]["cluster"], "test");
        }
    }
    let auths: Vec<Option<String>> =
        fake.posts.lock().unwrap().iter().filter(|r| r.path == path).map(|r| r.auth.clone()).collect();
    // base64("osprey:s3cret")
    assert!(auths.iter().all(|a| a.as_deref() == Some("Basic b3NwcmV5OnMzY3JldA==")), "{auths:?}");
    let m = http_get(c.port, "/metrics").unwrap().text();
    assert!(m.contains("prometheus_notifications_alertmanagers_discovered 1"), "{m}");
    assert!(!m.contains("prometheus_notifications_dropped_total 0\n"), "the relabel drop is counted: {m}");
}

#[test]
fn webhook_retries_5xx_with_backoff_and_repeats_after_repeat_interval() {
    let dir = TempDir::new("rules-retry");
    let fake = Fake::start("value 7\n");
    fake.fail_posts.store(2, std::sync::atomic::Ordering::SeqCst);
    write_config(
        &dir,
        fake.port,
        &format!(
            "[[notify.receiver]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"http://127.0.0.1:{}/hook\"\n[[notify.route]]\nreceiver = \"hook\"\ngroup_wait = 1\ngroup_interval = 1\nrepeat_interval = 4\n",
            fake.port
        ),
    );
    std::fs::write(dir.join("rules/r.yml"), GOOD_RULES).unwrap();
    let c = start_collector(&dir, &[]);
    let attempts = || -> Vec<(bool, Instant)> {
        fake.posts.lock().unwrap().iter().filter(|r| r.path == "/hook").map(|r| (r.failed, r.at)).collect()
    };
    // Two 500s, then the third attempt (after 1s and 2s of backoff) is accepted.
    assert!(
        eventually(Duration::from_secs(30), || (attempts().len() >= 3).then_some(())).is_some(),
        "attempts: {:?}\n{}",
        attempts(),
        c.log_text()
    );
    let a = attempts();
    assert_eq!([a[0].0, a[1].0, a[2].0], [true, true, false], "two failures then success");
    // Exponential backoff: 1s, then 2s.
    assert!(a[1].1.duration_since(a[0].1) >= Duration::from_millis(900), "{a:?}");
    assert!(a[2].1.duration_since(a[1].1) >= Duration::from_millis(1900), "{a:?}");
    let bodies = fake.posts_to("/hook");
    assert_eq!(bodies[0], bodies[2], "the same notification is retried");
    // Still firing: the group is notified again after repeat_interval (4s), not before.
    assert!(
        eventually(Duration::from_secs(20), || (attempts().len() >= 4).then_some(())).is_some(),
        "no repeat notification"
    );
    // repeat_interval counts from when the notification was first dispatched.
    let a = attempts();
    assert!(a[3].1.duration_since(a[0].1) >= Duration::from_millis(3900), "repeated too early: {a:?}");
    let bodies = fake.posts_to("/hook");
    assert_eq!(bodies[3]["status"], "firing");
    assert_eq!(bodies[3]["alerts"], bodies[2]["alerts"]);
}
