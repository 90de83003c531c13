//! Grammar-based query fuzzer: queries from `grammar.rs` (dashboard-like, randomly nested,
//! some malformed) run as instant and range queries against the engine over a loaded data set
//! (counters with resets, gauges that go stale, histogram buckets, NaN/±Inf values, series that
//! collide once the name is dropped). Asserted for every query:
//!
//! * no panic;
//! * an error is well-formed: non-empty, one line, parse errors carry Prometheus's
//!   `line:col: parse error: ` prefix once positioned, evaluation errors are not internal;
//! * a result is well-formed: renders to valid JSON, no two series with one label set, range
//!   points in order on the step grid inside `[start, end]`;
//! * a one-step range query agrees with the instant query at that time.
//!
//! Runs for `OSPREY_PROMQL_FUZZ_SECS` seconds (default 20; `benches/promql_fuzz.sh MINUTES`
//! runs it longer in release mode), seed from `OSPREY_PROMQL_FUZZ_SEED` or the clock; the seed
//! is printed so a failure can be replayed.

mod grammar;

use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use grammar::{Gen, Rng};
use osprey_promql::api::position::with_position;
use osprey_promql::api::render_query_response;
use osprey_promql::storage::stale_nan;
use osprey_promql::{Engine, EngineOptions, Error, Labels, MemStorage, QueryResult, QueryValue};

/// Data starts here (ms) and lasts two hours at a 15 s interval.
const BASE: i64 = 1_700_000_000_000;
const POINTS: i64 = 480;
const STEP: i64 = 15_000;
/// Errors of each class shown in the output.
const EXAMPLES: usize = 12;

fn data() -> MemStorage {
    let mut s = MemStorage::new();
    let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs);
    for (j, job) in ["api", "db"].iter().enumerate() {
        for (k, inst) in ["a", "b", "c"].iter().enumerate() {
            for code in ["200", "500"] {
                let ls = l(&[("__name__", "http_requests_total"), ("code", code), ("instance", inst), ("job", job)]);
                let mut v = 0.0;
                for i in 0..POINTS {
                    if i == 150 + 40 * k as i64 {
                        v = 0.0;
                    }
                    v += (j * 3 + k + 1) as f64 * if code == "500" { 0.1 } else { 1.3 };
                    s.add(&ls, BASE + i * STEP, v);
                }
            }
            let mem = l(&[("__name__", "mem_bytes"), ("instance", inst), ("job", job)]);
            let end = if *inst == "c" { POINTS / 2 } else { POINTS };
            for i in 0..end {
                s.add(&mem, BASE + i * STEP, 1e9 + ((i * 7 + k as i64) % 23) as f64 * 1e6);
            }
            if end < POINTS {
                s.add(&mem, BASE + end * STEP, stale_nan());
            }
            let up = l(&[("__name__", "up"), ("instance", inst), ("job", job)]);
            let info = l(&[("__name__", "node_info"), ("instance", inst), ("job", job), ("version", "1.2")]);
            for i in 0..POINTS {
                s.add(&up, BASE + i * STEP, if (i + k as i64) % 50 == 0 { 0.0 } else { 1.0 });
                s.add(&info, BASE + i * STEP, 1.0);
            }
        }
        for (n, le) in ["0.05", "0.1", "0.5", "1", "+Inf"].iter().enumerate() {
            let ls = l(&[("__name__", "lat_seconds_bucket"), ("job", job), ("le", le)]);
            for i in 0..POINTS {
                s.add(&ls, BASE + i * STEP, ((j + 1) * (n + 1)) as f64 * i as f64);
            }
        }
    }
    let flappy = l(&[("__name__", "flappy"), ("instance", "a"), ("job", "api")]);
    for i in 0..POINTS {
        let v = match i % 7 {
            0 => stale_nan(),
            3 => continue,
            _ => (i % 11) as f64,
        };
        s.add(&flappy, BASE + i * STEP, v);
    }
    let weird = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, 1e308, -1e308, 5e-324, 42.0];
    for (k, inst) in ["a", "b"].iter().enumerate() {
        let ls = l(&[("__name__", "weird_values"), ("instance", inst), ("job", "api")]);
        for i in 0..POINTS {
            s.add(&ls, BASE + i * STEP, weird[(i as usize + k) % weird.len()]);
        }
    }
    s
}

