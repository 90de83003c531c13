//! Binary operators: arithmetic, comparison (with `bool`), set operators, vector matching.

use std::collections::HashMap;

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::engine::Evaluator;
use crate::labels::{Labels, METRIC_NAME};
use crate::value::{Error, Result, Sample, Value};

/// The operators, resolved once from the parser's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            other => return Err(Error::Exec(format!("unsupported binary operator {other:?}"))),
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    fn changes_schema(self) -> bool {
        matches!(self, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Mod | Op::Atan2)
    }
}

/// Applies `op` to two floats: (value, keep).
fn apply(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (l, true),
    }
}

fn scalar_op(op: Op, l: f64, r: f64) -> f64 {
    let (v, keep) = apply(op, l, r);
    if op.is_comparison() { f64::from(u8::from(keep)) } else { v }
}

/// Evaluates a binary expression at `ts`.
pub(crate) fn eval(ev: &mut Evaluator<'_>, b: &BinaryExpr, ts: i64) -> Result<Value> {
    let op = Op::parse(&b.op.to_string())?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, ts)?;
    let rhs = ev.eval(&b.rhs, ts)?;
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => Ok(Value::Scalar(scalar_op(op, l, r))),
        (Value::Vector(v), Value::Scalar(s)) => Ok(Value::Vector(vector_scalar(op, v, s, false, return_bool))),
        (Value::Scalar(s), Value::Vector(v)) => Ok(Value::Vector(vector_scalar(op, v, s, true, return_bool))),
        (Value::Vector(l), Value::Vector(r)) => vector_vector(op, b, l, r, return_bool).map(Value::Vector),
        (l, r) => Err(Error::Exec(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn vector_scalar(op: Op, v: Vec<Sample>, s: f64, swap: bool, return_bool: bool) -> Vec<Sample> {
    let mut out = Vec::with_capacity(v.len());
    for mut x in v {
        let (l, r) = if swap { (s, x.v) } else { (x.v, s) };
        let (mut val, mut keep) = apply(op, l, r);
        if op.is_comparison() && swap {
            val = r;
        }
        if return_bool {
            val = f64::from(u8::from(keep));
            keep = true;
        }
        if keep {
            x.v = val;
            if op.changes_schema() || return_bool {
                x.drop_name = true;
            }
            out.push(x);
        }
    }
    out
}

/// Matching settings of a vector/vector operation.
struct Matching<'a> {
    on: bool,
    names: Vec<&'a str>,
    card: &'a VectorMatchCardinality,
    include: Vec<&'a str>,
    fill_lhs: Option<f64>,
    fill_rhs: Option<f64>,
}

impl Matching<'_> {
    fn signature(&self, ls: &Labels) -> Labels {
        if self.on {
            ls.keep(&self.names)
        } else {
            let mut drop = self.names.clone();
            drop.push(METRIC_NAME);
            ls.without(&drop)
        }
    }
}

fn matching(b: &BinaryExpr) -> Matching<'_> {
    static ONE_TO_ONE: VectorMatchCardinality = VectorMatchCardinality::OneToOne;
    let Some(m) = b.modifier.as_ref() else {
        return Matching {
            on: false,
            names: Vec::new(),
            card: &ONE_TO_ONE,
            include: Vec::new(),
            fill_lhs: None,
            fill_rhs: None,
        };
    };
    let (on, names) = match &m.matching {
        Some(LabelModifier::Include(l)) => (true, l.labels.iter().map(String::as_str).collect()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.iter().map(String::as_str).collect()),
        None => (false, Vec::new()),
    };
    let include = m.card.labels().map(|l| l.labels.iter().map(String::as_str).collect()).unwrap_or_default();
    Matching { on, names, card: &m.card, include, fill_lhs: m.fill_values.lhs, fill_rhs: m.fill_values.rhs }
}

