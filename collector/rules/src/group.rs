//! A rule group: rules evaluated in order on the group's interval, output appended with stale
//! markers for vanished series, and Prometheus's rule-manager self-metrics.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::alerting::{AlertingRule, RuleContext};
use crate::eval::{Appender, ForStateSource, Labels, QueryEngine, STALE_NAN, Sample};
use crate::file::{RuleGroupSpec, RuleKind, RuleSpec};

/// A rule of either kind.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Recording rule.
    Recording {
        /// Output metric name.
        name: String,
        /// Expression.
        expr: String,
        /// Labels to set.
        labels: Labels,
    },
    /// Alerting rule.
    Alerting(AlertingRule),
}

/// Health of a rule after its last evaluation (`/api/v1/rules` `health`).
#[derive(Debug, Clone, Default)]
pub struct RuleStatus {
    /// `ok`, `err` or `unknown`.
    pub health: &'static str,
    /// Last error.
    pub last_error: Option<String>,
    /// Last evaluation (ms).
    pub last_eval_ms: Option<i64>,
    /// Duration of the last evaluation.
    pub eval_duration: Duration,
}

/// Self-metrics of one group, named as Prometheus's rule manager names them.
#[derive(Debug, Clone, Default)]
pub struct GroupMetrics {
    /// `prometheus_rule_evaluations_total`.
    pub evaluations: u64,
    /// `prometheus_rule_evaluation_failures_total`.
    pub failures: u64,
    /// `prometheus_rule_group_iterations_total`.
    pub iterations: u64,
    /// `prometheus_rule_group_iterations_missed_total`.
    pub iterations_missed: u64,
    /// `prometheus_rule_group_last_duration_seconds`.
    pub last_duration: Duration,
    /// `prometheus_rule_group_last_evaluation_timestamp_seconds` (ms).
    pub last_eval_ms: i64,
    /// `prometheus_rule_group_last_evaluation_samples`.
    pub last_samples: u64,
}

/// A loaded group with its state.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    /// The spec it was built from.
    pub spec: RuleGroupSpec,
    /// Effective interval.
    pub interval: Duration,
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// Per-rule status, parallel to `rules`.
    pub status: Vec<RuleStatus>,
    /// Self-metrics.
    pub metrics: GroupMetrics,
    /// Series written last time (for stale markers).
    last_series: BTreeSet<Labels>,
    /// Whether the first evaluation (and `for` restore) happened.
    started: bool,
}

