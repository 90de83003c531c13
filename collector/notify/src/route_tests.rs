//! Dispatcher and receiver tests: injected clock, local HTTP servers for Slack/Telegram.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::receivers::{Receiver, Retry, post_with_retry};

const S: i64 = 1000;

fn alert(host: &str, resolved: bool) -> InAlert {
    InAlert {
        labels: [("alertname", "HostHighCpu"), ("instance", host), ("severity", "warning")]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        annotations: [("summary".to_string(), format!("CPU of {host} above 70%"))].into(),
        starts_at: "2026-01-01T00:00:00Z".into(),
        ends_at: if resolved { "2026-01-01T00:10:00Z".into() } else { String::new() },
        resolved,
    }
}

fn route() -> Route {
    Route {
        receiver: "tg".into(),
        matchers: vec!["severity=~\"warning|critical\"".parse().unwrap()],
        group_by: vec!["alertname".into()],
        group_wait: 30,
        group_interval: 300,
        repeat_interval: 3600,
        continue_: false,
    }
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("osprey-notify-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn ten_alerts_same_group_make_one_message_after_group_wait() {
    let mut d = Dispatcher::new(vec![route()], None, "http://osprey:9090");
    let alerts: Vec<InAlert> = (0..10).map(|i| alert(&format!("web-{i}"), false)).collect();
    d.ingest(&alerts, 0);
    assert!(d.due(29 * S).is_empty(), "group_wait not elapsed");
    let n = d.due(30 * S);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].alerts.len(), 10);
    assert_eq!(n[0].receiver, "tg");
    assert_eq!(n[0].group_labels["alertname"], "HostHighCpu");
}

#[test]
fn repeat_interval_and_resolved_notifications() {
    let mut d = Dispatcher::new(vec![route()], None, "");
    d.ingest(&[alert("a", false)], 0);
    assert_eq!(d.due(30 * S).len(), 1);
    d.ingest(&[alert("a", false)], 60 * S);
    assert!(d.due(330 * S).is_empty(), "unchanged group is not re-sent at group_interval");
    d.ingest(&[alert("a", false)], 3000 * S);
    assert!(d.due(3330 * S).is_empty());
    d.ingest(&[alert("a", false)], 3600 * S);
    assert_eq!(d.due(3630 * S).len(), 1, "re-sent after repeat_interval");
    d.ingest(&[alert("a", true)], 3700 * S);
    let n = d.due(3930 * S);
    assert_eq!(n.len(), 1);
    assert!(n[0].alerts[0].resolved);
    assert!(n[0].text(true).starts_with("<b>[RESOLVED] HostHighCpu</b>"));
    assert!(d.due(5000 * S).is_empty(), "resolved once, then the group is gone");
}

#[test]
fn silences_mute_until_expiry_and_can_be_deleted() {
    let mut d = Dispatcher::new(vec![route()], None, "");
    let id = d.add_silence(Silence {
        id: String::new(),
        matchers: vec!["instance=\"a\"".parse().unwrap()],
        starts_at_ms: 0,
        ends_at_ms: 600 * S,
        created_by: "ops".into(),
        comment: "maintenance".into(),
    });
    d.ingest(&[alert("a", false), alert("b", false)], 0);
    let n = d.due(30 * S);
    assert_eq!(n[0].alerts.len(), 1);
    assert_eq!(n[0].alerts[0].labels["instance"], "b");
    assert!(d.delete_silence(&id));
    d.ingest(&[alert("a", false), alert("b", false)], 100 * S);
    let n = d.due(330 * S);
    assert_eq!(n.len(), 1, "a is new after the silence is gone");
    assert_eq!(n[0].alerts.len(), 2);
    let json = serde_json::to_value(&d.silences).unwrap();
    assert_eq!(json, serde_json::json!([]));
}

#[test]
fn no_duplicate_page_after_restart() {
    let state = tmp("state");
    let mut d = Dispatcher::new(vec![route()], Some(state.clone()), "");
    d.ingest(&[alert("a", false)], 0);
    assert_eq!(d.due(30 * S).len(), 1);
    drop(d);
    // Restart: same alert re-arrives from the rule engine.
    let mut d = Dispatcher::new(vec![route()], Some(state.clone()), "");
    d.ingest(&[alert("a", false)], 100 * S);
    assert!(d.due(130 * S).is_empty(), "already paged before the restart");
    d.ingest(&[alert("a", false)], 3600 * S);
    assert_eq!(d.due(3630 * S).len(), 1, "repeat interval still applies");
    let _ = std::fs::remove_file(state);
}