fn vector_vector(op: Op, b: &BinaryExpr, lhs: Vec<Sample>, rhs: Vec<Sample>, return_bool: bool) -> Result<Vec<Sample>> {
    let m = matching(b);
    match op {
        Op::And | Op::Or | Op::Unless => return Ok(set_op(op, &m, lhs, rhs)),
        _ => {}
    }
    if (lhs.is_empty() && rhs.is_empty())
        || ((lhs.is_empty() || rhs.is_empty()) && m.fill_lhs.is_none() && m.fill_rhs.is_none())
    {
        return Ok(Vec::new());
    }
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    let (lhs, rhs) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    // As upstream: the fill values keep their sides even when one-to-many swaps the operands.
    let (fill_l, fill_r) = (m.fill_lhs, m.fill_rhs);

    // The "one" side, by signature.
    let mut right: HashMap<Labels, usize> = HashMap::with_capacity(rhs.len());
    for (i, rs) in rhs.iter().enumerate() {
        let sig = m.signature(&rs.labels);
        if let Some(&j) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            let (mut d1, mut d2) = (rs.labels.to_string(), rhs[j].labels.to_string());
            if d1 > d2 {
                std::mem::swap(&mut d1, &mut d2);
            }
            return Err(Error::Exec(format!(
                "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{d1}, {d2}];many-to-many matching not allowed: matching labels must be unique on one side"
            )));
        }
        right.insert(sig, i);
    }
    let mut st = MatchedState::default();
    let mut out = Vec::new();
    let do_op = |ls: &Sample, rs: &Sample, sig: Labels, st: &mut MatchedState, out: &mut Vec<Sample>| -> Result<()> {
        let (fl, fr) = if one_to_many { (rs.v, ls.v) } else { (ls.v, rs.v) };
        let (mut val, keep) = apply(op, fl, fr);
        if return_bool {
            val = f64::from(u8::from(keep));
        }
        let metric = result_metric(&ls.labels, &rs.labels, op, &m, one_to_one);
        if one_to_one {
            if !st.one.insert(sig) {
                return Err(Error::Exec(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                        .into(),
                ));
            }
        } else if !st.many.entry(sig).or_default().insert(metric.clone()) {
            return Err(Error::Exec("multiple matches for labels: grouping labels must ensure unique matches".into()));
        }
        if keep || return_bool {
            out.push(Sample { labels: metric, t: ls.t, v: val, drop_name: return_bool });
        }
        Ok(())
    };
    for ls in &lhs {
        let sig = m.signature(&ls.labels);
        if let Some(&j) = right.get(&sig) {
            do_op(ls, &rhs[j], sig, &mut st, &mut out)?;
        } else if let Some(f) = fill_r {
            let rs = Sample { labels: fill_labels(&ls.labels, &m), t: ls.t, v: f, drop_name: false };
            do_op(ls, &rs, sig, &mut st, &mut out)?;
        }
    }
    if let Some(f) = fill_l {
        for rs in &rhs {
            let sig = m.signature(&rs.labels);
            let done =
                if one_to_one { st.one.contains(&sig) } else { st.many.get(&sig).is_some_and(|s| !s.is_empty()) };
            if done {
                continue;
            }
            let ls = Sample { labels: fill_labels(&rs.labels, &m), t: rs.t, v: f, drop_name: false };
            do_op(&ls, rs, sig, &mut st, &mut out)?;
        }
    }
    Ok(out)
}

#[derive(Default)]
struct MatchedState {
    one: std::collections::HashSet<Labels>,
    many: HashMap<Labels, std::collections::HashSet<Labels>>,
}

fn fill_labels(ls: &Labels, m: &Matching<'_>) -> Labels {
    if m.on {
        ls.keep(&m.names)
    } else {
        let mut drop = m.names.clone();
        drop.push(METRIC_NAME);
        ls.without(&drop)
    }
}

fn result_metric(lhs: &Labels, rhs: &Labels, op: Op, m: &Matching<'_>, one_to_one: bool) -> Labels {
    let mut ls = lhs.clone();
    if op.changes_schema() {
        ls = ls.without(&[METRIC_NAME, "__type__", "__unit__"]);
    }
    if one_to_one {
        ls = if m.on { ls.keep(&m.names) } else { ls.without(&m.names) };
    }
    for name in &m.include {
        ls = ls.with(name, rhs.get(name).unwrap_or(""));
    }
    ls
}

fn set_op(op: Op, m: &Matching<'_>, lhs: Vec<Sample>, rhs: Vec<Sample>) -> Vec<Sample> {
    match op {
        Op::And => {
            if lhs.is_empty() || rhs.is_empty() {
                return Vec::new();
            }
            let sigs: std::collections::HashSet<Labels> = rhs.iter().map(|s| m.signature(&s.labels)).collect();
            lhs.into_iter().filter(|s| sigs.contains(&m.signature(&s.labels))).collect()
        }
        Op::Or => {
            if lhs.is_empty() {
                return rhs;
            }
            if rhs.is_empty() {
                return lhs;
            }
            let sigs: std::collections::HashSet<Labels> = lhs.iter().map(|s| m.signature(&s.labels)).collect();
            let mut out = lhs;
            out.extend(rhs.into_iter().filter(|s| !sigs.contains(&m.signature(&s.labels))));
            out
        }
        _ => {
            if lhs.is_empty() || rhs.is_empty() {
                return lhs;
            }
            let sigs: std::collections::HashSet<Labels> = rhs.iter().map(|s| m.signature(&s.labels)).collect();
            lhs.into_iter().filter(|s| !sigs.contains(&m.signature(&s.labels))).collect()
        }
    }
}
