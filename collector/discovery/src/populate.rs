//! From a discovered target to its final labels, as Prometheus's `scrape.PopulateLabels`:
//! target labels over group labels, the scrape config's defaults (`job`, `__scheme__`,
//! `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`, `__param_*`), relabeling,
//! address and interval checks, `__meta_*` removal and `instance` defaulting.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::Labels;
use crate::duration::{format_duration, parse_duration};
use crate::relabel::{LabelAccess, RelabelConfig, process};

/// `__address__`.
pub const ADDRESS_LABEL: &str = "__address__";
/// `__scheme__`.
pub const SCHEME_LABEL: &str = "__scheme__";
/// `__metrics_path__`.
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
/// `__scrape_interval__`.
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
/// `__scrape_timeout__`.
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
/// Prefix of URL parameter labels, `__param_`.
pub const PARAM_LABEL_PREFIX: &str = "__param_";
/// Prefix of discovery metadata labels, `__meta_`.
pub const META_LABEL_PREFIX: &str = "__meta_";
/// `instance`.
pub const INSTANCE_LABEL: &str = "instance";
/// `job`.
pub const JOB_LABEL: &str = "job";

/// The parts of a scrape config that shape a target's labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeSettings {
    /// `job_name`.
    pub job_name: String,
    /// Effective scrape interval.
    pub scrape_interval: Duration,
    /// Effective scrape timeout.
    pub scrape_timeout: Duration,
    /// `metrics_path`.
    pub metrics_path: String,
    /// `scheme`.
    pub scheme: String,
    /// `params` (URL query parameters).
    pub params: BTreeMap<String, Vec<String>>,
    /// `relabel_configs`.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Prometheus 2 behaviour: append `:80`/`:443` to an address without a port. Prometheus 3
    /// (the default here, `false`) keeps the address as discovered.
    pub add_default_port: bool,
}

/// Why a discovered target is not scraped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A `keep`/`drop`/… relabel rule dropped it.
    Relabeled,
    /// Its labels are unusable (no address, bad interval, …).
    Invalid(String),
}

/// The outcome for one discovered target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Populated {
    /// Labels before relabeling (Prometheus's `discoveredLabels`).
    pub discovered: Labels,
    /// The final labels (still including `__address__`, `__scheme__`, `__param_*`, …), or why dropped.
    pub result: Result<Labels, DropReason>,
}

/// Builds the discovered labels: target labels win over group labels; config defaults fill
/// what is unset.
pub fn discovered_labels(cfg: &ScrapeSettings, target: &Labels, group: &Labels) -> Labels {
    let mut lb = Labels::new();
    for (k, v) in target {
        lb.set_label(k, v.clone());
    }
    for (k, v) in group {
        if !target.contains_key(k) {
            lb.set_label(k, v.clone());
        }
    }
    let defaults = [
        (JOB_LABEL, cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, format_duration(cfg.scrape_interval)),
        (SCRAPE_TIMEOUT_LABEL, format_duration(cfg.scrape_timeout)),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
    ];
    for (k, v) in defaults {
        if lb.get_label(k).is_empty() {
            lb.set_label(k, v);
        }
    }
    for (k, v) in &cfg.params {
        let name = format!("{PARAM_LABEL_PREFIX}{k}");
        if let Some(first) = v.first()
            && lb.get_label(&name).is_empty()
        {
            lb.set_label(&name, first.clone());
        }
    }
    lb
}

/// Prometheus's `PopulateLabels` for one target of a group.
pub fn populate_labels(cfg: &ScrapeSettings, target: &Labels, group: &Labels) -> Populated {
    let discovered = discovered_labels(cfg, target, group);
    let mut lb = discovered.clone();
    let result = if process(&mut lb, &cfg.relabel_configs) { finish(cfg, lb) } else { Err(DropReason::Relabeled) };
    Populated { discovered, result }
}

