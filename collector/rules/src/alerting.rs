//! The alerting rule state machine: inactive → pending → firing → resolved, with `for`,
//! `keep_firing_for`, `limit`, `ALERTS` / `ALERTS_FOR_STATE`, and restore after a restart.
//! Semantics follow Prometheus's `rules/alerting.go` and `RestoreForState`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::eval::{ForStateSource, Labels, QueryEngine, Sample};
use crate::file::RuleSpec;
use crate::template::{AlertTemplateData, Samples, TemplateQuery, expand_alert_template};

/// How long a resolved alert is kept (and re-sent) after resolving.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// Alert state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Resolved / not active.
    Inactive,
    /// Condition true, `for` not yet elapsed.
    Pending,
    /// Firing.
    Firing,
}

impl AlertState {
    /// Prometheus's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Labels: series labels + rule labels + `alertname`.
    pub labels: Labels,
    /// Rendered annotations.
    pub annotations: Labels,
    /// State.
    pub state: AlertState,
    /// Last value.
    pub value: f64,
    /// When it became active (ms).
    pub active_at_ms: i64,
    /// When it started firing (ms).
    pub fired_at_ms: Option<i64>,
    /// When it resolved (ms).
    pub resolved_at_ms: Option<i64>,
    /// Since when it is kept firing after the condition cleared (ms).
    pub keep_firing_since_ms: Option<i64>,
    /// When it was last handed to the notifier (ms).
    pub last_sent_at_ms: Option<i64>,
}

/// An alert to hand to the notifier (Alertmanager's `startsAt`/`endsAt` in ms).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingAlert {
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// `startsAt`.
    pub starts_at_ms: i64,
    /// `endsAt`: the resolve time, or a validity horizon for firing alerts.
    pub ends_at_ms: i64,
}

/// Template and evaluation context shared by a group's rules.
#[derive(Debug, Clone, Default)]
pub struct RuleContext {
    /// External labels (`$externalLabels`).
    pub external_labels: Labels,
    /// External URL (`$externalURL`).
    pub external_url: String,
}

/// An alerting rule with its active alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// Alert name.
    pub name: String,
    /// Expression.
    pub expr: String,
    /// `for`.
    pub hold: Duration,
    /// `keep_firing_for`.
    pub keep_firing_for: Duration,
    /// Labels (templates).
    pub labels: Labels,
    /// Annotations (templates).
    pub annotations: Labels,
    /// Active alerts by label set.
    pub active: BTreeMap<Labels, Alert>,
    /// Whether `for` state was restored.
    pub restored: bool,
}

struct EngineAt<'a> {
    engine: &'a dyn QueryEngine,
    t_ms: i64,
}

