//! Osprey's integration tests: one binary, one module per area. They run the real
//! `osprey-agent` against real peers (stock Prometheus, promtool, node_exporter).

mod agent_cli;
mod alertmanager;
mod cgroup;
mod collector_api;
mod collector_differential;
mod collector_discovery;
mod collector_e2e;
mod collector_rules;
mod dashboard;
mod dns_and_api;
mod filesystem_hung;
mod grafana;
mod harness;
mod node_exporter_e2e;
mod peers;
mod probe;
mod processes;
mod promql_differential;
mod promql_errors;
mod rules;
mod rules_cli;
mod scrape;
mod systemd;
mod tls;
mod ttar;
