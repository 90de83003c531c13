//! Executes parsed scripts against the engine with upstream's comparison rules.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use osprey_promql::engine::selector_matchers;
use osprey_promql::storage::is_stale;
use osprey_promql::{Engine, EngineOptions, Labels, MemStorage, QueryResult, QueryValue, RangeSeries, Sample};
use promql_parser::parser::{AtModifier, Expr};

use crate::script::{Cmd, Eval, Point, SeriesLine, TextMatch, parse_script};

/// Which count a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Plain float case.
    Float = 0,
    /// Needs native histograms.
    Histogram = 1,
    /// Behind a feature flag in a Prometheus server.
    Flagged = 2,
}

/// Result of one eval.
#[derive(Debug)]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed, with the reason.
    Fail(String),
}

/// One eval's result.
#[derive(Debug)]
pub struct CaseResult {
    /// Script line.
    pub line: usize,
    /// Query.
    pub expr: String,
    /// Category.
    pub category: Category,
    /// Outcome.
    pub outcome: Outcome,
}

const FLAGGED_FILES: &[&str] = &[
    "extended_vectors.test",
    "fill-modifier.test",
    "info.test",
    "limit.test",
    "name_label_dropping.test",
    "start_timestamps.test",
];

const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "end",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "range",
    "start",
    "step",
    "time",
    "timestamp",
];

struct State {
    store: MemStorage,
    hist: Vec<Labels>,
}

fn load(st: &mut State, step: i64, nhcb: bool, series: &[SeriesLine]) {
    for s in series {
        let mut has_hist = false;
        for (i, p) in s.points.iter().enumerate() {
            let t = i as i64 * step;
            match p {
                Point::Float(v) => st.store.add(&s.labels, t, *v),
                Point::Histogram => has_hist = true,
                Point::Omitted => {}
            }
        }
        if has_hist {
            st.hist.push(s.labels.clone());
        }
        if nhcb {
            let name = s.labels.name().unwrap_or("");
            for suf in ["_bucket", "_count", "_sum"] {
                if let Some(base) = name.strip_suffix(suf) {
                    st.hist.push(s.labels.without(&["le"]).with("__name__", base));
                }
            }
        }
    }
}

fn walk<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    f(e);
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, f);
            }
            walk(&a.expr, f);
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, f);
            }
        }
        _ => {}
    }
}

fn touches_histograms(e: &Expr, hist: &[Labels]) -> bool {
    let mut hit = false;
    walk(e, &mut |n| {
        let vs = match n {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return,
        };
        for group in selector_matchers(vs) {
            if hist.iter().any(|h| group.iter().all(|m| m.matches_labels(h))) {
                hit = true;
            }
        }
    });
    hit
}

/// Whether `name` occurs in `text` as a whole identifier.
fn mentions(text: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

fn uses_experimental(e: &Expr) -> bool {
    let mut hit = false;
    walk(e, &mut |n| {
        if let Expr::Call(c) = n {
            hit |= c.func.experimental;
        }
        if let Expr::Aggregate(a) = n {
            hit |= matches!(a.op.to_string().as_str(), "limitk" | "limit_ratio");
        }
    });
    hit
}

/// Runs one file's commands.
pub fn run_file(file: &str, src: &str) -> Result<Vec<CaseResult>, String> {
    let cmds = parse_script(src)?;
    let mut st = State { store: MemStorage::new(), hist: Vec::new() };
    let engine = Engine::new(EngineOptions {
        max_samples: 10_000,
        timeout: Duration::from_secs(30),
        ..EngineOptions::default()
    });
    let mut out = Vec::new();
    for c in cmds {
        match c {
            Cmd::Clear => {
                st.store.clear();
                st.hist.clear();
            }
            Cmd::Load { step, nhcb, series } => load(&mut st, step, nhcb, &series),
            Cmd::Eval(ev) => {
                let (range, step) = ev.range.map_or((0, 0), |(s, e, st)| (e - s, st));
                let parsed = osprey_promql::durations::expand(&ev.expr, range, step)
                    .and_then(|q| osprey_promql::durations::parse_checked(&q));
                let mut category = Category::Float;
                let touches = match &parsed {
                    Ok(e) => touches_histograms(e, &st.hist),
                    // Unparseable: a histogram case if it names a histogram series.
                    Err(_) => st.hist.iter().filter_map(Labels::name).any(|n| mentions(&ev.expr, n)),
                };
                if ev.has_histogram || touches {
                    category = Category::Histogram;
                } else if FLAGGED_FILES.contains(&file) || parsed.as_ref().is_ok_and(uses_experimental) {
                    category = Category::Flagged;
                }
                let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_eval(&engine, &st.store, &ev, parsed)
                })) {
                    Ok(Ok(())) => Outcome::Pass,
                    Ok(Err(e)) => Outcome::Fail(e),
                    Err(_) => Outcome::Fail("PANIC in engine".into()),
                };
                out.push(CaseResult { line: ev.line, expr: ev.expr.clone(), category, outcome });
            }
        }
    }
    Ok(out)
}

