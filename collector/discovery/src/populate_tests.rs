//! `populate_labels` cases after Prometheus's `TestPopulateLabels`.

use super::*;
use crate::relabel::{Action, RelabelRegex};

fn ls(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn cfg() -> ScrapeSettings {
    ScrapeSettings {
        job_name: "job".into(),
        scrape_interval: Duration::from_secs(60),
        scrape_timeout: Duration::from_secs(10),
        metrics_path: "/metrics".into(),
        scheme: "https".into(),
        params: BTreeMap::new(),
        relabel_configs: vec![],
        add_default_port: false,
    }
}

#[test]
fn defaults_fill_and_instance_defaults_to_address() {
    let p = populate_labels(&cfg(), &ls(&[("__address__", "1.2.3.4:1000"), ("custom", "value")]), &Labels::new());
    let want = ls(&[
        ("__address__", "1.2.3.4:1000"),
        ("__metrics_path__", "/metrics"),
        ("__scheme__", "https"),
        ("__scrape_interval__", "1m"),
        ("__scrape_timeout__", "10s"),
        ("custom", "value"),
        ("job", "job"),
    ]);
    assert_eq!(p.discovered, want);
    let mut fin = want.clone();
    fin.insert("instance".into(), "1.2.3.4:1000".into());
    assert_eq!(p.result, Ok(fin));
}

#[test]
fn target_labels_win_over_group_and_defaults() {
    let p = populate_labels(
        &cfg(),
        &ls(&[("__address__", "h:1"), ("job", "custom"), ("__scheme__", "http"), ("instance", "i"), ("env", "t")]),
        &ls(&[("env", "g"), ("region", "r")]),
    );
    let l = p.result.expect("kept");
    assert_eq!(l["job"], "custom");
    assert_eq!(l["__scheme__"], "http");
    assert_eq!(l["instance"], "i");
    assert_eq!(l["env"], "t");
    assert_eq!(l["region"], "r");
}

#[test]
fn port_is_kept_as_discovered_by_default_and_added_in_v2_mode() {
    let p = populate_labels(&cfg(), &ls(&[("__address__", "1.2.3.4")]), &Labels::new());
    assert_eq!(p.result.expect("kept")["instance"], "1.2.3.4");
    let mut v2 = cfg();
    v2.add_default_port = true;
    for (addr, scheme, want) in [
        ("1.2.3.4", "https", "1.2.3.4:443"),
        ("1.2.3.4", "http", "1.2.3.4:80"),
        ("[::1]", "http", "[::1]:80"),
        ("h:9", "http", "h:9"),
    ] {
        v2.scheme = scheme.into();
        let l = populate_labels(&v2, &ls(&[("__address__", addr)]), &Labels::new()).result.expect("kept");
        assert_eq!(l["__address__"], want);
        assert_eq!(l["instance"], want);
    }
    v2.scheme = "ftp".into();
    assert!(
        matches!(populate_labels(&v2, &ls(&[("__address__", "h")]), &Labels::new()).result, Err(DropReason::Invalid(e)) if e.contains("invalid scheme"))
    );
}

#[test]
fn meta_labels_removed_after_relabeling_and_usable_in_it() {
    let mut c = cfg();
    c.relabel_configs = vec![RelabelConfig {
        source_labels: vec!["__meta_dns_name".into()],
        target_label: "dns".into(),
        ..RelabelConfig::default()
    }];
    let p = populate_labels(&c, &ls(&[("__address__", "h:1"), ("__meta_dns_name", "x.example")]), &Labels::new());
    assert_eq!(p.discovered["__meta_dns_name"], "x.example");
    let l = p.result.expect("kept");
    assert_eq!(l["dns"], "x.example");
    assert!(!l.contains_key("__meta_dns_name"));
}

#[test]
fn drops_with_reasons() {
    let mut c = cfg();
    let no_addr = populate_labels(&c, &ls(&[("custom", "v")]), &Labels::new());
    assert_eq!(no_addr.result, Err(DropReason::Invalid("no address".into())));
    let slash = populate_labels(&c, &ls(&[("__address__", "h:1/x")]), &Labels::new());
    assert!(matches!(slash.result, Err(DropReason::Invalid(e)) if e.contains("is not a valid hostname")));
    let bad_iv =
        populate_labels(&c, &ls(&[("__address__", "h:1"), ("__scrape_interval__", "2notseconds")]), &Labels::new());
    assert!(matches!(bad_iv.result, Err(DropReason::Invalid(e)) if e.starts_with("error parsing scrape interval")));
    let zero = populate_labels(&c, &ls(&[("__address__", "h:1"), ("__scrape_interval__", "0s")]), &Labels::new());
    assert_eq!(zero.result, Err(DropReason::Invalid("scrape interval cannot be 0".into())));
    let zero_to = populate_labels(&c, &ls(&[("__address__", "h:1"), ("__scrape_timeout__", "0s")]), &Labels::new());
    assert_eq!(zero_to.result, Err(DropReason::Invalid("scrape timeout cannot be 0".into())));
    let big = populate_labels(&c, &ls(&[("__address__", "h:1"), ("__scrape_timeout__", "2m")]), &Labels::new());
    assert_eq!(
        big.result,
        Err(DropReason::Invalid("scrape timeout cannot be greater than scrape interval (\"2m\" > \"1m\")".into()))
    );
    c.relabel_configs = vec![RelabelConfig {
        action: Action::Drop,
        regex: RelabelRegex::new(".*").expect("re"),
        ..RelabelConfig::default()
    }];
    let dropped = populate_labels(&c, &ls(&[("__address__", "h:1")]), &Labels::new());
    assert_eq!(dropped.result, Err(DropReason::Relabeled));
    assert_eq!(dropped.discovered["__address__"], "h:1");
}

#[test]
fn relabeling_can_change_interval_and_address() {
    let mut c = cfg();
    c.relabel_configs = vec![
        RelabelConfig {
            target_label: "__scrape_interval__".into(),
            replacement: "30s".into(),
            ..RelabelConfig::default()
        },
        RelabelConfig {
            source_labels: vec!["__address__".into()],
            regex: RelabelRegex::new("([^:]+):.*").expect("re"),
            target_label: "__address__".into(),
            replacement: "$1:9100".into(),
            ..RelabelConfig::default()
        },
    ];
    let l = populate_labels(&c, &ls(&[("__address__", "node1:22")]), &Labels::new()).result.expect("kept");
    assert_eq!(l["__scrape_interval__"], "30s");
    assert_eq!(l["__address__"], "node1:9100");
    assert_eq!(l["instance"], "node1:9100");
}

#[test]
fn params_become_labels_and_url() {
    let mut c = cfg();
    c.params.insert("module".into(), vec!["http_2xx".into(), "second".into()]);
    c.params.insert("a b".into(), vec!["x&y".into()]);
    let l = populate_labels(&c, &ls(&[("__address__", "h:1"), ("__param_target", "t")]), &Labels::new())
        .result
        .expect("kept");
    assert_eq!(l["__param_module"], "http_2xx");
    assert_eq!(target_url(&l, &c.params), "https://h:1/metrics?a+b=x%26y&module=http_2xx&module=second&target=t");
    let mut over = l.clone();
    over.insert("__param_module".into(), "icmp".into());
    assert!(target_url(&over, &c.params).contains("module=icmp&module=second"));
}

#[test]
fn public_labels_hide_internal_ones() {
    let l = ls(&[("__address__", "h"), ("__tmp_x", "y"), ("job", "j"), ("instance", "h")]);
    assert_eq!(public_labels(&l), ls(&[("instance", "h"), ("job", "j")]));
}
