//! `systemd`: unit states, restarts, timers, sockets and the manager's state over D-Bus
//! (node_exporter's metric names, HELP texts, labels and filters).
//!
//! Unlike node_exporter, which dials the bus on every scrape and then asks one property per
//! unit per round trip, this keeps one `zbus` connection for the life of the agent and sends
//! all property requests of a scrape pipelined on it (up to [`IN_FLIGHT`] outstanding, below
//! the system bus' default `max_replies_per_connection` of 128). A connection that closed
//! (bus restarted) or failed is dropped; the scrape fails and the next one dials again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use std::collections::HashMap;

use futures_util::StreamExt as _;
use regex::Regex;
use zbus::zvariant::{ObjectPath, Value};

use crate::prelude::*;

const BUS: &str = "collector.systemd.bus";
const INCLUDE: &str = "collector.systemd.unit-include";
const EXCLUDE: &str = "collector.systemd.unit-exclude";
const TASKS: &str = "collector.systemd.enable-task-metrics";
const RESTARTS: &str = "collector.systemd.enable-restarts-metrics";
const START_TIME: &str = "collector.systemd.enable-start-time-metrics";

/// Property requests kept outstanding on the connection at once.
const IN_FLIGHT: usize = 64;

/// systemd's first version with `SystemState` and timers' `LastTriggerUSec` (as upstream).
const MIN_VERSION_SYSTEM_STATE: f64 = 212.0;

/// The states every unit gets a `node_systemd_unit_state` series for.
const STATES: [&str; 5] = ["active", "activating", "deactivating", "inactive", "failed"];

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// Catalog entry.
pub static DEF: Def = Def {
    name: "systemd",
    default_enabled: true,
    help: "Exposes service and system status from systemd (over D-Bus).",
    flags: &[
        Flag {
            name: BUS,
            help: "D-Bus to read systemd from: system (honours DBUS_SYSTEM_BUS_ADDRESS), session, or a D-Bus address such as unix:path=/run/dbus/system_bus_socket.",
            kind: FlagKind::Str("system"),
        },
        Flag {
            name: INCLUDE,
            help: "Regexp of systemd units to include. Units must both match include and not match exclude to be included.",
            kind: FlagKind::Str(".+"),
        },
        Flag {
            name: EXCLUDE,
            help: "Regexp of systemd units to exclude. Units must both match include and not match exclude to be included.",
            kind: FlagKind::Str(".+\\.(automount|device|mount|scope|slice)"),
        },
        Flag {
            name: TASKS,
            help: "Enables service unit tasks metrics unit_tasks_current and unit_tasks_max",
            kind: FlagKind::Bool(false),
        },
        Flag { name: RESTARTS, help: "Enables service unit metric service_restart_total", kind: FlagKind::Bool(false) },
        Flag {
            name: START_TIME,
            help: "Enables service unit metric unit_start_time_seconds",
            kind: FlagKind::Bool(false),
        },
    ],
    build: |ctx| {
        let anchored = |flag: &str| {
            Regex::new(&format!("^(?:{})$", ctx.str(flag)))
                .map_err(|e| anyhow::anyhow!("--{flag}: invalid regular expression: {e}"))
        };
        let bus = match ctx.str(BUS) {
            "" | "system" => Bus::System,
            "session" => Bus::Session,
            addr => {
                addr.parse::<zbus::Address>().map_err(|e| anyhow::anyhow!("--{BUS}: invalid D-Bus address: {e}"))?;
                Bus::Address(addr.to_owned())
            }
        };
        let timeout = crate::cli::parse_duration(ctx.str("collector.timeout")).unwrap_or(Duration::from_secs(10));
        Ok(Box::new(SystemdCollector(Arc::new(Systemd {
            bus,
            include: anchored(INCLUDE)?,
            exclude: anchored(EXCLUDE)?,
            tasks: ctx.bool(TASKS),
            restarts: ctx.bool(RESTARTS),
            start_time: ctx.bool(START_TIME),
            timeout,
            conn: Mutex::new(None),
            ever_connected: AtomicBool::new(false),
        }))))
    },
};

/// Which bus to dial.
#[derive(Clone, Debug)]
enum Bus {
    System,
    Session,
    Address(String),
}

/// The collector (shared with the scrape task it spawns on the runtime).
struct SystemdCollector(Arc<Systemd>);