fn check_fail(ev: &Eval, err: &str) -> Result<(), String> {
    if let Some(m) = &ev.fail_message {
        if m != err {
            return Err(format!("expected error {m:?}, got {err:?}"));
        }
    }
    if let Some(re) = &ev.fail_regexp {
        if !re.is_match(err) {
            return Err(format!("expected error matching {:?}, got {err:?}", re.as_str()));
        }
    }
    if let Some(tm) = &ev.expects.fail {
        if !text_matches(tm, err, false) {
            return Err(format!("expected error {tm:?}, got {err:?}"));
        }
    }
    Ok(())
}

/// Strips a trailing ` (l:c)` position from an expected annotation text.
fn strip_pos(s: &str) -> &str {
    if let Some(i) = s.rfind(" (") {
        let tail = &s[i + 2..];
        if tail.ends_with(')')
            && tail[..tail.len() - 1].split(':').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return &s[..i];
        }
    }
    s
}

fn text_matches(tm: &TextMatch, actual: &str, annotation: bool) -> bool {
    match tm {
        TextMatch::Any => true,
        TextMatch::Exact(e) => {
            if annotation {
                strip_pos(e) == actual
            } else {
                e == actual
            }
        }
        TextMatch::Regex(re) => {
            if annotation {
                // Drop a trailing position pattern such as ` \((1:25|[0-9]+:[0-9]+)\)`.
                let src = re.as_str();
                if let Some(i) = src.rfind(" \\(").filter(|_| src.ends_with("\\)")) {
                    if let Ok(r) = regex::Regex::new(&src[..i]) {
                        return r.is_match(actual);
                    }
                }
            }
            re.is_match(actual)
        }
    }
}

fn check_annotations(ev: &Eval, r: &QueryResult) -> Result<(), String> {
    if ev.warn && r.warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if ev.info && r.infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    for (kind, exp, got) in [("warn", &ev.expects.warn, &r.warnings), ("info", &ev.expects.info, &r.infos)] {
        if exp.is_empty() {
            continue;
        }
        if got.is_empty() {
            return Err(format!("expected {kind} annotations but none were found"));
        }
        for e in exp {
            if !got.iter().any(|g| text_matches(e, g, true)) {
                return Err(format!("expected {kind} annotation {e:?}, found {got:?}"));
            }
        }
        for g in got {
            if !exp.iter().any(|e| text_matches(e, g, true)) {
                return Err(format!("unexpected {kind} annotation {g:?}"));
            }
        }
    }
    if ev.expects.no_warn && !r.warnings.is_empty() {
        return Err(format!("unexpected warnings {:?}", r.warnings));
    }
    if ev.expects.no_info && !r.infos.is_empty() {
        return Err(format!("unexpected infos {:?}", r.infos));
    }
    Ok(())
}

