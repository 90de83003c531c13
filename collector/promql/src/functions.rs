//! Function calls: dispatch, instant-vector functions, label functions, `absent`, histograms.

use std::collections::HashMap;

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Call, Expr};

use crate::aggregate::format_float_plain;
use crate::engine::{Evaluator, check_unique};
use crate::labels::{Labels, METRIC_NAME};
use crate::rangefns::{self, RangeArgs};
use crate::value::{Error, RangeSeries, Result, Sample, Value};

fn string_arg(e: &Expr) -> Result<String> {
    match e {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        Expr::Paren(p) => string_arg(&p.expr),
        _ => Err(Error::Exec("expected string literal argument".into())),
    }
}

/// The window `(rt - range, rt]` of a range-vector argument.
fn window_of(ev: &Evaluator<'_>, e: &Expr, ts: i64) -> (i64, i64) {
    match e {
        Expr::MatrixSelector(ms) => {
            (ev.ref_time(ms.vs.at.as_ref(), ms.vs.offset.as_ref(), ts), ms.range.as_millis() as i64)
        }
        Expr::Subquery(sq) => (ev.ref_time(sq.at.as_ref(), sq.offset.as_ref(), ts), sq.range.as_millis() as i64),
        Expr::Paren(p) => window_of(ev, &p.expr, ts),
        _ => (ts, 0),
    }
}