/// Options for restoring `for` state (Prometheus's `--rules.alert.*` flags).
#[derive(Debug, Clone, Copy)]
pub struct RestoreOptions {
    /// `--rules.alert.for-outage-tolerance` (default 1h).
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period` (default 10m).
    pub grace_period: Duration,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self { outage_tolerance: Duration::from_secs(3600), grace_period: Duration::from_secs(600) }
    }
}

fn rule_from(spec: &RuleSpec, group_labels: &Labels) -> Rule {
    match &spec.kind {
        RuleKind::Record(name) => {
            let mut labels = group_labels.clone();
            labels.extend(spec.labels.clone());
            Rule::Recording { name: name.clone(), expr: spec.expr.clone(), labels }
        }
        RuleKind::Alert(name) => Rule::Alerting(AlertingRule::new(spec, name, group_labels)),
    }
}

impl RuleGroup {
    /// Builds a group; `default_interval` applies when the group has none.
    pub fn new(spec: RuleGroupSpec, default_interval: Duration) -> Self {
        let rules: Vec<Rule> = spec.rules.iter().map(|r| rule_from(r, &spec.labels)).collect();
        let status = vec![RuleStatus { health: "unknown", ..RuleStatus::default() }; rules.len()];
        Self {
            interval: spec.interval.unwrap_or(default_interval),
            spec,
            rules,
            status,
            metrics: GroupMetrics::default(),
            last_series: BTreeSet::new(),
            started: false,
        }
    }

    /// Carries alert state over from the previous version of this group at reload (same
    /// alert names keep their active alerts), as Prometheus's `CopyState`.
    pub fn copy_state(&mut self, old: &RuleGroup) {
        for r in &mut self.rules {
            if let Rule::Alerting(a) = r
                && let Some(Rule::Alerting(o)) =
                    old.rules.iter().find(|o| matches!(o, Rule::Alerting(o) if o.name == a.name && o.expr == a.expr))
            {
                a.active = o.active.clone();
                a.restored = true;
            }
        }
        self.last_series.clone_from(&old.last_series);
        self.started = old.started;
    }

    /// Evaluates every rule at `ts_ms` in order, appends outputs (and `ALERTS_FOR_STATE`,
    /// and stale markers for series that vanished), and restores `for` state on the first run
    /// when `restore` is given.
    pub fn eval(
        &mut self,
        ts_ms: i64,
        engine: &dyn QueryEngine,
        app: &mut dyn Appender,
        ctx: &RuleContext,
        restore: Option<(&dyn ForStateSource, RestoreOptions)>,
    ) {
        let started = Instant::now();
        let offset = self.spec.query_offset.unwrap_or_default();
        let mut written = BTreeSet::new();
        let mut samples = 0u64;
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let t0 = Instant::now();
            self.metrics.evaluations += 1;
            let res: Result<Vec<Sample>, String> = match rule {
                Rule::Recording { name, expr, labels } => {
                    eval_recording(name, expr, labels, ts_ms - offset.as_millis() as i64, self.spec.limit, engine)
                }
                Rule::Alerting(a) => {
                    let r = a.eval(ts_ms, offset, self.spec.limit, engine, ctx);
                    if !self.started
                        && let Some((src, opts)) = restore
                    {
                        a.restore_for_state(ts_ms, src, opts.outage_tolerance, opts.grace_period);
                    }
                    // Prometheus writes ALERTS_FOR_STATE for every active alert, `for` or not.
                    r.map(|mut v| {
                        v.extend(a.for_state_samples());
                        v
                    })
                }
            };
            let st = &mut self.status[i];
            st.last_eval_ms = Some(ts_ms);
            st.eval_duration = t0.elapsed();
            match res {
                Ok(v) => {
                    st.health = "ok";
                    st.last_error = None;
                    for s in v {
                        app.append(&s.labels, ts_ms, s.value);
                        samples += 1;
                        written.insert(s.labels);
                    }
                }
                Err(e) => {
                    st.health = "err";
                    st.last_error = Some(e);
                    self.metrics.failures += 1;
                }
            }
        }
        for gone in self.last_series.difference(&written) {
            app.append(gone, ts_ms, STALE_NAN);
        }
        self.last_series = written;
        self.started = true;
        self.metrics.iterations += 1;
        self.metrics.last_duration = started.elapsed();
        self.metrics.last_eval_ms = ts_ms;
        self.metrics.last_samples = samples;
    }

    /// The `rule_group` label value Prometheus uses: `file;group`.
    pub fn key(&self) -> String {
        format!("{};{}", self.spec.file.display(), self.spec.name)
    }

    /// Writes this group's self-metrics in the Prometheus text format (no HELP/TYPE; see
    /// [`metrics_text`] for the full exposition).
    fn write_metrics(&self, out: &mut String) {
        let k = self.key().replace('\\', "\\\\").replace('"', "\\\"");
        let m = &self.metrics;
        for (name, v) in [
            ("prometheus_rule_evaluations_total", m.evaluations as f64),
            ("prometheus_rule_evaluation_failures_total", m.failures as f64),
            ("prometheus_rule_group_iterations_total", m.iterations as f64),
            ("prometheus_rule_group_iterations_missed_total", m.iterations_missed as f64),
            ("prometheus_rule_group_last_duration_seconds", m.last_duration.as_secs_f64()),
            ("prometheus_rule_group_last_evaluation_timestamp_seconds", m.last_eval_ms as f64 / 1000.0),
            ("prometheus_rule_group_last_evaluation_samples", m.last_samples as f64),
            ("prometheus_rule_group_interval_seconds", self.interval.as_secs_f64()),
            ("prometheus_rule_group_rules", self.rules.len() as f64),
        ] {
            let _ = writeln!(out, "{name}{{rule_group=\"{k}\"}} {v}");
        }
    }
}

fn eval_recording(
    name: &str,
    expr: &str,
    labels: &Labels,
    t_ms: i64,
    limit: u64,
    engine: &dyn QueryEngine,
) -> Result<Vec<Sample>, String> {
    let res = engine.instant(expr, t_ms).map_err(|e| e.0)?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(res.len());
    for mut s in res {
        s.labels.insert("__name__".into(), name.to_string());
        for (k, v) in labels {
            if v.is_empty() {
                s.labels.remove(k);
            } else {
                s.labels.insert(k.clone(), v.clone());
            }
        }
        if !seen.insert(s.labels.clone()) {
            return Err("vector contains metrics with the same labelset after applying rule labels".into());
        }
        out.push(s);
    }
    if limit > 0 && out.len() as u64 > limit {
        return Err(format!("exceeded limit of {limit} with {} series", out.len()));
    }
    Ok(out)
}

/// The rule manager's self-metrics for all groups, with HELP and TYPE lines.
pub fn metrics_text(groups: &[RuleGroup]) -> String {
    let mut body = String::new();
    for g in groups {
        g.write_metrics(&mut body);
    }
    let mut out = String::new();
    for (name, kind, help) in [
        ("prometheus_rule_evaluations_total", "counter", "The total number of rule evaluations."),
        ("prometheus_rule_evaluation_failures_total", "counter", "The total number of rule evaluation failures."),
        (
            "prometheus_rule_group_iterations_total",
            "counter",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
        ),
        (
            "prometheus_rule_group_iterations_missed_total",
            "counter",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
        ),
        ("prometheus_rule_group_last_duration_seconds", "gauge", "The duration of the last rule group evaluation."),
        (
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "gauge",
            "The timestamp of the last rule group evaluation in seconds.",
        ),
        (
            "prometheus_rule_group_last_evaluation_samples",
            "gauge",
            "The number of samples returned during the last rule group evaluation.",
        ),
        ("prometheus_rule_group_interval_seconds", "gauge", "The interval of a rule group."),
        ("prometheus_rule_group_rules", "gauge", "The number of rules."),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for line in body.lines().filter(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b'{')) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
