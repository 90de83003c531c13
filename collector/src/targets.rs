//! From configuration plus discovery output to the scrape targets of every job, and the diff
//! between two such sets so that only added/removed targets start/stop.
//!
//! Wiring: `sd_configs(&config)` → `Manager::apply`; on every published `Discovered` set,
//! `build(&config, &set)` → `diff(&previous, &next)` → start `added`, stop `removed`, leave
//! `unchanged` running.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use osprey_discovery::populate::{SCRAPE_INTERVAL_LABEL, SCRAPE_TIMEOUT_LABEL};
use osprey_discovery::{
    Discovered, DropReason, JobConfigs, Labels, RelabelConfig, ScrapeSettings, SdConfig, parse_duration,
    populate_labels, public_labels, target_url,
};

use crate::config::{Authorization, BasicAuth, Config, ScrapeConfig, TlsConfig};

/// Per-scrape limits (0 = no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `sample_limit`.
    pub sample_limit: u64,
    /// `label_limit`.
    pub label_limit: u64,
    /// `label_name_length_limit`.
    pub label_name_length_limit: u64,
    /// `label_value_length_limit`.
    pub label_value_length_limit: u64,
    /// `body_size_limit` in bytes.
    pub body_size_limit: u64,
}

/// What a scrape loop needs from the job's config besides the target's own labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeOptions {
    /// `honor_labels`.
    pub honor_labels: bool,
    /// `honor_timestamps`.
    pub honor_timestamps: bool,
    /// `basic_auth`.
    pub basic_auth: Option<BasicAuth>,
    /// `authorization`.
    pub authorization: Option<Authorization>,
    /// `tls_config`.
    pub tls_config: Option<TlsConfig>,
    /// `metric_relabel_configs`, applied to every scraped series.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// The limits.
    pub limits: Limits,
}

/// One target to scrape.
#[derive(Clone, Debug)]
pub struct Target {
    /// The job.
    pub job: String,
    /// Final labels, including internal `__address__`, `__scheme__`, `__param_*`, ….
    pub labels: Labels,
    /// Labels before relabeling (for `/api/v1/targets` `discoveredLabels`).
    pub discovered: Labels,
    /// The scrape URL.
    pub url: String,
    /// The scrape interval (`__scrape_interval__` after relabeling).
    pub interval: Duration,
    /// The scrape timeout (`__scrape_timeout__` after relabeling).
    pub timeout: Duration,
    /// Job-level options shared by the job's targets.
    pub options: Arc<ScrapeOptions>,
}

impl Target {
    /// The labels attached to scraped series (no `__` labels).
    pub fn series_labels(&self) -> Labels {
        public_labels(&self.labels)
    }

    /// Whether two targets are the same scrape (same labels, URL and options).
    pub fn same_scrape(&self, other: &Self) -> bool {
        self.job == other.job && self.labels == other.labels && self.url == other.url && self.options == other.options
    }
}

/// A discovered target that is not scraped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedTarget {
    /// The job.
    pub job: String,
    /// Labels before relabeling.
    pub discovered: Labels,
    /// Why.
    pub reason: DropReason,
}

/// Targets of one job.
#[derive(Clone, Debug, Default)]
pub struct JobTargets {
    /// Targets to scrape (deduplicated by labels, in label order).
    pub active: Vec<Target>,
    /// Targets dropped by relabeling or invalid.
    pub dropped: Vec<DroppedTarget>,
    /// Set when `target_limit` is exceeded: Prometheus then fails every scrape of the job with
    /// this error.
    pub limit_error: Option<String>,
}

/// The discovery configuration of every job, for `Manager::apply`.
pub fn sd_configs(cfg: &Config) -> JobConfigs {
    cfg.scrape_configs
        .iter()
        .map(|sc| {
            let mut v = Vec::new();
            if !sc.static_configs.is_empty() {
                v.push(SdConfig::Static(sc.static_configs.clone()));
            }
            v.extend(sc.file_sd_configs.iter().cloned().map(SdConfig::File));
            v.extend(sc.dns_sd_configs.iter().cloned().map(SdConfig::Dns));
            v.extend(sc.http_sd_configs.iter().cloned().map(SdConfig::Http));
            (sc.job_name.clone(), v)
        })
        .collect()
}