/// Why a result or error is not well-formed, if it is not.
fn check_result(r: &QueryResult, range: Option<(i64, i64, i64)>) -> Result<(), String> {
    let text = render_query_response(r);
    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("response is not JSON ({e}): {text}"))?;
    match &r.value {
        QueryValue::Vector(v) => {
            let mut seen = HashSet::new();
            for s in v {
                if !seen.insert(&s.labels) {
                    return Err(format!("duplicate series {:?}", s.labels));
                }
            }
        }
        QueryValue::Matrix(m) => {
            let mut seen = HashSet::new();
            for s in m {
                if !seen.insert(&s.labels) {
                    return Err(format!("duplicate series {:?}", s.labels));
                }
                if s.points.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err(format!("points out of order in {:?}", s.labels));
                }
                if let Some((start, end, step)) = range {
                    if s.points.is_empty() {
                        return Err(format!("series without points {:?}", s.labels));
                    }
                    if let Some(p) = s.points.iter().find(|p| p.0 < start || p.0 > end || (p.0 - start) % step != 0) {
                        return Err(format!("point at {} off the grid {start}..{end}/{step}", p.0));
                    }
                }
            }
        }
        QueryValue::Scalar { .. } | QueryValue::String { .. } => {}
    }
    Ok(())
}

fn check_error(q: &str, e: &Error) -> Result<(), String> {
    let msg = e.to_string();
    if msg.trim().is_empty() || msg.contains('\n') {
        return Err(format!("error text {msg:?}"));
    }
    if msg.contains("panicked") || msg.contains("internal error") {
        return Err(format!("internal error {msg:?}"));
    }
    if let Error::Parse(m) = e {
        let p = with_position(q, m);
        let mut parts = p.splitn(3, ':');
        let ok = parts.next().is_some_and(|l| l.parse::<usize>().is_ok())
            && parts.next().is_some_and(|c| c.parse::<usize>().is_ok())
            && parts.next().is_some_and(|rest| rest.starts_with(" parse error: ") && rest.len() > 14);
        if !ok {
            return Err(format!("parse error without position: {p:?}"));
        }
    }
    Ok(())
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// The instant result as `labels → value`, when it is a vector or scalar.
fn instant_points(r: &QueryResult) -> Option<BTreeMap<Labels, f64>> {
    match &r.value {
        QueryValue::Vector(v) => Some(v.iter().map(|s| (s.labels.clone(), s.v)).collect()),
        QueryValue::Scalar { v, .. } => Some(BTreeMap::from([(Labels::default(), *v)])),
        _ => None,
    }
}

fn range_points(r: &QueryResult) -> BTreeMap<Labels, f64> {
    match &r.value {
        QueryValue::Matrix(m) => m.iter().filter_map(|s| Some((s.labels.clone(), s.points.first()?.1))).collect(),
        _ => BTreeMap::new(),
    }
}

#[derive(Default)]
struct Tally {
    queries: u64,
    ok: u64,
    parse_errors: u64,
    exec_errors: u64,
    limits: u64,
    failures: Vec<String>,
    /// A few errors of each class, printed as a sample of what the grammar produced.
    examples: BTreeMap<&'static str, Vec<String>>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        if self.failures.len() < 50 {
            self.failures.push(what);
        }
    }

    fn outcome(&mut self, q: &str, r: &std::thread::Result<osprey_promql::value::Result<QueryResult>>) {
        self.queries += 1;
        match r {
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                self.fail(format!("PANIC {msg:?} on {q:?}"));
            }
            Ok(Ok(_)) => self.ok += 1,
            Ok(Err(e)) => {
                let class = match e {
                    Error::Parse(_) => {
                        self.parse_errors += 1;
                        "parse"
                    }
                    Error::Exec(_) => {
                        self.exec_errors += 1;
                        "evaluation"
                    }
                    Error::Timeout(_) | Error::TooManySamples(_) => {
                        self.limits += 1;
                        "limit"
                    }
                };
                let ex = self.examples.entry(class).or_default();
                if ex.len() < EXAMPLES {
                    ex.push(format!("{q}  =>  {e}"));
                }
                if let Err(m) = check_error(q, e) {
                    self.fail(format!("{m} on {q:?}"));
                }
            }
        }
    }
}

