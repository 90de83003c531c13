//! Rules and notifications in the running `osprey-collector`: a target we control (its
//! `/metrics` value is set by the test) is scraped every second, rule groups evaluate every
//! second, and alerts go to the real Debian Alertmanager on loopback and to built-in receivers
//! pointed (through `url`/`api_url`) at a local HTTP server that records every request.
//! Also: `for` state survives `kill -9`, a bad rule file stops start-up (before any port is
//! bound) and is rejected at reload with the old rules still evaluated.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{Proc, TempDir, built_bin, eventually, free_port, http_get, http_request, peer};

mod notify;
mod vs_prometheus;

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