/// The label-shaping part of a scrape config.
pub fn settings(sc: &ScrapeConfig) -> ScrapeSettings {
    ScrapeSettings {
        job_name: sc.job_name.clone(),
        scrape_interval: sc.scrape_interval.map_or(Duration::from_secs(60), |d| d.0),
        scrape_timeout: sc.scrape_timeout.map_or(Duration::from_secs(10), |d| d.0),
        metrics_path: sc.metrics_path.clone(),
        scheme: sc.scheme.clone(),
        params: sc.params.clone(),
        relabel_configs: sc.relabel_configs.clone(),
        add_default_port: false,
    }
}

fn options(sc: &ScrapeConfig) -> ScrapeOptions {
    ScrapeOptions {
        honor_labels: sc.honor_labels,
        honor_timestamps: sc.honor_timestamps,
        basic_auth: sc.basic_auth.clone(),
        authorization: sc.authorization.clone(),
        tls_config: sc.tls_config.clone(),
        metric_relabel_configs: sc.metric_relabel_configs.clone(),
        limits: Limits {
            sample_limit: sc.sample_limit,
            label_limit: sc.label_limit,
            label_name_length_limit: sc.label_name_length_limit,
            label_value_length_limit: sc.label_value_length_limit,
            body_size_limit: sc.body_size_limit.0,
        },
    }
}

/// Builds every job's targets from a discovery set. Jobs of `cfg` absent from `discovered` have
/// no targets yet.
pub fn build(cfg: &Config, discovered: &Discovered) -> BTreeMap<String, JobTargets> {
    let mut out = BTreeMap::new();
    for sc in &cfg.scrape_configs {
        let st = settings(sc);
        let opts = Arc::new(options(sc));
        let mut active: BTreeMap<Labels, Target> = BTreeMap::new();
        let mut dropped = Vec::new();
        for group in discovered.get(&sc.job_name).into_iter().flatten() {
            for t in &group.targets {
                let p = populate_labels(&st, t, &group.labels);
                match p.result {
                    Ok(labels) => {
                        // Both parse: populate_labels checked them.
                        let interval = parse_duration(labels.get(SCRAPE_INTERVAL_LABEL).map_or("", String::as_str))
                            .unwrap_or(st.scrape_interval);
                        let timeout = parse_duration(labels.get(SCRAPE_TIMEOUT_LABEL).map_or("", String::as_str))
                            .unwrap_or(st.scrape_timeout);
                        let url = target_url(&labels, &sc.params);
                        active.entry(labels.clone()).or_insert(Target {
                            job: sc.job_name.clone(),
                            labels,
                            discovered: p.discovered,
                            url,
                            interval,
                            timeout,
                            options: opts.clone(),
                        });
                    }
                    Err(reason) => {
                        dropped.push(DroppedTarget { job: sc.job_name.clone(), discovered: p.discovered, reason });
                    }
                }
            }
        }
        let n = active.len() as u64;
        let limit_error = (sc.target_limit > 0 && n > sc.target_limit)
            .then(|| format!("target_limit exceeded (number of targets: {n}, limit: {})", sc.target_limit));
        out.insert(sc.job_name.clone(), JobTargets { active: active.into_values().collect(), dropped, limit_error });
    }
    out
}

/// What changed between two target sets.
#[derive(Clone, Debug, Default)]
pub struct TargetDiff {
    /// Targets to start.
    pub added: Vec<Target>,
    /// Targets to stop.
    pub removed: Vec<Target>,
    /// Targets that keep running (the old instances' state stays valid).
    pub unchanged: Vec<Target>,
}

