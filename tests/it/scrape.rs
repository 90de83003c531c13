//! The scrape layer (`osprey-scrape`) against real peers: it scrapes Debian's
//! node_exporter and our agent, and stores exactly the series stock Prometheus stores from the
//! same simulated fleet (compared through Prometheus' `/federate`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use agent_core::encode::Format;
use osprey_scrape::fleet::{Fleet, FleetSpec};
use osprey_scrape::{Health, ManagerOptions, MemStorage, ScrapeManager, ScrapeTarget};

use crate::harness::{Proc, TempDir, eventually, free_port, http_get, peer, start_agent};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn target(job: &str, addr: &str, interval: Duration) -> ScrapeTarget {
    let mut t = ScrapeTarget::new(
        job,
        vec![("job".into(), job.into()), ("instance".into(), addr.into())],
        format!("http://{addr}/metrics"),
    );
    t.interval = interval;
    t.timeout = interval;
    t
}

/// A series as `name{a="b",…}` with sorted labels.
fn key(labels: &[(String, String)]) -> String {
    let name = labels.iter().find(|(n, _)| n == "__name__").map_or("", |(_, v)| v.as_str());
    let rest: Vec<String> = labels.iter().filter(|(n, _)| n != "__name__").map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{name}{{{}}}", rest.join(","))
}

#[test]
fn scrapes_debian_node_exporter_and_the_agent() {
    let Some(ne) = peer("prometheus-node-exporter") else { return };
    let dir = TempDir::new("scrape-peers");
    let ne_port = free_port();
    let _ne = Proc::start(&ne, &[format!("--web.listen-address=127.0.0.1:{ne_port}")], ne_port, "/metrics", &dir);
    let agent = start_agent(&[], &dir);
    let rt = runtime();
    let store = MemStorage::new();
    let mgr = rt.block_on(async { ScrapeManager::new(Arc::new(store.clone()), ManagerOptions::default()) });
    let iv = Duration::from_millis(500);
    let (ne_addr, agent_addr) = (format!("127.0.0.1:{ne_port}"), format!("127.0.0.1:{}", agent.port));
    mgr.sync(vec![target("node", &ne_addr, iv), target("osprey", &agent_addr, iv)]);
    let done = eventually(Duration::from_secs(30), || {
        let t = mgr.targets();
        t.iter().all(|s| s.scrapes >= 2).then_some(t)
    });
    let targets = done.unwrap_or_else(|| panic!("targets not scraped twice: {:#?}", mgr.targets()));
    for t in &targets {
        assert_eq!(t.health, Health::Up, "{}: {}", t.scrape_url, t.last_error);
        assert!(t.last_samples_scraped > 100, "{}: only {} samples", t.scrape_url, t.last_samples_scraped);
    }
    for (job, addr) in [("node", &ne_addr), ("osprey", &agent_addr)] {
        let load = store.select(&[("__name__", "node_load1"), ("job", job), ("instance", addr)]);
        assert_eq!(load.len(), 1, "node_load1 of {job}");
        assert!(load[0].1.len() >= 2);
        let up = store.select(&[("__name__", "up"), ("job", job)]);
        assert!(up[0].1.iter().all(|s| s.1 == 1.0));
    }
    rt.block_on(mgr.stop());
}

#[test]
fn stores_the_same_series_as_prometheus_from_the_fleet_simulator() {
    let Some(prom) = peer("prometheus") else { return };
    let dir = TempDir::new("scrape-differential");
    let rt = runtime();
    let fleet = rt.block_on(Fleet::start(FleetSpec { targets: 5, series: 200, gzip: true }, 0)).expect("fleet");
    let addrs: Vec<String> = fleet.addrs.iter().map(ToString::to_string).collect();

    let cfg = dir.join("prometheus.yml");
    let list: Vec<String> = addrs.iter().map(|a| format!("'{a}'")).collect();
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: fleet\n    static_configs:\n      - targets: [{}]\n",
            list.join(",")
        ),
    )
    .expect("config");
    let port = free_port();
    let args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    let p = Proc::start(&prom, &args, port, "/-/ready", &dir);

    let store = MemStorage::new();
    let mgr = rt.block_on(async { ScrapeManager::new(Arc::new(store.clone()), ManagerOptions::default()) });
    mgr.sync(addrs.iter().map(|a| target("fleet", a, Duration::from_secs(1))).collect());
    let ours = eventually(Duration::from_secs(30), || {
        mgr.targets().iter().all(|t| t.scrapes >= 2 && t.health == Health::Up).then_some(())
    });
    assert!(ours.is_some(), "our scrapes: {:#?}", mgr.targets());
    let our_series: BTreeSet<String> = store
        .select(&[("job", "fleet")])
        .into_iter()
        .filter(|(_, s)| s.last().is_some_and(|x| !x.1.is_nan()))
        .map(|(l, _)| key(&l))
        .collect();

    // Prometheus' view, once every target has been scraped twice.
    let federate = eventually(Duration::from_secs(30), || {
        let r = http_get(port, "/federate?match%5B%5D=%7Bjob%3D%22fleet%22%7D").ok()?;
        let fams = agent_core::parse::parse(&r.body, Format::Text, &agent_core::parse::Limits::default()).ok()?;
        let mut set = BTreeSet::new();
        for f in &fams {
            for s in &f.samples {
                let mut l = s.labels.clone();
                l.push(("__name__".into(), format!("{}{}", f.name, s.suffix.as_str())));
                l.sort();
                set.insert(key(&l));
            }
        }
        (set.len() >= our_series.len()).then_some(set)
    });
    let theirs = federate.unwrap_or_else(|| panic!("federate never complete\n{}", p.log_text()));
    let only_ours: Vec<&String> = our_series.difference(&theirs).collect();
    let only_theirs: Vec<&String> = theirs.difference(&our_series).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "series differ\nonly ours ({}): {:?}\nonly Prometheus' ({}): {:?}",
        only_ours.len(),
        &only_ours[..only_ours.len().min(10)],
        only_theirs.len(),
        &only_theirs[..only_theirs.len().min(10)]
    );
    // 200 series + 5 report series per target, with the upstream's labels renamed alike.
    assert_eq!(our_series.len(), 5 * 205);
    assert!(
        our_series
            .iter()
            .any(|k| k.starts_with("fleet_upstream_up{exported_instance=\"upstream-0\",exported_job=\"upstream\""))
    );
    rt.block_on(mgr.stop());
}