/// Upstream's `almost.Equal` with epsilon 1e-6.
fn almost_equal(a: f64, b: f64) -> bool {
    const EPS: f64 = 1e-6;
    if is_stale(a) || is_stale(b) {
        return is_stale(a) && is_stale(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < EPS * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < EPS
}

enum Got<'a> {
    Vector(&'a [Sample]),
    Matrix(&'a [RangeSeries]),
    Scalar(f64),
    Str(&'a str),
}

fn compare(ev: &Eval, got: &Got<'_>, range: Option<(i64, i64, i64)>) -> Result<(), String> {
    let expected: HashMap<&Labels, (usize, &SeriesLine)> =
        ev.series.iter().enumerate().map(|(i, s)| (&s.labels, (i, s))).collect();
    match *got {
        Got::Matrix(m) => {
            if ev.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if ev.scalar.is_some() {
                return Err("expected scalar result, but got matrix".into());
            }
            if m.windows(2).any(|w| w[0].labels >= w[1].labels) {
                return Err("matrix result is not sorted by labels".into());
            }
            let (start, end, step) = range.unwrap_or((ev.at, ev.at, 1));
            for s in m {
                let Some((_, exp)) = expected.get(&s.labels) else {
                    return Err(format!("unexpected metric {} in result: {:?}", s.labels, s.points));
                };
                let mut want = Vec::new();
                for (i, p) in exp.points.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end {
                        return Err(format!(
                            "expected {} points for {}, more than the range holds",
                            exp.points.len(),
                            s.labels
                        ));
                    }
                    match p {
                        Point::Float(v) => want.push((t, *v)),
                        Point::Histogram => return Err("expected a native histogram".into()),
                        Point::Omitted => {}
                    }
                }
                if want.len() != s.points.len() {
                    return Err(format!("expected {} points for {}, got {:?}", want.len(), s.labels, s.points));
                }
                for (w, g) in want.iter().zip(&s.points) {
                    if w.0 != g.0 || !almost_equal(w.1, g.1) {
                        return Err(format!("for {} expected {:?}, got {:?}", s.labels, want, s.points));
                    }
                }
            }
            for l in expected.keys() {
                if !m.iter().any(|s| &s.labels == *l) {
                    return Err(format!("expected metric {l} not found"));
                }
            }
        }
        Got::Vector(v) => {
            if ev.scalar.is_some() {
                return Err("expected scalar result, but got vector".into());
            }
            for (pos, s) in v.iter().enumerate() {
                let Some((epos, exp)) = expected.get(&s.labels) else {
                    return Err(format!("unexpected metric {} in result, has value {}", s.labels, s.v));
                };
                if ev.ordered && *epos != pos {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        s.labels,
                        epos + 1,
                        pos + 1
                    ));
                }
                let want = match exp.points.first() {
                    Some(Point::Float(f)) => *f,
                    _ => return Err(format!("expected a native histogram or nothing for {}", s.labels)),
                };
                if !almost_equal(want, s.v) {
                    return Err(format!("expected {want} for {} but got {}", s.labels, s.v));
                }
            }
            for l in expected.keys() {
                if !v.iter().any(|s| &s.labels == *l) {
                    return Err(format!("expected metric {l} not found"));
                }
            }
        }
        Got::Scalar(x) => {
            let Some(want) = ev.scalar else {
                return Err(format!("expected vector or matrix result, but got scalar {x}"));
            };
            if !almost_equal(want, x) {
                return Err(format!("expected scalar {want} but got {x}"));
            }
        }
        Got::Str(s) => {
            if ev.string.as_deref() != Some(s) {
                return Err(format!("expected string {:?} but got {s:?}", ev.string));
            }
        }
    }
    Ok(())
}

fn got_of(r: &QueryResult) -> Got<'_> {
    match &r.value {
        QueryValue::Scalar { v, .. } => Got::Scalar(*v),
        QueryValue::String { s, .. } => Got::Str(s),
        QueryValue::Vector(v) => Got::Vector(v),
        QueryValue::Matrix(m) => Got::Matrix(m),
    }
}

fn ms_to_system_time(ms: i64) -> std::time::SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Sets `@ t` on every selector and subquery lacking one (not below a subquery that has one).
fn add_at(e: &mut Expr, t: i64) {
    match e {
        Expr::VectorSelector(vs) => {
            if vs.at.is_none() {
                vs.at = Some(AtModifier::At(ms_to_system_time(t)));
            }
        }
        Expr::MatrixSelector(ms) => {
            if ms.vs.at.is_none() {
                ms.vs.at = Some(AtModifier::At(ms_to_system_time(t)));
            }
        }
        Expr::Subquery(sq) => {
            if sq.at.is_none() {
                sq.at = Some(AtModifier::At(ms_to_system_time(t)));
            }
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                add_at(p, t);
            }
            add_at(&mut a.expr, t);
        }
        Expr::Unary(u) => add_at(&mut u.expr, t),
        Expr::Binary(b) => {
            add_at(&mut b.lhs, t);
            add_at(&mut b.rhs, t);
        }
        Expr::Paren(p) => add_at(&mut p.expr, t),
        Expr::Call(c) => {
            for a in &mut c.args.args {
                add_at(a, t);
            }
        }
        _ => {}
    }
}

