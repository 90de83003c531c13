//! Scrape loops and the manager against real HTTP servers: the request, the report series,
//! schedules, keep-alive, gzip, OpenMetrics, target diffs and end-of-run staleness.

use std::io::Write as _;

use super::{Exposer, Reply, Rig, T0, eventually, target};
use crate::client::ACCEPT_HEADER;
use crate::fleet::{Fleet, FleetSpec};
use crate::{Auth, Health, is_stale_nan};

const IV: i64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_stores_samples_and_the_five_report_series_on_the_tick() {
    let rig = Rig::new();
    let ex = Exposer::start("# TYPE m gauge\nm{a=\"1\"} 1\nm{a=\"2\"} 2\n").await;
    let mut t = target(ex.addr, IV as u64);
    t.auth = Some(Auth::Basic { username: "u".into(), password: "p".into() });
    assert_eq!(rig.mgr.sync(vec![t]).started, 1);
    assert_eq!(rig.status(&ex.url()).health, Health::Unknown);
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 1).await;
    let st = rig.status(&ex.url());
    assert_eq!((st.health, st.last_error.as_str()), (Health::Up, ""));
    let tick = st.last_scrape_ms.unwrap();
    assert!((T0..=T0 + IV).contains(&tick));
    let inst = ex.addr.to_string();
    let val = |name: &str| {
        let s = rig.store.select(&[("__name__", name), ("instance", &inst), ("job", "test")]);
        assert_eq!(s.len(), 1, "{name}: {s:?}");
        assert_eq!(s[0].1.len(), 1);
        assert_eq!(s[0].1[0].0, tick, "{name} stamped with the tick");
        s[0].1[0].1
    };
    assert_eq!(val("up"), 1.0);
    assert_eq!(val("scrape_samples_scraped"), 2.0);
    assert_eq!(val("scrape_samples_post_metric_relabeling"), 2.0);
    assert_eq!(val("scrape_series_added"), 2.0);
    assert!(val("scrape_duration_seconds") > 0.0);
    assert_eq!(rig.store.select(&[("__name__", "m"), ("instance", &inst)]).len(), 2);
    let (commits, _) = rig.store.transactions();
    assert_eq!(commits, 1, "one atomic append per scrape");

    let req = &ex.requests()[0];
    assert_eq!(req["accept"], ACCEPT_HEADER);
    assert_eq!(req["accept-encoding"], "gzip");
    assert_eq!(req["x-prometheus-scrape-timeout-seconds"], "2");
    assert_eq!(req["authorization"], "Basic dTpw");
    assert!(req["user-agent"].to_str().unwrap().starts_with("osprey-collector/"));

    // The next scrape is exactly one interval later and adds no series.
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 2).await;
    assert_eq!(rig.status(&ex.url()).last_scrape_ms, Some(tick + IV));
    let added = rig.store.select(&[("__name__", "scrape_series_added"), ("instance", &inst)]);
    assert_eq!(added[0].1[1], (tick + IV, 0.0));

    // Self-metrics encode and parse back; the lateness histogram saw both scrapes.
    let fams = rig.mgr.metrics().families();
    let mut text = Vec::new();
    agent_core::encode::encode(&mut text, &fams, agent_core::encode::Format::Text);
    let back = agent_core::parse::parse(&text, agent_core::encode::Format::Text, &agent_core::parse::Limits::default())
        .unwrap();
    let value = |name: &str, suffix: agent_core::model::Suffix| {
        back.iter().find(|f| f.name == name).unwrap().samples.iter().find(|s| s.suffix == suffix).unwrap().value
    };
    assert_eq!(value("osprey_scrape_start_lateness_seconds", agent_core::model::Suffix::Count), 2.0);
    assert_eq!(value("osprey_scrapes_total", agent_core::model::Suffix::None), 2.0);
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_reuse_one_keep_alive_connection() {
    let rig = Rig::new();
    let ex = Exposer::start("m 1\n").await;
    rig.mgr.sync(vec![target(ex.addr, IV as u64)]);
    for n in 1..=5 {
        rig.clock.advance(IV);
        rig.scrapes(&ex.url(), n).await;
    }
    assert_eq!(ex.requests().len(), 5);
    assert_eq!(ex.connections(), 1, "one TCP connection for five scrapes");
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_openmetrics_bodies_are_decoded() {
    let rig = Rig::new();
    let ex = Exposer::start("").await;
    let body = "# TYPE c counter\n# HELP c Things.\nc_total{x=\"y\"} 42\nc_created{x=\"y\"} 1000\n# EOF\n";
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body.as_bytes()).unwrap();
    ex.set_reply(Reply {
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        encoding: Some("gzip"),
        body: enc.finish().unwrap(),
    });
    rig.mgr.sync(vec![target(ex.addr, IV as u64)]);
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 1).await;
    let st = rig.status(&ex.url());
    assert_eq!(st.health, Health::Up, "{}", st.last_error);
    assert_eq!(st.last_body_bytes, body.len());
    let s = rig.store.series("c_total");
    assert_eq!(s[0].1[0].1, 42.0);
    assert_eq!(rig.store.series("c_created").len(), 1);
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_that_leaves_the_exposition_is_marked_stale_at_the_next_scrape() {
    let rig = Rig::new();
    let ex = Exposer::start("a 1\nb 1\n").await;
    rig.mgr.sync(vec![target(ex.addr, IV as u64)]);
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 1).await;
    ex.set("a 2\n");
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 2).await;
    let t2 = rig.status(&ex.url()).last_scrape_ms.unwrap();
    let b = &rig.store.series("b")[0].1;
    assert_eq!(b.len(), 2);
    assert_eq!(b[1].0, t2);
    assert!(is_stale_nan(b[1].1));
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_starts_and_stops_only_the_difference_and_removed_targets_go_stale() {
    let rig = Rig::new();
    let (a, b, c) = (Exposer::start("ma 1\n").await, Exposer::start("mb 1\n").await, Exposer::start("mc 1\n").await);
    let stats = rig.mgr.sync(vec![target(a.addr, IV as u64), target(b.addr, IV as u64)]);
    assert_eq!((stats.started, stats.stopped, stats.kept), (2, 0, 0));
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 1).await;
    rig.scrapes(&b.url(), 1).await;
    let b_tick = rig.status(&b.url()).last_scrape_ms.unwrap();

    // b stays (same labels and URL, new settings object), a goes, c comes.
    let stats = rig.mgr.sync(vec![target(b.addr, IV as u64), target(c.addr, IV as u64)]);
    assert_eq!((stats.started, stats.stopped, stats.kept), (1, 1, 1));
    assert_eq!(rig.mgr.targets().len(), 2);
    assert_eq!(rig.mgr.draining(), 1);
    let a_last = rig.store.series("ma")[0].1[0].0;
    rig.clock.advance(IV);
    rig.scrapes(&b.url(), 2).await;
    rig.scrapes(&c.url(), 1).await;
    let st = rig.status(&b.url());
    assert_eq!(st.last_scrape_ms, Some(b_tick + IV), "b kept its schedule");
    assert_eq!(
        rig.store.select(&[("__name__", "scrape_series_added"), ("instance", &b.addr.to_string())])[0].1[1].1,
        0.0
    );

    // a's markers come after two more ticks and 10% of the interval, stamped with its first
    // missed tick.
    rig.clock.advance(IV);
    rig.clock.advance(IV / 5);
    eventually("a's staleness markers", || rig.store.series("ma")[0].1.len() == 2).await;
    let ma = &rig.store.series("ma")[0].1;
    assert_eq!(ma[1].0, a_last + IV);
    assert!(is_stale_nan(ma[1].1), "{ma:?} up {:?}", rig.up(&a.addr.to_string()));
    let up_a = rig.up(&a.addr.to_string());
    assert!(is_stale_nan(up_a.last().unwrap().1), "report series are marked too: {up_a:?}");
    eventually("a's loop ended", || rig.mgr.draining() == 0).await;
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_readded_within_the_grace_period_resumes_without_markers() {
    let rig = Rig::new();
    let a = Exposer::start("ma 1\n").await;
    rig.mgr.sync(vec![target(a.addr, IV as u64)]);
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 1).await;
    rig.mgr.sync(vec![]);
    assert_eq!(rig.mgr.targets().len(), 0);
    let stats = rig.mgr.sync(vec![target(a.addr, IV as u64)]);
    assert_eq!(stats.started, 1);
    assert_eq!(rig.mgr.draining(), 0);
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 2).await;
    // Past the grace period of the removal: still no markers.
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 3).await;
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 4).await;
    assert!(rig.store.series("ma")[0].1.iter().all(|(_, v)| !v.is_nan()), "no marker for a target that came back");
    assert_eq!(rig.status(&a.url()).scrapes, 4, "state (scrape count) kept");
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_every_loop_without_markers() {
    let rig = Rig::new();
    let a = Exposer::start("ma 1\n").await;
    rig.mgr.sync(vec![target(a.addr, IV as u64)]);
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 1).await;
    rig.mgr.stop().await;
    rig.clock.advance(IV * 5);
    assert!(rig.mgr.targets().is_empty());
    assert_eq!(rig.store.series("ma")[0].1.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_simulator_is_scraped_and_targets_spread_over_the_interval() {
    let rig = Rig::new();
    let fleet = Fleet::start(FleetSpec { targets: 20, series: 100, gzip: true }, 0).await.unwrap();
    rig.mgr.sync(fleet.addrs.iter().map(|a| target(*a, IV as u64)).collect());
    rig.clock.advance(IV);
    eventually("every fleet target scraped", || rig.mgr.targets().iter().all(|t| t.scrapes == 1)).await;
    let targets = rig.mgr.targets();
    assert!(targets.iter().all(|t| t.health == Health::Up && t.last_samples_scraped == 100));
    let mut ticks: Vec<i64> = targets.iter().map(|t| t.last_scrape_ms.unwrap()).collect();
    ticks.sort_unstable();
    ticks.dedup();
    assert!(ticks.len() >= 15, "20 targets on distinct offsets, got {}", ticks.len());
    assert_eq!(rig.store.series_count(), 20 * (100 + 5));
    assert_eq!(fleet.stats.scrapes.load(std::sync::atomic::Ordering::Relaxed), 20);
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_change_keeps_the_loop_and_moves_the_schedule() {
    let rig = Rig::new();
    let a = Exposer::start("ma 1\n").await;
    rig.mgr.sync(vec![target(a.addr, IV as u64)]);
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 1).await;
    let stats = rig.mgr.sync(vec![target(a.addr, 2 * IV as u64)]);
    assert_eq!(stats.kept, 1);
    eventually("new interval in the status", || rig.status(&a.url()).interval.as_millis() == 2 * IV as u128).await;
    rig.clock.advance(2 * IV);
    rig.scrapes(&a.url(), 2).await;
    rig.clock.advance(2 * IV);
    rig.scrapes(&a.url(), 3).await;
    let up = rig.up(&a.addr.to_string());
    assert_eq!(up[2].0 - up[1].0, 2 * IV);
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_failure_reports_the_target_down() {
    let rig = Rig::new();
    let a = Exposer::start("ma 1\n").await;
    rig.store.fail_commits(Some("disk full"));
    rig.mgr.sync(vec![target(a.addr, IV as u64)]);
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 1).await;
    let st = rig.status(&a.url());
    assert_eq!((st.health, st.last_error.as_str()), (Health::Down, "storage: disk full"));
    rig.store.fail_commits(None);
    rig.clock.advance(IV);
    rig.scrapes(&a.url(), 2).await;
    assert_eq!(rig.status(&a.url()).health, Health::Up);
    rig.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_body_without_content_type_is_parsed_as_text() {
    let rig = Rig::new();
    let ex = Exposer::start("").await;
    ex.set_reply(Reply { content_type: "application/octet-stream", encoding: None, body: b"m 3\n".to_vec() });
    rig.mgr.sync(vec![target(ex.addr, IV as u64)]);
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 1).await;
    assert_eq!(rig.status(&ex.url()).health, Health::Up);
    assert_eq!(rig.store.series("m")[0].1[0].1, 3.0);
    rig.mgr.stop().await;
}

/// A job over its `target_limit` (forced error): every scrape fails with the error, without a
/// request; the series of the earlier good scrape are marked stale; lifting it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_error_fails_every_scrape_without_a_request_and_marks_series_stale() {
    let rig = Rig::new();
    let ex = Exposer::start("m 1\n").await;
    let t = target(ex.addr, IV as u64);
    rig.mgr.sync(vec![t.clone()]);
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 1).await;
    assert_eq!(ex.requests().len(), 1);
    let limit = "target_limit exceeded (number of targets: 3, limit: 2)";
    let mut forced = t.clone();
    forced.forced_error = Some(limit.to_owned());
    assert_eq!(rig.mgr.sync(vec![forced]).kept, 1, "the loop is kept, not restarted");
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 2).await;
    let st = rig.status(&ex.url());
    assert_eq!((st.health, st.last_error.as_str()), (Health::Down, limit));
    assert_eq!(ex.requests().len(), 1, "no request while the error is forced");
    let inst = ex.addr.to_string();
    let up: Vec<f64> = rig.up(&inst).into_iter().map(|(_, v)| v).collect();
    assert_eq!(up, [1.0, 0.0]);
    let m = rig.store.select(&[("__name__", "m"), ("instance", &inst)]);
    assert!(is_stale_nan(m[0].1.last().expect("m samples").1), "m marked stale: {m:?}");
    // Back under the limit: scraped again.
    rig.mgr.sync(vec![t]);
    rig.clock.advance(IV);
    rig.scrapes(&ex.url(), 3).await;
    assert_eq!(rig.status(&ex.url()).health, Health::Up);
    assert_eq!(ex.requests().len(), 2);
    rig.mgr.stop().await;
}
