//! The agent's command line, config file, HTTP endpoints and bad-input behaviour, run as the
//! real binary.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::harness::{
    TempDir, agent_bin, eventually, free_port, http_get, http_get_with, http_request, run, start_agent,
};

#[test]
fn unknown_flag_exits_2_and_names_it() {
    let out = run(agent_bin(), &["--collector.doesnotexist"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--collector.doesnotexist"), "{err}");
}

#[test]
fn unknown_config_key_exits_2_with_file_and_line_before_binding() {
    let dir = TempDir::new("badkey");
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, "[web]\nmax-requests = 4\n\n[collector.loadavg]\nenabeld = true\n").expect("write");
    // Hold the port: if the agent tried to bind first, the error would be about the port.
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let out = run(
        agent_bin(),
        &["--config", cfg.to_str().expect("utf-8"), &format!("--web.listen-address=127.0.0.1:{port}")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.toml:5: unknown key `collector.loadavg.enabeld`"), "{err}");
    assert!(err.contains("enabled"), "valid keys listed: {err}");
}

#[test]
fn missing_procfs_is_a_clear_startup_error() {
    let out = run(agent_bin(), &["--path.procfs=/nonexistent/proc", "--web.listen-address=127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--path.procfs=/nonexistent/proc: not a procfs mount"), "{err}");
}

#[test]
fn config_file_settings_apply_and_flags_win() {
    let dir = TempDir::new("cfg");
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        "[collector]\ndisable-defaults = true\n[collector.loadavg]\nenabled = true\n[web]\ntelemetry-path = \"/m\"\n",
    )
    .expect("write");
    let agent = start_agent(&["--config", cfg.to_str().expect("utf-8"), "--web.telemetry-path=/metrics"], &dir);
    let body = http_get(agent.port, "/metrics").expect("scrape").text();
    assert!(body.contains("node_load1 "), "{body}");
    assert!(body.contains("node_scrape_collector_success{collector=\"loadavg\"} 1"));
    assert_eq!(body.matches("node_scrape_collector_success{").count(), 1, "only loadavg enabled: {body}");
    assert_eq!(http_get(agent.port, "/m").expect("get").status, 404, "flag overrides file");
}

#[test]
fn landing_health_and_collect_filters() {
    let dir = TempDir::new("endpoints");
    let agent = start_agent(&[], &dir);
    let landing = http_get(agent.port, "/").expect("landing");
    assert_eq!(landing.status, 200);
    assert!(landing.text().contains("href=\"/metrics\""));
    assert_eq!(http_get(agent.port, "/-/healthy").expect("healthy").status, 200);

    let only = http_get(agent.port, "/metrics?collect[]=loadavg").expect("scrape").text();
    assert_eq!(only.matches("node_scrape_collector_success{").count(), 1, "{only}");
    let excl = http_get(agent.port, "/metrics?exclude[]=loadavg").expect("scrape").text();
    assert!(!excl.contains("collector=\"loadavg\""));
    let bad = http_get(agent.port, "/metrics?collect[]=nope").expect("scrape");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("missing collector: nope"));
    let both = http_get(agent.port, "/metrics?collect[]=loadavg&exclude[]=loadavg").expect("scrape");
    assert_eq!(both.status, 400);
}

#[test]
fn openmetrics_and_gzip_are_negotiated() {
    let dir = TempDir::new("negotiate");
    let agent = start_agent(&[], &dir);
    let om = http_get_with(
        agent.port,
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")],
    )
    .expect("scrape");
    assert!(om.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text")));
    assert!(om.text().ends_with("# EOF\n"));
    let gz = http_get_with(agent.port, "/metrics", &[("Accept-Encoding", "gzip")]).expect("scrape");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b], "gzip magic");
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let dir = TempDir::new("sigterm");
    let mut agent = start_agent(&[], &dir);
    agent.signal("TERM");
    let status = eventually(Duration::from_secs(10), || agent.child.try_wait().ok().flatten())
        .expect("agent exits after SIGTERM");
    assert!(status.success(), "{status}: {}", agent.log_text());
}

#[test]
fn bad_reload_keeps_old_config() {
    let dir = TempDir::new("reload");
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, "[collector]\ndisable-defaults = true\n[collector.loadavg]\nenabled = true\n").expect("write");
    let agent = start_agent(&["--config", cfg.to_str().expect("utf-8")], &dir);
    std::fs::write(&cfg, "[collector]\ndisable-defaults = tru\n").expect("write");
    let r = http_request(agent.port, "POST", "/-/reload", &[]).expect("reload");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("agent.toml"), "{}", r.text());
    let body = http_get(agent.port, "/metrics").expect("scrape").text();
    assert!(body.contains("node_load1 "), "old config still serves");
    // A good config is picked up by SIGHUP.
    std::fs::write(&cfg, "[collector]\ndisable-defaults = true\n").expect("write");
    agent.signal("HUP");
    let reloaded = eventually(Duration::from_secs(10), || {
        let b = http_get(agent.port, "/metrics").ok()?.text();
        (!b.contains("node_load1 ")).then_some(())
    });
    assert!(reloaded.is_some(), "SIGHUP reload applied: {}", agent.log_text());
}