/// Compares two builds: a target is unchanged when a target with the same job, labels, URL and
/// options existed before.
pub fn diff(old: &BTreeMap<String, JobTargets>, new: &BTreeMap<String, JobTargets>) -> TargetDiff {
    let key = |t: &Target| (t.job.clone(), t.labels.clone());
    let old_by: BTreeMap<_, &Target> = old.values().flat_map(|j| &j.active).map(|t| (key(t), t)).collect();
    let new_keys: BTreeSet<_> = new.values().flat_map(|j| &j.active).map(key).collect();
    let mut d = TargetDiff::default();
    for t in new.values().flat_map(|j| &j.active) {
        match old_by.get(&key(t)) {
            Some(o) if o.same_scrape(t) => d.unchanged.push(t.clone()),
            Some(o) => {
                d.removed.push((*o).clone());
                d.added.push(t.clone());
            }
            None => d.added.push(t.clone()),
        }
    }
    for (k, t) in &old_by {
        if !new_keys.contains(k) {
            d.removed.push((*t).clone());
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use osprey_discovery::TargetGroup;

    use super::*;

    fn cfg(t: &str) -> Config {
        Config::parse(t, "t.toml", Path::new("/")).expect("config")
    }

    fn group(source: &str, addrs: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
        TargetGroup {
            source: source.into(),
            targets: addrs.iter().map(|a| Labels::from([("__address__".to_owned(), (*a).to_owned())])).collect(),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    const CFG: &str = r#"
[[scrape_configs]]
job_name = "node"
scrape_interval = "30s"
params = { "collect[]" = ["cpu"] }
static_configs = [{ targets = ["a:9100"] }]
relabel_configs = [
  { source_labels = ["__address__"], regex = "drop.*", action = "drop" },
  { source_labels = ["__address__"], modulus = 4, target_label = "__tmp_shard", action = "hashmod" },
]
sample_limit = 10
target_limit = 2
"#;

    #[test]
    fn builds_active_and_dropped_with_url_and_limits() {
        let c = cfg(CFG);
        assert!(matches!(&sd_configs(&c)["node"][..], [SdConfig::Static(_)]));
        let disc =
            Discovered::from([("node".into(), vec![group("0", &["a:9100", "drop-me:1", "a:9100"], &[("env", "p")])])]);
        let t = build(&c, &disc);
        let j = &t["node"];
        assert_eq!(j.active.len(), 1, "duplicates collapse");
        assert_eq!(j.dropped.len(), 1);
        assert_eq!(j.dropped[0].reason, DropReason::Relabeled);
        let a = &j.active[0];
        assert_eq!(a.url, "http://a:9100/metrics?collect%5B%5D=cpu");
        assert_eq!(a.interval, Duration::from_secs(30));
        assert_eq!(a.timeout, Duration::from_secs(10));
        assert_eq!(a.options.limits.sample_limit, 10);
        assert_eq!(
            a.series_labels(),
            Labels::from([
                ("env".into(), "p".into()),
                ("instance".into(), "a:9100".into()),
                ("job".into(), "node".into())
            ])
        );
        assert!(j.limit_error.is_none());
        let many = Discovered::from([("node".into(), vec![group("0", &["a:1", "b:1", "c:1"], &[])])]);
        assert!(build(&c, &many)["node"].limit_error.as_deref().is_some_and(|e| e.contains("target_limit exceeded")));
    }

    #[test]
    fn diff_reports_added_removed_unchanged() {
        let c = cfg(CFG);
        let one = build(&c, &Discovered::from([("node".into(), vec![group("0", &["a:1", "b:1"], &[])])]));
        let two = build(&c, &Discovered::from([("node".into(), vec![group("0", &["b:1", "c:1"], &[])])]));
        let d = diff(&one, &two);
        let addrs = |v: &[Target]| v.iter().map(|t| t.labels["__address__"].clone()).collect::<Vec<_>>();
        assert_eq!(addrs(&d.added), ["c:1"]);
        assert_eq!(addrs(&d.removed), ["a:1"]);
        assert_eq!(addrs(&d.unchanged), ["b:1"]);
        // A changed job option restarts the job's targets.
        let c2 = cfg(&CFG.replace("sample_limit = 10", "sample_limit = 20"));
        let three = build(&c2, &Discovered::from([("node".into(), vec![group("0", &["b:1", "c:1"], &[])])]));
        let d = diff(&two, &three);
        assert_eq!((d.added.len(), d.removed.len(), d.unchanged.len()), (2, 2, 0));
    }
}
