//! `osprey-agent`: serves host metrics on `/metrics`, node_exporter compatible.

use std::process::ExitCode;
use std::sync::Arc;

use agent_core::auth::WebHandle;
use agent_core::http::{AgentState, ServeOptions, bind, serve};
use exporters::cli::{self, Settings};

/// With `--features small-alloc`: dlmalloc instead of the libc's malloc (for musl builds).
#[cfg(feature = "small-alloc")]
#[global_allocator]
static GLOBAL: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args: Vec<String> = std::env::args().collect();
    let settings = match cli::settings_from(&args) {
        Ok(s) => s,
        Err(e) => e.exit(),
    };
    init_logging(&settings);
    let registry = match cli::build_registry(&settings) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("osprey-agent: error: {e}");
            return ExitCode::from(2);
        }
    };
    // The web config is checked before any port is bound: a bad file must not leave an agent
    // serving host data without the TLS or auth its operator asked for.
    let web = match &settings.web_config_file {
        Some(path) => match WebHandle::load(path) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("osprey-agent: error: --web.config.file: {e}");
                return ExitCode::from(2);
            }
        },
        None => WebHandle::plain(),
    };
    // The HTTP side runs on the main thread (a current-thread runtime); collectors run on a
    // small blocking pool (the registry's lanes). Each extra thread costs its stack and
    // wake-ups: 2 workers + 16 blocking threads measured 2.6 MB more RSS and 20% more CPU per
    // scrape than 1 + 4, and dropping that one worker for the main thread 0.4 MB less RSS at
    // the same CPU (benches/agent_vs_node_exporter.sh, medians of 3 runs).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(120))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("osprey-agent: error: starting runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(settings, registry, web, args))
}

async fn run(
    settings: Settings,
    registry: agent_core::registry::Registry,
    web: WebHandle,
    args: Vec<String>,
) -> ExitCode {
    let listeners = match bind(&settings.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("osprey-agent: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = ServeOptions {
        telemetry_path: settings.telemetry_path.clone(),
        max_requests: settings.max_requests,
        disable_exporter_metrics: settings.disable_exporter_metrics,
        program: "osprey-agent",
        version: env!("CARGO_PKG_VERSION"),
    };
    let reloader: agent_core::http::Reloader = Box::new(move || {
        let s = cli::settings_from(&args).map_err(|e| e.to_string())?;
        cli::build_registry(&s).map_err(|e| e.to_string())
    });
    let tls = web.current().tls.is_some();
    let auth = !web.current().users.is_empty();
    let state = AgentState::with_web(registry, opts, Some(reloader), web);
    for l in &listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(address = %addr, collectors = settings.enabled.len(), tls, basic_auth = auth, "listening");
        }
    }
    tokio::spawn(reload_on_sighup(Arc::clone(&state)));
    if settings.web_config_file.is_some() && !settings.web_config_watch.is_zero() {
        tokio::spawn(agent_core::http::watch_web_config(Arc::clone(&state), settings.web_config_watch));
    }
    // Type=notify: systemd starts dependents once the port is bound.
    if let Err(e) = agent_core::notify::notify("READY=1") {
        tracing::warn!(error = %e, "sd_notify READY=1 failed");
    }
    let served = serve(listeners, state, async {
        shutdown_signal().await;
        let _ = agent_core::notify::notify("STOPPING=1");
    })
    .await;
    match served {
        Ok(()) => {
            tracing::info!("shut down");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; draining"),
        _ = int.recv() => tracing::info!("SIGINT received; draining"),
    }
}

async fn reload_on_sighup(state: Arc<AgentState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        match state.reload() {
            Ok(()) => tracing::info!("configuration reloaded (SIGHUP)"),
            Err(e) => tracing::error!(error = %e, "reload failed; keeping the running configuration"),
        }
    }
}

/// glibc gives every thread that allocates its own malloc arena; with collectors spread over
/// several threads that measured 1.3 MB more RSS than one shared arena (8.8 → 7.7 MB). The
/// agent allocates little and briefly, so one arena costs nothing measurable in CPU.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    // SAFETY: mallopt takes two plain integers and only changes a malloc tunable; it is called
    // first thing in main, before any other thread exists, and M_ARENA_MAX is valid on glibc.
    // A failure (return 0) only leaves the default in place.
    let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn init_logging(s: &Settings) {
    agent_core::logging::init(s.log_level, s.log_format);
}
