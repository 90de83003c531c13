//! Command line and config file → validated [`Settings`] (two stages: raw values from flags and
//! TOML, then one resolved struct the agent runs on).
//!
//! Flags keep node_exporter's names. Every flag is also a key of the optional TOML file
//! (`--config`): `--web.listen-address` is `[web] listen-address`, `--collector.cpu.info` is
//! `[collector.cpu] info`, and the toggle `--collector.cpu` / `--no-collector.cpu` is
//! `[collector.cpu] enabled`. Flags win over the file; unknown flags and keys are errors.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use agent_core::HostPaths;
use agent_core::registry::Registry;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::catalog::{Ctx, Flag, FlagKind, Value};
use crate::collectors::ALL;

/// Flags that are not collector-specific, with node_exporter's names and defaults.
pub static GLOBAL_FLAGS: &[Flag] = &[
    Flag {
        name: "web.listen-address",
        help: "Addresses on which to expose metrics and web interface.",
        kind: FlagKind::List,
    },
    Flag { name: "web.telemetry-path", help: "Path under which to expose metrics.", kind: FlagKind::Str("/metrics") },
    Flag {
        name: "web.max-requests",
        help: "Maximum number of parallel scrape requests; 0 disables the limit.",
        kind: FlagKind::Str("40"),
    },
    Flag {
        name: "web.disable-exporter-metrics",
        help: "Exclude metrics about the exporter itself (process_*, osprey_agent_*).",
        kind: FlagKind::Bool(false),
    },
    Flag {
        name: "web.config.file",
        help: "Path to a web-config.yml enabling TLS or authentication.",
        kind: FlagKind::Str(""),
    },
    Flag {
        name: "web.config.watch-interval",
        help: "How often to check the web config and its certificate files for changes (reloaded when changed); 0 = only on SIGHUP.",
        kind: FlagKind::Str("5s"),
    },
    Flag { name: "path.procfs", help: "procfs mountpoint.", kind: FlagKind::Str("/proc") },
    Flag { name: "path.sysfs", help: "sysfs mountpoint.", kind: FlagKind::Str("/sys") },
    Flag { name: "path.rootfs", help: "rootfs mountpoint.", kind: FlagKind::Str("/") },
    Flag { name: "path.udev.data", help: "udev data path.", kind: FlagKind::Str("/run/udev/data") },
    Flag {
        name: "collector.disable-defaults",
        help: "Set all collectors to disabled by default.",
        kind: FlagKind::Bool(false),
    },
    Flag {
        name: "collector.timeout",
        help: "Per-collector time limit for one scrape (e.g. 10s, 500ms).",
        kind: FlagKind::Str("10s"),
    },
    Flag {
        name: "log.level",
        help: "Only log messages with the given severity or above: debug, info, warn, error.",
        kind: FlagKind::Str("info"),
    },
    Flag { name: "log.format", help: "Output format of log messages: logfmt or json.", kind: FlagKind::Str("logfmt") },
];

/// Default listen address (node_exporter's).
pub const DEFAULT_LISTEN: &str = ":9100";

pub use agent_core::logging::LogFormat;

/// Everything the agent runs on, resolved and validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Listen addresses.
    pub listen: Vec<String>,
    /// Metrics path.
    pub telemetry_path: String,
    /// Concurrent scrape cap.
    pub max_requests: usize,
    /// Drop the exporter's own metrics.
    pub disable_exporter_metrics: bool,
    /// `--web.config.file`, when given.
    pub web_config_file: Option<PathBuf>,
    /// `--web.config.watch-interval`; zero = no polling.
    pub web_config_watch: Duration,
    /// Per-collector timeout.
    pub collector_timeout: Duration,
    /// Log level.
    pub log_level: tracing::Level,
    /// Log format.
    pub log_format: LogFormat,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// Enabled collectors, sorted by name.
    pub enabled: Vec<&'static str>,
    /// Paths and collector flag values.
    pub ctx: Ctx,
}

/// A configuration error: printed as `osprey-agent: error: …`, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn all_flags() -> impl Iterator<Item = (&'static Flag, Option<&'static str>)> {
    GLOBAL_FLAGS.iter().map(|f| (f, None)).chain(ALL.iter().flat_map(|d| d.flags.iter().map(|f| (f, Some(d.name)))))
}

/// The clap command with every global and collector flag.
pub fn command() -> Command {
    let mut cmd = Command::new("osprey-agent")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Osprey agent: host and service metrics for Prometheus-compatible scrapers (node_exporter compatible).")
        .args_override_self(true)
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("Optional TOML config file with the same settings as the flags; flags win."),
        );
    for (f, collector) in all_flags() {
        let heading = if collector.is_some() { "Collector options" } else { "Web, paths and logging" };
        cmd = add_flag(cmd, f, heading);
    }
    let mut defs: Vec<_> = ALL.iter().collect();
    defs.sort_by_key(|d| d.name);
    for d in defs {
        let id = format!("collector.{}", d.name);
        let state = if d.default_enabled { "enabled" } else { "disabled" };
        cmd = cmd
            .arg(
                Arg::new(id.clone())
                    .long(id.clone())
                    .action(ArgAction::SetTrue)
                    .help(format!("Enable the {} collector (default: {state}). {}", d.name, d.help))
                    .help_heading("Collectors"),
            )
            .arg(Arg::new(format!("no-{id}")).long(format!("no-{id}")).action(ArgAction::SetTrue).hide(true));
    }
    cmd
}