/// Evaluates a function call at `ts`.
#[allow(clippy::many_single_char_names)]
pub(crate) fn call(ev: &mut Evaluator<'_>, c: &Call, ts: i64) -> Result<Value> {
    let name = c.func.name;
    let args = &c.args.args;
    if let Some(mi) = rangefns::matrix_arg_index(name) {
        return call_range(ev, name, args, mi, ts);
    }
    match name {
        "time" => Ok(Value::Scalar(ts as f64 / 1000.0)),
        "pi" => Ok(Value::Scalar(std::f64::consts::PI)),
        "start" => Ok(Value::Scalar(ev.start as f64 / 1000.0)),
        "end" => Ok(Value::Scalar(ev.end as f64 / 1000.0)),
        "range" => Ok(Value::Scalar((ev.end - ev.start) as f64 / 1000.0)),
        "step" => Ok(Value::Scalar(ev.interval as f64 / 1000.0)),
        "vector" => {
            let v = ev.eval_scalar(&args[0], ts)?;
            Ok(Value::Vector(vec![Sample { labels: Labels::default(), t: ts, v, drop_name: false }]))
        }
        "scalar" => {
            let v = ev.eval_vector(&args[0], ts)?;
            Ok(Value::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }))
        }
        "timestamp" => {
            // Only a raw selector reports its samples' own times; anything else is at `ts`.
            let raw = matches!(unparen(&args[0]), Expr::VectorSelector(_));
            let v = ev.eval_vector(&args[0], ts)?;
            Ok(Value::Vector(map_drop(v, |s| if raw { s.t as f64 / 1000.0 } else { ts as f64 / 1000.0 })))
        }
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sgn" | "sin" | "cos" | "tan"
        | "asin" | "acos" | "atan" | "sinh" | "cosh" | "tanh" | "asinh" | "acosh" | "atanh" | "deg" | "rad" => {
            let f = simple_fn(name);
            let v = ev.eval_vector(&args[0], ts)?;
            Ok(Value::Vector(map_drop(v, |s| f(s.v))))
        }
        "round" => {
            let v = ev.eval_vector(&args[0], ts)?;
            let to = if args.len() > 1 { ev.eval_scalar(&args[1], ts)? } else { 1.0 };
            let inv = 1.0 / to;
            Ok(Value::Vector(map_drop(v, |s| (s.v * inv + 0.5).floor() / inv)))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let v = ev.eval_vector(&args[0], ts)?;
            let (lo, hi) = match name {
                "clamp" => (ev.eval_scalar(&args[1], ts)?, ev.eval_scalar(&args[2], ts)?),
                "clamp_min" => (ev.eval_scalar(&args[1], ts)?, f64::INFINITY),
                _ => (f64::NEG_INFINITY, ev.eval_scalar(&args[1], ts)?),
            };
            if hi < lo {
                return Ok(Value::Vector(Vec::new()));
            }
            Ok(Value::Vector(map_drop(v, |s| {
                if name == "clamp" { lo.max(hi.min(s.v)) } else { go_max(lo, go_min(hi, s.v)) }
            })))
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute" | "month" | "year" => {
            if args.is_empty() {
                let v = date_part(name, (ts as f64 / 1000.0).floor() as i64);
                return Ok(Value::Vector(vec![Sample { labels: Labels::default(), t: ts, v, drop_name: false }]));
            }
            let v = ev.eval_vector(&args[0], ts)?;
            Ok(Value::Vector(map_drop(v, |s| if s.v.is_finite() { date_part(name, s.v as i64) } else { f64::NAN })))
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(&args[0], ts)?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| nan_last(a.v, b.v, desc));
            if ev.start != ev.end {
                ev.warn("sort is ineffective for range queries since results are always ordered by labels");
            }
            Ok(Value::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ev.eval_vector(&args[0], ts)?;
            let names: Vec<String> = args[1..].iter().map(|a| string_arg(a)).collect::<Result<_>>()?;
            let desc = name == "sort_by_label_desc";
            if ev.start != ev.end {
                ev.warn("sort is ineffective for range queries since results are always ordered by labels");
            }
            v.sort_by(|a, b| {
                for n in &names {
                    let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if x != y {
                        let o = natural_cmp(x, y);
                        return if desc { o.reverse() } else { o };
                    }
                }
                let o = a.labels.cmp(&b.labels);
                if desc { o.reverse() } else { o }
            });
            Ok(Value::Vector(v))
        }
        "label_replace" => label_replace(ev, args, ts),
        "info" => crate::info::eval(ev, c, ts),
        "label_join" => label_join(ev, args, ts),
        "absent" => {
            let v = ev.eval_vector(&args[0], ts)?;
            if !v.is_empty() {
                return Ok(Value::Vector(Vec::new()));
            }
            Ok(Value::Vector(vec![Sample { labels: absent_labels(&args[0]), t: ts, v: 1.0, drop_name: false }]))
        }
        "absent_over_time" => {
            let m = ev.eval_matrix(&args[0], ts)?;
            if !m.is_empty() {
                return Ok(Value::Vector(Vec::new()));
            }
            Ok(Value::Vector(vec![Sample { labels: absent_labels(&args[0]), t: ts, v: 1.0, drop_name: false }]))
        }
        "histogram_quantile" => {
            let q = ev.eval_scalar(&args[0], ts)?;
            let v = ev.eval_vector(&args[1], ts)?;
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                ev.warn(&format!("quantile value should be between 0 and 1, got {}", format_float_plain(q)));
            }
            Ok(crate::histogram::classic(ev, v, |b| crate::histogram::bucket_quantile(q, b)))
        }
        "histogram_quantiles" => {
            let v = ev.eval_vector(&args[0], ts)?;
            let label = string_arg(&args[1])?;
            let mut out = Vec::new();
            for a in &args[2..] {
                let q = ev.eval_scalar(a, ts)?;
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    ev.warn(&format!("quantile value should be between 0 and 1, got {}", format_float_plain(q)));
                }
                let qs = format_openmetrics_float(q);
                if let Value::Vector(res) =
                    crate::histogram::classic(ev, v.clone(), |b| crate::histogram::bucket_quantile(q, b))
                {
                    out.extend(res.into_iter().map(|s| Sample { labels: s.labels.with(&label, &qs), ..s }));
                }
            }
            Ok(Value::Vector(out))
        }
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(&args[0], ts)?;
            let b = ev.eval_scalar(&args[1], ts)?;
            Ok(Value::Scalar(if name == "min_of" { go_min(a, b) } else { go_max(a, b) }))
        }
        "histogram_fraction" => {
            let lo = ev.eval_scalar(&args[0], ts)?;
            let hi = ev.eval_scalar(&args[1], ts)?;
            let v = ev.eval_vector(&args[2], ts)?;
            Ok(crate::histogram::classic(ev, v, |b| crate::histogram::bucket_fraction(lo, hi, b)))
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
            // Native histograms only: float samples are ignored.
            let _ = ev.eval_vector(&args[0], ts)?;
            Ok(Value::Vector(Vec::new()))
        }
        other => Err(Error::Exec(format!("function {other:?} is not supported"))),
    }
}

