//! Rules and notifications in the running `osprey-collector`: a target we control (its
//! `/metrics` value is set by the test) is scraped every second, rule groups evaluate every
//! second, and alerts go to the real Debian Alertmanager on loopback and to built-in receivers
//! pointed (through `url`/`api_url`) at a local HTTP server that records every request.
//! Also: `for` state survives `kill -9`, a bad rule file stops start-up (before any port is
//! bound) and is rejected at reload with the old rules still evaluated.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{Proc, TempDir, built_bin, eventually, free_port, http_get, http_request, peer};

/// A `/metrics` body that makes the fake answer 500 (the target is down).
const FAIL_SCRAPE: &str = "__500__";

/// A request the fake server received.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    body: String,
    /// The `Authorization` header, if any.
    auth: Option<String>,
    /// Answered with 500 (see [`Fake::fail_posts`]).
    failed: bool,
    /// When it arrived.
    at: Instant,
}

/// A scrape target whose `/metrics` body the test sets, which also records every POST
/// (standing in for Slack, Telegram and webhook endpoints).
struct Fake {
    port: u16,
    metrics: Arc<Mutex<String>>,
    posts: Arc<Mutex<Vec<Recorded>>>,
    /// The next this many POSTs are answered with 500.
    fail_posts: Arc<std::sync::atomic::AtomicUsize>,
}

fn handle(
    mut s: TcpStream,
    metrics: &Mutex<String>,
    posts: &Mutex<Vec<Recorded>>,
    fail: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut len = 0usize;
    let mut auth = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_owned());
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let (ctype, out) = if method == "GET" {
        ("text/plain; version=0.0.4", metrics.lock().unwrap().clone())
    } else {
        let failed = fail
            .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                n.checked_sub(1)
            })
            .is_ok();
        posts.lock().unwrap().push(Recorded {
            path,
            body: String::from_utf8_lossy(&body).into_owned(),
            auth,
            failed,
            at: Instant::now(),
        });
        ("application/json", if failed { FAIL_SCRAPE.to_owned() } else { "{\"ok\":true}".to_owned() })
    };
    let status = if out == FAIL_SCRAPE { "500 Internal Server Error" } else { "200 OK" };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
        out.len()
    )?;
    s.flush()
}

impl Fake {
    fn start(metrics: &str) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind fake");
        let port = l.local_addr().expect("addr").port();
        let metrics = Arc::new(Mutex::new(metrics.to_owned()));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let fail_posts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (m, p, f) = (Arc::clone(&metrics), Arc::clone(&posts), Arc::clone(&fail_posts));
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (m, p, f) = (Arc::clone(&m), Arc::clone(&p), Arc::clone(&f));
                std::thread::spawn(move || {
                    let _ = handle(s, &m, &p, &f);
                });
            }
        });
        Self { port, metrics, posts, fail_posts }
    }

    fn set(&self, metrics: &str) {
        metrics.clone_into(&mut self.metrics.lock().unwrap());
    }

    fn posts_to(&self, path: &str) -> Vec<Value> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body)))
            .collect()
    }
}

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Writes `collector.toml` scraping `target` every second, rules from `rules/*.yml` every second.
fn write_config(dir: &TempDir, target: u16, extra: &str) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let cfg = format!(
        "rule_files = [\"rules/*.yml\"]\n[global]\nscrape_interval = \"1s\"\nevaluation_interval = \"1s\"\nexternal_labels = {{ cluster = \"test\" }}\n[[scrape_configs]]\njob_name = \"fake\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{target}\"] }}]\n{extra}"
    );
    std::fs::write(dir.join("collector.toml"), cfg).unwrap();
}

fn collector_args(dir: &TempDir, port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        format!("--config={}", dir.join("collector.toml").display()),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--discovery.debounce=100ms".to_owned(),
    ];
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    a
}

fn start_collector(dir: &TempDir, extra: &[&str]) -> Proc {
    let port = free_port();
    Proc::start(&built_bin("osprey-collector"), &collector_args(dir, port, extra), port, "/-/ready", dir)
}

fn get_json(port: u16, path: &str) -> Value {
    let r = http_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.text()))
}

/// `/api/v1/alerts` of the collector: (alertname, state) pairs.
fn alerts(p: &Proc) -> Vec<Value> {
    get_json(p.port, "/api/v1/alerts")["data"]["alerts"].as_array().cloned().unwrap_or_default()
}

fn state_of(p: &Proc, name: &str) -> Option<String> {
    alerts(p).iter().find(|a| a["labels"]["alertname"] == name).map(|a| a["state"].as_str().unwrap_or("").to_owned())
}

