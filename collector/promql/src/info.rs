//! The experimental `info(v [, {data selector}])` function: adds data labels of info series
//! (default `target_info`) that share `instance` and `job` with each sample of `v`.

use std::collections::{BTreeMap, HashMap};

use promql_parser::parser::{AtModifier, Call, Expr, SubqueryExpr};

use crate::engine::{Evaluator, offset_ms, selector_matchers};
use crate::labels::{Labels, METRIC_NAME};
use crate::storage::{MatchOp, Matcher, is_stale};
use crate::value::{Error, Result, Sample, Value};

const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// (info metric name, instance, job)
type InfoSig = (String, Option<String>, Option<String>);

/// The `@` time and total offset governing the first selector of `e`: its own, else those of
/// the enclosing subqueries (innermost first), as upstream picks the info series' time.
fn selector_time<'a>(e: &'a Expr, path: &mut Vec<&'a SubqueryExpr>) -> Option<(Option<&'a AtModifier>, i64)> {
    let inner = |path: &[&'a SubqueryExpr], at: Option<&'a AtModifier>, off: i64| {
        let mut at = at;
        let mut off = off;
        for sq in path.iter().rev() {
            if at.is_some() {
                break;
            }
            off += offset_ms(sq.offset.as_ref());
            at = sq.at.as_ref();
        }
        Some((at, off))
    };
    match e {
        Expr::VectorSelector(vs) => inner(path, vs.at.as_ref(), offset_ms(vs.offset.as_ref())),
        Expr::MatrixSelector(ms) => inner(path, ms.vs.at.as_ref(), offset_ms(ms.vs.offset.as_ref())),
        Expr::Aggregate(a) => selector_time(&a.expr, path),
        Expr::Unary(u) => selector_time(&u.expr, path),
        Expr::Binary(b) => selector_time(&b.lhs, path).or_else(|| selector_time(&b.rhs, path)),
        Expr::Paren(p) => selector_time(&p.expr, path),
        Expr::Subquery(s) => {
            path.push(s);
            let r = selector_time(&s.expr, path);
            path.pop();
            r
        }
        Expr::Call(c) => c.args.args.iter().find_map(|a| selector_time(a, path)),
        _ => None,
    }
}

/// Name matchers in effect: as given if one is `=`/`=~`; otherwise `=~".+_info"` is added;
/// with none at all, `target_info`.
fn effective_name_matchers(given: &[Matcher]) -> Vec<Matcher> {
    if given.iter().any(|m| matches!(m.op, MatchOp::Equal(_) | MatchOp::Regex(_))) {
        return given.to_vec();
    }
    if given.is_empty() {
        return vec![Matcher::equal(METRIC_NAME, "target_info")];
    }
    let mut v = vec![Matcher::regex(METRIC_NAME, ".+_info", false).expect("static regex")];
    v.extend(given.iter().cloned());
    v
}

/// Evaluates `info(…)` at `ts`.
pub(crate) fn eval(ev: &mut Evaluator<'_>, c: &Call, ts: i64) -> Result<Value> {
    let args = &c.args.args;
    let base = ev.eval_vector(&args[0], ts)?;
    let data: Vec<Matcher> = match args.get(1).map(AsRef::as_ref) {
        Some(Expr::VectorSelector(vs)) => selector_matchers(vs).into_iter().next().unwrap_or_default(),
        Some(_) => return Err(Error::Exec("info: the second argument must be a label selector".into())),
        None => Vec::new(),
    };
    let (name_m, data_m): (Vec<Matcher>, Vec<Matcher>) = data.into_iter().partition(|m| m.name == METRIC_NAME);
    let names = effective_name_matchers(&name_m);
    let is_info = |ls: &Labels| names.iter().all(|m| m.matches(ls.name().unwrap_or("")));

    // The info series' evaluation time follows the first selector's `@` and offset.
    let (at, offset) = selector_time(&args[0], &mut Vec::new()).unwrap_or((None, 0));
    let rt = ev.ref_time(at, None, ts) - offset;
    let mut sel = names.clone();
    sel.extend(data_m.iter().cloned());
    let key = std::ptr::from_ref(c) as usize;
    let (lo, hi) = if at.is_some() { (rt, rt) } else { (ev.start - offset, ev.end - offset) };
    let series = ev.load_matchers(key, &sel, lo - ev.opts.lookback_ms, hi);

    // Latest info sample per (name, instance, job).
    let mut by_sig: HashMap<InfoSig, (&Labels, i64)> = HashMap::new();
    for s in series.iter() {
        let i = s.samples.partition_point(|p| p.0 <= rt);
        if i == 0 {
            continue;
        }
        let (t, v) = s.samples[i - 1];
        if t <= rt - ev.opts.lookback_ms || is_stale(v) {
            continue;
        }
        let sig = (
            s.labels.name().unwrap_or("").to_string(),
            s.labels.get(IDENTIFYING[0]).map(str::to_string),
            s.labels.get(IDENTIFYING[1]).map(str::to_string),
        );
        match by_sig.get(&sig) {
            Some((ex, et)) if *et == t => {
                return Err(Error::Exec(format!(
                    "found duplicate series for info metric: existing {ex} @ {et}, new {} @ {t}",
                    s.labels
                )));
            }
            Some((_, et)) if *et > t => {}
            _ => {
                by_sig.insert(sig, (&s.labels, t));
            }
        }
    }
    let mut info_names: Vec<&String> = by_sig.keys().map(|k| &k.0).collect();
    info_names.sort();
    info_names.dedup();

    let empty_ok = data_m.iter().all(|m| m.matches(""));
    let mut out = Vec::with_capacity(base.len());
    for s in base {
        if is_info(&s.labels) {
            out.push(s);
            continue;
        }
        let id = (s.labels.get(IDENTIFYING[0]).map(str::to_string), s.labels.get(IDENTIFYING[1]).map(str::to_string));
        let mut add: BTreeMap<String, String> = BTreeMap::new();
        let mut seen = false;
        for n in info_names.iter().filter(|_| id != (None, None)) {
            let Some((ils, _)) = by_sig.get(&((*n).clone(), id.0.clone(), id.1.clone())) else { continue };
            seen = true;
            for (ln, lv) in ils.iter() {
                if ln == METRIC_NAME || (!data_m.is_empty() && !data_m.iter().any(|m| m.name == ln)) {
                    continue;
                }
                if add.get(ln).is_some_and(|v| v != lv) {
                    return Err(Error::Exec(format!("conflicting label: {ln}")));
                }
                if s.labels.get(ln).is_some() {
                    continue;
                }
                add.insert(ln.to_string(), lv.to_string());
            }
        }
        if !seen && !empty_ok {
            continue;
        }
        let mut ls = s.labels.to_vec();
        ls.extend(add);
        out.push(Sample { labels: Labels::from_vec(ls), ..s });
    }
    Ok(Value::Vector(out))
}