/// Settings and the one cached connection.
struct Systemd {
    bus: Bus,
    include: Regex,
    exclude: Regex,
    tasks: bool,
    restarts: bool,
    start_time: bool,
    /// Whole-scrape and per-call limit (the agent's `--collector.timeout`).
    timeout: Duration,
    conn: Mutex<Option<zbus::Connection>>,
    /// Whether a connection ever succeeded (a bus that vanished later is an error).
    ever_connected: AtomicBool,
}

/// A unit as `ListUnits` reports it (only the fields used).
struct Unit<'a> {
    name: &'a str,
    load_state: &'a str,
    active_state: &'a str,
    path: ObjectPath<'a>,
}

/// `ListUnits`' element: name, description, load, active, sub, followed, path, job id, job
/// type, job path.
type ListEntry<'a> =
    (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str, ObjectPath<'a>, u32, &'a str, ObjectPath<'a>);

/// A property value of the types systemd uses for the properties read here.
#[derive(Clone, Debug, PartialEq)]
enum Prop {
    Str(String),
    U32(u32),
    U64(u64),
    Other,
}

impl Prop {
    fn from_value(v: &Value<'_>) -> Self {
        match v {
            Value::Str(s) => Prop::Str(s.as_str().to_owned()),
            Value::U32(n) => Prop::U32(*n),
            Value::U64(n) => Prop::U64(*n),
            Value::Value(inner) => Prop::from_value(inner),
            _ => Prop::Other,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Prop::U32(n) => Some(f64::from(*n)),
            Prop::U64(n) => Some(*n as f64),
            _ => None,
        }
    }
}

/// Which metric a property request feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Type,
    Restarts,
    TasksCurrent,
    TasksMax,
    Accepted,
    Connections,
    Refused,
    LastTrigger,
    StartTime,
}

/// A runtime for callers outside the agent's (unit tests, tools): one worker thread.
fn fallback_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("osprey-dbus")
            .enable_all()
            .build()
            .expect("starting the D-Bus runtime")
    })
}

fn other(what: &str, e: impl std::fmt::Display) -> CollectError {
    CollectError::Other(format!("{what}: {e}"))
}

impl Collector for SystemdCollector {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let handle = tokio::runtime::Handle::try_current().unwrap_or_else(|_| fallback_runtime().handle().clone());
        let conn = self.0.connection(&handle)?;
        // The scrape runs as a task on the runtime, beside the connection's reader task: with
        // the agent's single worker thread, a reply then wakes no other thread (blocking on the
        // future from this pool thread measured ~2 context switches per D-Bus call).
        let me = Arc::clone(&self.0);
        let task = handle.spawn(async move {
            let mut sink = Sink::new();
            let res = tokio::time::timeout(me.timeout, me.scrape(&conn, &mut sink))
                .await
                .unwrap_or_else(|_| Err(CollectError::Other("timed out talking to systemd".into())));
            (sink, res)
        });
        let (sink, res) = handle.block_on(task).map_err(|e| other("systemd scrape task", e))?;
        for fam in sink.into_families() {
            out.push_family(fam);
        }
        if res.is_err() {
            // Whatever broke (bus gone, peer gone, timeout), start from a fresh connection.
            *self.0.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        res
    }
}