fn run_one(e: &Engine, s: &MemStorage, rng: &mut Rng, q: &str, t: &mut Tally) {
    let at = BASE - 600_000 + (rng.below(9000) as i64) * 1000;
    let inst = catch_unwind(AssertUnwindSafe(|| e.instant_query(s, q, at)));
    t.outcome(q, &inst);
    if let Ok(Ok(r)) = &inst
        && let Err(m) = check_result(r, None)
    {
        t.fail(format!("{m} on instant {q:?} @ {at}"));
    }
    // A one-step range query must agree with the instant query.
    // (`step()` is 0 in an instant query, the step in a range query.)
    if let Ok(Ok(r)) = &inst
        && !q.contains("step()")
        && let Some(want) = instant_points(r)
    {
        match catch_unwind(AssertUnwindSafe(|| e.range_query(s, q, at, at, 60_000))) {
            Ok(Ok(rr)) => {
                let got = range_points(&rr);
                let agree = got.len() == want.len()
                    && got.iter().zip(&want).all(|((la, va), (lb, vb))| la == lb && same(*va, *vb));
                if !agree {
                    t.fail(format!("one-step range {got:?} != instant {want:?} on {q:?} @ {at}"));
                }
            }
            Ok(Err(Error::Timeout(_) | Error::TooManySamples(_))) => {}
            other => t.fail(format!(
                "one-step range answered {:?} where instant succeeded on {q:?}",
                other.map(|r| r.map(|_| ())).ok()
            )),
        }
    }
    if matches!(inst, Ok(Err(Error::Parse(_)))) {
        return;
    }
    let start = BASE - 600_000 + (rng.below(7000) as i64) * 1000;
    let step = [1_000, 7_000, 15_000, 60_000, 300_000][rng.below(5)];
    let end = start + step * rng.below(120) as i64;
    let range = catch_unwind(AssertUnwindSafe(|| e.range_query(s, q, start, end, step)));
    t.outcome(q, &range);
    if let Ok(Ok(r)) = &range
        && let Err(m) = check_result(r, Some((start, end, step)))
    {
        t.fail(format!("{m} on range {q:?} {start}..{end}/{step}"));
    }
}

#[test]
fn promql_fuzz_no_panics_and_well_formed_answers() {
    let secs: u64 = std::env::var("OSPREY_PROMQL_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("OSPREY_PROMQL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
    // Panics are caught and counted; keep the default hook from printing each one.
    std::panic::set_hook(Box::new(|_| {}));
    let store = data();
    let engine = Engine::new(EngineOptions {
        timeout: Duration::from_secs(1),
        max_samples: 2_000_000,
        max_loaded_samples: 20_000_000,
        ..EngineOptions::default()
    });
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut slowest = (Duration::ZERO, String::new());
    while Instant::now() < deadline {
        let q = Gen::new(&mut rng, 4).query();
        let t0 = Instant::now();
        run_one(&engine, &store, &mut rng, &q, &mut tally);
        if t0.elapsed() > slowest.0 {
            slowest = (t0.elapsed(), q);
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "promql fuzz: seed {seed}, {secs} s: {} queries evaluated ({} ok, {} parse errors, {} evaluation errors, {} stopped by limits), {} failures; slowest {:?}: {}",
        tally.queries,
        tally.ok,
        tally.parse_errors,
        tally.exec_errors,
        tally.limits,
        tally.failures.len(),
        slowest.0,
        slowest.1
    );
    for (class, ex) in &tally.examples {
        for e in ex {
            println!("sample {class} error: {e}");
        }
    }
    for f in &tally.failures {
        println!("FAIL {f}");
    }
    assert!(tally.queries > 0);
    assert!(tally.failures.is_empty(), "{} fuzz failures (seed {seed})", tally.failures.len());
}