impl TemplateQuery for EngineAt<'_> {
    fn query(&self, expr: &str) -> Result<Samples, String> {
        self.engine
            .instant(expr, self.t_ms)
            .map(|v| v.into_iter().map(|s| (s.labels, s.value)).collect())
            .map_err(|e| e.0)
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

impl AlertingRule {
    /// Builds the rule from its spec; group labels are applied under the rule's own.
    pub fn new(spec: &RuleSpec, name: &str, group_labels: &Labels) -> Self {
        let mut labels = group_labels.clone();
        labels.extend(spec.labels.clone());
        Self {
            name: name.to_string(),
            expr: spec.expr.clone(),
            hold: spec.for_,
            keep_firing_for: spec.keep_firing_for,
            labels,
            annotations: spec.annotations.clone(),
            active: BTreeMap::new(),
            restored: false,
        }
    }

    /// Evaluates at `ts_ms` (the query runs at `ts_ms - query_offset`), updates the state
    /// machine and returns the `ALERTS` samples for this evaluation.
    pub fn eval(
        &mut self,
        ts_ms: i64,
        query_offset: Duration,
        limit: u64,
        engine: &dyn QueryEngine,
        ctx: &RuleContext,
    ) -> Result<Vec<Sample>, String> {
        let qt = ts_ms - ms(query_offset);
        let res = engine.instant(&self.expr, qt).map_err(|e| e.0)?;
        let tq = EngineAt { engine, t_ms: qt };
        let mut seen: BTreeMap<Labels, Alert> = BTreeMap::new();
        for s in res {
            let mut base = s.labels.clone();
            base.remove("__name__");
            let data = AlertTemplateData {
                labels: &base,
                external_labels: &ctx.external_labels,
                external_url: &ctx.external_url,
                value: s.value,
            };
            let tname = format!("__alert_{}", self.name);
            let mut lbls = base.clone();
            for (k, v) in &self.labels {
                let out = expand_alert_template(&tname, v, &data, Some(&tq));
                if out.is_empty() {
                    lbls.remove(k);
                } else {
                    lbls.insert(k.clone(), out);
                }
            }
            lbls.insert("alertname".into(), self.name.clone());
            let annotations: Labels = self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), expand_alert_template(&tname, v, &data, Some(&tq))))
                .collect();
            if seen.contains_key(&lbls) {
                return Err("vector contains metrics with the same labelset after applying alert labels".into());
            }
            let alert = Alert {
                labels: lbls.clone(),
                annotations,
                state: AlertState::Pending,
                value: s.value,
                active_at_ms: ts_ms,
                fired_at_ms: None,
                resolved_at_ms: None,
                keep_firing_since_ms: None,
                last_sent_at_ms: None,
            };
            seen.insert(lbls, alert);
        }
        for (lbls, new) in &seen {
            match self.active.get_mut(lbls) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = new.value;
                    a.annotations.clone_from(&new.annotations);
                    a.keep_firing_since_ms = None;
                }
                _ => {
                    self.active.insert(lbls.clone(), new.clone());
                }
            }
        }
        // Alerts no longer returned: keep firing, resolve, or forget.
        let mut remove = Vec::new();
        for (lbls, a) in &mut self.active {
            if seen.contains_key(lbls) {
                continue;
            }
            if a.state == AlertState::Firing && !self.keep_firing_for.is_zero() {
                let since = *a.keep_firing_since_ms.get_or_insert(ts_ms);
                if ts_ms - since < ms(self.keep_firing_for) {
                    continue;
                }
            }
            if a.state == AlertState::Pending || a.resolved_at_ms.is_some_and(|r| ts_ms - r > ms(RESOLVED_RETENTION)) {
                remove.push(lbls.clone());
                continue;
            }
            if a.state != AlertState::Inactive {
                a.state = AlertState::Inactive;
                a.resolved_at_ms = Some(ts_ms);
                a.keep_firing_since_ms = None;
            }
        }
        for l in remove {
            self.active.remove(&l);
        }
        let n_active = self.active.values().filter(|a| a.state != AlertState::Inactive).count();
        if limit > 0 && n_active as u64 > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {n_active} alerts"));
        }
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.state == AlertState::Pending && ts_ms - a.active_at_ms >= ms(self.hold) {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(ts_ms);
            }
            if a.state != AlertState::Inactive {
                let mut l = a.labels.clone();
                l.insert("__name__".into(), "ALERTS".into());
                l.insert("alertstate".into(), a.state.as_str().into());
                out.push(Sample { labels: l, value: 1.0 });
            }
        }
        Ok(out)
    }

    /// `ALERTS_FOR_STATE` samples: each active alert's `ActiveAt` in Unix seconds.
    pub fn for_state_samples(&self) -> Vec<Sample> {
        self.active
            .values()
            .filter(|a| a.state != AlertState::Inactive)
            .map(|a| {
                let mut l = a.labels.clone();
                l.insert("__name__".into(), "ALERTS_FOR_STATE".into());
                Sample { labels: l, value: a.active_at_ms as f64 / 1000.0 }
            })
            .collect()
    }

    /// Alerts due for (re)sending at `ts_ms`, as Prometheus's `sendAlerts`: firing alerts every
    /// `resend_delay`, resolved ones once (and again within the retention); pending never.
    /// Firing alerts get `endsAt = ts + 4 × max(resend_delay, interval)`.
    pub fn alerts_to_send(&mut self, ts_ms: i64, resend_delay: Duration, interval: Duration) -> Vec<OutgoingAlert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.state == AlertState::Pending {
                continue;
            }
            let due = match (a.resolved_at_ms, a.last_sent_at_ms) {
                (_, None) => true,
                (Some(r), Some(last)) if last < r => true,
                (_, Some(last)) => last + ms(resend_delay) <= ts_ms,
            };
            if !due {
                continue;
            }
            a.last_sent_at_ms = Some(ts_ms);
            let ends = a.resolved_at_ms.unwrap_or(ts_ms + 4 * ms(resend_delay.max(interval)));
            out.push(OutgoingAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
                ends_at_ms: ends,
            });
        }
        out
    }

    /// Alerts that are pending or firing.
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().filter(|a| a.state != AlertState::Inactive)
    }

    /// Restores `for` state from `ALERTS_FOR_STATE` after the first evaluation following a
    /// restart (Prometheus's `RestoreForState`): `outage_tolerance` bounds how far back to look,
    /// `grace_period` is the minimum time left before an alert may fire after restore.
    pub fn restore_for_state(
        &mut self,
        ts_ms: i64,
        src: &dyn ForStateSource,
        outage_tolerance: Duration,
        grace_period: Duration,
    ) {
        self.restored = true;
        if self.hold < grace_period || self.hold.is_zero() {
            return;
        }
        let hold = ms(self.hold);
        for a in self.active.values_mut() {
            let mut l = a.labels.clone();
            l.insert("__name__".into(), "ALERTS_FOR_STATE".into());
            let Some((down_at, v)) = src.last_sample(&l, ts_ms - ms(outage_tolerance), ts_ms) else { continue };
            let mut restored_active = (v * 1000.0) as i64;
            let remaining = hold - (down_at - restored_active);
            if remaining <= 0 {
                // It was firing when we went down; the next evaluation fires it again.
            } else if remaining < ms(grace_period) {
                restored_active = ts_ms + ms(grace_period) - hold;
            } else {
                restored_active += ts_ms - down_at;
            }
            a.active_at_ms = restored_active;
        }
    }
}
