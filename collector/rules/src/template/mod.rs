//! The Go `text/template` dialect Prometheus uses in alert labels and annotations, written
//! for Osprey (no maintained Rust crate implements Go templates with Prometheus's functions:
//! `gtmpl` is unmaintained since 2021 and lacks `humanize*`, `query`, and `else if`).

pub mod funcs;
mod gofmt;
mod parse;

use std::collections::BTreeMap;

pub use gofmt::{fmt_e, fmt_f, fmt_g};
use parse::{Arg, Node, Pipe};

/// A dynamic template value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's nil / missing value.
    Nil,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Float (`$value`, query results).
    Float(f64),
    /// String.
    Str(String),
    /// Map (labels, samples with `Labels` and `Value`).
    Map(BTreeMap<String, Value>),
    /// List (query results).
    List(Vec<Value>),
}

impl Value {
    /// Go truthiness: false, 0, nil and empty values are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }

    /// A string-to-string map as a value.
    pub fn labels(m: &BTreeMap<String, String>) -> Value {
        Value::Map(m.iter().map(|(k, v)| (k.clone(), Value::Str(v.clone()))).collect())
    }

    /// A query sample (`.Labels`, `.Value`).
    pub fn sample(labels: &BTreeMap<String, String>, v: f64) -> Value {
        let mut m = BTreeMap::new();
        m.insert("Labels".to_string(), Value::labels(labels));
        m.insert("Value".to_string(), Value::Float(v));
        Value::Map(m)
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Nil => f.write_str("<no value>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&fmt_g(*x, None, false)),
            Value::Str(s) => f.write_str(s),
            Value::Map(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// An instant-query result: (labels, value) per series.
pub type Samples = Vec<(BTreeMap<String, String>, f64)>;

/// Runs `query` from templates: the instant-query result as (labels, value) pairs.
pub trait TemplateQuery {
    /// Evaluates `expr` at the template's evaluation time.
    fn query(&self, expr: &str) -> Result<Samples, String>;
}

/// Everything a template can reach besides its data.
pub struct Env<'a> {
    /// The external URL (`externalURL`, `pathPrefix`).
    pub external_url: &'a str,
    /// The `query` function's engine, if any.
    pub query: Option<&'a dyn TemplateQuery>,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<Node>,
    /// The text as Go sees it: Prometheus prepends the `$labels`… definitions to alert
    /// templates, which shifts the columns of execution errors.
    text: String,
}

/// The definitions Prometheus prepends to alert templates (they count in error columns).
const RULE_DEFS: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Variables predeclared in alert templates (Prometheus prepends their definitions).
const RULE_VARS: &[&str] = &["labels", "externalLabels", "externalURL", "value"];

impl Template {
    /// Parses a template with no predeclared variables.
    pub fn parse(name: &str, text: &str) -> Result<Template, String> {
        Self::parse_with(name, text, &[])
    }

    /// Parses an alert label/annotation template (`$labels`, `$value`, … in scope).
    pub fn parse_rule_template(name: &str, text: &str) -> Result<Template, String> {
        Self::parse_with(name, text, RULE_VARS)
    }

    fn parse_with(name: &str, text: &str, vars: &[&str]) -> Result<Template, String> {
        let prefix = if vars.is_empty() { "" } else { RULE_DEFS };
        let full = format!("{prefix}{text}");
        parse::parse(&full, vars)
            .map(|nodes| Template { name: name.to_string(), nodes, text: full })
            .map_err(|(line, msg)| format!("template: {name}:{line}: {msg}"))
    }

    /// Executes with `dot` as data and the given variables.
    pub fn execute(&self, dot: &Value, vars: &[(&str, Value)], env: &Env<'_>) -> Result<String, String> {
        let mut ex = Exec { env, vars: vec![(String::new(), dot.clone())], out: String::new(), steps: 0 };
        ex.vars.extend(vars.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
        ex.list(&self.nodes, dot).map_err(|e| {
            let n = &self.name;
            match e.at {
                // Go's `ErrorContext`: line, and the byte column within that line.
                Some((pos, node)) => {
                    let before = &self.text[..pos.min(self.text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
                    format!("template: {n}:{line}:{col}: executing \"{n}\" at <{node}>: {}", e.msg)
                }
                None => format!("template: {n}: executing \"{n}\": {}", e.msg),
            }
        })?;
        Ok(ex.out)
    }
}

/// Inputs of an alert template.
pub struct AlertTemplateData<'a> {
    /// The alert's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// External labels of this server.
    pub external_labels: &'a BTreeMap<String, String>,
    /// External URL of this server.
    pub external_url: &'a str,
    /// The alert's value.
    pub value: f64,
}

/// Expands an alert label/annotation template as Prometheus does; errors become the visible
/// string `<error expanding template: …>` rather than a failure.
pub fn expand_alert_template(
    name: &str,
    text: &str,
    d: &AlertTemplateData<'_>,
    query: Option<&dyn TemplateQuery>,
) -> String {
    // Prometheus's `Expander.Expand` wraps parse and execution errors with these prefixes.
    let result = Template::parse_rule_template(name, text)
        .map_err(|e| format!("error parsing template {name}: {e}"))
        .and_then(|t| {
            let mut dot = BTreeMap::new();
            dot.insert("Labels".to_string(), Value::labels(d.labels));
            dot.insert("ExternalLabels".to_string(), Value::labels(d.external_labels));
            dot.insert("ExternalURL".to_string(), Value::Str(d.external_url.to_string()));
            dot.insert("Value".to_string(), Value::Float(d.value));
            let vars = [
                ("labels", Value::labels(d.labels)),
                ("externalLabels", Value::labels(d.external_labels)),
                ("externalURL", Value::Str(d.external_url.to_string())),
                ("value", Value::Float(d.value)),
            ];
            t.execute(&Value::Map(dot), &vars, &Env { external_url: d.external_url, query })
                .map_err(|e| format!("error executing template {name}: {e}"))
        });
    result.unwrap_or_else(|e| format!("<error expanding template: {e}>"))
}

/// Upper bound on executed nodes, so a template cannot loop forever on big query results.
const MAX_STEPS: u64 = 1_000_000;
/// Upper bound on output size.
const MAX_OUTPUT: usize = 1 << 20;

/// An execution error, with the node it happened at (byte offset, Go's rendering) when known.
struct ExecErr {
    at: Option<(usize, String)>,
    msg: String,
}

impl From<String> for ExecErr {
    fn from(msg: String) -> Self {
        Self { at: None, msg }
    }
}

impl From<&str> for ExecErr {
    fn from(msg: &str) -> Self {
        Self { at: None, msg: msg.to_string() }
    }
}

fn at_node(pos: usize, node: String) -> impl FnOnce(String) -> ExecErr {
    move |msg| ExecErr { at: Some((pos, node)), msg }
}

/// A command as Go's `CommandNode.String()` renders it (`humanize "one"`, `first`).
fn render_command(args: &[Arg]) -> String {
    args.iter()
        .map(|a| match a {
            Arg::Field(f, _) if f.is_empty() => ".".to_string(),
            Arg::Field(f, _) => chain("", f),
            Arg::Var(v, f, _) => chain(&format!("${v}"), f),
            Arg::Func(n, _) => n.clone(),
            Arg::Str(s) => format!("{s:?}"),
            Arg::Int(i) => i.to_string(),
            Arg::Float(x) => x.to_string(),
            Arg::Bool(b) => b.to_string(),
            Arg::Nil => "nil".into(),
            Arg::Sub(..) => "(…)".into(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn chain(head: &str, path: &[String]) -> String {
    path.iter().fold(head.to_string(), |acc, f| format!("{acc}.{f}"))
}

struct Exec<'a, 'b> {
    env: &'a Env<'b>,
    vars: Vec<(String, Value)>,
    out: String,
    steps: u64,
}

impl Exec<'_, '_> {
    fn list(&mut self, nodes: &[Node], dot: &Value) -> Result<(), ExecErr> {
        for n in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT {
                return Err("template too expensive (step or output limit)".into());
            }
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.vars.is_empty() {
                        self.out.push_str(&v.to_string());
                    }
                }
                Node::Cond { pipe, with, then, otherwise } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    if v.truthy() {
                        let d = if *with { v } else { dot.clone() };
                        self.list(then, &d)?;
                    } else {
                        self.vars.truncate(mark);
                        self.list(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range { pipe, then, otherwise } => {
                    let mark = self.vars.len();
                    let mut p = pipe.clone();
                    let names = std::mem::take(&mut p.vars);
                    let v = self.pipe(&p, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l.into_iter().enumerate().map(|(i, v)| (Value::Int(i as i64), v)).collect(),
                        Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
                        Value::Nil => Vec::new(),
                        Value::Int(n) => (0..n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        other => return Err(format!("range can't iterate over {other}").into()),
                    };
                    if items.is_empty() {
                        self.list(otherwise, dot)?;
                    }
                    for (k, elem) in items {
                        match names.len() {
                            1 => self.vars.push((names[0].clone(), elem.clone())),
                            2 => {
                                self.vars.push((names[0].clone(), k));
                                self.vars.push((names[1].clone(), elem.clone()));
                            }
                            _ => {}
                        }
                        self.list(then, &elem)?;
                        self.vars.truncate(mark);
                    }
                }
            }
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Value {
        if name.is_empty() {
            return self.vars[0].1.clone();
        }
        self.vars.iter().rev().find(|(k, _)| k == name).map_or(Value::Nil, |(_, v)| v.clone())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, ExecErr> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            last = Some(self.cmd(cmd, dot, last)?);
        }
        let v = last.unwrap_or(Value::Nil);
        if let Some(name) = p.vars.first() {
            if p.decl {
                self.vars.push((name.clone(), v.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(k, _)| k == name) {
                slot.1 = v.clone();
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, args: &[Arg], dot: &Value, piped: Option<Value>) -> Result<Value, ExecErr> {
        if let Arg::Func(name, at) = &args[0] {
            // `and` / `or` short-circuit as in Go 1.18+.
            if name == "and" || name == "or" {
                let mut last = Value::Nil;
                for a in &args[1..] {
                    last = self.arg(a, dot)?;
                    if last.truthy() == (name == "or") {
                        return Ok(last);
                    }
                }
                if let Some(p) = piped {
                    last = p;
                }
                return Ok(last);
            }
            let mut vals = Vec::with_capacity(args.len());
            for a in &args[1..] {
                vals.push(self.arg(a, dot)?);
            }
            vals.extend(piped);
            // Go reports a failed call at the whole command node.
            return funcs::call(name, vals, self.env)
                .map_err(|e| format!("error calling {name}: {e}"))
                .map_err(at_node(*at, render_command(args)));
        }
        if args.len() > 1 || piped.is_some() {
            return Err(format!("can't give argument to non-function {:?}", args[0]).into());
        }
        self.arg(&args[0], dot)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, ExecErr> {
        Ok(match a {
            Arg::Field(f, at) => fields(dot.clone(), f).map_err(at_node(*at, chain("", f)))?,
            Arg::Var(v, f, at) => fields(self.var(v), f).map_err(at_node(*at, chain(&format!("${v}"), f)))?,
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(x) => Value::Float(*x),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Nil,
            Arg::Func(name, at) => funcs::call(name, Vec::new(), self.env)
                .map_err(|e| format!("error calling {name}: {e}"))
                .map_err(at_node(*at, name.clone()))?,
            Arg::Sub(p, f) => {
                let v = self.pipe(p, dot)?;
                fields(v, f)?
            }
        })
    }
}

fn fields(mut v: Value, path: &[String]) -> Result<Value, String> {
    for f in path {
        v = match v {
            // A missing key of Prometheus's string maps is the zero value (`missingkey=zero`).
            Value::Map(mut m) => m.remove(f).unwrap_or(Value::Str(String::new())),
            Value::Nil => Value::Nil,
            other => return Err(format!("can't evaluate field {f} in type {}", type_name(&other))),
        };
    }
    Ok(v)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::Map(_) => "map",
        Value::List(_) => "template.queryResult",
    }
}

#[cfg(test)]
mod tests;