fn add_flag(cmd: Command, f: &Flag, heading: &'static str) -> Command {
    let a = Arg::new(f.name).long(f.name).help_heading(heading);
    match f.kind {
        FlagKind::Bool(def) => cmd.arg(a.action(ArgAction::SetTrue).help(format!("{} (default: {def})", f.help))).arg(
            Arg::new(format!("no-{}", f.name)).long(format!("no-{}", f.name)).action(ArgAction::SetTrue).hide(true),
        ),
        FlagKind::Str(def) => {
            let help = if def.is_empty() { f.help.to_owned() } else { format!("{} (default: {def})", f.help) };
            cmd.arg(a.action(ArgAction::Set).value_name("VALUE").help(help))
        }
        FlagKind::List => {
            cmd.arg(a.action(ArgAction::Append).value_name("VALUE").help(format!("{} (repeatable)", f.help)))
        }
    }
}

/// Which of `--x` / `--no-x` was given last, if any.
fn bool_from_cli(m: &ArgMatches, name: &str) -> Option<bool> {
    let pos = |id: &str| if m.value_source(id) == Some(ValueSource::CommandLine) { m.index_of(id) } else { None };
    match (pos(name), pos(&format!("no-{name}"))) {
        (Some(a), Some(b)) => Some(a > b),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => None,
    }
}

/// Parses arguments (including the program name) into settings.
pub fn settings_from<I, T>(args: I) -> Result<Settings, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let m = command().try_get_matches_from(args)?;
    resolve(&m).map_err(|e| command().error(clap::error::ErrorKind::InvalidValue, e.0))
}

fn resolve(m: &ArgMatches) -> Result<Settings, ConfigError> {
    let config_file = m.get_one::<String>("config").map(PathBuf::from);
    let file_values = match &config_file {
        Some(p) => crate::config_file::load(p)?,
        None => HashMap::new(),
    };
    let mut values: HashMap<String, Value> = HashMap::new();
    for (f, _) in all_flags() {
        let cli = match f.kind {
            FlagKind::Bool(_) => bool_from_cli(m, f.name).map(Value::Bool),
            FlagKind::Str(_) => (m.value_source(f.name) == Some(ValueSource::CommandLine))
                .then(|| m.get_one::<String>(f.name).cloned().map(Value::Str))
                .flatten(),
            FlagKind::List => (m.value_source(f.name) == Some(ValueSource::CommandLine))
                .then(|| Value::List(m.get_many::<String>(f.name).map(|v| v.cloned().collect()).unwrap_or_default())),
        };
        let v = cli.or_else(|| file_values.get(f.name).cloned()).unwrap_or(match f.kind {
            FlagKind::Bool(b) => Value::Bool(b),
            FlagKind::Str(s) => Value::Str(s.to_owned()),
            FlagKind::List => Value::List(Vec::new()),
        });
        values.insert(f.name.to_owned(), v);
    }
    // Table sections of the file (`[[processes.group]]`, …) go to their collectors as parsed.
    for (k, v) in &file_values {
        if matches!(v, Value::Section(_)) {
            values.insert(k.clone(), v.clone());
        }
    }
    let get = |name: &str| values.get(name).cloned();
    let str_of = |name: &str| match get(name) {
        Some(Value::Str(s)) => s,
        _ => String::new(),
    };
    let disable_defaults = matches!(get("collector.disable-defaults"), Some(Value::Bool(true)));
    let mut enabled = Vec::new();
    let mut toggles = Vec::new();
    for d in ALL {
        let id = format!("collector.{}", d.name);
        let on = bool_from_cli(m, &id)
            .or_else(|| match file_values.get(&format!("{id}.enabled")) {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            })
            .unwrap_or(d.default_enabled && !disable_defaults);
        toggles.push((id, on));
        if on {
            enabled.push(d.name);
        }
    }
    enabled.sort_unstable();
    let mut listen = match get("web.listen-address") {
        Some(Value::List(l)) => l,
        _ => Vec::new(),
    };
    if listen.is_empty() {
        listen.push(DEFAULT_LISTEN.to_owned());
    }
    for a in &listen {
        agent_core::http::parse_listen(a).map_err(|e| ConfigError(format!("--web.listen-address: {e}")))?;
    }
    let max_requests = str_of("web.max-requests").parse().map_err(|_| {
        ConfigError(format!(
            "--web.max-requests: expected a non-negative integer, got {:?}",
            str_of("web.max-requests")
        ))
    })?;
    let collector_timeout = parse_duration(&str_of("collector.timeout")).ok_or_else(|| {
        ConfigError(format!(
            "--collector.timeout: expected a duration like 10s or 500ms, got {:?}",
            str_of("collector.timeout")
        ))
    })?;
    let log_level = match str_of("log.level").as_str() {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        other => return Err(ConfigError(format!("--log.level: expected debug, info, warn or error, got {other:?}"))),
    };
    let log_format = match str_of("log.format").as_str() {
        "logfmt" => LogFormat::Logfmt,
        "json" => LogFormat::Json,
        other => return Err(ConfigError(format!("--log.format: expected logfmt or json, got {other:?}"))),
    };
    let web_config_file = Some(str_of("web.config.file")).filter(|s| !s.is_empty()).map(PathBuf::from);
    let watch = str_of("web.config.watch-interval");
    let web_config_watch = if watch == "0" {
        Duration::ZERO
    } else {
        parse_duration(&watch).ok_or_else(|| {
            ConfigError(format!("--web.config.watch-interval: expected a duration like 5s or 0, got {watch:?}"))
        })?
    };
    let paths = HostPaths {
        procfs: str_of("path.procfs").into(),
        sysfs: str_of("path.sysfs").into(),
        rootfs: str_of("path.rootfs").into(),
        udev_data: str_of("path.udev.data").into(),
    };
    let telemetry_path = str_of("web.telemetry-path");
    let disable_exporter_metrics = matches!(get("web.disable-exporter-metrics"), Some(Value::Bool(true)));
    // Collectors may depend on each other's state (cpu reports node_cpu_frequency_hertz only
    // when cpufreq is enabled, as upstream).
    for (id, on) in toggles {
        values.insert(id, Value::Bool(on));
    }
    Ok(Settings {
        listen,
        telemetry_path,
        max_requests,
        disable_exporter_metrics,
        web_config_file,
        web_config_watch,
        collector_timeout,
        log_level,
        log_format,
        config_file,
        enabled,
        ctx: Ctx { paths, values },
    })
}