/// Go's `labels.FormatOpenMetricsFloat`: shortest form, always with a `.` or exponent.
fn format_openmetrics_float(f: f64) -> String {
    let s = format_float_plain(f);
    if f.is_finite() && !s.contains(['.', 'e']) { format!("{s}.0") } else { s }
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

fn nan_last(a: f64, b: f64, desc: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            let o = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
            if desc { o.reverse() } else { o }
        }
    }
}

/// Natural ordering: digit runs compare numerically.
#[allow(clippy::many_single_char_names)]
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let x = a[si..i].trim_start_matches('0');
            let y = b[sj..j].trim_start_matches('0');
            let o = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

fn simple_fn(name: &str) -> fn(f64) -> f64 {
    match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v: f64| v * 180.0 / std::f64::consts::PI,
        _ => |v: f64| v * std::f64::consts::PI / 180.0,
    }
}

fn map_drop(v: Vec<Sample>, f: impl Fn(&Sample) -> f64) -> Vec<Sample> {
    v.into_iter()
        .map(|s| {
            let v = f(&s);
            Sample { v, drop_name: true, ..s }
        })
        .collect()
}

/// (year, month 1-12, day 1-31) of days since the epoch.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(name: &str, secs: i64) -> f64 {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let mdays = [31, if is_leap(y) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    match name {
        "days_in_month" => f64::from(mdays[m as usize - 1]),
        "day_of_month" => f64::from(d),
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => f64::from(mdays[..m as usize - 1].iter().sum::<u32>() + d),
        "hour" => (sod / 3600) as f64,
        "minute" => ((sod % 3600) / 60) as f64,
        "month" => f64::from(m),
        _ => y as f64,
    }
}

fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut has: HashMap<&str, bool> = HashMap::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && !has.contains_key(m.name.as_str()) {
            out.retain(|p| p.0 != m.name);
            out.push((m.name.clone(), m.value.clone()));
            has.insert(&m.name, true);
        } else {
            out.retain(|p| p.0 != m.name);
        }
    }
    Labels::from_vec(out)
}

