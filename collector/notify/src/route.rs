//! Built-in routing for fleets without an Alertmanager: routes with matchers, `group_by`,
//! `group_wait` / `group_interval` / `repeat_interval`, `continue`; silences; notification
//! state persisted to a file so a restart does not re-page. Time is injected (`now_ms`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::receivers::{Labels, Notification, NotifyAlert, fingerprint};

/// A label matcher: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Matcher {
    name: String,
    op: String,
    value: String,
    re: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl TryFrom<String> for Matcher {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Matcher> for String {
    fn from(m: Matcher) -> String {
        format!("{}{}{:?}", m.name, m.op, m.value)
    }
}

impl std::str::FromStr for Matcher {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let i = s.find(['=', '!']).ok_or_else(|| format!("matcher {s:?}: expected name=\"value\""))?;
        let name = s[..i].trim().to_string();
        let rest = &s[i..];
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|o| rest.starts_with(o))
            .ok_or_else(|| format!("matcher {s:?}: bad operator"))?;
        let raw = rest[op.len()..].trim();
        let value = raw.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(raw).to_string();
        if name.is_empty() {
            return Err(format!("matcher {s:?}: empty label name"));
        }
        let re = if op.ends_with('~') {
            Some(regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| format!("matcher {s:?}: {e}"))?)
        } else {
            None
        };
        Ok(Self { name, op: op.to_string(), value, re })
    }
}

impl Matcher {
    /// Whether `l` matches (a missing label is the empty string).
    pub fn matches(&self, l: &Labels) -> bool {
        let v = l.get(&self.name).map_or("", String::as_str);
        match self.op.as_str() {
            "=" => v == self.value,
            "!=" => v != self.value,
            "=~" => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            _ => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// A route (`[[notify.route]]`); durations are seconds, written as a number (`30`) or a
/// Prometheus duration (`"30s"`, `"4h"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Receiver name.
    pub receiver: String,
    /// All must match (empty = everything).
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Labels that form a group (empty = one group per route).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Wait before the first notification of a new group (default 30s).
    #[serde(default = "d30", deserialize_with = "seconds")]
    pub group_wait: u64,
    /// Wait between notifications about changes of a group (default 5m).
    #[serde(default = "d300", deserialize_with = "seconds")]
    pub group_interval: u64,
    /// Re-send an unchanged firing group after this long (default 4h).
    #[serde(default = "d14400", deserialize_with = "seconds")]
    pub repeat_interval: u64,
    /// Keep matching later routes.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
}

/// Seconds from a number or a Prometheus duration string (sub-second parts rounded up).
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Secs {
        N(u64),
        S(String),
    }
    match Secs::deserialize(d)? {
        Secs::N(n) => Ok(n),
        Secs::S(s) => agent_core::duration::parse_duration(&s)
            .map(|d| d.as_millis().div_ceil(1000) as u64)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}"))),
    }
}

fn d30() -> u64 {
    30
}
fn d300() -> u64 {
    300
}
fn d14400() -> u64 {
    14400
}

/// A silence (`POST /api/v1/silences`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Matchers, all must match.
    pub matchers: Vec<Matcher>,
    /// Start (ms).
    pub starts_at_ms: i64,
    /// Expiry (ms).
    pub ends_at_ms: i64,
    /// Who.
    #[serde(default)]
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

impl Silence {
    /// Whether it silences `l` at `now_ms`.
    pub fn mutes(&self, l: &Labels, now_ms: i64) -> bool {
        self.starts_at_ms <= now_ms && now_ms < self.ends_at_ms && self.matchers.iter().all(|m| m.matches(l))
    }
}

/// An alert as the dispatcher receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InAlert {
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// RFC 3339 start.
    pub starts_at: String,
    /// RFC 3339 end when resolved.
    pub ends_at: String,
    /// Resolved?
    pub resolved: bool,
}

/// What was last sent for a group (persisted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// Fingerprints of firing alerts in the last notification.
    pub firing: BTreeSet<String>,
    /// When (ms).
    pub at_ms: i64,
}

#[derive(Debug, Clone, Default)]
struct Group {
    route: usize,
    labels: Labels,
    alerts: BTreeMap<String, InAlert>,
    next_flush_ms: i64,
    changed: bool,
}

/// The dispatcher.
#[derive(Debug)]
pub struct Dispatcher {
    routes: Vec<Route>,
    groups: BTreeMap<String, Group>,
    sent: BTreeMap<String, Sent>,
    /// Active silences.
    pub silences: Vec<Silence>,
    state_file: Option<PathBuf>,
    external_url: String,
    next_silence: u64,
}

