//! `osprey-collector`: the central server. Subcommands `check config`,
//! `convert-prometheus-config` and `tsdb import-prometheus|import-openmetrics|analyze`; without
//! one it opens the TSDB in `--data-dir`, runs discovery and scraping, evaluates the rules of
//! `rule_files`, sends alerts (Alertmanagers and built-in routes), and serves HTTP.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use osprey_collector::config::Config;
use osprey_collector::convert::convert;
use osprey_collector::ruler::{Ruler, RulerOptions};
use osprey_collector::rules_cli;
use osprey_collector::server::{AppState, ConfigSource, app, reload_on_sighup, shutdown_signal};
use osprey_rules::group::RestoreOptions;

/// mimalloc instead of glibc malloc: the head cut's short-lived buffers (block writing, WAL
/// checkpoint) are returned to the system afterwards, where glibc's per-thread arenas kept them
/// as RSS for good (issue 7's benchmark: the collector's RSS doubled at the first head cut and
/// never came down).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Longest a query may run, queue time included (Prometheus's flag and default).
    #[arg(long = "query.timeout", default_value = "2m")]
    query_timeout: osprey_discovery::PromDuration,
    /// Most samples a query may hold in memory at once (Prometheus's flag and default).
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    query_max_samples: usize,
    /// Most queries evaluated at once; more wait in a queue (Prometheus's flag and default).
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    query_max_concurrency: usize,
    /// How far back an instant selector looks for a sample.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    query_lookback: osprey_discovery::PromDuration,
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
    /// How far back `ALERTS_FOR_STATE` is read to restore `for` state after a restart.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h")]
    for_outage_tolerance: osprey_discovery::PromDuration,
    /// Minimum time a restored alert waits after a restart before firing; alerts whose `for` is
    /// shorter are not restored (they wait their whole `for` again). Prometheus's default is
    /// 10m; ours is 0s so that a pending timer resumes where it stopped (plus the downtime).
    #[arg(long = "rules.alert.for-grace-period", default_value = "0s")]
    for_grace_period: osprey_discovery::PromDuration,
    /// The URL users reach the collector at (`$externalURL`, alerts' `generatorURL`); default
    /// `http://<hostname>:<port>`.
    #[arg(long = "web.external-url", default_value = "")]
    external_url: String,
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
    /// Run unit tests.
    Test {
        #[command(subcommand)]
        what: rules_cli::TestWhat,
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
    /// Validate Prometheus rule files (as `promtool check rules`).
    Rules(rules_cli::CheckRulesArgs),
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
        Some(Cmd::Check { what: CheckWhat::Rules(ref a) }) => rules_cli::check_rules_cmd(a),
        Some(Cmd::Test { ref what }) => rules_cli::test_rules_cmd(what),
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
            Ok(c) => {
                println!("  SUCCESS: {} scrape configs found", c.scrape_configs.len());
                match osprey_collector::ruler::rule_files(&c.rule_files) {
                    Ok(rf) => {
                        println!("  SUCCESS: {} rule files found", rf.len());
                        for r in &rf {
                            match osprey_rules::manager::load_groups(
                                std::slice::from_ref(r),
                                c.global.evaluation_interval.0,
                            ) {
                                Ok(g) => println!(
                                    "  SUCCESS: {}: {} groups, {} rules",
                                    r.display(),
                                    g.len(),
                                    g.iter().map(|g| g.rules.len()).sum::<usize>()
                                ),
                                Err(errs) => {
                                    for e in errs {
                                        eprintln!("  FAILED: {e}");
                                    }
                                    ok = false;
                                }
                            }
                        }
                    }
                    Err(errs) => {
                        for e in errs {
                            eprintln!("  FAILED: {e}");
                        }
                        ok = false;
                    }
                }
                println!();
            }
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
    f.insert("rules.alert.for-outage-tolerance".into(), osprey_discovery::format_duration(cli.for_outage_tolerance.0));
    f.insert("rules.alert.for-grace-period".into(), osprey_discovery::format_duration(cli.for_grace_period.0));
    f.insert("web.external-url".into(), external_url(cli));
    f.insert("query.timeout".into(), osprey_discovery::format_duration(cli.query_timeout.0));
    f.insert("query.max-samples".into(), cli.query_max_samples.to_string());
    f.insert("query.max-concurrency".into(), cli.query_max_concurrency.to_string());
    f.insert("query.lookback-delta".into(), osprey_discovery::format_duration(cli.query_lookback.0));
    f
}

/// `--web.external-url`, or `http://<hostname>:<port of --web.listen-address>`.
fn external_url(cli: &Cli) -> String {
    if !cli.external_url.is_empty() {
        return cli.external_url.trim_end_matches('/').to_owned();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".into(), |h| h.trim().to_owned());
    let port = cli.listen.rsplit_once(':').map_or("9090", |(_, p)| p);
    format!("http://{host}:{port}")
}

/// The engine's limits from the `--query.*` flags.
fn engine_options(cli: &Cli) -> osprey_promql::EngineOptions {
    osprey_promql::EngineOptions {
        timeout: cli.query_timeout.0,
        max_samples: cli.query_max_samples,
        max_concurrent: cli.query_max_concurrency.max(1),
        lookback_ms: cli.query_lookback.0.as_millis() as i64,
        ..osprey_promql::EngineOptions::default()
    }
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
    // Rule files are loaded before anything binds: a bad one stops start-up with file:line.
    let groups = match osprey_collector::ruler::load_rules(&cfg) {
        Ok(g) => g,
        Err(errs) => {
            for e in errs {
                eprintln!("error: loading rules: {e}");
            }
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
    let ruler_opts = RulerOptions {
        restore: RestoreOptions { outage_tolerance: cli.for_outage_tolerance.0, grace_period: cli.for_grace_period.0 },
        external_url: external_url(cli),
        notify_state: cli.data_dir.join("notify-state.json"),
        debounce,
    };
    let engine_opts = engine_options(cli);
    let res: Result<(), String> = rt.block_on(async move {
        // The query API (`/api/v1/query`, …) reads the same TSDB; `/api/v1/status/config` and
        // `/api/v1/status/flags` are the server's own (they follow reloads).
        let api_state = osprey_collector::api::ApiState::new(Arc::clone(&db), osprey_promql::Engine::new(engine_opts));
        let engine = Arc::clone(&api_state.engine);
        let api = osprey_collector::api::router(api_state);
        // Rules evaluate with the query API's engine over the same TSDB.
        let ruler = Ruler::start(Arc::clone(&db), engine, &cfg, groups, ruler_opts)?;
        let rules_api = osprey_collector::ruler::http::router(Arc::clone(&ruler));
        let st = AppState::start(source, cfg, text, debounce, db, flags);
        let _ = st.ruler.set(ruler);
        tokio::spawn(reload_on_sighup(st.clone()));
        let listeners = agent_core::http::bind(std::slice::from_ref(&listen)).await?;
        tracing::info!(address = %listen, "listening");
        let mut tasks = tokio::task::JoinSet::new();
        let (tx, rx) = tokio::sync::watch::channel(false);
        for l in listeners {
            let app = app(st.clone(), [api.clone(), rules_api.clone()]);
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