#[test]
fn excess_concurrent_scrapes_get_503() {
    // A FIFO as /proc/loadavg blocks the loadavg collector until its timeout, which holds the
    // only scrape slot.
    let dir = TempDir::new("maxreq");
    let proc_dir = dir.join("proc");
    std::fs::create_dir_all(&proc_dir).expect("mkdir");
    std::fs::write(proc_dir.join("stat"), "cpu  1 2 3 4\nbtime 1\n").expect("write");
    let fifo = proc_dir.join("loadavg");
    let ok = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success();
    assert!(ok, "mkfifo failed");
    let agent = start_agent(
        &[
            "--collector.disable-defaults",
            "--collector.loadavg",
            &format!("--path.procfs={}", proc_dir.display()),
            "--web.max-requests=1",
            "--collector.timeout=2s",
        ],
        &dir,
    );
    let port = agent.port;
    // Two scrapes race for the single slot: whichever gets it waits for the collector
    // timeout; the other one must be refused at once with 503.
    let start = Instant::now();
    let a = std::thread::spawn(move || http_get(port, "/metrics"));
    let b = std::thread::spawn(move || http_get(port, "/metrics"));
    let responses = [a.join().expect("join").expect("scrape a"), b.join().expect("join").expect("scrape b")];
    let elapsed = start.elapsed();
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(statuses.contains(&503), "one concurrent scrape is refused with 503: {statuses:?}");
    let ok = responses.iter().find(|r| r.status == 200).expect("the other scrape is answered");
    assert!(ok.text().contains("node_scrape_collector_success{collector=\"loadavg\"} 0"), "{}", ok.text());
    assert!(elapsed < Duration::from_secs(5), "stuck collector bounded by its timeout: {elapsed:?}");
    // The collector is still stuck: later scrapes do not wait for it again.
    let again = Instant::now();
    let r = http_get(port, "/metrics").expect("scrape");
    assert_eq!(r.status, 200);
    assert!(again.elapsed() < Duration::from_secs(1), "a still-stuck collector is skipped, not awaited");
    // Unblock the stuck reader so the agent can exit cleanly.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .map(|mut f| std::io::Write::write_all(&mut f, b"1 2 3 1/1 1\n"));
}

#[test]
fn unreadable_proc_file_fails_only_that_collector() {
    // As root every file is readable, so run the agent as `nobody` over a copied procfs
    // with one file made unreadable.
    let dir = TempDir::new("eacces");
    let proc_dir = dir.join("proc");
    std::fs::create_dir_all(&proc_dir).expect("mkdir");
    std::fs::write(proc_dir.join("stat"), "cpu  1 2 3 4\nbtime 1\n").expect("write");
    std::fs::write(proc_dir.join("loadavg"), "0.5 0.4 0.3 1/100 42\n").expect("write");
    let mut args: Vec<String> = vec![
        "--collector.disable-defaults".into(),
        "--collector.loadavg".into(),
        format!("--path.procfs={}", proc_dir.display()),
    ];
    let is_root = run(std::path::Path::new("/usr/bin/id"), &["-u"]).stdout.starts_with(b"0");
    let port = free_port();
    args.push(format!("--web.listen-address=127.0.0.1:{port}"));
    use std::os::unix::fs::PermissionsExt as _;
    for p in [&dir.0, &proc_dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(proc_dir.join("loadavg"), std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let (bin, full): (std::path::PathBuf, Vec<String>) = if is_root {
        // The checkout may not be readable by `nobody`: run a copy from the temp dir.
        let copy = dir.join("osprey-agent");
        std::fs::copy(agent_bin(), &copy).expect("copy agent");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut a = vec![
            "--reuid=65534".to_owned(),
            "--regid=65534".to_owned(),
            "--clear-groups".to_owned(),
            copy.display().to_string(),
        ];
        a.extend(args);
        ("/usr/bin/setpriv".into(), a)
    } else {
        (agent_bin().to_path_buf(), args)
    };
    let agent = crate::harness::Proc::start(&bin, &full, port, "/-/healthy", &dir);
    let body = http_get(agent.port, "/metrics").expect("scrape").text();
    assert!(body.contains("node_scrape_collector_success{collector=\"loadavg\"} 0"), "{body}");
    assert!(!body.contains("node_load1 "), "{body}");
    let log = agent.log_text();
    assert!(log.contains("Permission denied") && log.contains("loadavg"), "error logged: {log}");
}

#[test]
fn malformed_textfile_is_skipped_and_reported() {
    let dir = TempDir::new("textfile");
    let tf = dir.join("textfile");
    std::fs::create_dir_all(&tf).expect("mkdir");
    std::fs::write(tf.join("good.prom"), "# HELP batch_last_success_seconds Last success.\n# TYPE batch_last_success_seconds gauge\nbatch_last_success_seconds{job=\"backup\"} 1.7e9\n").expect("write");
    std::fs::write(tf.join("bad.prom"), "this is { not a metric\n").expect("write");
    let agent = start_agent(
        &[
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", tf.display()),
        ],
        &dir,
    );
    let body = http_get(agent.port, "/metrics").expect("scrape").text();
    assert!(body.contains("node_textfile_scrape_error 1"), "{body}");
    assert!(body.contains("batch_last_success_seconds{job=\"backup\"} 1.7e+09"), "{body}");
    assert!(body.contains("node_textfile_mtime_seconds{file="), "{body}");
    assert!(!body.contains("bad.prom\"} "), "the malformed file has no mtime series: {body}");
}
