//! Built-in receivers: Alertmanager-webhook JSON, Slack incoming webhooks, Telegram Bot API
//! `sendMessage`; posting with retries and exponential backoff on 5xx and network errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Label set.
pub type Labels = BTreeMap<String, String>;

/// A receiver (`[[notify.receiver]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Receiver {
    /// POSTs Alertmanager's webhook JSON to `url`.
    Webhook {
        /// Receiver name.
        name: String,
        /// Target URL.
        url: String,
    },
    /// Slack incoming webhook.
    Slack {
        /// Receiver name.
        name: String,
        /// The incoming-webhook URL.
        api_url: String,
        /// Channel override.
        #[serde(default)]
        channel: Option<String>,
    },
    /// Telegram Bot API `sendMessage`.
    Telegram {
        /// Receiver name.
        name: String,
        /// API base (default `https://api.telegram.org`).
        #[serde(default = "telegram_api")]
        api_url: String,
        /// Bot token (never logged).
        bot_token: String,
        /// Chat id.
        chat_id: i64,
        /// Forum topic.
        #[serde(default)]
        message_thread_id: Option<i64>,
    },
}

fn telegram_api() -> String {
    "https://api.telegram.org".into()
}

impl Receiver {
    /// The receiver's name.
    pub fn name(&self) -> &str {
        match self {
            Receiver::Webhook { name, .. } | Receiver::Slack { name, .. } | Receiver::Telegram { name, .. } => name,
        }
    }
}

/// One alert in a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyAlert {
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// RFC 3339 start.
    pub starts_at: String,
    /// RFC 3339 end (resolved) or empty.
    pub ends_at: String,
    /// Resolved?
    pub resolved: bool,
}

/// A notification for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Receiver name.
    pub receiver: String,
    /// Group key (route + group_by values).
    pub group_key: String,
    /// The group_by labels and values.
    pub group_labels: Labels,
    /// Alerts, firing first.
    pub alerts: Vec<NotifyAlert>,
    /// External URL of the collector.
    pub external_url: String,
}

impl Notification {
    fn firing(&self) -> impl Iterator<Item = &NotifyAlert> {
        self.alerts.iter().filter(|a| !a.resolved)
    }

    fn status(&self) -> &'static str {
        if self.firing().next().is_some() { "firing" } else { "resolved" }
    }

    fn common(&self, f: impl Fn(&NotifyAlert) -> &Labels) -> Labels {
        let mut it = self.alerts.iter();
        let Some(first) = it.next() else { return Labels::new() };
        let mut c = f(first).clone();
        for a in it {
            c.retain(|k, v| f(a).get(k) == Some(v));
        }
        c
    }

    /// Alertmanager's webhook payload (version 4).
    pub fn webhook_body(&self) -> Value {
        let alerts: Vec<Value> = self
            .alerts
            .iter()
            .map(|a| {
                json!({
                    "status": if a.resolved { "resolved" } else { "firing" },
                    "labels": a.labels, "annotations": a.annotations,
                    "startsAt": a.starts_at,
                    "endsAt": if a.ends_at.is_empty() { "0001-01-01T00:00:00Z" } else { a.ends_at.as_str() },
                    "generatorURL": "", "fingerprint": fingerprint(&a.labels),
                })
            })
            .collect();
        json!({
            "version": "4", "groupKey": self.group_key, "truncatedAlerts": 0,
            "status": self.status(), "receiver": self.receiver,
            "groupLabels": self.group_labels,
            "commonLabels": self.common(|a| &a.labels),
            "commonAnnotations": self.common(|a| &a.annotations),
            "externalURL": self.external_url, "alerts": alerts,
        })
    }

    /// A readable plain-text summary (Slack mrkdwn-safe).
    pub fn text(&self, html: bool) -> String {
        let n_firing = self.firing().count();
        let n_resolved = self.alerts.len() - n_firing;
        let alertname = self.common(|a| &a.labels).get("alertname").cloned().unwrap_or_else(|| "alerts".into());
        let esc = |s: &str| {
            if html { s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;") } else { s.to_string() }
        };
        let mut out = String::new();
        let head = if n_firing > 0 {
            format!("[FIRING:{n_firing}] {}", esc(&alertname))
        } else {
            format!("[RESOLVED] {}", esc(&alertname))
        };
        if html {
            let _ = write!(out, "<b>{head}</b>");
        } else {
            let _ = write!(out, "*{head}*");
        }
        if n_firing > 0 && n_resolved > 0 {
            let _ = write!(out, " ({n_resolved} resolved)");
        }
        for a in &self.alerts {
            let what =
                a.annotations.get("summary").or_else(|| a.annotations.get("description")).cloned().unwrap_or_else(
                    || {
                        a.labels
                            .iter()
                            .filter(|(k, _)| *k != "alertname")
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    },
                );
            let _ = write!(out, "\n{} {}", if a.resolved { "✅" } else { "🔥" }, esc(&what));
        }
        out
    }

    /// (URL, JSON body) for `r`.
    pub fn request_for(&self, r: &Receiver) -> (String, Value) {
        match r {
            Receiver::Webhook { url, .. } => (url.clone(), self.webhook_body()),
            Receiver::Slack { api_url, channel, .. } => {
                let mut b = json!({"text": self.text(false)});
                if let Some(c) = channel {
                    b["channel"] = json!(c);
                }
                (api_url.clone(), b)
            }
            Receiver::Telegram { api_url, bot_token, chat_id, message_thread_id, .. } => {
                let mut b = json!({"chat_id": chat_id, "text": self.text(true), "parse_mode": "HTML", "disable_web_page_preview": true});
                if let Some(t) = message_thread_id {
                    b["message_thread_id"] = json!(t);
                }
                (format!("{}/bot{bot_token}/sendMessage", api_url.trim_end_matches('/')), b)
            }
        }
    }
}

/// A stable 16-hex-digit fingerprint of a label set (FNV-1a).
pub fn fingerprint(l: &Labels) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in l {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Retry policy for posting.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in total.
    pub attempts: u32,
    /// First backoff; doubles each retry.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 5, backoff: Duration::from_secs(1) }
    }
}

/// POSTs `body` to `url`, retrying 5xx, 429 and network errors with exponential backoff;
/// `sleep` is injected so tests do not wait. Returns the attempts used.
pub async fn post_with_retry<F, Fut>(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    retry: Retry,
    sleep: F,
) -> Result<u32, String>
where
    F: Fn(Duration) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut wait = retry.backoff;
    let mut last = String::new();
    for attempt in 1..=retry.attempts.max(1) {
        match client.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return Ok(attempt),
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                last = format!("status {}", r.status());
            }
            Ok(r) => return Err(format!("status {} (not retried)", r.status())),
            Err(e) => last = e.without_url().to_string(),
        }
        if attempt < retry.attempts {
            sleep(wait).await;
            wait *= 2;
        }
    }
    Err(format!("giving up after {} attempts: {last}", retry.attempts))
}
