//! `osprey-fleet-sim`: serves N simulated targets × M series on 127.0.0.1 for scale tests and
//! benchmarks (Prometheus can scrape it too). Runs until interrupted.

use std::path::PathBuf;

use clap::Parser;
use osprey_scrape::fleet::{Fleet, FleetSpec};

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "osprey-fleet-sim", about = "Serve simulated targets on 127.0.0.1, one port per target")]
struct Args {
    /// Number of targets (one listener each).
    #[arg(long, default_value_t = 100)]
    targets: usize,
    /// Series per target.
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// First port; targets use consecutive ports. 0 lets the system pick.
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// Gzip responses when the scraper accepts it.
    #[arg(long)]
    gzip: bool,
    /// Write a file_sd JSON list of the targets here.
    #[arg(long)]
    file_sd: Option<PathBuf>,
    /// Worker threads (default 1: the simulator should not compete with what it feeds).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("osprey-fleet-sim: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let spec = FleetSpec { targets: args.targets, series: args.series, gzip: args.gzip };
        let fleet = match Fleet::start(spec, args.base_port).await {
            Ok(f) => f,
            Err(e) => {
                eprintln!("osprey-fleet-sim: listening: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        if let Some(path) = &args.file_sd {
            let doc = fleet.file_sd_json(&[("fleet", "sim")]);
            let tmp = path.with_extension("tmp");
            if let Err(e) = std::fs::write(&tmp, doc).and_then(|()| std::fs::rename(&tmp, path)) {
                eprintln!("osprey-fleet-sim: writing {}: {e}", path.display());
                return std::process::ExitCode::FAILURE;
            }
        }
        let first = fleet.addrs.first().map(ToString::to_string).unwrap_or_default();
        let last = fleet.addrs.last().map(ToString::to_string).unwrap_or_default();
        println!("serving {} targets x {} series on {first} .. {last} (path /metrics)", args.targets, args.series);
        let _ = tokio::signal::ctrl_c().await;
        println!("scrapes served: {}", fleet.stats.scrapes.load(std::sync::atomic::Ordering::Relaxed));
        std::process::ExitCode::SUCCESS
    })
}
