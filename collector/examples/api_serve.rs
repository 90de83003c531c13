//! Imports an OpenMetrics file into a fresh data directory and serves the `/api/v1` routes
//! over it (used by `benches/promql_vs_prometheus.sh`).
//!
//! Usage: `api_serve FILE.om DATA_DIR 127.0.0.1:PORT`; `FILE.om` `-` serves an existing data
//! directory without importing, and `import-only` in place of the address imports and exits
//! (so a benchmark's peak memory figure is the serving process's alone).

use std::sync::Arc;

use anyhow::Context as _;
use osprey_collector::api::{ApiState, router};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, dir, addr] = args.as_slice() else {
        anyhow::bail!("usage: api_serve FILE.om DATA_DIR LISTEN_ADDR");
    };
    if file != "-" {
        let report = osprey_tsdb::import_openmetrics(file.as_ref(), dir.as_ref()).context("importing")?;
        eprintln!("imported {} series, {} samples in {} blocks", report.series, report.samples, report.blocks);
    }
    if addr == "import-only" {
        return Ok(());
    }
    let db = osprey_tsdb::Db::open(dir, osprey_tsdb::Options { maintenance_interval: None, ..Default::default() })?;
    let state = ApiState::new(Arc::new(db), osprey_promql::Engine::default_engine());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr.as_str()).await.context("binding")?;
        eprintln!("listening on {addr}");
        axum::serve(listener, router(state)).await.context("serving")
    })
}