fn at_unsafe(e: &Expr) -> bool {
    let mut hit = false;
    walk(e, &mut |n| {
        if let Expr::Call(c) = n {
            hit |= AT_UNSAFE.contains(&c.func.name);
        }
    });
    hit
}

fn run_eval(engine: &Engine, store: &MemStorage, ev: &Eval, parsed: Result<Expr, String>) -> Result<(), String> {
    let expr = match parsed {
        Ok(e) => e,
        Err(e) => {
            if ev.fail {
                return check_fail(ev, &e);
            }
            return Err(format!("parser: promql-parser rejects the query: {e}"));
        }
    };
    if let Some((start, end, step)) = ev.range {
        let r = match engine.eval_range(store, &expr, start, end, step) {
            Ok(r) => r,
            Err(e) if ev.fail => return check_fail(ev, &e.to_string()),
            Err(e) => return Err(format!("error: {e}")),
        };
        if ev.fail {
            return Err("expected an error but got none".into());
        }
        check_annotations(ev, &r)?;
        return compare(ev, &got_of(&r), Some((start, end, step)));
    }
    let mut queries = vec![(expr.clone(), ev.at)];
    if !at_unsafe(&expr) {
        let ts = ev.at;
        let times = if ts == 0 { vec![-1000, 0, 1000] } else { vec![-10 * ts, 0, ts / 5, ts, 10 * ts] };
        for t in times {
            let mut e = expr.clone();
            add_at(&mut e, ev.at);
            queries.push((e, t));
        }
    }
    let ctx_funcs = regex::Regex::new(r"(start|end|range|step)\(\)").expect("regex");
    for (i, (q, t)) in queries.iter().enumerate() {
        let label =
            if i == 0 { String::new() } else { format!(" [with @ {}s, evaluated at {}ms]", ev.at as f64 / 1000.0, t) };
        let r = engine.eval_instant(store, q, *t);
        let r = match r {
            Ok(r) => r,
            Err(e) if ev.fail => {
                check_fail(ev, &e.to_string()).map_err(|m| format!("{m}{label}"))?;
                continue;
            }
            Err(e) => return Err(format!("error: {e}{label}")),
        };
        if ev.fail {
            return Err(format!("expected an error but got none{label}"));
        }
        check_annotations(ev, &r).map_err(|m| format!("{m}{label}"))?;
        compare(ev, &got_of(&r), ev.range_vector).map_err(|m| format!("{m}{label}"))?;
        if ev.range_vector.is_some() || ev.string.is_some() || ctx_funcs.is_match(&ev.expr) {
            continue;
        }
        let rr = engine
            .eval_range(store, q, t - 60_000, t + 60_000, 60_000)
            .map_err(|e| format!("range mode error: {e}{label}"))?;
        if ev.ordered {
            continue;
        }
        let QueryValue::Matrix(m) = &rr.value else { return Err("range mode returned no matrix".into()) };
        if m.windows(2).any(|w| w[0].labels >= w[1].labels) {
            return Err("range mode matrix not sorted".into());
        }
        let vec: Vec<Sample> = m
            .iter()
            .filter_map(|s| {
                s.points.iter().find(|p| p.0 == *t).map(|p| Sample {
                    labels: s.labels.clone(),
                    t: *t,
                    v: p.1,
                    drop_name: false,
                })
            })
            .collect();
        let res = if matches!(r.value, QueryValue::Scalar { .. }) {
            compare(ev, &Got::Scalar(vec.first().map_or(f64::NAN, |s| s.v)), None)
        } else {
            compare(ev, &Got::Vector(&vec), None)
        };
        res.map_err(|m| format!("range mode: {m}{label}"))?;
    }
    Ok(())
}
