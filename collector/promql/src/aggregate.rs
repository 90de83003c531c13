//! Aggregation operators (`sum`, `avg`, …, `topk`, `quantile`, `count_values`, `limitk`, `limit_ratio`).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use promql_parser::parser::{AggregateExpr, LabelModifier};

use crate::engine::Evaluator;
use crate::idmap::IdMap;
use crate::labels::{Labels, METRIC_NAME};
use crate::value::{Error, Result, Sample, Value};

/// Kahan–Neumaier increment, as Prometheus does it.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The `quantile` of values (sorted here), with linear interpolation.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    // Go sorts NaN first ("less" treats NaN as smallest).
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Formats a float the way Go's `strconv.FormatFloat(f, 'f', -1, 64)` does.
pub(crate) fn format_float_plain(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

#[derive(Default)]
struct Group {
    labels: Labels,
    value: f64,
    kahan: f64,
    mean: f64,
    count: f64,
    incremental: bool,
    drop_name: bool,
    values: Vec<f64>,
    members: Vec<Sample>,
}

fn grouping_key(ls: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Labels::default(),
        Some(LabelModifier::Include(l)) => {
            let names: Vec<&str> = l.labels.iter().map(String::as_str).collect();
            ls.keep(&names)
        }
        Some(LabelModifier::Exclude(l)) => {
            let mut names: Vec<&str> = l.labels.iter().map(String::as_str).collect();
            names.push(METRIC_NAME);
            ls.without(&names)
        }
    }
}

/// A deterministic offset in `[0, 1)` for `limit_ratio`.
fn ratio_offset(ls: &Labels) -> f64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ls.hash(&mut h);
    h.finish() as f64 / u64::MAX as f64
}

/// Evaluates an aggregation at `ts`.
pub(crate) fn eval(ev: &mut Evaluator<'_>, a: &AggregateExpr, ts: i64) -> Result<Value> {
    let op = a.op.to_string();
    let op = op.as_str();
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, ts)?),
        None => None,
    };
    let input = ev.eval_vector(&a.expr, ts)?;
    let modifier = a.modifier.as_ref();
    let fparam = match &param {
        Some(Value::Scalar(v)) => *v,
        _ => 0.0,
    };
    if op == "quantile" && (fparam.is_nan() || !(0.0..=1.0).contains(&fparam)) {
        ev.warn(&format!("quantile value should be between 0 and 1, got {}", format_float_plain(fparam)));
    }
    if op == "count_values" {
        let Some(Value::String(label)) = param else {
            return Err(Error::Exec("count_values requires a string parameter".into()));
        };
        if !valid_label_name(&label) {
            return Err(Error::Exec(format!("invalid label name {label:?}")));
        }
        let mut groups: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<Sample> = Vec::new();
        for s in &input {
            let metric = s.labels.with(&label, &format_float_plain(s.v));
            // The value label always survives the grouping.
            let key = match modifier {
                Some(LabelModifier::Exclude(l)) => {
                    let mut names: Vec<&str> = l.labels.iter().map(String::as_str).filter(|n| *n != label).collect();
                    names.push(METRIC_NAME);
                    metric.without(&names)
                }
                Some(LabelModifier::Include(l)) => {
                    let mut names: Vec<&str> = l.labels.iter().map(String::as_str).collect();
                    names.push(&label);
                    metric.keep(&names)
                }
                None => metric.keep(&[&label]),
            };
            if let Some(&i) = groups.get(&key) {
                out[i].v += 1.0;
            } else {
                groups.insert(key.clone(), out.len());
                out.push(Sample { labels: key, t: ts, v: 1.0, drop_name: false });
            }
        }
        return Ok(Value::Vector(out));
    }
    let k_ops = matches!(op, "topk" | "bottomk" | "limitk");
    if k_ops {
        if fparam.is_nan() {
            return Err(Error::Exec("Parameter value is NaN".into()));
        }
        if input.is_empty() || fparam < 1.0 {
            return Ok(Value::Vector(Vec::new()));
        }
        if fparam >= 9.223_372_036_854_776e18 {
            return Err(Error::Exec(format!("Scalar value {} overflows int64", format_float_plain(fparam))));
        }
    }
    if op == "limit_ratio" {
        if fparam.is_nan() {
            return Err(Error::Exec("Ratio value is NaN".into()));
        }
        if fparam == 0.0 || input.is_empty() {
            return Ok(Value::Vector(Vec::new()));
        }
    }
    let ratio = fparam.clamp(-1.0, 1.0);
    if op == "limit_ratio" && !(-1.0..=1.0).contains(&fparam) {
        ev.warn(&format!(
            "ratio value should be between -1 and 1, got {}, capping to {}",
            format_float_plain(fparam),
            format_float_plain(ratio)
        ));
    }

    let node = std::ptr::from_ref(a) as usize;
    let assignment = group_assignment(ev, node, &input, modifier);
    let (assign, keys) = (&assignment.assign, &assignment.keys);
    let mut groups: Vec<Group> = Vec::with_capacity(keys.len());
    for (s, &gi) in input.into_iter().zip(assign.iter()) {
        let gi = if gi < groups.len() {
            gi
        } else {
            // Groups are numbered in order of first appearance.
            let key = keys[gi].clone();
            let f = s.v;
            let value = match op {
                "group" => 1.0,
                "stddev" | "stdvar" => {
                    if f.is_nan() || f.is_infinite() {
                        f64::NAN
                    } else {
                        0.0
                    }
                }
                _ => f,
            };
            let mut g = Group { labels: key, value, mean: f, count: 1.0, drop_name: s.drop_name, ..Group::default() };
            if matches!(op, "topk" | "bottomk" | "limitk" | "limit_ratio") {
                groups.push(g);
                groups.len() - 1
            } else {
                if op == "quantile" {
                    g.values.push(f);
                }
                groups.push(g);
                continue;
            }
        };
        let g = &mut groups[gi];
        g.drop_name |= s.drop_name;
        let f = s.v;
        match op {
            "sum" => {
                (g.value, g.kahan) = kahan_inc(f, g.value, g.kahan);
                g.count += 1.0;
            }
            "avg" => {
                g.count += 1.0;
                if !g.incremental {
                    let (nv, nc) = kahan_inc(f, g.value, g.kahan);
                    if !nv.is_infinite() {
                        g.value = nv;
                        g.kahan = nc;
                        continue;
                    }
                    g.incremental = true;
                    g.mean = g.value / (g.count - 1.0);
                    g.kahan /= g.count - 1.0;
                }
                let q = (g.count - 1.0) / g.count;
                (g.mean, g.kahan) = kahan_inc(f / g.count, q * g.mean, q * g.kahan);
            }
            "count" | "group" => g.count += 1.0,
            "max" => {
                if g.value < f || g.value.is_nan() {
                    g.value = f;
                }
            }
            "min" => {
                if g.value > f || g.value.is_nan() {
                    g.value = f;
                }
            }
            "stddev" | "stdvar" => {
                g.count += 1.0;
                let delta = f - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (f - g.mean);
            }
            "quantile" => g.values.push(f),
            "topk" | "bottomk" | "limitk" | "limit_ratio" => {
                if op == "limit_ratio" {
                    let off = ratio_offset(&s.labels);
                    let keep = if ratio >= 0.0 { off < ratio } else { off >= 1.0 + ratio };
                    if keep {
                        g.members.push(s);
                    }
                } else {
                    g.members.push(s);
                }
            }
            other => return Err(Error::Exec(format!("unsupported aggregation {other:?}"))),
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let v = match op {
            "sum" => g.value + g.kahan,
            "avg" => {
                if g.incremental {
                    g.mean + g.kahan
                } else {
                    g.value / g.count + g.kahan / g.count
                }
            }
            "count" => g.count,
            "group" => 1.0,
            "stdvar" => g.value / g.count,
            "stddev" => (g.value / g.count).sqrt(),
            "quantile" => quantile(fparam, &mut g.values),
            "max" | "min" => g.value,
            _ => {
                let k = (fparam as i64).max(0) as usize;
                let mut members = g.members;
                match op {
                    "topk" => members = best_k(members, k, cmp_desc_nan_last),
                    "bottomk" => members = best_k(members, k, cmp_asc_nan_last),
                    "limitk" => members.truncate(k),
                    _ => {}
                }
                out.extend(members);
                continue;
            }
        };
        out.push(Sample { labels: g.labels, t: ts, v, drop_name: g.drop_name });
    }
    Ok(Value::Vector(out))
}