impl Systemd {
    /// The cached connection, or a new one when there is none or it closed.
    fn connection(&self, handle: &tokio::runtime::Handle) -> Result<zbus::Connection, CollectError> {
        let mut slot = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *slot = None;
        let builder = match &self.bus {
            Bus::System => zbus::connection::Builder::system(),
            Bus::Session => zbus::connection::Builder::session(),
            Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
        }
        .map_err(|e| other("D-Bus address", e))?
        .method_timeout(self.timeout);
        let conn = handle
            .block_on(async { tokio::time::timeout(self.timeout, builder.build()).await })
            .map_err(|_| CollectError::Other("timed out connecting to D-Bus".into()))?
            .map_err(|e| {
                // No bus socket and never connected: a host (or container) without systemd's
                // bus, reported as node_exporter's "no data" (logged at debug, not as an error).
                let absent = matches!(&e, zbus::Error::Connection(io, _)
                    if matches!(io.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused));
                if absent && !self.ever_connected.load(Ordering::Relaxed) {
                    CollectError::NoData
                } else {
                    other("couldn't get dbus connection", e)
                }
            })?;
        self.ever_connected.store(true, Ordering::Relaxed);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn scrape(&self, conn: &zbus::Connection, out: &mut Sink) -> Result<(), CollectError> {
        let (version, virt, list) = tokio::join!(
            manager_property(conn, "Version"),
            manager_property(conn, "Virtualization"),
            conn.call_method(Some(DEST), MANAGER_PATH, Some(MANAGER), "ListUnits", &()),
        );
        let (version_num, version_full) = match &version {
            Ok(Prop::Str(s)) => parse_version(s),
            _ => (0.0, String::new()),
        };
        out.gauge_with("node_systemd_version", "Detected systemd version", &[("version", &version_full)], version_num);
        let virt = match virt {
            Ok(Prop::Str(s)) if s.is_empty() => "none".to_owned(),
            Ok(Prop::Str(s)) => s,
            _ => "unknown".to_owned(),
        };
        out.gauge_with(
            "node_systemd_virtualization_info",
            "Detected virtualization technology",
            &[("virtualization_type", &virt)],
            1.0,
        );
        let list = list.map_err(|e| other("couldn't get units", e))?;
        let body = list.body();
        let entries: Vec<ListEntry<'_>> = body.deserialize().map_err(|e| other("couldn't get units", e))?;
        let all: Vec<Unit<'_>> = entries
            .into_iter()
            .map(|(name, _, load_state, active_state, _, _, path, ..)| Unit { name, load_state, active_state, path })
            .collect();
        summarize(&all, out);
        let units: Vec<&Unit<'_>> = all
            .iter()
            .filter(|u| self.include.is_match(u.name) && !self.exclude.is_match(u.name) && u.load_state == "loaded")
            .collect();

        let timers = version_num >= MIN_VERSION_SYSTEM_STATE;
        let mut requests: Vec<(usize, Want, &'static str, &'static str)> = Vec::new();
        for (i, u) in units.iter().enumerate() {
            let kind = u.name.rsplit_once('.').map_or("", |(_, k)| k);
            match kind {
                "service" => {
                    requests.push((i, Want::Type, "org.freedesktop.systemd1.Service", "Type"));
                    if self.restarts {
                        requests.push((i, Want::Restarts, "org.freedesktop.systemd1.Service", "NRestarts"));
                    }
                    if self.tasks {
                        requests.push((i, Want::TasksCurrent, "org.freedesktop.systemd1.Service", "TasksCurrent"));
                        requests.push((i, Want::TasksMax, "org.freedesktop.systemd1.Service", "TasksMax"));
                    }
                }
                "mount" => requests.push((i, Want::Type, "org.freedesktop.systemd1.Mount", "Type")),
                "socket" => {
                    requests.push((i, Want::Accepted, "org.freedesktop.systemd1.Socket", "NAccepted"));
                    requests.push((i, Want::Connections, "org.freedesktop.systemd1.Socket", "NConnections"));
                    requests.push((i, Want::Refused, "org.freedesktop.systemd1.Socket", "NRefused"));
                }
                "timer" if timers => {
                    requests.push((i, Want::LastTrigger, "org.freedesktop.systemd1.Timer", "LastTriggerUSec"));
                }
                _ => {}
            }
            if self.start_time && u.active_state == "active" {
                requests.push((i, Want::StartTime, "org.freedesktop.systemd1.Unit", "ActiveEnterTimestamp"));
            }
        }
        let calls: Vec<(&ObjectPath<'_>, &str, &str)> =
            requests.iter().map(|&(i, _, iface, prop)| (&units[i].path, iface, prop)).collect();
        let answers = pipelined_get(conn, &calls).await?;
        let mut props: Vec<Vec<(Want, Prop)>> = vec![Vec::new(); units.len()];
        for ((i, want, ..), answer) in requests.iter().zip(answers) {
            if let Some(p) = answer {
                props[*i].push((*want, p));
            }
        }
        for (u, props) in units.iter().zip(&props) {
            self.emit_unit(u, props, timers, out);
        }
        if timers {
            let state =
                manager_property(conn, "SystemState").await.map_err(|e| other("couldn't get system state", e))?;
            let running = matches!(&state, Prop::Str(s) if s == "running");
            out.gauge(
                "node_systemd_system_running",
                "Whether the system is operational (see 'systemctl is-system-running')",
                if running { 1.0 } else { 0.0 },
            );
        }
        Ok(())
    }

    /// One unit's series, from the properties that answered (a missing one is skipped as
    /// upstream skips a failed call).
    fn emit_unit(&self, u: &Unit<'_>, props: &[(Want, Prop)], timers: bool, out: &mut Sink) {
        let get = |w: Want| props.iter().find(|(x, _)| *x == w).map(|(_, p)| p);
        let kind = u.name.rsplit_once('.').map_or("", |(_, k)| k);
        let ty = match get(Want::Type) {
            Some(Prop::Str(s)) => s.as_str(),
            _ => "",
        };
        for state in STATES {
            out.gauge_with(
                "node_systemd_unit_state",
                "Systemd unit",
                &[("name", u.name), ("state", state), ("type", ty)],
                if state == u.active_state { 1.0 } else { 0.0 },
            );
        }
        let name = [("name", u.name)];
        if self.restarts
            && kind == "service"
            && let Some(n) = get(Want::Restarts).and_then(Prop::num)
        {
            out.counter_with("node_systemd_service_restart_total", "Service unit count of Restart triggers", &name, n);
        }
        if self.start_time {
            let t = if u.active_state == "active" { get(Want::StartTime).and_then(Prop::num) } else { Some(0.0) };
            if let Some(t) = t {
                out.gauge_with(
                    "node_systemd_unit_start_time_seconds",
                    "Start time of the unit since unix epoch in seconds.",
                    &name,
                    t / 1e6,
                );
            }
        }
        if self.tasks && kind == "service" {
            for (w, metric, help) in [
                (Want::TasksCurrent, "node_systemd_unit_tasks_current", "Current number of tasks per Systemd unit"),
                (Want::TasksMax, "node_systemd_unit_tasks_max", "Maximum number of tasks per Systemd unit"),
            ] {
                if let Some(Prop::U64(n)) = get(w)
                    && *n != u64::MAX
                {
                    out.gauge_with(metric, help, &name, *n as f64);
                }
            }
        }
        if timers
            && kind == "timer"
            && let Some(t) = get(Want::LastTrigger).and_then(Prop::num)
        {
            out.gauge_with(
                "node_systemd_timer_last_trigger_seconds",
                "Seconds since epoch of last trigger.",
                &name,
                t / 1e6,
            );
        }
        if kind == "socket" {
            // As upstream: without NAccepted nothing, without NConnections no NRefused either.
            let Some(accepted) = get(Want::Accepted).and_then(Prop::num) else { return };
            out.counter_with(
                "node_systemd_socket_accepted_connections_total",
                "Total number of accepted socket connections",
                &name,
                accepted,
            );
            let Some(current) = get(Want::Connections).and_then(Prop::num) else { return };
            out.gauge_with(
                "node_systemd_socket_current_connections",
                "Current number of socket connections",
                &name,
                current,
            );
            if let Some(refused) = get(Want::Refused).and_then(Prop::num) {
                // Upstream exposes this counter-named series as a gauge; kept for compatibility.
                out.gauge_with(
                    "node_systemd_socket_refused_connections_total",
                    "Total number of refused socket connections",
                    &name,
                    refused,
                );
            }
        }
    }
}

/// `node_systemd_units{state}`: the five known states (0 when none) plus any other state seen.
fn summarize(units: &[Unit<'_>], out: &mut Sink) {
    let mut counts: Vec<(&str, f64)> = STATES.iter().map(|s| (*s, 0.0)).collect();
    for u in units {
        match counts.iter_mut().find(|(s, _)| *s == u.active_state) {
            Some((_, n)) => *n += 1.0,
            None => counts.push((u.active_state, 1.0)),
        }
    }
    for (state, n) in counts {
        out.gauge_with("node_systemd_units", "Summary of systemd unit states", &[("state", state)], n);
    }
}

/// The numeric version (`[0-9]{3,}(\.[0-9]+)?` of the string, as upstream) and the full
/// string; (0, "") when no number is found.
fn parse_version(s: &str) -> (f64, String) {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"[0-9]{3,}(\.[0-9]+)?").expect("static regex"));
    match re.find(s).and_then(|m| m.as_str().parse::<f64>().ok()) {
        Some(v) => (v, s.to_owned()),
        None => (0.0, String::new()),
    }
}

/// `Properties.Get` for every `(path, interface, property)`, pipelined: up to [`IN_FLIGHT`]
/// calls are outstanding, and replies are matched by serial from one message stream (zbus'
/// own `call_method` wakes every pending call for every reply, which dominated the CPU with
/// thousands of calls). `None` where systemd answered with an error (e.g. an older systemd
/// without that property), as upstream skips a failed call.
async fn pipelined_get(
    conn: &zbus::Connection,
    calls: &[(&ObjectPath<'_>, &str, &str)],
) -> Result<Vec<Option<Prop>>, CollectError> {
    let mut answers: Vec<Option<Prop>> = vec![None; calls.len()];
    if calls.is_empty() {
        return Ok(answers);
    }
    let closed = || CollectError::Other("D-Bus connection closed during the scrape".into());
    // Subscribed before the first call goes out, so no reply can be missed.
    let mut replies = zbus::MessageStream::from(conn);
    let mut pending: HashMap<u32, usize> = HashMap::with_capacity(IN_FLIGHT);
    let mut next = 0;
    let mut done = 0;
    while done < calls.len() {
        while next < calls.len() && pending.len() < IN_FLIGHT {
            let (path, iface, prop) = calls[next];
            let msg = zbus::Message::method_call(path.clone(), "Get")
                .and_then(|b| b.destination(DEST))
                .and_then(|b| b.interface(PROPERTIES))
                .and_then(|b| b.build(&(iface, prop)))
                .map_err(|e| other("building a D-Bus call", e))?;
            pending.insert(msg.primary_header().serial_num().get(), next);
            conn.send(&msg).await.map_err(|e| other("sending a D-Bus call", e))?;
            next += 1;
        }
        let msg = replies.next().await.ok_or_else(closed)?.map_err(|e| other("reading D-Bus", e))?;
        let Some(idx) = msg.header().reply_serial().and_then(|s| pending.remove(&s.get())) else { continue };
        done += 1;
        if msg.message_type() == zbus::message::Type::MethodReturn
            && let Ok(v) = msg.body().deserialize::<Value<'_>>()
        {
            answers[idx] = Some(Prop::from_value(&v));
        }
    }
    Ok(answers)
}

async fn manager_property(conn: &zbus::Connection, prop: &str) -> Result<Prop, zbus::Error> {
    let path = ObjectPath::from_static_str_unchecked(MANAGER_PATH);
    get_property(conn, &path, MANAGER, prop).await
}

async fn get_property(
    conn: &zbus::Connection,
    path: &ObjectPath<'_>,
    iface: &str,
    prop: &str,
) -> Result<Prop, zbus::Error> {
    let reply = conn.call_method(Some(DEST), path, Some(PROPERTIES), "Get", &(iface, prop)).await?;
    let body = reply.body();
    let v: Value<'_> = body.deserialize()?;
    Ok(Prop::from_value(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_strings_parse_as_upstream() {
        assert_eq!(parse_version("252.39-1~deb12u1"), (252.39, "252.39-1~deb12u1".to_owned()));
        assert_eq!(parse_version("v255"), (255.0, "v255".to_owned()));
        assert_eq!(parse_version("foo"), (0.0, String::new()));
    }

    #[test]
    fn summary_counts_known_and_other_states() {
        let p = ObjectPath::from_static_str_unchecked("/a");
        let u = |name, active_state| Unit { name, load_state: "loaded", active_state, path: p.clone() };
        let mut out = Sink::new();
        summarize(&[u("a.service", "active"), u("b.service", "active"), u("c.service", "reloading")], &mut out);
        let f = &out.families()[0];
        let get = |s: &str| f.samples.iter().find(|x| x.label("state") == Some(s)).map(|x| x.value);
        assert_eq!(get("active"), Some(2.0));
        assert_eq!(get("failed"), Some(0.0));
        assert_eq!(get("reloading"), Some(1.0));
    }

    #[test]
    fn bad_regex_and_bad_address_fail_at_build() {
        let mut ctx = Ctx::default();
        ctx.values.insert(INCLUDE.into(), crate::catalog::Value::Str("(".into()));
        ctx.values.insert(EXCLUDE.into(), crate::catalog::Value::Str("x".into()));
        let e = (DEF.build)(&ctx).err().expect("invalid regex rejected").to_string();
        assert!(e.contains("--collector.systemd.unit-include"), "{e}");
        ctx.values.insert(INCLUDE.into(), crate::catalog::Value::Str(".+".into()));
        ctx.values.insert(BUS.into(), crate::catalog::Value::Str("nonsense".into()));
        let e = (DEF.build)(&ctx).err().expect("invalid address rejected").to_string();
        assert!(e.contains("--collector.systemd.bus"), "{e}");
    }

    #[test]
    fn missing_bus_is_no_data_not_a_panic() {
        let mut ctx = Ctx::default();
        ctx.values.insert(BUS.into(), crate::catalog::Value::Str("unix:path=/nonexistent/osprey-bus".into()));
        let c = (DEF.build)(&ctx).unwrap();
        let mut out = Sink::new();
        assert!(matches!(c.collect(&mut out), Err(CollectError::NoData)));
        assert!(out.is_empty());
    }
}
