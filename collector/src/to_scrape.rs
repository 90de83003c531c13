//! From the collector's targets ([`crate::targets::Target`]) to osprey-scrape's
//! [`ScrapeTarget`]s: metric relabeling, auth (secrets read from their files here), TLS,
//! limits, honor flags. The targets of a job over its `target_limit` get the limit error as
//! forced error: their loops report `up 0` with it and never contact them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use osprey_discovery::{RelabelConfig, process, public_labels};
use osprey_scrape::{Auth, MetricRelabel, ScrapeLimits, ScrapeTarget, TlsConfig};

use crate::targets::{JobTargets, ScrapeOptions, Target};

/// Keeps one metric-relabel closure per job while its rules are unchanged, so that the scrape
/// loops keep their series caches across discovery updates and reloads.
#[derive(Default)]
pub struct RelabelCache {
    by_job: Mutex<HashMap<String, (Vec<RelabelConfig>, MetricRelabel)>>,
}

impl RelabelCache {
    fn get(&self, job: &str, rules: &[RelabelConfig]) -> Option<MetricRelabel> {
        if rules.is_empty() {
            return None;
        }
        let mut m = self.by_job.lock().expect("relabel cache lock");
        if let Some((r, f)) = m.get(job)
            && r == rules
        {
            return Some(f.clone());
        }
        let owned: Arc<Vec<RelabelConfig>> = Arc::new(rules.to_vec());
        let f: MetricRelabel = Arc::new(move |labels: &mut Vec<(String, String)>| {
            let mut map: BTreeMap<String, String> = labels.drain(..).collect();
            let keep = process(&mut map, &owned);
            labels.extend(map);
            keep
        });
        m.insert(job.to_owned(), (rules.to_vec(), f.clone()));
        Some(f)
    }
}

fn read_secret(inline: Option<&String>, file: Option<&std::path::Path>) -> Result<String, String> {
    match (inline, file) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(p)) => std::fs::read_to_string(p)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| format!("reading {}: {e}", p.display())),
        (None, None) => Ok(String::new()),
    }
}

fn auth(o: &ScrapeOptions) -> Result<Option<Auth>, String> {
    if let Some(b) = &o.basic_auth {
        let password = read_secret(b.password.as_ref(), b.password_file.as_deref())?;
        return Ok(Some(Auth::Basic { username: b.username.clone(), password }));
    }
    if let Some(a) = &o.authorization {
        let token = read_secret(a.credentials.as_ref(), a.credentials_file.as_deref())?;
        return Ok(Some(Auth::Bearer(token)));
    }
    Ok(None)
}

fn limits(o: &ScrapeOptions) -> ScrapeLimits {
    let l = &o.limits;
    ScrapeLimits {
        sample_limit: l.sample_limit as usize,
        label_limit: l.label_limit as usize,
        label_name_length_limit: l.label_name_length_limit as usize,
        label_value_length_limit: l.label_value_length_limit as usize,
        body_size_limit: l.body_size_limit as usize,
    }
}

/// Converts one target. An unreadable secret file is an error for that target.
pub fn convert(t: &Target, cache: &RelabelCache) -> Result<ScrapeTarget, String> {
    let o = &t.options;
    let labels: Vec<(String, String)> = public_labels(&t.labels).into_iter().collect();
    let mut st = ScrapeTarget::new(t.job.clone(), labels, t.url.clone());
    st.discovered_labels = t.discovered.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    st.interval = t.interval;
    st.timeout = t.timeout;
    st.honor_labels = o.honor_labels;
    st.honor_timestamps = o.honor_timestamps;
    st.limits = limits(o);
    st.metric_relabel = cache.get(&t.job, &o.metric_relabel_configs);
    st.auth = auth(o)?;
    if let Some(tls) = &o.tls_config {
        st.tls = TlsConfig {
            ca_file: tls.ca_file.clone(),
            cert_file: tls.cert_file.clone(),
            key_file: tls.key_file.clone(),
            insecure_skip_verify: tls.insecure_skip_verify,
            server_name: tls.server_name.clone(),
        };
    }
    Ok(st)
}

