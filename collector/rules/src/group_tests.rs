//! State-machine tests with a scripted stand-in for the PromQL engine (unit tests only; the
#![allow(clippy::many_single_char_names)]
//! real engine is wired by the collector).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::alerting::{AlertState, RuleContext};
use crate::eval::{Appender, ForStateSource, Labels, QueryEngine, QueryError, Sample, is_stale};
use crate::file::{ParseOptions, parse_rule_file};
use crate::group::{RestoreOptions, Rule, RuleGroup, metrics_text};

const MIN: i64 = 60_000;

/// Test-only fake engine: each expression maps to a function of time.
struct FakeEngineForUnitTests(BTreeMap<String, Box<dyn Fn(i64) -> Vec<Sample> + Send + Sync>>);

impl QueryEngine for FakeEngineForUnitTests {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
        self.0.get(expr).map(|f| f(t_ms)).ok_or_else(|| QueryError(format!("unknown expr {expr}")))
    }
}

#[derive(Default)]
struct Recorder(Vec<(Labels, i64, f64)>);

impl Appender for Recorder {
    fn append(&mut self, labels: &Labels, t_ms: i64, value: f64) {
        self.0.push((labels.clone(), t_ms, value));
    }
}

impl ForStateSource for Recorder {
    fn last_sample(&self, labels: &Labels, from_ms: i64, to_ms: i64) -> Option<(i64, f64)> {
        self.0
            .iter()
            .filter(|(l, t, v)| l == labels && *t >= from_ms && *t <= to_ms && !is_stale(*v))
            .max_by_key(|(_, t, _)| *t)
            .map(|(_, t, v)| (*t, *v))
    }
}

fn lbl(p: &[(&str, &str)]) -> Labels {
    p.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
}

fn group(yaml: &str) -> RuleGroup {
    let f = parse_rule_file(Path::new("t.yml"), yaml, ParseOptions::default()).expect("valid");
    RuleGroup::new(f.groups.into_iter().next().unwrap(), Duration::from_secs(60))
}

fn engine(expr: &str, f: impl Fn(i64) -> Vec<Sample> + Send + Sync + 'static) -> FakeEngineForUnitTests {
    let mut m: BTreeMap<String, Box<dyn Fn(i64) -> Vec<Sample> + Send + Sync>> = BTreeMap::new();
    m.insert(expr.into(), Box::new(f));
    FakeEngineForUnitTests(m)
}

fn state(g: &RuleGroup) -> Vec<AlertState> {
    let Rule::Alerting(a) = &g.rules[0] else { panic!() };
    a.active.values().map(|a| a.state).collect()
}

const CPU: &str = "groups:\n- name: g\n  rules:\n  - alert: HighCpu\n    expr: cpu > 70\n    for: 5m\n    labels: {severity: warning}\n    annotations:\n      summary: 'CPU {{ $labels.instance }} at {{ $value }}%'\n";

