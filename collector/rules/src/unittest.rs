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
    /// Alert name (required; a missing one is reported as promtool does, not as a YAML error).
    #[serde(default)]
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

/// A loaded test database (promtool's lazy loader): input samples become visible step by step,
/// rule output is appended as it is produced, and the engine queries what is visible.
pub trait TestDb: QueryEngine + ForStateSource {
    /// Makes every input sample with a timestamp ≤ `t_ms` visible.
    fn load_till(&self, t_ms: i64);
    /// Appends one rule-output sample (visible to the next query).
    fn append_sample(&self, labels: &Labels, t_ms: i64, value: f64);
}

/// Builds a [`TestDb`] from input series (the engine crate parses the value notation).
pub trait TestBackend {
    /// Loads `series` with samples every `interval` from `start_ms`; subqueries without a step
    /// use `eval_interval` (promtool sets the engine's default subquery step to it).
    fn load(
        &self,
        series: &[InputSeries],
        interval: Duration,
        start_ms: i64,
        eval_interval: Duration,
    ) -> Result<Box<dyn TestDb>, String>;
}

/// Options of `test rules`.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// `--run` regexes on group names (unanchored, any match).
    pub run: Vec<String>,
    /// `--ignore-unknown-fields`.
    pub ignore_unknown_fields: bool,
}

/// What `test rules` prints and returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestReport {
    /// Standard output (`Unit Testing:` lines, `SUCCESS`, one blank line per failure).
    pub stdout: String,
    /// Standard error (`FAILED:` and the failures).
    pub stderr: String,
    /// 0 when every test passed, 1 otherwise.
    pub exit_code: i32,
}

/// Parses a test file.
pub fn parse_test_file(path: &Path) -> Result<TestFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str(&text)
        .map_err(|e| format!("{}: {}", path.display(), e.to_string().lines().next().unwrap_or_default()))
}

/// Runs test files like `promtool test rules`.
pub fn test_rules(files: &[PathBuf], backend: &dyn TestBackend, opts: &TestOptions) -> TestReport {
    let mut rep = TestReport::default();
    for f in files {
        let _ = writeln!(rep.stdout, "Unit Testing:  {}", f.display());
        let errs = run_file(f, backend, opts, &mut rep.stderr);
        if errs.is_empty() {
            rep.stdout.push_str("  SUCCESS\n");
        } else {
            rep.exit_code = 1;
            rep.stderr.push_str("  FAILED:\n");
            for e in errs {
                let _ = writeln!(rep.stderr, "{e}");
                rep.stdout.push('\n');
            }
        }
        rep.stdout.push('\n');
    }
    rep
}

fn dur(s: &str) -> Result<Duration, Vec<String>> {
    parse_duration(s).map_err(|e| vec![format!("{e}")])
}

/// Expands `rule_files` relative to the test file's directory; `*`, `?` and `[…]` globs in the
/// last component. Patterns matching nothing are warned about on `warn` as promtool does.
fn expand_rule_files(base: &Path, patterns: &[String], warn: &mut String) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in patterns {
        let full = if Path::new(p).is_absolute() { PathBuf::from(p) } else { base.join(p) };
        let name = full.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let found: Vec<PathBuf> = if name.contains(['*', '?', '[']) {
            let dir = full.parent().map_or_else(|| base.to_path_buf(), Path::to_path_buf);
            let re = glob_regex(&name);
            let mut v: Vec<PathBuf> = std::fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { &dir })
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| re.as_ref().is_some_and(|r| r.is_match(&e.file_name().to_string_lossy())))
                .map(|e| dir.join(e.file_name()))
                .collect();
            v.sort();
            v
        } else if full.exists() {
            vec![full.clone()]
        } else {
            Vec::new()
        };
        if found.is_empty() {
            let _ = writeln!(warn, "  WARNING: no file match pattern {}", full.display());
        }
        out.extend(found);
    }
    out
}

fn glob_regex(pat: &str) -> Option<regex::Regex> {
    let mut re = String::from("^");
    let mut chars = pat.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    if c == '\\' {
                        re.push_str("\\\\");
                    } else {
                        re.push(c);
                    }
                }
                re.push(']');
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}