/// Every target to scrape; targets whose conversion failed are returned with their error. The
/// targets of a job over its `target_limit` are scraped with the limit as forced error: every
/// scrape fails without contacting them (`up 0`, their series marked stale), as in Prometheus.
pub fn convert_all(
    jobs: &BTreeMap<String, JobTargets>,
    cache: &RelabelCache,
) -> (Vec<ScrapeTarget>, Vec<(Target, String)>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for jt in jobs.values() {
        for t in &jt.active {
            match convert(t, cache) {
                Ok(mut s) => {
                    s.forced_error.clone_from(&jt.limit_error);
                    ok.push(s);
                }
                Err(e) => bad.push((t.clone(), e)),
            }
        }
    }
    (ok, bad)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use osprey_discovery::{Discovered, Labels, TargetGroup};

    use super::*;
    use crate::config::Config;
    use crate::targets::build;

    const CFG: &str = r#"
[[scrape_configs]]
job_name = "node"
honor_labels = true
sample_limit = 7
basic_auth = { username = "u", password = "p" }
tls_config = { insecure_skip_verify = true }
metric_relabel_configs = [
  { source_labels = ["__name__"], regex = "drop_.*", action = "drop" },
]

[[scrape_configs]]
job_name = "capped"
target_limit = 1
"#;

    fn group(addrs: &[&str]) -> TargetGroup {
        TargetGroup {
            source: "0".into(),
            targets: addrs.iter().map(|a| Labels::from([("__address__".to_owned(), (*a).to_owned())])).collect(),
            labels: Labels::new(),
        }
    }

    #[test]
    fn converts_options_and_forces_the_error_of_jobs_over_target_limit() {
        let c = Config::parse(CFG, "t.toml", Path::new("/")).expect("config");
        let disc =
            Discovered::from([("node".into(), vec![group(&["a:1"])]), ("capped".into(), vec![group(&["b:1", "c:1"])])]);
        let jobs = build(&c, &disc);
        let cache = RelabelCache::default();
        let (ok, bad) = convert_all(&jobs, &cache);
        assert!(bad.is_empty());
        assert_eq!(ok.len(), 3);
        let capped: Vec<_> = ok.iter().filter(|t| t.scrape_pool == "capped").collect();
        assert_eq!(capped.len(), 2, "every target of the capped job keeps a loop");
        for c in capped {
            assert_eq!(
                c.forced_error.as_deref(),
                Some("target_limit exceeded (number of targets: 2, limit: 1)"),
                "{c:?}"
            );
        }
        let t = ok.iter().find(|t| t.scrape_pool == "node").expect("node target");
        assert_eq!(t.forced_error, None);
        assert_eq!(t.url, "http://a:1/metrics");
        assert!(t.honor_labels);
        assert_eq!(t.limits.sample_limit, 7);
        assert!(t.tls.insecure_skip_verify);
        assert_eq!(t.auth, Some(Auth::Basic { username: "u".into(), password: "p".into() }));
        assert!(t.labels.contains(&("instance".into(), "a:1".into())));
        let f = t.metric_relabel.clone().expect("relabel");
        let mut keep = vec![("__name__".to_owned(), "kept".to_owned())];
        assert!(f(&mut keep));
        let mut drop = vec![("__name__".to_owned(), "drop_me".to_owned())];
        assert!(!f(&mut drop));
        // Same rules on the next build: the same closure, so loops keep their series caches.
        let (again, _) = convert_all(&build(&c, &disc), &cache);
        let again = again.iter().find(|t| t.scrape_pool == "node").expect("node target");
        assert!(Arc::ptr_eq(t.metric_relabel.as_ref().expect("a"), again.metric_relabel.as_ref().expect("b")));
    }

    #[test]
    fn unreadable_password_file_is_a_target_error() {
        let cfg = r#"
[[scrape_configs]]
job_name = "j"
basic_auth = { username = "u", password_file = "/nonexistent/osprey-pw" }
"#;
        let c = Config::parse(cfg, "t.toml", Path::new("/")).expect("config");
        let jobs = build(&c, &Discovered::from([("j".into(), vec![group(&["a:1"])])]));
        let (ok, bad) = convert_all(&jobs, &RelabelCache::default());
        assert!(ok.is_empty());
        assert!(bad[0].1.contains("/nonexistent/osprey-pw"), "{}", bad[0].1);
    }
}
