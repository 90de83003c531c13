//! Classic (`le`-bucket) histograms: `histogram_quantile` and `histogram_fraction`.

use std::collections::HashMap;

use crate::engine::Evaluator;
use crate::labels::Labels;
use crate::value::{Sample, Value};

/// One cumulative bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    upper: f64,
    count: f64,
}

/// Parses an `le` value the way Go's `strconv.ParseFloat` does for the forms exposition uses.
fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse::<f64>().ok(),
    }
}

/// Groups `v` by labels without `le` and applies `f` to each group's buckets.
pub(crate) fn classic(ev: &mut Evaluator<'_>, v: Vec<Sample>, f: impl Fn(&mut Vec<Bucket>) -> (f64, bool)) -> Value {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    for s in v {
        let le = s.labels.get("le").unwrap_or("");
        let Some(upper) = parse_le(le) else {
            ev.warn(&format!(
                "bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {:?}",
                s.labels.name().unwrap_or("")
            ));
            continue;
        };
        let key = s.labels.without(&["le"]);
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(Bucket { upper, count: s.v });
    }
    let mut out = Vec::with_capacity(groups.len());
    for (labels, mut b) in groups {
        let (v, forced) = f(&mut b);
        if forced {
            ev.info(&format!(
                "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                labels.name().unwrap_or("")
            ));
        }
        out.push(Sample { labels, t: 0, v, drop_name: true });
    }
    Value::Vector(out)
}

fn sort_and_coalesce(b: &mut Vec<Bucket>) {
    b.sort_by(|x, y| x.upper.partial_cmp(&y.upper).unwrap_or(std::cmp::Ordering::Equal));
    let mut out: Vec<Bucket> = Vec::with_capacity(b.len());
    for x in b.drain(..) {
        match out.last_mut() {
            Some(last) if last.upper == x.upper => last.count += x.count,
            _ => out.push(x),
        }
    }
    *b = out;
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    let abs = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs < f64::MIN_POSITIVE {
        return diff < eps * f64::MIN_POSITIVE;
    }
    diff / abs.min(f64::MAX) < eps
}

/// Classic-bucket quantile; the flag says monotonicity had to be forced.
#[allow(clippy::many_single_char_names)]
pub(crate) fn bucket_quantile(q: f64, b: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    b.sort_by(|x, y| x.upper.partial_cmp(&y.upper).unwrap_or(std::cmp::Ordering::Equal));
    if b.last().is_none_or(|l| l.upper != f64::INFINITY) {
        return (f64::NAN, false);
    }
    sort_and_coalesce(b);
    let mut forced = false;
    let mut prev = b[0].count;
    for x in b.iter_mut().skip(1) {
        let curr = x.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            x.count = prev;
            continue;
        }
        if curr < prev {
            x.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    if b.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = b[b.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = b.len() - 1;
    let i = b[..n].partition_point(|x| x.count < rank);
    let v = if i == n {
        b[n - 1].upper
    } else if i == 0 && b[0].upper <= 0.0 {
        b[0].upper
    } else {
        let mut start = 0.0;
        let end = b[i].upper;
        let mut count = b[i].count;
        if i > 0 {
            start = b[i - 1].upper;
            count -= b[i - 1].count;
            rank -= b[i - 1].count;
        }
        start + (end - start) * (rank / count)
    };
    (v, forced)
}

/// Classic-bucket fraction of observations between `lower` and `upper`.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, b: &mut Vec<Bucket>) -> (f64, bool) {
    b.sort_by(|x, y| x.upper.partial_cmp(&y.upper).unwrap_or(std::cmp::Ordering::Equal));
    if b.last().is_none_or(|l| l.upper != f64::INFINITY) {
        return (f64::NAN, false);
    }
    sort_and_coalesce(b);
    let count = b[b.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, false);
    }
    if lower >= upper {
        return (0.0, false);
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if b[0].upper <= 0.0 { f64::NEG_INFINITY } else { 0.0 };
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            lower_bound = b[i - 1].upper;
        }
        let upper_bound = x.upper;
        let interp = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                x.count
            } else {
                rank + (x.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interp(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interp(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = x.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    ((upper_rank - lower_rank) / count, false)
}