fn finish(cfg: &ScrapeSettings, mut lb: Labels) -> Result<Labels, DropReason> {
    let invalid = |s: String| Err(DropReason::Invalid(s));
    let mut addr = lb.get_label(ADDRESS_LABEL).to_owned();
    if addr.is_empty() {
        return invalid("no address".into());
    }
    if cfg.add_default_port && !has_port(&addr) && valid_with_port(&addr) {
        match lb.get_label(SCHEME_LABEL) {
            "http" | "" => addr.push_str(":80"),
            "https" => addr.push_str(":443"),
            _ => return invalid(format!("invalid scheme: {:?}", cfg.scheme)),
        }
        lb.set_label(ADDRESS_LABEL, addr.clone());
    }
    if addr.contains('/') {
        return invalid(format!("{addr:?} is not a valid hostname"));
    }
    let interval = lb.get_label(SCRAPE_INTERVAL_LABEL).to_owned();
    let iv =
        parse_duration(&interval).map_err(|e| DropReason::Invalid(format!("error parsing scrape interval: {e}")))?;
    if iv.is_zero() {
        return invalid("scrape interval cannot be 0".into());
    }
    let timeout = lb.get_label(SCRAPE_TIMEOUT_LABEL).to_owned();
    let to = parse_duration(&timeout).map_err(|e| DropReason::Invalid(format!("error parsing scrape timeout: {e}")))?;
    if to.is_zero() {
        return invalid("scrape timeout cannot be 0".into());
    }
    if to > iv {
        return invalid(format!("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"));
    }
    lb.retain(|k, _| !k.starts_with(META_LABEL_PREFIX));
    if lb.get_label(INSTANCE_LABEL).is_empty() {
        lb.set_label(INSTANCE_LABEL, addr);
    }
    Ok(lb)
}

/// Whether `addr` splits as Go's `net.SplitHostPort` would (`host:port`, `[v6]:port`).
fn has_port(addr: &str) -> bool {
    split_host_port(addr).is_some()
}

fn valid_with_port(addr: &str) -> bool {
    split_host_port(&format!("{addr}:1234")).is_some()
}

/// Go's `net.SplitHostPort`, reduced to "does it split".
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let colon = s.rfind(':')?;
    let (host, port) = (&s[..colon], &s[colon + 1..]);
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        if inner.contains(['[', ']']) {
            return None;
        }
        return Some((inner, port));
    }
    if host.contains([':', '[', ']']) || port.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

/// Labels that are part of the series identity: all but the `__`-prefixed internal ones.
pub fn public_labels(labels: &Labels) -> Labels {
    labels.iter().filter(|(k, _)| !k.starts_with("__")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The scrape URL of a populated target: `__scheme__://__address____metrics_path__?query`, where
/// the query is the config `params` with the first value of each overridden by `__param_<name>`,
/// encoded in key order as Go's `url.Values.Encode`.
pub fn target_url(labels: &Labels, params: &BTreeMap<String, Vec<String>>) -> String {
    let mut q: BTreeMap<String, Vec<String>> = params.clone();
    for (k, v) in labels {
        if let Some(name) = k.strip_prefix(PARAM_LABEL_PREFIX) {
            match q.get_mut(name) {
                Some(vals) if !vals.is_empty() => vals[0].clone_from(v),
                _ => {
                    q.insert(name.to_owned(), vec![v.clone()]);
                }
            }
        }
    }
    let mut url = format!(
        "{}://{}{}",
        labels.get_label(SCHEME_LABEL),
        labels.get_label(ADDRESS_LABEL),
        escape_path(labels.get_label(METRICS_PATH_LABEL))
    );
    let mut first = true;
    for (k, vals) in &q {
        for v in vals {
            url.push(if first { '?' } else { '&' });
            first = false;
            url.push_str(&query_escape(k));
            url.push('=');
            url.push_str(&query_escape(v));
        }
    }
    url
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Go's path escaping in `url.URL.String` (keeps `/`, `$&+,:;=@` and unreserved characters).
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b':'
            | b';'
            | b'='
            | b'@' => {
                out.push(b as char);
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "populate_tests.rs"]
mod tests;
