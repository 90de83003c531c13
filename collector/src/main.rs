//! `osprey-collector`: the central server. Subcommands `check config`,
//! `convert-prometheus-config` and `tsdb import-prometheus|import-openmetrics|analyze`; without
//! one it opens the TSDB in `--data-dir`, runs discovery and scraping, and serves HTTP.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use osprey_collector::config::Config;
use osprey_collector::convert::convert;
use osprey_collector::server::{AppState, ConfigSource, app, reload_on_sighup, shutdown_signal};

/// Command line (see DESIGN.md's command-line contract).
#[derive(Parser, Debug)]
#[command(name = "osprey-collector", version, about = "Osprey's central server: discovery, scrape, storage, query.")]
struct Cli {
    /// Configuration file (TOML); the embedded default scrapes this collector and localhost:9100.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory.
    #[arg(long = "data-dir", default_value = "./data")]
    data_dir: PathBuf,
    /// Listen address (`:9090` means every interface).
    #[arg(long = "web.listen-address", default_value = ":9090")]
    listen: String,
    /// Discovery updates are applied at most this often.
    #[arg(long = "discovery.debounce", default_value = "5s")]
    debounce: osprey_discovery::PromDuration,
    /// Delete data older than this (e.g. `15d`; `0s` keeps everything).
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d")]
    retention_time: osprey_discovery::PromDuration,
    /// Delete the oldest blocks while all blocks exceed this size (e.g. `10GB`; `0` = no limit).
    #[arg(long = "storage.tsdb.retention.size", default_value = "0")]
    retention_size: String,
    /// Time range of a block cut from the head (Prometheus' hidden flag of the same name; for
    /// tests and benchmarks that want blocks within minutes).
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h", hide = true)]
    min_block_duration: osprey_discovery::PromDuration,
    /// Log level: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info")]
    log_level: tracing::Level,
    /// Log format: logfmt or json.
    #[arg(long = "log.format", default_value = "logfmt")]
    log_format: String,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Validate files.
    Check {
        #[command(subcommand)]
        what: CheckWhat,
    },
    /// Convert a prometheus.yml to the equivalent collector TOML.
    ConvertPrometheusConfig {
        /// The prometheus.yml to read.
        file: PathBuf,
        /// Write the TOML here instead of stdout.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Work on the TSDB in `--data-dir` (the collector must not be running on it).
    Tsdb {
        #[command(subcommand)]
        what: TsdbWhat,
    },
}

#[derive(Subcommand, Debug)]
enum TsdbWhat {
    /// Import the blocks of a Prometheus data directory.
    ImportPrometheus {
        /// The Prometheus data directory (its `data/` with block directories).
        dir: PathBuf,
    },
    /// Import an OpenMetrics text file (samples with timestamps, ending in `# EOF`).
    ImportOpenmetrics {
        /// The file.
        file: PathBuf,
    },
    /// Report blocks, series, samples and bytes per sample.
    Analyze,
}

#[derive(Subcommand, Debug)]
enum CheckWhat {
    /// Validate collector configuration files.
    Config {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = if cli.log_format == "json" {
        agent_core::logging::LogFormat::Json
    } else {
        agent_core::logging::LogFormat::Logfmt
    };
    agent_core::logging::init(cli.log_level, format);
    match cli.cmd {
        Some(Cmd::Check { what: CheckWhat::Config { files } }) => check_config(&files),
        Some(Cmd::ConvertPrometheusConfig { file, output }) => convert_cmd(&file, output.as_deref()),
        Some(Cmd::Tsdb { ref what }) => tsdb_cmd(&cli.data_dir, what),
        None => run(&cli),
    }
}

fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match Config::load(f) {
            Ok(c) => println!("  SUCCESS: {} scrape configs found\n", c.scrape_configs.len()),
            Err(e) => {
                eprintln!("  FAILED: {e}\n");
                ok = false;
            }
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn convert_cmd(file: &std::path::Path, output: Option<&std::path::Path>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: reading {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let c = match convert(&text, &file.display().to_string()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    match output {
        Some(o) => {
            if let Err(e) = std::fs::write(o, &c.toml) {
                eprintln!("error: writing {}: {e}", o.display());
                return ExitCode::FAILURE;
            }
        }
        None => print!("{}", c.toml),
    }
    ExitCode::SUCCESS
}

fn tsdb_cmd(data_dir: &std::path::Path, what: &TsdbWhat) -> ExitCode {
    let res = match what {
        TsdbWhat::ImportPrometheus { dir } => osprey_tsdb::import_prometheus(dir, data_dir).map(|r| {
            println!(
                "imported {} blocks, {} series, {} samples into {} ({} non-float chunks skipped)",
                r.blocks,
                r.series,
                r.samples,
                data_dir.display(),
                r.skipped_chunks
            );
        }),
        TsdbWhat::ImportOpenmetrics { file } => osprey_tsdb::import_openmetrics(file, data_dir).map(|r| {
            println!(
                "imported {} blocks, {} series, {} samples into {}",
                r.blocks,
                r.series,
                r.samples,
                data_dir.display()
            );
        }),
        TsdbWhat::Analyze => {
            if !data_dir.join("FORMAT").exists() {
                eprintln!("error: {} is not an osprey data directory (no FORMAT file)", data_dir.display());
                return ExitCode::FAILURE;
            }
            osprey_tsdb::analyze(data_dir).map(|r| print!("{r}"))
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flags(cli: &Cli) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let cfg = cli.config.as_ref().map_or_else(String::new, |p| p.display().to_string());
    f.insert("config.file".into(), cfg);
    f.insert("storage.tsdb.path".into(), cli.data_dir.display().to_string());
    f.insert("web.listen-address".into(), cli.listen.clone());
    f.insert("discovery.debounce".into(), osprey_discovery::format_duration(cli.debounce.0));
    f.insert("storage.tsdb.retention.time".into(), osprey_discovery::format_duration(cli.retention_time.0));
    f.insert("storage.tsdb.retention.size".into(), cli.retention_size.clone());
    f.insert("storage.tsdb.min-block-duration".into(), osprey_discovery::format_duration(cli.min_block_duration.0));
    f.insert("log.level".into(), cli.log_level.to_string().to_lowercase());
    f.insert("log.format".into(), cli.log_format.clone());
    f
}

fn open_db(cli: &Cli) -> Result<osprey_tsdb::Db, String> {
    let size = cli
        .retention_size
        .parse::<osprey_collector::bytesize::ByteSize>()
        .map_err(|e| format!("--storage.tsdb.retention.size: {e}"))?
        .0;
    let time = cli.retention_time.0.as_millis() as i64;
    let opts = osprey_tsdb::Options {
        retention_time_ms: (time > 0).then_some(time),
        retention_size_bytes: (size > 0).then_some(size),
        block_range_ms: (cli.min_block_duration.0.as_millis() as i64).max(60_000),
        ..osprey_tsdb::Options::default()
    };
    osprey_tsdb::Db::open(&cli.data_dir, opts).map_err(|e| e.to_string())
}

fn run(cli: &Cli) -> ExitCode {
    let source = cli.config.clone().map_or(ConfigSource::Embedded, ConfigSource::File);
    let (cfg, text) = match source.load() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&cli.data_dir) {
        eprintln!("error: creating data dir {}: {e}", cli.data_dir.display());
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let db = match open_db(cli) {
        Ok(db) => Arc::new(db),
        Err(e) => {
            eprintln!("error: opening the TSDB: {e}");
            return ExitCode::FAILURE;
        }
    };
    let debounce: Duration = cli.debounce.0;
    let listen = cli.listen.clone();
    let flags = flags(cli);
    let res: Result<(), String> = rt.block_on(async move {
        // The query API (`/api/v1/query`, …) reads the same TSDB; `/api/v1/status/config` and
        // `/api/v1/status/flags` are the server's own (they follow reloads).
        let api = osprey_collector::api::router(osprey_collector::api::ApiState::new(
            Arc::clone(&db),
            osprey_promql::Engine::new(osprey_promql::EngineOptions::default()),
        ));
        let st = AppState::start(source, cfg, text, debounce, db, flags);
        tokio::spawn(reload_on_sighup(st.clone()));
        let listeners = agent_core::http::bind(std::slice::from_ref(&listen)).await?;
        tracing::info!(address = %listen, "listening");
        let mut tasks = tokio::task::JoinSet::new();
        let (tx, rx) = tokio::sync::watch::channel(false);
        for l in listeners {
            let app = app(st.clone(), [api.clone()]);
            let mut rx = rx.clone();
            tasks.spawn(async move {
                axum::serve(l, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|v| *v).await;
                    })
                    .await
            });
        }
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(true);
        });
        let mut served = Ok(());
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                served = Err(e);
            }
        }
        tracing::info!("stopping scrapes and flushing the TSDB");
        st.shutdown().await;
        served
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
