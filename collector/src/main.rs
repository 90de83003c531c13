//! `osprey-collector`: the central server. Subcommands `check config` and
//! `convert-prometheus-config`; without one it runs discovery and the HTTP endpoints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use osprey_collector::config::Config;
use osprey_collector::convert::convert;
use osprey_collector::server::{AppState, ConfigSource, reload_on_sighup, router, shutdown_signal};

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
    let debounce: Duration = cli.debounce.0;
    let listen = cli.listen.clone();
    let res: Result<(), String> = rt.block_on(async move {
        let st = AppState::start(source, cfg, text, debounce);
        tokio::spawn(reload_on_sighup(st.clone()));
        let listeners = agent_core::http::bind(std::slice::from_ref(&listen)).await?;
        tracing::info!(address = %listen, "listening");
        let mut tasks = tokio::task::JoinSet::new();
        let (tx, rx) = tokio::sync::watch::channel(false);
        for l in listeners {
            let app = router(st.clone());
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
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