#[test]
fn matchers_parse_and_reject_bad_input() {
    let m: Matcher = "job!~\"node|db\"".parse().unwrap();
    assert!(m.matches(&[("job".to_string(), "web".to_string())].into()));
    assert!(!m.matches(&[("job".to_string(), "db".to_string())].into()));
    assert!("=\"x\"".parse::<Matcher>().is_err());
    assert!("a=~\"(\"".parse::<Matcher>().is_err());
    assert!("novalue".parse::<Matcher>().is_err());
}

/// A local HTTP server standing in for Slack/Telegram: answers with `statuses` in turn (then
/// 200) and records request lines and bodies.
async fn stand_in(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter();
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), String::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text[..i]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break (
                            text[..i].lines().next().unwrap_or_default().to_string(),
                            text[i + 4..i + 4 + len].to_string(),
                        );
                    }
                }
            };
            seen2.lock().unwrap().push((head, body));
            let code = statuses.next().unwrap_or(200);
            let resp = format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn telegram_and_slack_exact_bodies_with_retries_on_5xx() {
    let (base, seen) = stand_in(vec![500, 502]).await;
    let mut d = Dispatcher::new(vec![route()], None, "");
    d.ingest(&[alert("web-1", false), alert("web-2", false)], 0);
    let n = d.due(30 * S).remove(0);
    let tg = Receiver::Telegram {
        name: "tg".into(),
        api_url: base.clone(),
        bot_token: "123:ABC".into(),
        chat_id: -100,
        message_thread_id: Some(7),
    };
    let (url, body) = n.request_for(&tg);
    let slept = Arc::new(Mutex::new(Vec::new()));
    let s2 = slept.clone();
    let attempts =
        post_with_retry(&client(), &url, &body, Retry { attempts: 4, backoff: Duration::from_millis(100) }, move |d| {
            s2.lock().unwrap().push(d);
            async {}
        })
        .await
        .unwrap();
    assert_eq!(attempts, 3, "two 5xx then success");
    assert_eq!(
        *slept.lock().unwrap(),
        vec![Duration::from_millis(100), Duration::from_millis(200)],
        "exponential backoff"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].0, "POST /bot123:ABC/sendMessage HTTP/1.1");
    let got: serde_json::Value = serde_json::from_str(&seen[2].1).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "chat_id": -100, "message_thread_id": 7, "parse_mode": "HTML", "disable_web_page_preview": true,
            "text": "<b>[FIRING:2] HostHighCpu</b>\n🔥 CPU of web-1 above 70%\n🔥 CPU of web-2 above 70%"
        })
    );
    let (base, seen) = stand_in(vec![]).await;
    let slack =
        Receiver::Slack { name: "s".into(), api_url: format!("{base}/services/T/B/X"), channel: Some("#ops".into()) };
    let (url, body) = n.request_for(&slack);
    post_with_retry(&client(), &url, &body, Retry::default(), |_| async {}).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "POST /services/T/B/X HTTP/1.1");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&seen[0].1).unwrap(),
        serde_json::json!({"channel": "#ops", "text": "*[FIRING:2] HostHighCpu*\n🔥 CPU of web-1 above 70%\n🔥 CPU of web-2 above 70%"})
    );
    // A 4xx is not retried.
    let (base, seen) = stand_in(vec![400]).await;
    let err = post_with_retry(&client(), &base, &body, Retry::default(), |_| async {}).await.unwrap_err();
    assert!(err.contains("not retried"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn webhook_body_is_alertmanager_webhook_json() {
    let mut d = Dispatcher::new(vec![route()], None, "http://osprey:9090");
    d.ingest(&[alert("a", false)], 0);
    let n = d.due(30 * S).remove(0);
    let b = n.webhook_body();
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "tg");
    assert_eq!(b["groupLabels"], serde_json::json!({"alertname": "HostHighCpu"}));
    assert_eq!(b["commonLabels"]["instance"], "a");
    assert_eq!(b["externalURL"], "http://osprey:9090");
    assert_eq!(b["alerts"][0]["status"], "firing");
    assert_eq!(b["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(b["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
}
