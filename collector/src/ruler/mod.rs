//! Rules in the running collector: the groups of `rule_files` evaluated each on its own
//! interval (groups in parallel on their own tasks, rules in order), PromQL over the TSDB,
//! recording-rule output, `ALERTS` and `ALERTS_FOR_STATE` appended to the TSDB, `for` state
//! restored at start-up from `ALERTS_FOR_STATE`, alerts handed to [`notify::Notifications`].
//!
//! Reload replaces the rules atomically: the new files are loaded completely first; any error
//! (file, line, reason) rejects the reload and the running rules stay. Groups with the same file
//! and name keep their alerts' state.
//!
//! Evaluation timestamps are aligned to multiples of the group's interval (Prometheus offsets
//! each group by a hash of its name; alignment keeps ours reproducible).

pub mod adapters;
pub mod http;
pub mod notify;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osprey_notify::alertmanager::AmAlert;
use osprey_promql::Engine;
use osprey_rules::alerting::RuleContext;
use osprey_rules::api::rfc3339;
use osprey_rules::group::{RestoreOptions, Rule, RuleGroup};
use osprey_tsdb::Db;
use tokio::task::JoinHandle;

use self::adapters::{EngineAdapter, TsdbRuleAppender};
use self::notify::{Notifications, Outgoing};
use crate::api::{TsdbStorage, wall_clock_ms};
use crate::config::Config;
use crate::rules_eval::LastSampleSource;

/// Start-up options (Prometheus's `--rules.alert.*` flags and `--web.external-url`).
#[derive(Debug, Clone)]
pub struct RulerOptions {
    /// Restore tolerances (`--rules.alert.for-outage-tolerance`, `--rules.alert.for-grace-period`).
    pub restore: RestoreOptions,
    /// `$externalURL` and the base of `generatorURL`.
    pub external_url: String,
    /// Default place of the built-in dispatcher's state (`<data-dir>/notify-state.json`).
    pub notify_state: PathBuf,
    /// Discovery debounce for Alertmanager discovery.
    pub debounce: Duration,
}