fn run_file(path: &Path, backend: &dyn TestBackend, opts: &TestOptions, warn: &mut String) -> Vec<String> {
    let tf = match parse_test_file(path) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    let eval_interval = match tf.evaluation_interval.as_deref().map(parse_duration) {
        None => Duration::from_secs(60),
        Some(Ok(d)) if d.is_zero() => Duration::from_secs(60),
        Some(Ok(d)) => d,
        Some(Err(e)) => return vec![format!("evaluation_interval: {e}")],
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let rule_files = expand_rule_files(base, &tf.rule_files, warn);
    let mut order = Vec::new();
    for g in &tf.group_eval_order {
        if order.contains(g) {
            return vec![format!("group name repeated in evaluation order: {g}")];
        }
        order.push(g.clone());
    }
    let runs: Vec<regex::Regex> = match opts.run.iter().map(|r| regex::Regex::new(r)).collect() {
        Ok(v) => v,
        Err(e) => return vec![format!("--run: {e}")],
    };
    let mut errs = Vec::new();
    for tg in &tf.tests {
        if !runs.is_empty() && !runs.iter().any(|r| r.is_match(&tg.name)) {
            continue;
        }
        let setup = GroupSetup { eval_interval, order: &order, rule_files: &rule_files, fuzzy: tf.fuzzy_compare, opts };
        errs.extend(run_group(tg, &setup, backend));
    }
    errs
}

struct GroupSetup<'a> {
    eval_interval: Duration,
    order: &'a [String],
    rule_files: &'a [PathBuf],
    fuzzy: bool,
    opts: &'a TestOptions,
}

/// `start_timestamp`: Unix seconds or RFC 3339.
fn start_ms(s: Option<&str>) -> Result<i64, String> {
    let Some(s) = s else { return Ok(0) };
    if let Ok(v) = s.trim().parse::<f64>() {
        return Ok((v * 1000.0).round() as i64);
    }
    crate::unittest_fmt::parse_rfc3339_ms(s.trim()).ok_or_else(|| format!("start_timestamp: cannot parse {s:?}"))
}