/// Parses `10s`, `500ms`, `1m`, `1m30s` (Prometheus duration syntax, no days/years).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return None,
        };
    }
    Some(total)
}

/// Checks the host paths and builds every enabled collector; errors name the flag.
pub fn build_registry(s: &Settings) -> Result<Registry, ConfigError> {
    let procfs = &s.ctx.paths.procfs;
    if !procfs.join("stat").is_file() {
        return Err(ConfigError(format!(
            "--path.procfs={}: not a procfs mount (no {}/stat)",
            procfs.display(),
            procfs.display()
        )));
    }
    if !s.ctx.paths.sysfs.is_dir() {
        return Err(ConfigError(format!("--path.sysfs={}: no such directory", s.ctx.paths.sysfs.display())));
    }
    let mut reg = Registry::new(s.collector_timeout);
    for name in &s.enabled {
        let def =
            ALL.iter().find(|d| d.name == *name).ok_or_else(|| ConfigError(format!("unknown collector {name}")))?;
        let c = (def.build)(&s.ctx).map_err(|e| ConfigError(format!("collector {name}: {e:#}")))?;
        reg.add(c);
    }
    Ok(reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults_and_no_prefix_disables() {
        let s = settings_from([
            "osprey-agent",
            "--no-collector.loadavg",
            "--web.listen-address=127.0.0.1:1",
            "--web.max-requests",
            "3",
        ])
        .unwrap();
        assert!(!s.enabled.contains(&"loadavg"));
        assert_eq!(s.listen, ["127.0.0.1:1"]);
        assert_eq!(s.max_requests, 3);
        let s = settings_from(["osprey-agent", "--collector.disable-defaults", "--collector.loadavg"]).unwrap();
        assert_eq!(s.enabled, ["loadavg"]);
        let s = settings_from(["osprey-agent", "--collector.loadavg", "--no-collector.loadavg"]).unwrap();
        assert!(s.enabled.is_empty() || !s.enabled.contains(&"loadavg"));
    }

    #[test]
    fn unknown_flag_is_a_usage_error() {
        let e = settings_from(["osprey-agent", "--collector.nope"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--collector.nope"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = settings_from(["osprey-agent", "--web.max-requests=x"]).unwrap_err();
        assert!(e.to_string().contains("--web.max-requests"), "{e}");
        let e = settings_from(["osprey-agent", "--collector.timeout=5parsecs"]).unwrap_err();
        assert!(e.to_string().contains("--collector.timeout"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), None);
    }

    #[test]
    fn missing_procfs_is_a_clear_error() {
        let s = settings_from(["osprey-agent", "--path.procfs=/nonexistent/proc"]).unwrap();
        let e = build_registry(&s).unwrap_err();
        assert!(e.0.contains("--path.procfs=/nonexistent/proc"), "{e}");
    }
}
