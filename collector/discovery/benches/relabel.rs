//! Relabeling hot paths: metric relabeling runs on every scraped series, target relabeling
//! (populate_labels) on every discovered target at each discovery update.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use osprey_discovery::relabel::{Action, RelabelConfig, RelabelRegex, process};
use osprey_discovery::{Labels, ScrapeSettings, populate_labels};

fn rule(source: &[&str], regex: &str, action: Action, target: &str, replacement: &str, modulus: u64) -> RelabelConfig {
    RelabelConfig {
        source_labels: source.iter().map(|s| (*s).to_owned()).collect(),
        regex: RelabelRegex::new(regex).expect("regex"),
        action,
        target_label: target.to_owned(),
        replacement: replacement.to_owned(),
        modulus,
        ..RelabelConfig::default()
    }
}

fn series() -> Labels {
    [
        ("__name__", "node_network_receive_bytes_total"),
        ("device", "eth0"),
        ("instance", "10.0.0.1:9100"),
        ("job", "node"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn bench(c: &mut Criterion) {
    let metric_rules = vec![
        rule(&["__name__"], "go_gc_.*|process_.*", Action::Drop, "", "$1", 0),
        rule(&["device"], "(veth|docker|br-).*", Action::Drop, "", "$1", 0),
        rule(&["__name__", "device"], "node_network_(.*);(.*)", Action::Replace, "nic", "$2", 0),
        rule(&[], "id|uid", Action::LabelDrop, "", "$1", 0),
    ];
    c.bench_function("metric_relabel_4_rules", |b| {
        b.iter_batched(
            series,
            |mut l| {
                black_box(process(&mut l, black_box(&metric_rules)));
                l
            },
            BatchSize::SmallInput,
        );
    });
    let st = ScrapeSettings {
        job_name: "node".into(),
        scrape_interval: Duration::from_secs(15),
        scrape_timeout: Duration::from_secs(10),
        metrics_path: "/metrics".into(),
        scheme: "http".into(),
        params: BTreeMap::new(),
        relabel_configs: vec![
            rule(&["__address__"], "(.*)", Action::HashMod, "__tmp_shard", "$1", 4),
            rule(&["__tmp_shard"], "1", Action::Keep, "", "$1", 0),
            rule(&[], "__meta_dns_(.+)", Action::LabelMap, "", "dns_$1", 0),
            rule(&["__address__"], "([^:]+):.*", Action::Replace, "host", "$1", 0),
        ],
        add_default_port: false,
    };
    let targets: Vec<Labels> = (0..1000)
        .map(|i| {
            [("__address__", format!("node{i}.fleet.test:9100")), ("__meta_dns_name", "_node._tcp.fleet.test".into())]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect()
        })
        .collect();
    let group = Labels::new();
    c.bench_function("populate_labels_1000_targets_hashmod_shard", |b| {
        b.iter(|| targets.iter().filter(|t| populate_labels(&st, t, &group).result.is_ok()).count());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