#[test]
fn pending_then_firing_then_resolved_with_alerts_series_and_stale_marker() {
    let mut g = group(CPU);
    // Condition true from minute 1 to minute 8.
    let e = engine("cpu > 70", |t| {
        if (MIN..=8 * MIN).contains(&t) {
            vec![Sample { labels: lbl(&[("instance", "a")]), value: 90.0 }]
        } else {
            vec![]
        }
    });
    let mut rec = Recorder::default();
    let ctx = RuleContext::default();
    let mut states = Vec::new();
    for m in 0..=9 {
        g.eval(m * MIN, &e, &mut rec, &ctx, None);
        states.push(state(&g));
    }
    use AlertState::{Firing, Inactive, Pending};
    assert_eq!(states[0], vec![]);
    assert_eq!(states[1], vec![Pending]);
    assert_eq!(states[5], vec![Pending]);
    assert_eq!(states[6], vec![Firing], "for: 5m from minute 1 fires at minute 6");
    assert_eq!(states[8], vec![Firing]);
    assert_eq!(states[9], vec![Inactive]);
    let alerts_at = |t: i64, st: &str| {
        rec.0.iter().any(|(l, tt, v)| {
            *tt == t
                && l.get("__name__").map(String::as_str) == Some("ALERTS")
                && l.get("alertstate").map(String::as_str) == Some(st)
                && *v == 1.0
        })
    };
    assert!(alerts_at(MIN, "pending") && alerts_at(6 * MIN, "firing") && !alerts_at(6 * MIN, "pending"));
    let full = lbl(&[
        ("__name__", "ALERTS"),
        ("alertname", "HighCpu"),
        ("alertstate", "firing"),
        ("instance", "a"),
        ("severity", "warning"),
    ]);
    assert!(
        rec.0.iter().any(|(l, t, v)| *l == full && *t == 9 * MIN && is_stale(*v)),
        "stale marker for ALERTS at resolve"
    );
    let fs = rec
        .0
        .iter()
        .find(|(l, t, _)| l.get("__name__").map(String::as_str) == Some("ALERTS_FOR_STATE") && *t == 3 * MIN)
        .unwrap();
    assert_eq!(fs.2, 60.0, "ALERTS_FOR_STATE holds ActiveAt in seconds");
    let Rule::Alerting(a) = &g.rules[0] else { panic!() };
    assert_eq!(a.active.values().next().unwrap().annotations["summary"], "CPU a at 90%");
    assert!(metrics_text(&[g.clone()]).contains("prometheus_rule_evaluations_total{rule_group=\"t.yml;g\"} 10"));
}

#[test]
fn keep_firing_for_holds_alert_after_condition_clears() {
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    keep_firing_for: 3m\n");
    let e = engine("x", |t| if t <= 2 * MIN { vec![Sample { labels: Labels::new(), value: 1.0 }] } else { vec![] });
    let mut rec = Recorder::default();
    let mut states = Vec::new();
    for m in 0..=7 {
        g.eval(m * MIN, &e, &mut rec, &RuleContext::default(), None);
        states.push(state(&g));
    }
    use AlertState::{Firing, Inactive};
    assert_eq!(states[0], vec![Firing]);
    assert_eq!(states[3..=5], [vec![Firing], vec![Firing], vec![Firing]], "kept firing 3m after clearing at 3m");
    assert_eq!(states[6], vec![Inactive]);
}

#[test]
fn limit_exceeded_fails_rule_and_counts_failure() {
    let mut g = group("groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: A\n    expr: x\n");
    let e = engine("x", |_| {
        vec![Sample { labels: lbl(&[("i", "1")]), value: 1.0 }, Sample { labels: lbl(&[("i", "2")]), value: 1.0 }]
    });
    let mut rec = Recorder::default();
    g.eval(0, &e, &mut rec, &RuleContext::default(), None);
    assert_eq!(g.status[0].health, "err");
    assert_eq!(g.status[0].last_error.as_deref(), Some("exceeded limit of 1 with 2 alerts"));
    assert_eq!(g.metrics.failures, 1);
    assert!(state(&g).is_empty());
}

fn restart_scenario(opts: RestoreOptions) -> i64 {
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Long\n    expr: x\n    for: 10m\n";
    let e = engine("x", |_| vec![Sample { labels: lbl(&[("host", "a")]), value: 1.0 }]);
    let mut rec = Recorder::default();
    let mut g = group(yaml);
    for m in 0..=8 {
        g.eval(m * MIN, &e, &mut rec, &RuleContext::default(), None);
    }
    assert_eq!(state(&g), vec![AlertState::Pending]);
    // kill -9: state lost; a new process starts at minute 9 with the same storage.
    let mut g = group(yaml);
    let src = std::mem::take(&mut rec);
    for m in 9..=30 {
        g.eval(m * MIN, &e, &mut rec, &RuleContext::default(), Some((&src, opts)));
        if state(&g) == vec![AlertState::Firing] {
            return m;
        }
    }
    panic!("never fired");
}

#[test]
fn restart_restores_for_state_from_alerts_for_state() {
    // Without a grace period the 10m timer continues, extended by the 1m outage.
    let m = restart_scenario(RestoreOptions { grace_period: Duration::ZERO, ..RestoreOptions::default() });
    assert_eq!(m, 11, "pending 8m, down 1m: fires at minute 11, not 19");
    // Prometheus's default grace period (10m): remaining 2m < 10m, so it fires 10m after restart.
    assert_eq!(restart_scenario(RestoreOptions::default()), 19);
}

