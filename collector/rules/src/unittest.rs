//! promtool's rule unit-test files (`rule_files`, `evaluation_interval`, `input_series`,
//! `alert_rule_test`, `promql_expr_test`) and their runner, written against the engine and a
//! storage loader as traits so `osprey-collector test rules` runs on the real engine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::alerting::{AlertState, RuleContext};
use crate::duration::parse_duration;
use crate::eval::{Appender, ForStateSource, Labels, QueryEngine};
use crate::file::{ParseOptions, load_rule_file};
use crate::group::{Rule, RuleGroup};

/// A test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Rule files, relative to the test file (globs allowed).
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// Rule evaluation interval (default 1m).
    pub evaluation_interval: Option<String>,
    /// Groups evaluated first, in this order.
    #[serde(default)]
    pub group_eval_order: Vec<String>,
    /// Compare floats with 1-ULP tolerance.
    #[serde(default)]
    pub fuzzy_compare: bool,
    /// Test groups.
    #[serde(default)]
    pub tests: Vec<TestGroup>,
}

/// One test group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    /// Name (for `--run`).
    #[serde(default)]
    pub name: String,
    /// Input sample step (default: evaluation_interval).
    pub interval: Option<String>,
    /// Input series.
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    /// Alert expectations.
    #[serde(default)]
    pub alert_rule_test: Vec<AlertTest>,
    /// Expression expectations.
    #[serde(default)]
    pub promql_expr_test: Vec<ExprTest>,
    /// External labels for templates.
    #[serde(default)]
    pub external_labels: Labels,
    /// External URL for templates.
    #[serde(default)]
    pub external_url: String,
    /// Start time (RFC 3339 or Unix seconds).
    pub start_timestamp: Option<String>,
}

/// One input series in the `load` notation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    /// Series selector, e.g. `up{job="a"}`.
    pub series: String,
    /// Values, e.g. `0+1x10 _ stale`.
    pub values: String,
}

/// Expected alerts at a time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTest {
    /// Evaluation time (duration from start; 0 when absent).
    #[serde(default = "zero")]
    pub eval_time: String,
    /// Alert name.
    pub alertname: String,
    /// Expected firing alerts.
    #[serde(default)]
    pub exp_alerts: Vec<ExpAlert>,
}

/// One expected alert.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    /// Labels (without `alertname`).
    #[serde(default)]
    pub exp_labels: Labels,
    /// Rendered annotations.
    #[serde(default)]
    pub exp_annotations: Labels,
}

/// An expression expectation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprTest {
    /// Expression.
    pub expr: String,
    /// Evaluation time (0 when absent).
    #[serde(default = "zero")]
    pub eval_time: String,
    /// Expected samples.
    #[serde(default)]
    pub exp_samples: Vec<ExpSample>,
}

/// An expected sample.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    /// Series selector string.
    #[serde(default)]
    pub labels: String,
    /// Float value.
    pub value: Option<f64>,
    /// Native histogram in `{{…}}` notation.
    pub histogram: Option<String>,
}

fn zero() -> String {
    "0".into()
}

/// A loaded test database: storage the runner appends rule output to, queried by the engine.
pub trait TestDb: QueryEngine + Appender + ForStateSource {}

/// Builds a [`TestDb`] from input series (the engine crate parses the `load` value notation).
pub trait TestBackend {
    /// Loads `series` with samples every `interval` starting at `start_ms`.
    fn load(&self, series: &[InputSeries], interval: Duration, start_ms: i64) -> Result<Box<dyn TestDb>, String>;
}

/// Options of `test rules`.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// `--run` regexes on group names.
    pub run: Vec<String>,
    /// `--ignore-unknown-fields`.
    pub ignore_unknown_fields: bool,
}

/// Parses a test file.
pub fn parse_test_file(path: &Path) -> Result<TestFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str(&text)
        .map_err(|e| format!("{}: {}", path.display(), e.to_string().lines().next().unwrap_or_default()))
}

/// Runs test files like `promtool test rules`; returns (output, exit code).
pub fn test_rules(files: &[PathBuf], backend: &dyn TestBackend, opts: &TestOptions) -> (String, i32) {
    let mut out = String::new();
    let mut code = 0;
    for f in files {
        let _ = writeln!(out, "Unit Testing:  {}", f.display());
        match run_file(f, backend, opts) {
            Ok(errs) if errs.is_empty() => out.push_str("  SUCCESS\n"),
            Ok(errs) | Err(errs) => {
                code = 1;
                out.push_str("  FAILED:\n");
                for e in errs {
                    let _ = writeln!(out, "{e}");
                }
            }
        }
        out.push('\n');
    }
    (out, code)
}