impl Dispatcher {
    /// Creates a dispatcher; loads notification state from `state_file` if present.
    pub fn new(routes: Vec<Route>, state_file: Option<PathBuf>, external_url: &str) -> Self {
        let sent = state_file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            routes,
            groups: BTreeMap::new(),
            sent,
            silences: Vec::new(),
            state_file,
            external_url: external_url.into(),
            next_silence: 1,
        }
    }

    /// Adds a silence; returns its id.
    pub fn add_silence(&mut self, mut s: Silence) -> String {
        if s.id.is_empty() {
            s.id = format!("s{}", self.next_silence);
            self.next_silence += 1;
        }
        let id = s.id.clone();
        self.silences.retain(|x| x.id != id);
        self.silences.push(s);
        id
    }

    /// Expires (removes) a silence.
    pub fn delete_silence(&mut self, id: &str) -> bool {
        let n = self.silences.len();
        self.silences.retain(|s| s.id != id);
        n != self.silences.len()
    }

    /// Feeds alerts (firing or resolved) at `now_ms`.
    pub fn ingest(&mut self, alerts: &[InAlert], now_ms: i64) {
        for a in alerts {
            for (ri, r) in self.routes.iter().enumerate() {
                if !r.matchers.iter().all(|m| m.matches(&a.labels)) {
                    continue;
                }
                let gl: Labels =
                    r.group_by.iter().filter_map(|k| a.labels.get(k).map(|v| (k.clone(), v.clone()))).collect();
                let key = format!("{ri}:{}", serde_json::to_string(&gl).unwrap_or_default());
                let g = self.groups.entry(key).or_insert_with(|| Group {
                    route: ri,
                    labels: gl,
                    next_flush_ms: now_ms + r.group_wait as i64 * 1000,
                    ..Group::default()
                });
                let fp = fingerprint(&a.labels);
                if g.alerts.get(&fp).is_none_or(|old| old.resolved != a.resolved) {
                    g.changed = true;
                }
                g.alerts.insert(fp, a.clone());
                if !r.continue_ {
                    break;
                }
            }
        }
    }

    /// Notifications due at `now_ms` (call on a tick). Marks them as sent and persists state;
    /// the caller delivers them to receivers.
    pub fn due(&mut self, now_ms: i64) -> Vec<Notification> {
        self.silences.retain(|s| s.ends_at_ms > now_ms);
        let mut out = Vec::new();
        for (key, g) in &mut self.groups {
            if now_ms < g.next_flush_ms {
                continue;
            }
            let r = &self.routes[g.route];
            let visible: Vec<(&String, &InAlert)> =
                g.alerts.iter().filter(|(_, a)| !self.silences.iter().any(|s| s.mutes(&a.labels, now_ms))).collect();
            let firing: BTreeSet<String> =
                visible.iter().filter(|(_, a)| !a.resolved).map(|(f, _)| (*f).clone()).collect();
            let prev = self.sent.get(key).cloned().unwrap_or_default();
            let resolved_news: Vec<&InAlert> =
                visible.iter().filter(|(f, a)| a.resolved && prev.firing.contains(*f)).map(|(_, a)| *a).collect();
            let new_firing = !firing.is_subset(&prev.firing);
            let repeat = !firing.is_empty() && now_ms - prev.at_ms >= r.repeat_interval as i64 * 1000;
            g.next_flush_ms = now_ms + r.group_interval as i64 * 1000;
            if new_firing || !resolved_news.is_empty() || repeat {
                let mut alerts: Vec<NotifyAlert> = visible
                    .iter()
                    .filter(|(f, a)| !a.resolved || prev.firing.contains(*f))
                    .map(|(_, a)| NotifyAlert {
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        starts_at: a.starts_at.clone(),
                        ends_at: a.ends_at.clone(),
                        resolved: a.resolved,
                    })
                    .collect();
                alerts.sort_by(|a, b| (a.resolved, &a.labels).cmp(&(b.resolved, &b.labels)));
                out.push(Notification {
                    receiver: r.receiver.clone(),
                    group_key: key.clone(),
                    group_labels: g.labels.clone(),
                    alerts,
                    external_url: self.external_url.clone(),
                });
                self.sent.insert(key.clone(), Sent { firing, at_ms: now_ms });
            } else if firing.is_empty() && prev.firing.is_empty() {
                self.sent.remove(key);
            }
            g.alerts.retain(|_, a| !a.resolved);
            g.changed = false;
        }
        self.groups.retain(|_, g| !g.alerts.is_empty());
        if !out.is_empty() {
            self.persist();
        }
        out
    }

    fn persist(&self) {
        let Some(p) = &self.state_file else { return };
        let tmp = p.with_extension("tmp");
        if let Ok(b) = serde_json::to_vec(&self.sent)
            && std::fs::write(&tmp, b).is_ok()
        {
            let _ = std::fs::rename(&tmp, p);
        }
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