fn call_range(ev: &mut Evaluator<'_>, name: &str, args: &[Box<Expr>], mi: usize, ts: i64) -> Result<Value> {
    let mut ra = RangeArgs { ts, ..RangeArgs::default() };
    match name {
        "quantile_over_time" => {
            ra.p0 = ev.eval_scalar(&args[0], ts)?;
            if ra.p0.is_nan() || !(0.0..=1.0).contains(&ra.p0) {
                ev.warn(&format!("quantile value should be between 0 and 1, got {}", format_float_plain(ra.p0)));
            }
        }
        "predict_linear" => ra.p0 = ev.eval_scalar(&args[1], ts)?,
        "double_exponential_smoothing" | "holt_winters" => {
            ra.p0 = ev.eval_scalar(&args[1], ts)?;
            ra.p1 = ev.eval_scalar(&args[2], ts)?;
        }
        _ => {}
    }
    (ra.rt, ra.range) = window_of(ev, &args[mi], ts);
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    if let Expr::MatrixSelector(ms) = &*args[mi] {
        if crate::rangeblock::eligible(name)
            && let Some(out) = crate::rangeblock::eval(ev, name, ms, ts, keep_name)?
        {
            return Ok(Value::Vector(out));
        }
        // Straight over the preloaded samples: no matrix is built per step.
        let check_counter = matches!(name, "rate" | "increase");
        let mut out = Vec::new();
        let mut not_counter: Vec<String> = Vec::new();
        ev.for_each_window(&ms.vs, ms.range.as_millis() as i64, ts, |labels, points| {
            if let Some(v) = rangefns::eval(name, points, &ra)? {
                if check_counter {
                    let n = labels.name().unwrap_or("");
                    if !n.is_empty()
                        && !["_total", "_sum", "_count", "_bucket"].iter().any(|suf| n.ends_with(suf))
                        && !not_counter.iter().any(|c| c == n)
                    {
                        not_counter.push(n.to_string());
                    }
                }
                out.push(Sample { labels: labels.clone(), t: ts, v, drop_name: !keep_name });
            }
            Ok(())
        })?;
        for n in not_counter {
            ev.info(&format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"));
        }
        return Ok(Value::Vector(out));
    }
    let m: Vec<RangeSeries> = ev.eval_matrix(&args[mi], ts)?;
    let mut out = Vec::with_capacity(m.len());
    for s in m {
        if s.points.is_empty() {
            continue;
        }
        if let Some(v) = rangefns::eval(name, &s.points, &ra)? {
            out.push(Sample { labels: s.labels, t: ts, v, drop_name: s.drop_name || !keep_name });
        }
    }
    Ok(Value::Vector(out))
}

fn label_replace(ev: &mut Evaluator<'_>, args: &[Box<Expr>], ts: i64) -> Result<Value> {
    let dst = string_arg(&args[1])?;
    let repl = string_arg(&args[2])?;
    let src = string_arg(&args[3])?;
    let re_s = string_arg(&args[4])?;
    let re = regex::Regex::new(&format!("(?s)^(?:{re_s})$"))
        .map_err(|_| Error::Exec(format!("invalid regular expression in label_replace(): {re_s}")))?;
    if dst.is_empty() || crate::strlit::has_invalid_utf8(&dst) {
        return Err(Error::Exec(format!("invalid destination label name in label_replace(): {dst}")));
    }
    let v = ev.eval_vector(&args[0], ts)?;
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let sv = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&sv) {
            let mut res = String::new();
            caps.expand(&go_template(&repl), &mut res);
            s.labels = s.labels.with(&dst, &res);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
        out.push(s);
    }
    check_unique_after_drop(&out)?;
    Ok(Value::Vector(out))
}

/// Go's `$name`/`${name}` expansion differs from the regex crate's only in `$1x` (Go reads the
/// longest name `1x`); the crate does the same, so the template passes through unchanged.
fn go_template(s: &str) -> String {
    s.to_string()
}

fn label_join(ev: &mut Evaluator<'_>, args: &[Box<Expr>], ts: i64) -> Result<Value> {
    let dst = string_arg(&args[1])?;
    let sep = string_arg(&args[2])?;
    let srcs: Vec<String> = args[3..].iter().map(|a| string_arg(a)).collect::<Result<_>>()?;
    if dst.is_empty() || crate::strlit::has_invalid_utf8(&dst) {
        return Err(Error::Exec(format!("invalid destination label name in label_join(): {dst}")));
    }
    if let Some(bad) = srcs.iter().find(|n| crate::strlit::has_invalid_utf8(n)) {
        return Err(Error::Exec(format!("invalid source label name in label_join(): {bad}")));
    }
    let v = ev.eval_vector(&args[0], ts)?;
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
        let val = joined.join(&sep);
        s.labels = s.labels.with(&dst, &val);
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
        out.push(s);
    }
    check_unique_after_drop(&out)?;
    Ok(Value::Vector(out))
}

fn check_unique_after_drop(v: &[Sample]) -> Result<()> {
    check_unique(v)
}