/// Which group each input sample falls in (groups numbered by first appearance), and the
/// groups' keys.
pub(crate) struct Assignment {
    /// Input label sets, held so that their ids stay unique while cached.
    inputs: Vec<Labels>,
    /// Group index per input sample.
    assign: Vec<usize>,
    /// Key per group.
    keys: Vec<Labels>,
}

/// The grouping of `input` at aggregation `node`: reused from the previous step when the input
/// has the same label sets in the same order (range queries over a stable set of series), so
/// the common case costs one pass of pointer comparisons instead of a hash lookup per sample.
fn group_assignment(
    ev: &mut Evaluator<'_>,
    node: usize,
    input: &[Sample],
    modifier: Option<&LabelModifier>,
) -> std::sync::Arc<Assignment> {
    if let Some(c) = ev.assignments.get(&node)
        && c.inputs.len() == input.len()
        && c.inputs.iter().zip(input).all(|(l, s)| l.id() == s.labels.id())
    {
        return c.clone();
    }
    let mut index: IdMap<usize, usize> = IdMap::default();
    let mut keys: Vec<Labels> = Vec::new();
    let mut assign = Vec::with_capacity(input.len());
    for s in input {
        let key = ev.group_key(node, &s.labels, |ls| grouping_key(ls, modifier));
        let gi = *index.entry(key.id()).or_insert_with(|| {
            keys.push(key.clone());
            keys.len() - 1
        });
        assign.push(gi);
    }
    let a = std::sync::Arc::new(Assignment { inputs: input.iter().map(|s| s.labels.clone()).collect(), assign, keys });
    ev.assignments.insert(node, a.clone());
    a
}

/// The `k` best samples under `cmp` (earlier input wins ties), sorted best first; linear
/// selection instead of sorting the whole group.
fn best_k(mut members: Vec<Sample>, k: usize, cmp: fn(f64, f64) -> std::cmp::Ordering) -> Vec<Sample> {
    if k < members.len() {
        let mut vals: Vec<f64> = members.iter().map(|s| s.v).collect();
        let (_, kth, _) = vals.select_nth_unstable_by(k - 1, |a, b| cmp(*a, *b));
        let kth = *kth;
        let better = members.iter().filter(|s| cmp(s.v, kth) == std::cmp::Ordering::Less).count();
        let mut ties = k - better;
        members.retain(|s| match cmp(s.v, kth) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal if ties > 0 => {
                ties -= 1;
                true
            }
            _ => false,
        });
    }
    members.sort_by(|a, b| cmp(a.v, b.v));
    members
}

fn cmp_desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn cmp_asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Whether `s` is a valid label name (UTF-8, non-empty; Prometheus 3 allows any UTF-8).
pub(crate) fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}