/// The rule groups a test group runs, loaded afresh (as promtool does per test group), in
/// `group_eval_order` first and file order after.
fn load_groups(setup: &GroupSetup<'_>, interval: Duration) -> Result<Vec<RuleGroup>, Vec<String>> {
    let mut specs = Vec::new();
    let mut errs = Vec::new();
    for rf in setup.rule_files {
        match load_rule_file(rf, ParseOptions { ignore_unknown_fields: setup.opts.ignore_unknown_fields }) {
            Ok(f) => specs.extend(f.groups),
            Err(e) => errs.extend(e),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    specs.sort_by_key(|g| setup.order.iter().position(|n| *n == g.name).unwrap_or(usize::MAX));
    Ok(specs.into_iter().map(|s| RuleGroup::new(s, interval)).collect())
}

/// Lets a group append straight into the test database, so later rules see earlier output.
struct DbAppender<'a>(&'a dyn TestDb);

impl Appender for DbAppender<'_> {
    fn append(&mut self, labels: &Labels, t_ms: i64, value: f64) {
        self.0.append_sample(labels, t_ms, value);
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn run_group(tg: &TestGroup, setup: &GroupSetup<'_>, backend: &dyn TestBackend) -> Vec<String> {
    let interval = match tg.interval.as_deref().map(parse_duration) {
        None => setup.eval_interval,
        Some(Ok(d)) if d.is_zero() => setup.eval_interval,
        Some(Ok(d)) => d,
        Some(Err(e)) => return vec![format!("interval: {e}")],
    };
    let start = match start_ms(tg.start_timestamp.as_deref()) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let db = match backend.load(&tg.input_series, interval, start, setup.eval_interval) {
        Ok(db) => db,
        Err(e) => return vec![e],
    };
    let mut groups = match load_groups(setup, interval) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let ctx = RuleContext { external_labels: tg.external_labels.clone(), external_url: tg.external_url.clone() };
    let mut alert_times: Vec<i64> = Vec::new();
    let mut max = 0;
    for t in &tg.alert_rule_test {
        if t.alertname.is_empty() {
            let in_group = if tg.name.is_empty() { String::new() } else { format!(" (in TestGroup {})", tg.name) };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                dur(&t.eval_time).map_or_else(|_| t.eval_time.clone(), |d| crate::unittest_fmt::model_duration(ms(d)))
            )];
        }
        match dur(&t.eval_time) {
            Ok(d) => {
                alert_times.push(ms(d));
                max = max.max(ms(d));
            }
            Err(e) => return e,
        }
    }
    for t in &tg.promql_expr_test {
        match dur(&t.eval_time) {
            Ok(d) => max = max.max(ms(d)),
            Err(e) => return e,
        }
    }
    alert_times.sort_unstable();
    alert_times.dedup();
    let query: &dyn QueryEngine = db.as_ref();
    let step = ms(setup.eval_interval).max(1);
    let mut errs = Vec::new();
    let mut next = 0;
    let mut ts = 0;
    while ts <= max {
        db.load_till(start + ts);
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(start + ts, query, &mut DbAppender(db.as_ref()), &ctx, None);
            for (r, st) in g.rules.iter().zip(&g.status) {
                if let Some(e) = &st.last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        rule_name(r),
                        crate::unittest_fmt::go_duration(ts)
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while next < alert_times.len() && alert_times[next] >= ts && alert_times[next] < ts + step {
            let t = alert_times[next];
            next += 1;
            for at in tg.alert_rule_test.iter().filter(|a| dur(&a.eval_time).is_ok_and(|d| ms(d) == t)) {
                if let Some(e) = check_alerts(tg, at, t, &groups) {
                    errs.push(e);
                }
            }
        }
        ts += step;
    }
    for et in &tg.promql_expr_test {
        let t = dur(&et.eval_time).map_or(0, ms);
        if let Some(e) = check_expr(tg, et, t, query, start + t, setup.fuzzy) {
            errs.push(e);
        }
    }
    errs
}

fn rule_name(r: &Rule) -> &str {
    match r {
        Rule::Recording { name, .. } => name,
        Rule::Alerting(a) => &a.name,
    }
}

fn check_alerts(tg: &TestGroup, at: &AlertTest, t_ms: i64, groups: &[RuleGroup]) -> Option<String> {
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
    let name = if tg.name.is_empty() { String::new() } else { format!("    name: {},\n", tg.name) };
    let indent = "            ";
    Some(format!(
        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
        at.alertname,
        crate::unittest_fmt::model_duration(t_ms),
        crate::unittest_fmt::indent_lines(&crate::unittest_fmt::alerts_string(&exp), indent),
        crate::unittest_fmt::indent_lines(&crate::unittest_fmt::alerts_string(&got), indent),
    ))
}

/// Parses a series selector string (`metric{a="b"}`) into labels.
pub fn parse_series_labels(s: &str) -> Result<Labels, String> {
    let mut out = Labels::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    let expr = osprey_promql::durations::parse_checked(s).map_err(|e| osprey_promql::position::with_position(s, &e))?;
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

/// Exact float equality (NaN equals NaN, as Go's `reflect.DeepEqual` on promtool's samples
/// does not, but a NaN expectation is only writable as NaN); with `fuzzy`, 1 ULP apart is equal.
fn float_eq(a: f64, b: f64, fuzzy: bool) -> bool {
    a.to_bits() == b.to_bits() || a == b || (fuzzy && (next_up(a) == b || next_down(a) == b))
}

fn check_expr(
    tg: &TestGroup,
    et: &ExprTest,
    t: i64,
    engine: &dyn QueryEngine,
    t_ms: i64,
    fuzzy: bool,
) -> Option<String> {
    let time = crate::unittest_fmt::model_duration(t);
    let got = match engine.instant(&et.expr, t_ms) {
        Ok(v) => v,
        Err(e) => return Some(format!("    expr: {:?}, time: {time}, err: {}", et.expr, e.0)),
    };
    let mut exp = Vec::new();
    for s in &et.exp_samples {
        if s.histogram.is_some() {
            return Some(format!(
                "    expr: {:?}, time: {time}, err: native histogram samples are not supported",
                et.expr
            ));
        }
        match parse_series_labels(&s.labels) {
            Ok(l) => exp.push((l, s.value.unwrap_or(0.0))),
            Err(e) => return Some(format!("    expr: {:?}, time: {time}, err: labels {:?}: {e}", et.expr, s.labels)),
        }
    }
    let mut got: Vec<(Labels, f64)> = got.into_iter().map(|s| (s.labels, s.value)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let same = got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && float_eq(g.1, e.1, fuzzy));
    if same {
        return None;
    }
    let _ = tg;
    Some(format!(
        "    expr: {:?}, time: {time},\n        exp: {}\n        got: {}",
        et.expr,
        crate::unittest_fmt::samples_string(&exp),
        crate::unittest_fmt::samples_string(&got)
    ))
}

#[cfg(test)]
#[path = "unittest_tests.rs"]
mod tests;
