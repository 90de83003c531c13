//! `osprey-collector` end to end: the fleet simulator's targets found through file_sd, scraped
//! into the TSDB, read back through `/federate` and by opening the data directory; clean
//! SIGTERM, restart on the same directory, and `kill -9` then restart (committed scrapes survive:
//! the WAL is written before a scrape becomes visible, and a killed process loses nothing the
//! kernel already has; the fsync policy only matters for power loss).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use osprey_tsdb::{Db, Matcher, Options};

use crate::harness::{FleetSim, Proc, TempDir, built_bin, eventually, free_port, http_get};

const TARGETS: usize = 3;
const SERIES: usize = 5;
/// Series per target: the simulator's plus `up` and the four `scrape_*` series.
const PER_TARGET: usize = SERIES + 5;

fn start_sim(dir: &TempDir) -> FleetSim {
    FleetSim::start(TARGETS, SERIES, &dir.join("sd.json"))
}

/// The fleet config: file_sd over the simulator's `sd.json`, 500 ms interval.
const CONFIG: &str = "[global]\nscrape_interval = \"500ms\"\nscrape_timeout = \"500ms\"\n\n[[scrape_configs]]\njob_name = \"fleet\"\nfile_sd_configs = [{ files = [\"sd.json\"] }]\n";

/// Writes [`CONFIG`] to `path`.
fn write_config(path: std::path::PathBuf) {
    std::fs::write(path, CONFIG).expect("config");
}

fn start_collector(dir: &TempDir, data: &Path) -> Proc {
    let port = free_port();
    let args = vec![
        format!("--config={}", dir.join("collector.toml").display()),
        format!("--data-dir={}", data.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--discovery.debounce=100ms".to_owned(),
    ];
    Proc::start(&built_bin("osprey-collector"), &args, port, "/-/ready", dir)
}

fn targets_json(p: &Proc) -> serde_json::Value {
    let r = http_get(p.port, "/api/v1/targets").expect("GET /api/v1/targets");
    serde_json::from_slice(&r.body).expect("targets JSON")
}

/// Waits until every fleet target is up with a real last scrape.
fn wait_all_up(p: &Proc) {
    let ok = eventually(Duration::from_secs(30), || {
        let v = targets_json(p);
        let a = v["data"]["activeTargets"].as_array()?.clone();
        (a.len() == TARGETS
            && a.iter()
                .all(|t| t["health"] == "up" && t["lastError"] == "" && t["lastScrape"] != "0001-01-01T00:00:00Z"))
        .then_some(())
    });
    assert!(ok.is_some(), "targets not all up: {}\n{}", targets_json(p), p.log_text());
}

/// `/federate?match[]={job="fleet"}` as (series line without timestamp → timestamp).
fn federate(p: &Proc) -> Vec<(String, i64)> {
    let r = http_get(p.port, "/federate?match[]=%7Bjob%3D%22fleet%22%7D").expect("GET /federate");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (rest, ts) = l.rsplit_once(' ').expect("timestamp");
            (rest.to_owned(), ts.parse().expect("ms timestamp"))
        })
        .collect()
}