fn dur(s: &str) -> Result<Duration, Vec<String>> {
    parse_duration(s).map_err(|e| vec![format!("    {e}")])
}

fn expand_rule_files(base: &Path, patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in patterns {
        let full = base.join(p);
        if p.contains('*') {
            let dir = full.parent().unwrap_or(base).to_path_buf();
            let pat = full.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let re = regex::Regex::new(&format!("^{}$", regex::escape(&pat).replace("\\*", ".*"))).expect("glob regex");
            let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| re.is_match(&n.to_string_lossy())))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(full);
        }
    }
    out
}

fn run_file(path: &Path, backend: &dyn TestBackend, opts: &TestOptions) -> Result<Vec<String>, Vec<String>> {
    let tf = parse_test_file(path).map_err(|e| vec![e])?;
    let eval_interval = dur(tf.evaluation_interval.as_deref().unwrap_or("1m"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut specs = Vec::new();
    for rf in expand_rule_files(base, &tf.rule_files) {
        let f = load_rule_file(&rf, ParseOptions { ignore_unknown_fields: opts.ignore_unknown_fields })?;
        specs.extend(f.groups);
    }
    // group_eval_order first, then the rest in file order.
    specs.sort_by_key(|g| tf.group_eval_order.iter().position(|n| *n == g.name).unwrap_or(usize::MAX));
    let runs: Vec<regex::Regex> = opts.run.iter().filter_map(|r| regex::Regex::new(r).ok()).collect();
    let mut errs = Vec::new();
    for tg in &tf.tests {
        if !runs.is_empty() && !runs.iter().any(|r| r.is_match(&tg.name)) {
            continue;
        }
        let groups: Vec<RuleGroup> = specs.iter().cloned().map(|s| RuleGroup::new(s, eval_interval)).collect();
        errs.extend(run_group(tg, groups, eval_interval, tf.fuzzy_compare, backend)?);
    }
    Ok(errs)
}

fn start_ms(s: Option<&str>) -> Result<i64, Vec<String>> {
    let Some(s) = s else { return Ok(0) };
    if let Ok(v) = s.parse::<f64>() {
        return Ok((v * 1000.0) as i64);
    }
    Err(vec![format!("    start_timestamp {s:?}: only Unix seconds are supported")])
}

fn run_group(
    tg: &TestGroup,
    mut groups: Vec<RuleGroup>,
    eval_interval: Duration,
    fuzzy: bool,
    backend: &dyn TestBackend,
) -> Result<Vec<String>, Vec<String>> {
    let interval = match &tg.interval {
        Some(i) => dur(i)?,
        None => eval_interval,
    };
    let start = start_ms(tg.start_timestamp.as_deref())?;
    let mut db = backend.load(&tg.input_series, interval, start).map_err(|e| vec![format!("    {e}")])?;
    let ctx = RuleContext { external_labels: tg.external_labels.clone(), external_url: tg.external_url.clone() };
    let mut alert_tests: Vec<(i64, &AlertTest)> = Vec::new();
    for t in &tg.alert_rule_test {
        alert_tests.push((dur(&t.eval_time)?.as_millis() as i64, t));
    }
    alert_tests.sort_by_key(|(t, _)| *t);
    let mut max = alert_tests.last().map_or(0, |(t, _)| *t);
    for t in &tg.promql_expr_test {
        max = max.max(dur(&t.eval_time)?.as_millis() as i64);
    }
    let step = eval_interval.as_millis().max(1) as i64;
    let mut errs = Vec::new();
    let mut next = 0;
    let mut ts = 0;
    while ts <= max {
        for g in &mut groups {
            let db_ref: &mut dyn TestDb = db.as_mut();
            // The engine reads what earlier rules appended: evaluate through a shared view.
            let mut buf = Buffer::default();
            g.eval(start + ts, &*db_ref, &mut buf, &ctx, None);
            for (l, t, v) in buf.0 {
                db_ref.append(&l, t, v);
            }
        }
        while next < alert_tests.len() && alert_tests[next].0 < ts + step {
            let (t, at) = alert_tests[next];
            next += 1;
            if t < ts {
                continue;
            }
            if let Some(e) = check_alerts(tg, at, &groups) {
                errs.push(e);
            }
        }
        ts += step;
    }
    for et in &tg.promql_expr_test {
        let t = dur(&et.eval_time)?.as_millis() as i64;
        if let Some(e) = check_expr(tg, et, db.as_ref(), start + t, fuzzy) {
            errs.push(e);
        }
    }
    Ok(errs)
}

#[derive(Default)]
struct Buffer(Vec<(Labels, i64, f64)>);

impl Appender for Buffer {
    fn append(&mut self, labels: &Labels, t_ms: i64, value: f64) {
        self.0.push((labels.clone(), t_ms, value));
    }
}

fn fmt_labels(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn check_alerts(tg: &TestGroup, at: &AlertTest, groups: &[RuleGroup]) -> Option<String> {
    let mut got: Vec<(Labels, Labels)> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter_map(|r| if let Rule::Alerting(a) = r { (a.name == at.alertname).then_some(a) } else { None })
        .flat_map(|a| {
            a.active
                .values()
                .filter(|x| x.state == AlertState::Firing)
                .map(|x| (x.labels.clone(), x.annotations.clone()))
        })
        .collect();
    let mut exp: Vec<(Labels, Labels)> = at
        .exp_alerts
        .iter()
        .map(|e| {
            let mut l = e.exp_labels.clone();
            l.insert("alertname".into(), at.alertname.clone());
            (l, e.exp_annotations.clone())
        })
        .collect();
    got.sort();
    exp.sort();
    if got == exp {
        return None;
    }
    let show = |v: &[(Labels, Labels)]| -> String {
        let mut s = String::new();
        for (i, (l, a)) in v.iter().enumerate() {
            let _ = write!(
                s,
                "\n            {i}:\n              Labels:{}\n              Annotations:{}",
                fmt_labels(l),
                fmt_labels(a)
            );
        }
        s
    };
    Some(format!(
        "    name: {},\n    alertname: {}, time: {}, \n        exp:[{}\n            ], \n        got:[{}\n            ]\n",
        tg.name,
        at.alertname,
        at.eval_time,
        show(&exp),
        show(&got)
    ))
}

/// Parses a series selector string (`metric{a="b"}`) into labels.
pub fn parse_series_labels(s: &str) -> Result<Labels, String> {
    let mut out = Labels::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    let expr = promql_parser::parser::parse(s)?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(format!("{s:?} is not a series selector"));
    };
    if let Some(n) = vs.name {
        out.insert("__name__".into(), n);
    }
    for m in vs.matchers.matchers {
        out.insert(m.name, m.value);
    }
    Ok(out)
}

fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

fn float_eq(a: f64, b: f64, fuzzy: bool) -> bool {
    a.to_bits() == b.to_bits()
        || a == b
        || (a.is_nan() && b.is_nan())
        || (fuzzy && (next_up(a) == b || next_down(a) == b))
}

fn check_expr(tg: &TestGroup, et: &ExprTest, engine: &dyn TestDb, t_ms: i64, fuzzy: bool) -> Option<String> {
    let got = match engine.instant(&et.expr, t_ms) {
        Ok(v) => v,
        Err(e) => return Some(format!("    expr: {:?}, time: {}, err: {}", et.expr, et.eval_time, e.0)),
    };
    let mut exp = Vec::new();
    for s in &et.exp_samples {
        match parse_series_labels(&s.labels) {
            Ok(l) => exp.push((l, s.value.unwrap_or(0.0))),
            Err(e) => return Some(format!("    expr: {:?}, time: {}, err: {e}", et.expr, et.eval_time)),
        }
    }
    let mut got: Vec<(Labels, f64)> = got.into_iter().map(|s| (s.labels, s.value)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let same = got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && float_eq(g.1, e.1, fuzzy));
    if same {
        return None;
    }
    let show = |v: &[(Labels, f64)]| -> String {
        if v.is_empty() {
            return "nil".into();
        }
        v.iter()
            .map(|(l, x)| format!("{} {}", fmt_labels(l), crate::api::api_float(*x).to_uppercase()))
            .collect::<Vec<_>>()
            .join(",\n")
    };
    Some(format!(
        "    name: {},\n    expr: {:?}, time: {},\n        exp: {}\n        got: {}\n",
        tg.name,
        et.expr,
        et.eval_time,
        show(&exp),
        show(&got)
    ))
}

#[cfg(test)]
#[path = "unittest_tests.rs"]
mod tests;
