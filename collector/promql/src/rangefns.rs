//! Functions over range vectors: `rate`, `increase`, `delta`, `*_over_time`, `deriv`, ….

use crate::aggregate::{kahan_inc, quantile};
use crate::value::{Error, Result};

/// Parameters a range function may take besides its matrix.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RangeArgs {
    /// Evaluation reference time (after offset/@), ms.
    pub rt: i64,
    /// Range length, ms.
    pub range: i64,
    /// The step's evaluation time, ms.
    pub ts: i64,
    /// Scalar parameters in order (e.g. the quantile, or smoothing and trend factors).
    pub p0: f64,
    /// Second scalar parameter.
    pub p1: f64,
}

/// Whether `name` is a function taking a range vector, and which argument it is.
pub(crate) fn matrix_arg_index(name: &str) -> Option<usize> {
    match name {
        "quantile_over_time" => Some(1),
        "rate"
        | "irate"
        | "increase"
        | "delta"
        | "idelta"
        | "deriv"
        | "predict_linear"
        | "double_exponential_smoothing"
        | "holt_winters"
        | "resets"
        | "changes"
        | "avg_over_time"
        | "min_over_time"
        | "max_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "last_over_time"
        | "first_over_time"
        | "present_over_time"
        | "mad_over_time"
        | "ts_of_min_over_time"
        | "ts_of_max_over_time"
        | "ts_of_last_over_time"
        | "ts_of_first_over_time" => Some(0),
        _ => None,
    }
}

/// Evaluates range function `name` on one series' points (never empty); `None` = no output.
pub(crate) fn eval(name: &str, pts: &[(i64, f64)], a: &RangeArgs) -> Result<Option<f64>> {
    let vals = || pts.iter().map(|p| p.1);
    Ok(match name {
        "rate" => extrapolated_rate(pts, a, true, true),
        "increase" => extrapolated_rate(pts, a, true, false),
        "delta" => extrapolated_rate(pts, a, false, false),
        "irate" => instant_value(pts, true),
        "idelta" => instant_value(pts, false),
        "deriv" => (pts.len() >= 2).then(|| linear_regression(pts, pts[0].0).0),
        "predict_linear" => (pts.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(pts, a.rt_eval());
            slope * a.p0 + intercept
        }),
        "double_exponential_smoothing" | "holt_winters" => {
            let (sf, tf) = (a.p0, a.p1);
            if sf <= 0.0 || sf >= 1.0 {
                return Err(Error::Exec(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {}", go_f(sf))));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(Error::Exec(format!("invalid trend factor. Expected: 0 < tf < 1, got: {}", go_f(tf))));
            }
            if pts.len() < 2 {
                None
            } else {
                let (mut s0, mut s1) = (0.0, pts[0].1);
                let mut b = pts[1].1 - pts[0].1;
                for (i, p) in pts.iter().enumerate().skip(1) {
                    let x = sf * p.1;
                    if i > 1 {
                        b = tf * (s1 - s0) + (1.0 - tf) * b;
                    }
                    let y = (1.0 - sf) * (s1 + b);
                    s0 = s1;
                    s1 = x + y;
                }
                Some(s1)
            }
        }
        "resets" => Some(pts.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64),
        "changes" => {
            Some(pts.windows(2).filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan())).count() as f64)
        }
        "avg_over_time" => Some(avg(pts)),
        "min_over_time" => Some(compare(pts, |cur, m| cur < m || m.is_nan()).1),
        "max_over_time" => Some(compare(pts, |cur, m| cur > m || m.is_nan()).1),
        "ts_of_min_over_time" => Some(compare(pts, |cur, m| cur < m || m.is_nan()).0 as f64 / 1000.0),
        "ts_of_max_over_time" => Some(compare(pts, |cur, m| cur > m || m.is_nan()).0 as f64 / 1000.0),
        "sum_over_time" => {
            let (mut s, mut c) = (0.0, 0.0);
            for v in vals() {
                (s, c) = kahan_inc(v, s, c);
            }
            Some(if s.is_infinite() { s } else { s + c })
        }
        "count_over_time" => Some(pts.len() as f64),
        "stddev_over_time" => Some(variance(pts).sqrt()),
        "stdvar_over_time" => Some(variance(pts)),
        "last_over_time" => Some(pts[pts.len() - 1].1),
        "first_over_time" => Some(pts[0].1),
        "ts_of_last_over_time" => Some(pts[pts.len() - 1].0 as f64 / 1000.0),
        "ts_of_first_over_time" => Some(pts[0].0 as f64 / 1000.0),
        "present_over_time" => Some(1.0),
        "quantile_over_time" => {
            let mut v: Vec<f64> = vals().collect();
            Some(quantile(a.p0, &mut v))
        }
        "mad_over_time" => {
            let mut v: Vec<f64> = vals().collect();
            if v.iter().any(|x| x.is_nan()) {
                Some(f64::NAN)
            } else {
                let median = quantile(0.5, &mut v);
                for x in &mut v {
                    *x = (*x - median).abs();
                }
                Some(quantile(0.5, &mut v))
            }
        }
        other => return Err(Error::Exec(format!("unknown range function {other:?}"))),
    })
}

impl RangeArgs {
    fn rt_eval(&self) -> i64 {
        self.ts
    }
}

/// Go's `%f` formatting (6 decimals).
fn go_f(v: f64) -> String {
    format!("{v:.6}")
}

fn extrapolated_rate(pts: &[(i64, f64)], a: &RangeArgs, is_counter: bool, is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let range_start = a.rt - a.range;
    let range_end = a.rt;
    let n1 = pts.len() - 1;
    let (first_t, first_v) = pts[0];
    let (last_t, last_v) = pts[n1];
    let mut result = last_v - first_v;
    if is_counter {
        for w in pts.windows(2) {
            if w[1].1 < w[0].1 {
                result += w[0].1;
            }
        }
    }
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / n1 as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first_v >= 0.0 {
            to_zero = sampled * (first_v / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = if sampled == 0.0 { 1.0 } else { (sampled + to_start + to_end) / sampled };
    if is_rate {
        factor /= a.range as f64 / 1000.0;
    }
    Some(result * factor)
}

fn instant_value(pts: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (t0, v0) = pts[pts.len() - 2];
    let (t1, v1) = pts[pts.len() - 1];
    let interval = t1 - t0;
    if interval == 0 {
        return None;
    }
    let mut r = v1;
    if !is_rate || v1.partial_cmp(&v0) != Some(std::cmp::Ordering::Less) {
        r = v1 - v0;
    }
    if is_rate {
        r /= interval as f64 / 1000.0;
    }
    Some(r)
}

/// Least-squares slope and intercept (at `intercept_t`), with Kahan sums.
pub(crate) fn linear_regression(pts: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in pts.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn avg(pts: &[(i64, f64)]) -> f64 {
    let (mut sum, mut count) = (pts[0].1, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in pts.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.1, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.1 / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

fn compare(pts: &[(i64, f64)], better: impl Fn(f64, f64) -> bool) -> (i64, f64) {
    let (mut t, mut m) = pts[0];
    for &(pt, v) in pts {
        if better(v, m) {
            m = v;
            t = pt;
        }
    }
    (t, m)
}

fn variance(pts: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in pts {
        count += 1.0;
        let delta = v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}