#[test]
fn template_error_in_annotation_renders_visible_string() {
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    annotations:\n      s: '{{ query \"nope\" | first }}'\n",
    );
    let e = engine("x", |_| vec![Sample { labels: Labels::new(), value: 1.0 }]);
    g.eval(0, &e, &mut Recorder::default(), &RuleContext::default(), None);
    let Rule::Alerting(a) = &g.rules[0] else { panic!() };
    let s = &a.active.values().next().unwrap().annotations["s"];
    assert!(s.starts_with("<error expanding template: "), "{s}");
    assert_eq!(g.status[0].health, "ok");
}

#[test]
fn recording_rule_sets_name_and_labels_and_rejects_duplicates() {
    let mut g = group(
        "groups:\n- name: g\n  labels: {team: a}\n  rules:\n  - record: job:up:sum\n    expr: s\n    labels: {env: prod}\n",
    );
    let e = engine("s", |t| {
        let mut v = vec![Sample { labels: lbl(&[("__name__", "up"), ("job", "j")]), value: 3.0 }];
        if t > 0 {
            v.push(Sample { labels: lbl(&[("job", "j")]), value: 4.0 });
        }
        v
    });
    let mut rec = Recorder::default();
    g.eval(0, &e, &mut rec, &RuleContext::default(), None);
    assert_eq!(rec.0, vec![(lbl(&[("__name__", "job:up:sum"), ("env", "prod"), ("job", "j"), ("team", "a")]), 0, 3.0)]);
    g.eval(MIN, &e, &mut rec, &RuleContext::default(), None);
    assert_eq!(g.status[0].health, "err");
    assert!(g.status[0].last_error.as_deref().unwrap().contains("same labelset"));
}

#[test]
fn api_shapes_and_filters() {
    use crate::api::{RulesFilter, alerts_data, rules_data};
    let mut g = group(CPU);
    let e = engine("cpu > 70", |_| vec![Sample { labels: lbl(&[("instance", "a")]), value: 90.0 }]);
    g.eval(0, &e, &mut Recorder::default(), &RuleContext::default(), None);
    let d = rules_data(std::slice::from_ref(&g), &RulesFilter::default());
    let r = &d["groups"][0]["rules"][0];
    assert_eq!(d["groups"][0]["file"], "t.yml");
    assert_eq!(r["type"], "alerting");
    assert_eq!(r["state"], "pending");
    assert_eq!(r["duration"], 300.0);
    assert_eq!(r["health"], "ok");
    assert_eq!(r["alerts"][0]["value"], "9e+01");
    assert_eq!(r["alerts"][0]["activeAt"], "1970-01-01T00:00:00Z");
    assert_eq!(r["alerts"][0]["labels"]["alertname"], "HighCpu");
    let none =
        rules_data(std::slice::from_ref(&g), &RulesFilter { kind: Some("record".into()), ..RulesFilter::default() });
    assert_eq!(none["groups"].as_array().unwrap().len(), 0);
    let a = alerts_data(&[g]);
    assert_eq!(a["alerts"][0]["state"], "pending");
    assert_eq!(a["alerts"][0]["annotations"]["summary"], "CPU a at 90%");
}

#[test]
fn resend_delay_and_resolved_sending() {
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n");
    let e = engine("x", |t| if t <= 3 * MIN { vec![Sample { labels: Labels::new(), value: 1.0 }] } else { vec![] });
    let mut sent = Vec::new();
    for m in 0..=5 {
        g.eval(m * MIN, &e, &mut Recorder::default(), &RuleContext::default(), None);
        let Rule::Alerting(a) = &mut g.rules[0] else { panic!() };
        for o in a.alerts_to_send(m * MIN, Duration::from_secs(120), Duration::from_secs(60)) {
            sent.push((m, o.ends_at_ms));
        }
    }
    // Firing at 0 (sent, valid 8m), resent at 2 (resend delay 2m), resolved at 4 (sent once).
    assert_eq!(sent, vec![(0, 8 * MIN), (2, 10 * MIN), (4, 4 * MIN)]);
}