/// A POST with a JSON body; returns (status, body).
fn post_json(port: u16, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

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

/// `ALERTS_FOR_STATE` value (the alert's activeAt, Unix seconds), if the series has a sample now.
fn for_state(p: &Proc, alert: &str) -> Option<f64> {
    let q = get_json(p.port, &format!("/api/v1/query?query=ALERTS_FOR_STATE%7Balertname%3D%22{alert}%22%7D"));
    q["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok())
}

#[test]
fn pending_alert_fires_at_its_original_deadline_after_kill_9() {
    const HOLD: f64 = 10.0;
    let dir = TempDir::new("rules-restart");
    let fake = Fake::start("queue_depth 50\n");
    write_config(&dir, fake.port, "");
    std::fs::write(
        dir.join("rules/q.yml"),
        "groups:\n- name: q\n  rules:\n  - alert: QueueBacklog\n    expr: queue_depth > 10\n    for: 10s\n",
    )
    .unwrap();
    // The default grace period (0s): the timer resumes.
    let mut c = start_collector(&dir, &[]);
    let active_at = eventually(Duration::from_secs(20), || for_state(&c, "QueueBacklog"))
        .unwrap_or_else(|| panic!("never pending: {:?}\n{}", alerts(&c), c.log_text()));
    // Let it pend for about 5 of its 10 seconds, then kill -9.
    let wait = (active_at + 5.0 - now_s()).max(0.0);
    std::thread::sleep(Duration::from_secs_f64(wait));
    assert_eq!(state_of(&c, "QueueBacklog").as_deref(), Some("pending"));
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    let killed_at = now_s();
    let c = start_collector(&dir, &[]);
    let ready_at = now_s();
    let fired_seen =
        eventually(Duration::from_secs(30), || (state_of(&c, "QueueBacklog").as_deref() == Some("firing")).then(now_s))
            .unwrap_or_else(|| panic!("never fired after restart: {:?}\n{}", alerts(&c), c.log_text()));
    let down = ready_at - killed_at;
    let deadline = active_at + HOLD;
    // Prometheus's RestoreForState shifts the timer by the downtime (the time between the last
    // ALERTS_FOR_STATE sample and the first evaluation after restart): deadline + downtime.
    // A reset timer would fire 10s after the restart, i.e. about 5s later than that.
    let late = fired_seen - deadline;
    eprintln!("restart: deadline {deadline:.1}, fired {fired_seen:.1} ({late:+.1}s), down {down:.1}s");
    assert!(
        late <= down + 3.0,
        "fired {late:.1}s after the original deadline; downtime was {down:.1}s (one 1s interval and polling allowed)"
    );
    let restarted_pending_would_fire = killed_at + HOLD;
    assert!(
        fired_seen < restarted_pending_would_fire,
        "fired at {fired_seen:.1}: timer was reset (deadline {deadline:.1}, killed {killed_at:.1})\n{}",
        c.log_text()
    );
    let restored = for_state(&c, "QueueBacklog").expect("ALERTS_FOR_STATE after restart");
    assert!(restored < killed_at - 3.0, "activeAt {restored} restored from before the kill ({killed_at})");
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

const GOOD_RULES: &str = "groups:\n- name: g\n  rules:\n  - record: job:value:sum\n    expr: sum by (job) (value)\n  - alert: ValueHigh\n    expr: value > 5\n    labels: {severity: page}\n";
const BAD_RULES: &str = "groups:\n- name: g\n  rules:\n  - alert: Broken\n    expr: sum(value\n";

fn rule_names(p: &Proc, query: &str) -> Vec<String> {
    let v = get_json(p.port, &format!("/api/v1/rules{query}"));
    v["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn bad_rule_file_stops_startup_before_binding_and_is_rejected_at_reload() {
    let dir = TempDir::new("rules-bad");
    let fake = Fake::start("value 7\n");
    write_config(&dir, fake.port, "");
    let rules = dir.join("rules/r.yml");
    std::fs::write(&rules, BAD_RULES).unwrap();
    // Start-up: exits non-zero with file:line, and never listened.
    let port = free_port();
    let mut child = Command::new(built_bin("osprey-collector"))
        .args(collector_args(&dir, port, &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = eventually(Duration::from_secs(20), || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("collector kept running with a bad rule file");
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains(&format!("{}: 5:", rules.display())), "file:line expected: {err}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port was bound");
    // check config reports the same.
    let out = crate::harness::run(
        &built_bin("osprey-collector"),
        &["check", "config", &dir.join("collector.toml").to_string_lossy()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{}: 5:", rules.display())));

    // Reload: good rules run; a bad file is rejected and the old rules keep evaluating.
    std::fs::write(&rules, GOOD_RULES).unwrap();
    let c = start_collector(&dir, &[]);
    assert!(
        eventually(Duration::from_secs(20), || (state_of(&c, "ValueHigh").as_deref() == Some("firing")).then_some(()))
            .is_some()
    );
    std::fs::write(&rules, BAD_RULES).unwrap();
    let r = http_request(c.port, "POST", "/-/reload", &[]).unwrap();
    assert_eq!(r.status, 500);
    assert!(r.text().contains(&format!("{}: 5:", rules.display())), "{}", r.text());
    c.signal("HUP");
    let last_eval =
        |p: &Proc| get_json(p.port, "/api/v1/rules")["data"]["groups"][0]["lastEvaluation"].as_str().map(str::to_owned);
    let before = last_eval(&c);
    assert!(
        eventually(Duration::from_secs(10), || (last_eval(&c) != before).then_some(())).is_some(),
        "old rules stopped evaluating"
    );
    assert_eq!(rule_names(&c, ""), ["job:value:sum", "ValueHigh"]);
    assert_eq!(state_of(&c, "ValueHigh").as_deref(), Some("firing"), "alert state kept");
    // A good new file replaces the old rules.
    std::fs::write(&rules, "groups:\n- name: g2\n  rules:\n  - alert: ValueLow\n    expr: value < 100\n").unwrap();
    c.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || (rule_names(&c, "") == ["ValueLow"]).then_some(())).is_some(),
        "new rules not loaded: {:?}",
        rule_names(&c, "")
    );
    assert!(c.log_text().contains("reload failed"), "{}", c.log_text());
}

#[test]
fn rules_api_filters_and_recording_rule_output() {
    let dir = TempDir::new("rules-api");
    let fake = Fake::start("value 7\n");
    write_config(&dir, fake.port, "");
    std::fs::write(dir.join("rules/a.yml"), GOOD_RULES).unwrap();
    std::fs::write(
        dir.join("rules/b.yml"),
        "groups:\n- name: other\n  interval: 2s\n  rules:\n  - record: two\n    expr: vector(2)\n",
    )
    .unwrap();
    let coll = start_collector(&dir, &[]);
    let c = &coll;
    let query = |e: &str| get_json(c.port, &format!("/api/v1/query?query={e}"))["data"]["result"].clone();
    let rec = eventually(Duration::from_secs(20), || {
        let r = query("job%3Avalue%3Asum");
        (r.as_array().is_some_and(|a| !a.is_empty())).then_some(r)
    })
    .expect("recording rule output in the TSDB");
    assert_eq!(rec[0]["metric"], serde_json::json!({"__name__": "job:value:sum", "job": "fake"}));
    assert_eq!(rec[0]["value"][1], "7");
    assert_eq!(rule_names(c, ""), ["job:value:sum", "ValueHigh", "two"]);
    assert_eq!(rule_names(c, "?type=alert"), ["ValueHigh"]);
    assert_eq!(rule_names(c, "?type=record"), ["job:value:sum", "two"]);
    assert_eq!(rule_names(c, "?rule_name[]=two&rule_name[]=ValueHigh"), ["ValueHigh", "two"]);
    assert_eq!(rule_names(c, "?group_name[]=other"), ["two"]);
    let file_b = dir.join("rules/b.yml").display().to_string();
    assert_eq!(rule_names(c, &format!("?file[]={file_b}")), ["two"]);
    assert_eq!(http_get(c.port, "/api/v1/rules?type=bogus").unwrap().status, 400);
    let v = get_json(c.port, "/api/v1/rules");
    let g = &v["data"]["groups"][1];
    assert_eq!(g["name"], "other");
    assert_eq!(g["interval"], 2.0);
}

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

/// A dnsmasq serving `records` on 127.0.0.1:`port`, killed on drop.
struct Dnsmasq(std::process::Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dns_discovered_alertmanager_gets_relabeled_alerts_in_batches_with_basic_auth() {
    let Some(dnsmasq) =
        Some(Path::new("/usr/sbin/dnsmasq").to_path_buf()).filter(|p| p.is_file()).or_else(|| peer("dnsmasq"))
    else {
        return;
    };
    let dir = TempDir::new("rules-am-dns");
    let dns_port = free_port();
    let child = Command::new(&dnsmasq)
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            &format!("--port={dns_port}"),
            "--host-record=am.alerting.test,127.0.0.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting dnsmasq");
    let _dns = Dnsmasq(child);
    assert!(eventually(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", dns_port)).ok()).is_some());
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