/// Expands `rule_files` globs (already absolute) into files, sorted, each once. A pattern that
/// matches nothing is not an error (as Prometheus).
pub fn rule_files(patterns: &[String]) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for p in patterns {
        match glob::glob(p) {
            Ok(paths) => {
                let mut v: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
                v.sort();
                for f in v {
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
            }
            Err(e) => errs.push(format!("rule_files: invalid pattern {p:?}: {e}")),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// Loads every rule file of `cfg`: the groups, or every error (file:line: reason).
pub fn load_rules(cfg: &Config) -> Result<Vec<RuleGroup>, Vec<String>> {
    let files = rule_files(&cfg.rule_files)?;
    let groups = osprey_rules::manager::load_groups(&files, cfg.global.evaluation_interval.0)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut errs = Vec::new();
    for g in &groups {
        if !seen.insert((g.spec.file.clone(), g.spec.name.clone())) {
            errs.push(format!(
                "{}: groupname: \"{}\" is repeated in the same file",
                g.spec.file.display(),
                g.spec.name
            ));
        }
    }
    if errs.is_empty() { Ok(groups) } else { Err(errs) }
}

/// The parts of the configuration the notification side is built from.
type NotifySettings =
    (Option<crate::config::AlertingConfig>, Option<crate::config::NotifyConfig>, osprey_discovery::Labels);

fn notify_settings(cfg: &Config) -> NotifySettings {
    (cfg.alerting.clone(), cfg.notify.clone(), cfg.global.external_labels.clone())
}

struct Running {
    groups: Vec<Arc<Mutex<RuleGroup>>>,
    /// What `notify` was built from; an unchanged reload keeps it (its queues and groups).
    notify_settings: NotifySettings,
    tasks: Vec<JoinHandle<()>>,
    ctx: Arc<RuleContext>,
    resend_delay: Duration,
    notify: Arc<Notifications>,
}

/// The rule evaluator of the running collector.
pub struct Ruler {
    db: Arc<Db>,
    engine: Arc<Engine>,
    opts: RulerOptions,
    running: Mutex<Running>,
}

/// Joins load errors into one message (one per line).
pub fn join_errors(errs: &[String]) -> String {
    errs.join("\n")
}

impl Ruler {
    /// Starts evaluating `groups` (from [`load_rules`] on `cfg`) and the notifiers of `cfg`.
    /// Must run inside a tokio runtime.
    pub fn start(
        db: Arc<Db>,
        engine: Arc<Engine>,
        cfg: &Config,
        groups: Vec<RuleGroup>,
        opts: RulerOptions,
    ) -> Result<Arc<Self>, String> {
        let notify = Arc::new(Notifications::start(cfg, opts.notify_state.clone(), &opts.external_url, opts.debounce)?);
        let me = Arc::new(Self {
            db,
            engine,
            running: Mutex::new(Running {
                groups: Vec::new(),
                notify_settings: notify_settings(cfg),
                tasks: Vec::new(),
                ctx: Arc::new(RuleContext::default()),
                resend_delay: Duration::from_secs(60),
                notify,
            }),
            opts,
        });
        me.swap(cfg, groups, None);
        Ok(me)
    }

    /// Applies a reloaded configuration whose rules were loaded with [`load_rules`].
    pub fn apply(self: &Arc<Self>, cfg: &Config, groups: Vec<RuleGroup>) -> Result<(), String> {
        let notify =
            Notifications::start(cfg, self.opts.notify_state.clone(), &self.opts.external_url, self.opts.debounce)?;
        self.swap(cfg, groups, Some(notify));
        Ok(())
    }

    fn swap(self: &Arc<Self>, cfg: &Config, mut groups: Vec<RuleGroup>, notify: Option<Notifications>) {
        let mut r = self.running.lock().expect("ruler lock");
        for t in r.tasks.drain(..) {
            t.abort();
        }
        for g in &mut groups {
            if let Some(old) = r.groups.iter().find(|o| {
                let o = o.lock().expect("group lock");
                o.spec.file == g.spec.file && o.spec.name == g.spec.name
            }) {
                g.copy_state(&old.lock().expect("group lock"));
            }
        }
        if let Some(n) = notify {
            n.adopt_silences(&r.notify);
            r.notify = Arc::new(n);
            r.notify_settings = notify_settings(cfg);
        }
        r.ctx = Arc::new(RuleContext {
            external_labels: cfg.global.external_labels.clone(),
            external_url: self.opts.external_url.clone(),
        });
        r.resend_delay = cfg.alerting.as_ref().map_or(Duration::from_secs(60), |a| a.resend_delay.0);
        r.groups = groups.into_iter().map(|g| Arc::new(Mutex::new(g))).collect();
        let tasks: Vec<JoinHandle<()>> =
            r.groups.iter().map(|g| tokio::spawn(Arc::clone(self).run_group(Arc::clone(g)))).collect();
        r.tasks = tasks;
        tracing::info!(groups = r.groups.len(), "rules loaded");
    }

    async fn run_group(self: Arc<Self>, g: Arc<Mutex<RuleGroup>>) {
        let iv = g.lock().expect("group lock").interval.as_millis().max(1) as i64;
        loop {
            let now = wall_clock_ms();
            let ts = now - now.rem_euclid(iv) + iv;
            tokio::time::sleep(Duration::from_millis((ts - now) as u64)).await;
            let me = Arc::clone(&self);
            let g2 = Arc::clone(&g);
            let out = tokio::task::spawn_blocking(move || me.eval_group(&g2, ts)).await;
            if let Ok((alerts, notify)) = out {
                notify.send(alerts, ts);
            }
            let late = wall_clock_ms() - ts;
            if late >= 2 * iv {
                g.lock().expect("group lock").metrics.iterations_missed += (late / iv - 1) as u64;
            }
        }
    }

    /// Evaluates one group at `ts` and returns the alerts due for sending.
    fn eval_group(&self, g: &Mutex<RuleGroup>, ts: i64) -> (Vec<Outgoing>, Arc<Notifications>) {
        let (ctx, resend, notify) = {
            let r = self.running.lock().expect("ruler lock");
            (Arc::clone(&r.ctx), r.resend_delay, Arc::clone(&r.notify))
        };
        let engine =
            EngineAdapter { engine: Arc::clone(&self.engine), storage: TsdbStorage::new(Arc::clone(&self.db)) };
        let src = LastSampleSource(&engine.storage);
        let mut app = TsdbRuleAppender::new(&self.db);
        let mut g = g.lock().expect("group lock");
        g.eval(ts, &engine, &mut app, &ctx, Some((&src, self.opts.restore)));
        if let Err(e) = app.commit() {
            tracing::error!(group = %g.spec.name, error = %e, "writing rule output to the TSDB failed");
        }
        let interval = g.interval;
        let mut out = Vec::new();
        for rule in &mut g.rules {
            let Rule::Alerting(a) = rule else { continue };
            let url = generator_url(&self.opts.external_url, &a.expr);
            for o in a.alerts_to_send(ts, resend, interval) {
                out.push(Outgoing {
                    resolved: o.ends_at_ms <= ts,
                    alert: AmAlert {
                        labels: o.labels,
                        annotations: o.annotations,
                        starts_at: rfc3339(o.starts_at_ms),
                        ends_at: rfc3339(o.ends_at_ms),
                        generator_url: url.clone(),
                    },
                });
            }
        }
        (out, notify)
    }

    /// A snapshot of every group (for the API).
    pub fn groups(&self) -> Vec<RuleGroup> {
        let r = self.running.lock().expect("ruler lock");
        r.groups.iter().map(|g| g.lock().expect("group lock").clone()).collect()
    }

    /// The current notification side.
    pub fn notifications(&self) -> Arc<Notifications> {
        Arc::clone(&self.running.lock().expect("ruler lock").notify)
    }

    /// Rule-manager and notifier self-metrics in the text format.
    pub fn metrics_text(&self) -> String {
        let mut s = osprey_rules::group::metrics_text(&self.groups());
        s.push_str(&self.notifications().metrics_text());
        s
    }
}

/// `<external_url>/graph?g0.expr=<expr>&g0.tab=1`, as Prometheus links alerts to their rule.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let mut enc = String::with_capacity(expr.len() * 3);
    for b in expr.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            enc.push(b as char);
        } else {
            let _ = write!(enc, "%{b:02X}");
        }
    }
    format!("{}/graph?g0.expr={enc}&g0.tab=1", external_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_url_escapes_the_expression() {
        assert_eq!(
            generator_url("http://h:9090/", "up{job=\"a b\"} > 0"),
            "http://h:9090/graph?g0.expr=up%7Bjob%3D%22a%20b%22%7D%20%3E%200&g0.tab=1"
        );
    }

    #[test]
    fn rule_file_globs_expand_sorted_once_and_empty_matches_are_fine() {
        let dir = std::env::temp_dir().join(format!("osprey-ruler-globs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["b.yml", "a.yml", "c.txt"] {
            std::fs::write(dir.join(f), "groups: []\n").unwrap();
        }
        let d = dir.display();
        let got = rule_files(&[format!("{d}/*.yml"), format!("{d}/a.yml"), format!("{d}/none/*.yml")]).unwrap();
        assert_eq!(got, [dir.join("a.yml"), dir.join("b.yml")]);
        assert!(rule_files(&[format!("{d}/[")]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
