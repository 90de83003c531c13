//! `/api/v1/rules` and `/api/v1/alerts` response bodies in Prometheus's JSON shapes.

use serde_json::{Value, json};

use crate::alerting::Alert;
use crate::group::{Rule, RuleGroup, RuleStatus};
use crate::template::fmt_g;
use crate::template::funcs::civil;

/// Filters of `/api/v1/rules` (`type`, `rule_name[]`, `group_name[]`, `file[]`).
#[derive(Debug, Clone, Default)]
pub struct RulesFilter {
    /// `alert` or `record`; `None` for both.
    pub kind: Option<String>,
    /// Only these rule names (empty = all).
    pub rule_names: Vec<String>,
    /// Only these groups (empty = all).
    pub group_names: Vec<String>,
    /// Only these files (empty = all).
    pub files: Vec<String>,
    /// Omit the `alerts` list of alerting rules (`exclude_alerts=true`).
    pub exclude_alerts: bool,
}

/// RFC 3339 UTC time from Unix milliseconds, as Go marshals `time.Time` (trailing zeros trimmed).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let (y, mo, d) = civil(secs.div_euclid(86400));
    let r = secs.rem_euclid(86400);
    let mut s = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", r / 3600, (r / 60) % 60, r % 60);
    if frac != 0 {
        s.push('.');
        s.push_str(format!("{frac:03}").trim_end_matches('0'));
    }
    s.push('Z');
    s
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A Prometheus float as the API renders it (a string).
pub fn api_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        // strconv.FormatFloat(v, 'e', -1, 64)
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

/// A float as Go's `encoding/json` writes it: whole numbers without a fraction (`1`, not `1.0`).
pub fn go_number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 { json!(v as i64) } else { json!(v) }
}

fn alert_json(a: &Alert) -> Value {
    let mut v = json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at_ms),
        "value": api_float(a.value),
    });
    if let Some(k) = a.keep_firing_since_ms {
        v["keepFiringSince"] = json!(rfc3339(k));
    }
    v
}

fn status_fields(v: &mut Value, st: &RuleStatus) {
    v["health"] = json!(st.health);
    v["evaluationTime"] = go_number(st.eval_duration.as_secs_f64());
    v["lastEvaluation"] = json!(st.last_eval_ms.map_or_else(|| ZERO_TIME.to_string(), rfc3339));
    if let Some(e) = &st.last_error {
        v["lastError"] = json!(e);
    }
}

/// The `data` of `/api/v1/rules`.
pub fn rules_data(groups: &[RuleGroup], f: &RulesFilter) -> Value {
    let mut out = Vec::new();
    for g in groups {
        let file = g.spec.file.display().to_string();
        if (!f.group_names.is_empty() && !f.group_names.contains(&g.spec.name))
            || (!f.files.is_empty() && !f.files.contains(&file))
        {
            continue;
        }
        let mut rules = Vec::new();
        for (r, st) in g.rules.iter().zip(&g.status) {
            let mut v = match r {
                Rule::Recording { name, expr, labels } => {
                    if f.kind.as_deref() == Some("alert") || (!f.rule_names.is_empty() && !f.rule_names.contains(name))
                    {
                        continue;
                    }
                    // Prometheus's recording rule `labels` is `omitempty`.
                    let mut v = json!({"name": name, "query": expr, "type": "recording"});
                    if !labels.is_empty() {
                        v["labels"] = json!(labels);
                    }
                    v
                }
                Rule::Alerting(a) => {
                    if f.kind.as_deref() == Some("record")
                        || (!f.rule_names.is_empty() && !f.rule_names.contains(&a.name))
                    {
                        continue;
                    }
                    let active: Vec<&Alert> = a.active_alerts().collect();
                    let state = if active.iter().any(|x| x.state == crate::alerting::AlertState::Firing) {
                        "firing"
                    } else if active.is_empty() {
                        "inactive"
                    } else {
                        "pending"
                    };
                    let mut v = json!({
                        "state": state, "name": a.name, "query": a.expr,
                        "duration": go_number(a.hold.as_secs_f64()),
                        "keepFiringFor": go_number(a.keep_firing_for.as_secs_f64()),
                        "labels": a.labels, "annotations": a.annotations, "type": "alerting",
                    });
                    if !f.exclude_alerts {
                        v["alerts"] = Value::Array(active.into_iter().map(alert_json).collect());
                    }
                    v
                }
            };
            status_fields(&mut v, st);
            rules.push(v);
        }
        if rules.is_empty() && (!f.rule_names.is_empty() || f.kind.is_some()) {
            continue;
        }
        out.push(json!({
            "name": g.spec.name, "file": file, "rules": rules,
            "interval": go_number(g.interval.as_secs_f64()), "limit": g.spec.limit,
            "evaluationTime": go_number(g.metrics.last_duration.as_secs_f64()),
            "lastEvaluation": if g.metrics.iterations == 0 { ZERO_TIME.to_string() } else { rfc3339(g.metrics.last_eval_ms) },
        }));
    }
    json!({ "groups": out })
}

/// The `data` of `/api/v1/alerts`: every pending or firing alert.
pub fn alerts_data(groups: &[RuleGroup]) -> Value {
    let alerts: Vec<Value> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter_map(|r| if let Rule::Alerting(a) = r { Some(a) } else { None })
        .flat_map(|a| a.active_alerts().map(alert_json))
        .collect();
    json!({ "alerts": alerts })
}

/// Wraps `data` in Prometheus's success envelope.
pub fn success(data: &Value) -> Value {
    json!({"status": "success", "data": data})
}

/// `$value` as Go's `%v` would print it (for notifications).
pub fn go_value(v: f64) -> String {
    fmt_g(v, None, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_floats_render_as_prometheus() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_435_065_584_128), "2015-06-23T13:19:44.128Z");
        assert_eq!(api_float(90.0), "9e+01");
        assert_eq!(api_float(1.5), "1.5e+00");
        assert_eq!(api_float(0.001), "1e-03");
    }
}
