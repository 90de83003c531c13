//! Hostile targets: each fails only itself — `up 0`, a clear `lastError`, nothing of its body
//! stored, memory bounded — while well-behaved neighbours keep their exact schedule.

use std::net::SocketAddr;

use super::{Hostile, Rig, eventually, own_process, peak_rss, start_hostile, target};
use crate::fleet::{Fleet, FleetSpec};
use crate::{DEFAULT_BODY_SIZE_LIMIT, Health, ScrapeLimits};

const IV: i64 = 10_000;
const ROUNDS: i64 = 3;

struct Case {
    kind: Hostile,
    limits: ScrapeLimits,
    /// Text `lastError` must contain.
    expect: String,
}

fn case(kind: Hostile, limits: ScrapeLimits, expect: impl Into<String>) -> Case {
    Case { kind, limits, expect: expect.into() }
}

fn body_limit(bytes: usize) -> ScrapeLimits {
    ScrapeLimits { body_size_limit: bytes, ..ScrapeLimits::default() }
}

fn too_large(limit: usize) -> String {
    format!("body size limit exceeded: the uncompressed response body is larger than {limit} bytes (body_size_limit)")
}

/// Scrapes `cases` next to two healthy fleet targets for [`ROUNDS`] intervals and checks both
/// sides.
async fn run(cases: &[Case]) -> Rig {
    let rig = Rig::new();
    let fleet = Fleet::start(FleetSpec { targets: 2, series: 50, gzip: false }, 0).await.unwrap();
    let mut hostile: Vec<(SocketAddr, &Case)> = Vec::new();
    for c in cases {
        hostile.push((start_hostile(c.kind).await, c));
    }
    let mut targets: Vec<_> = fleet.addrs.iter().map(|a| target(*a, IV as u64)).collect();
    for (addr, c) in &hostile {
        let mut t = target(*addr, IV as u64);
        t.limits = c.limits;
        targets.push(t);
    }
    rig.mgr.sync(targets);
    let url = |a: &SocketAddr| format!("http://{a}/metrics");
    for k in 1..=ROUNDS {
        rig.clock.advance(IV);
        for a in &fleet.addrs {
            rig.scrapes(&url(a), k as u64).await;
        }
        // Let body-bound cases finish in real time before virtual time moves past their
        // timeout; only the slow-loris needs the clock to fail.
        for (a, c) in &hostile {
            if !matches!(c.kind, Hostile::SlowLoris) {
                rig.scrapes(&url(a), k as u64).await;
            }
        }
    }
    for (a, c) in &hostile {
        eventually(&format!("{:?} failed", c.kind), || {
            let s = rig.status(&url(a));
            s.scrapes >= 1 && s.health == Health::Down
        })
        .await;
        let st = rig.status(&url(a));
        assert!(st.last_error.contains(&c.expect), "{:?}: lastError {:?} lacks {:?}", c.kind, st.last_error, c.expect);
        let inst = a.to_string();
        let up = rig.up(&inst);
        assert!(!up.is_empty() && up.iter().all(|s| s.1 == 0.0), "{:?}: up {up:?}", c.kind);
        let stored: Vec<String> = rig
            .store
            .select(&[("instance", &inst)])
            .into_iter()
            .map(|(l, _)| l.iter().find(|(n, _)| n == "__name__").unwrap().1.clone())
            .filter(|n| !n.starts_with("scrape_") && n != "up")
            .collect();
        assert!(stored.is_empty(), "{:?}: nothing of a failed scrape is stored, found {stored:?}", c.kind);
    }
    // The neighbours: every tick on the grid, all up, none skipped.
    for a in &fleet.addrs {
        let up = rig.up(&a.to_string());
        assert_eq!(up.len(), ROUNDS as usize, "{a}: {up:?}");
        assert!(up.iter().all(|s| s.1 == 1.0), "{a}: {up:?}");
        assert!(up.windows(2).all(|w| w[1].0 - w[0].0 == IV), "{a} kept its schedule: {up:?}");
        assert_eq!(rig.status(&url(a)).last_error, "");
    }
    let limit = cases.iter().map(|c| c.limits.effective_body_size_limit()).max().unwrap_or(0) as u64;
    assert!(rig.mgr.metrics().peak_body_buffer() <= limit, "a body buffer grew past {limit} bytes");
    rig.mgr.stop().await;
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_body() {
    run(&[case(Hostile::EndlessBody, body_limit(1 << 20), too_large(1 << 20))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_of_100_mb_hits_the_default_cap() {
    let rig =
        run(&[case(Hostile::HugeBody(100_000_000), ScrapeLimits::default(), too_large(DEFAULT_BODY_SIZE_LIMIT))]).await;
    assert_eq!(rig.mgr.metrics().peak_body_buffer(), DEFAULT_BODY_SIZE_LIMIT as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_times_out() {
    let rig =
        run(&[case(Hostile::SlowLoris, ScrapeLimits::default(), "scrape timed out after 2s (scrape_timeout)")]).await;
    assert!(
        rig.mgr
            .metrics()
            .families()
            .iter()
            .any(|f| f.name == "osprey_scrape_timeouts_total" && f.samples[0].value >= 1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bomb_stops_at_the_limit() {
    run(&[case(Hostile::GzipBomb(200), body_limit(4 << 20), too_large(4 << 20))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_series_hit_sample_limit_without_being_parsed() {
    let limits = ScrapeLimits { sample_limit: 10_000, ..ScrapeLimits::default() };
    run(&[case(
        Hostile::ManySeries(1_000_000),
        limits,
        "sample_limit exceeded: 1000000 samples after metric relabeling, limit 10000",
    )])
    .await;
    // ~27 MB of body; parsing it would take several times that.
    let peak = peak_rss();
    if own_process() {
        assert!(peak < 160 << 20, "peak RSS {} MiB", peak >> 20);
    } else {
        eprintln!("peak RSS check skipped: tests share this process (run under cargo-nextest)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_value_of_1_mb() {
    let expect =
        "parsing the text format 0.0.4 exposition: line 1, column 1: line is longer than the limit of 65536 bytes";
    run(&[case(Hostile::HugeLabelValue(1 << 20), ScrapeLimits::default(), expect)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines() {
    run(&[case(
        Hostile::Malformed,
        ScrapeLimits::default(),
        "parsing the text format 0.0.4 exposition: line 3, column",
    )])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_series() {
    run(&[case(
        Hostile::Duplicate,
        ScrapeLimits::default(),
        "duplicate series in the exposition: dup{a=\"1\",instance=",
    )])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500() {
    run(&[case(Hostile::Status500, ScrapeLimits::default(), "server returned HTTP status 500 Internal Server Error")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loop() {
    run(&[case(Hostile::RedirectLoop, ScrapeLimits::default(), "too many redirects")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_hostile_targets_at_once_fail_alone() {
    run(&[
        case(Hostile::EndlessBody, body_limit(1 << 20), too_large(1 << 20)),
        case(Hostile::HugeBody(20_000_000), body_limit(8 << 20), too_large(8 << 20)),
        case(Hostile::SlowLoris, ScrapeLimits::default(), "scrape timed out"),
        case(Hostile::GzipBomb(50), body_limit(2 << 20), too_large(2 << 20)),
        case(
            Hostile::ManySeries(200_000),
            ScrapeLimits { sample_limit: 1000, ..ScrapeLimits::default() },
            "sample_limit exceeded",
        ),
        case(Hostile::HugeLabelValue(1 << 20), ScrapeLimits::default(), "line is longer than the limit"),
        case(Hostile::Malformed, ScrapeLimits::default(), "line 3"),
        case(Hostile::Duplicate, ScrapeLimits::default(), "duplicate series"),
        case(Hostile::Status500, ScrapeLimits::default(), "HTTP status 500"),
        case(Hostile::RedirectLoop, ScrapeLimits::default(), "redirect"),
    ])
    .await;
}