fn stop(mut p: Proc) {
    p.signal("TERM");
    let st = eventually(Duration::from_secs(20), || p.child.try_wait().ok().flatten());
    let st = st.unwrap_or_else(|| panic!("collector did not exit on SIGTERM: {}", p.log_text()));
    assert!(st.success(), "collector exited with {st} on SIGTERM: {}", p.log_text());
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// `up` samples of every fleet target in the data directory (opened after the collector exited).
fn stored_up(data: &Path) -> Vec<(String, Vec<(i64, f64)>)> {
    let db = Db::open(data, Options { maintenance_interval: None, ..Options::default() }).expect("open data dir");
    let mut out: Vec<_> = db
        .querier(0, i64::MAX)
        .select(&[Matcher::eq("__name__", "up"), Matcher::eq("job", "fleet")])
        .into_iter()
        .map(|s| (s.labels.get("instance").unwrap_or_default().to_owned(), s.to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn collector_scrapes_file_sd_fleet_into_tsdb_and_survives_restarts() {
    let dir = TempDir::new("collector-e2e");
    let _sim = start_sim(&dir);
    write_config(dir.join("collector.toml"));
    let data = dir.join("data");

    // 1. Scrape, check through /federate and the targets API.
    let c = start_collector(&dir, &data);
    wait_all_up(&c);
    let fed = eventually(Duration::from_secs(10), || Some(federate(&c)).filter(|f| f.len() == TARGETS * PER_TARGET));
    let fed = fed.unwrap_or_else(|| panic!("federate: {:?}", federate(&c)));
    let ups: Vec<&(String, i64)> = fed.iter().filter(|(l, _)| l.starts_with("up{")).collect();
    assert_eq!(ups.len(), TARGETS);
    assert!(ups.iter().all(|(l, _)| l.ends_with("} 1")), "{ups:?}");
    let m = http_get(c.port, "/metrics").expect("metrics").text();
    assert!(m.contains(&format!("prometheus_tsdb_head_series {}", TARGETS * PER_TARGET)), "{m}");
    // The query API is served by the same process over the same TSDB.
    let q = http_get(c.port, "/api/v1/query?query=sum(up%7Bjob%3D%22fleet%22%7D)").expect("GET /api/v1/query");
    assert_eq!(q.status, 200, "{}", q.text());
    let q: serde_json::Value = serde_json::from_str(&q.text()).expect("query JSON");
    assert_eq!(q["status"], "success", "{q}");
    assert_eq!(q["data"]["result"][0]["value"][1], TARGETS.to_string(), "{q}");
    stop(c);
    let first = stored_up(&data);
    assert_eq!(first.len(), TARGETS, "up of every target stored: {first:?}");
    assert!(first.iter().all(|(_, s)| !s.is_empty() && s.iter().any(|&(_, v)| v == 1.0)));

    // 2. Restart on the same directory: old samples are there, scraping goes on.
    let restart = now_ms();
    let c = start_collector(&dir, &data);
    wait_all_up(&c);
    let ok = eventually(Duration::from_secs(10), || {
        Some(federate(&c)).filter(|f| f.iter().filter(|(l, t)| l.starts_with("up{") && *t > restart).count() == TARGETS)
    });
    assert!(ok.is_some(), "no fresh up after restart: {:?}", federate(&c));
    // 3. kill -9 after a few more scrapes; every sample /federate served before survives.
    let before_kill: Vec<(String, i64)> = federate(&c).into_iter().filter(|(l, _)| l.starts_with("up{")).collect();
    let mut c = c;
    c.child.kill().expect("kill -9");
    let _ = c.child.wait();
    drop(c);
    let after_kill = now_ms();
    let c = start_collector(&dir, &data);
    wait_all_up(&c);
    let ok = eventually(Duration::from_secs(10), || {
        Some(federate(&c))
            .filter(|f| f.iter().filter(|(l, t)| l.starts_with("up{") && *t > after_kill).count() == TARGETS)
    });
    assert!(ok.is_some(), "scraping did not resume after kill -9: {:?}", federate(&c));
    stop(c);
    let stored = stored_up(&data);
    for (line, t) in &before_kill {
        let inst = line.split("instance=\"").nth(1).and_then(|r| r.split('"').next()).expect("instance label");
        let series = stored.iter().find(|(i, _)| i == inst).unwrap_or_else(|| panic!("{inst} missing"));
        assert!(series.1.iter().any(|(st, _)| st == t), "sample {line} @{t} lost after kill -9");
        assert!(series.1.iter().any(|(st, _)| *st < restart), "{inst}: samples from the first run lost");
        assert!(series.1.iter().any(|(st, _)| *st > after_kill), "{inst}: no samples after the kill");
    }
}

/// `POST /-/reload` with one target removed from file_sd keeps the other loops (their scrape
/// counts keep growing, `lastScrape` keeps its phase) and a bad config is refused.
#[test]
fn collector_reload_keeps_unchanged_targets_and_refuses_a_bad_config() {
    let dir = TempDir::new("collector-reload");
    let _sim = start_sim(&dir);
    let cfg = CONFIG;
    write_config(dir.join("collector.toml"));
    let c = start_collector(&dir, &dir.join("data"));
    wait_all_up(&c);
    // A job-level change that does not touch the targets: the same loops stay.
    std::fs::write(dir.join("collector.toml"), format!("{cfg}# a comment\n")).expect("config");
    let r = crate::harness::http_request(c.port, "POST", "/-/reload", &[]).expect("reload");
    assert_eq!(r.status, 200, "{}", r.text());
    let log = c.log_text();
    let kept = log.lines().filter(|l| l.contains("loops_kept=3")).count();
    assert!(kept >= 1, "reload did not keep the 3 loops: {log}");
    assert!(!log.lines().any(|l| l.contains("loops_stopped=") && !l.contains("loops_stopped=0")), "{log}");
    // A bad config is refused and the running one stays.
    std::fs::write(dir.join("collector.toml"), "[[scrape_configs]]\njob_name = 3\n").expect("config");
    let r = crate::harness::http_request(c.port, "POST", "/-/reload", &[]).expect("reload");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("collector.toml"), "error names the file: {}", r.text());
    wait_all_up(&c);
    stop(c);
}

/// The `tsdb` subcommands: a locked directory is refused with a clear error; import and
/// analyze work on the collector's directory once it stopped.
#[test]
fn collector_tsdb_subcommands_refuse_a_locked_dir_and_import_openmetrics() {
    let dir = TempDir::new("collector-tsdb-cli");
    let _sim = start_sim(&dir);
    write_config(dir.join("collector.toml"));
    let data = dir.join("data");
    let c = start_collector(&dir, &data);
    wait_all_up(&c);
    let bin = built_bin("osprey-collector");
    let d = format!("--data-dir={}", data.display());
    let out = crate::harness::run(&bin, &[&d, "tsdb", "analyze"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked"), "locked dir error: {err}");
    stop(c);
    let om = dir.join("old.om");
    let t0 = now_ms() / 1000 - 3 * 86_400;
    let mut text = String::from("# TYPE imported_metric gauge\n");
    for i in 0..10 {
        writeln!(text, "imported_metric{{src=\"file\"}} {i} {}", t0 + i * 60).expect("write to String");
    }
    text.push_str("# EOF\n");
    std::fs::write(&om, text).expect("om file");
    let om_s = om.display().to_string();
    let out = crate::harness::run(&bin, &[&d, "tsdb", "import-openmetrics", &om_s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("10 samples"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = crate::harness::run(&bin, &[&d, "tsdb", "analyze"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = Db::open(&data, Options { maintenance_interval: None, ..Options::default() }).expect("open");
    let s = db.querier(0, i64::MAX).select(&[Matcher::eq("__name__", "imported_metric")]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].to_vec().len(), 10);
    assert_eq!(s[0].to_vec()[9], ((t0 + 540) * 1000, 9.0));
    let bad = dir.join("bad.om");
    std::fs::write(&bad, "imported_metric{ 1\n").expect("bad file");
    let out = crate::harness::run(&bin, &[&d, "tsdb", "import-openmetrics", &bad.display().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.om:1"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `up`-like report series of every fleet target from `/federate`: (instance, value).
fn federated_values(p: &Proc, name: &str) -> Vec<(String, f64)> {
    let q = format!("/federate?match[]={name}%7Bjob%3D%22fleet%22%7D");
    let r = http_get(p.port, &q).expect("GET /federate");
    r.text()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| {
            let inst = l.split("instance=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_owned();
            let mut f = l.rsplit(' ');
            let _ts = f.next();
            (inst, f.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN))
        })
        .collect()
}

/// SIGHUP with an unchanged job keeps the loops and their series caches: the scrapes after the
/// reload add no series (`scrape_series_added` 0), as a restarted loop would.
#[test]
fn collector_sighup_reload_keeps_scrape_state_of_unchanged_targets() {
    let dir = TempDir::new("collector-hup");
    let _sim = start_sim(&dir);
    let cfg = CONFIG;
    write_config(dir.join("collector.toml"));
    let c = start_collector(&dir, &dir.join("data"));
    wait_all_up(&c);
    let settled = eventually(Duration::from_secs(10), || {
        let v = federated_values(&c, "scrape_series_added");
        (v.len() == TARGETS && v.iter().all(|(_, a)| *a == 0.0)).then_some(())
    });
    assert!(settled.is_some(), "series_added never 0: {:?}", federated_values(&c, "scrape_series_added"));
    std::fs::write(dir.join("collector.toml"), format!("{cfg}# reloaded\n")).expect("config");
    let reload = now_ms();
    c.signal("HUP");
    let reloaded =
        eventually(Duration::from_secs(10), || c.log_text().contains("configuration reloaded").then_some(()));
    assert!(reloaded.is_some(), "no reload on SIGHUP: {}", c.log_text());
    // Two rounds of scrapes after the reload.
    let fresh = eventually(Duration::from_secs(10), || {
        let fed = federate(&c);
        let n = fed.iter().filter(|(l, t)| l.starts_with("scrape_series_added{") && *t > reload + 600).count();
        (n == TARGETS).then_some(fed)
    });
    let fresh = fresh.unwrap_or_else(|| panic!("no scrapes after the reload: {:?}", federate(&c)));
    let added: Vec<&(String, i64)> = fresh.iter().filter(|(l, _)| l.starts_with("scrape_series_added{")).collect();
    assert!(added.iter().all(|(l, _)| l.ends_with("} 0")), "a reloaded loop re-added its series: {added:?}");
    let log = c.log_text();
    assert!(log.lines().any(|l| l.contains("loops_kept=3") && l.contains("loops_started=0")), "{log}");
    stop(c);
}

/// A job with more targets than its `target_limit`: every target is down with the limit as
/// `lastError`, `up` is 0, and none of their series are scraped (as Prometheus).
#[test]
fn collector_target_limit_fails_every_target_of_the_job() {
    let dir = TempDir::new("collector-target-limit");
    let _sim = start_sim(&dir);
    std::fs::write(
        dir.join("collector.toml"),
        "[global]\nscrape_interval = \"500ms\"\nscrape_timeout = \"500ms\"\n\n[[scrape_configs]]\njob_name = \"fleet\"\ntarget_limit = 2\nfile_sd_configs = [{ files = [\"sd.json\"] }]\n",
    )
    .expect("config");
    let c = start_collector(&dir, &dir.join("data"));
    let want = format!("target_limit exceeded (number of targets: {TARGETS}, limit: 2)");
    let down = eventually(Duration::from_secs(20), || {
        let v = targets_json(&c);
        let a = v["data"]["activeTargets"].as_array()?.clone();
        (a.len() == TARGETS && a.iter().all(|t| t["health"] == "down" && t["lastError"] == want.as_str())).then_some(())
    });
    assert!(down.is_some(), "targets not all down with {want:?}: {}\n{}", targets_json(&c), c.log_text());
    let ups = eventually(Duration::from_secs(10), || {
        Some(federated_values(&c, "up")).filter(|u| u.len() == TARGETS && u.iter().all(|(_, v)| *v == 0.0))
    });
    assert!(ups.is_some(), "up not 0 for every target: {:?}", federated_values(&c, "up"));
    let scraped = federate(&c).into_iter().filter(|(l, _)| l.starts_with("fleet_")).count();
    assert_eq!(scraped, 0, "no series of the capped job: {:?}", federate(&c));
    stop(c);
}
