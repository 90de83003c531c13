//! `fake-systemd`: a stand-in for systemd's D-Bus API on a private bus, for tests and benches.
//!
//! It owns `org.freedesktop.systemd1` on the bus given by `--address` and answers the subset
//! of the API that osprey-agent's and node_exporter's systemd collectors call:
//! `Manager.ListUnits`, `Manager.GetUnit`, `Properties.Get`/`GetAll` on the manager
//! (`Version`, `Virtualization`, `SystemState`) and on units (the `Unit`, `Service`, `Mount`,
//! `Socket` and `Timer` properties below), and `Peer.Ping`. Unknown properties answer
//! `org.freedesktop.DBus.Error.UnknownProperty`, as systemd does.
//!
//! The unit set is a fixed list of known units (see [`known_units`]) plus `--units N`
//! generated ones in rotating types and states. Prints `READY` on stdout once the name is
//! owned; exits when the bus goes away.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;

use futures_util::StreamExt as _;
use zbus::message::{Message, Type as MsgType};
use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};

/// One fake unit.
#[derive(Clone, Debug)]
struct Unit {
    name: String,
    load: &'static str,
    active: &'static str,
    sub: &'static str,
    /// Type-specific and `Unit` properties: (interface suffix, property, value).
    props: Vec<(&'static str, &'static str, Prop)>,
}

/// A property value (kept owned so replies can be built from shared state).
#[derive(Clone, Debug)]
enum Prop {
    Str(&'static str),
    U32(u32),
    U64(u64),
}

impl Prop {
    fn value(&self) -> Value<'static> {
        match self {
            Prop::Str(s) => Value::from(*s),
            Prop::U32(n) => Value::from(*n),
            Prop::U64(n) => Value::from(*n),
        }
    }
}

fn unit(
    name: &str,
    load: &'static str,
    active: &'static str,
    sub: &'static str,
    props: Vec<(&'static str, &'static str, Prop)>,
) -> Unit {
    Unit { name: name.to_owned(), load, active, sub, props }
}

/// The known units tests assert on (their expected series are derived from these values).
fn known_units() -> Vec<Unit> {
    use Prop::{Str, U32, U64};
    let svc = |ty, restarts, cur, max, since| {
        vec![
            ("Service", "Type", Str(ty)),
            ("Service", "NRestarts", U32(restarts)),
            ("Service", "TasksCurrent", U64(cur)),
            ("Service", "TasksMax", U64(max)),
            ("Unit", "ActiveEnterTimestamp", U64(since)),
        ]
    };
    vec![
        unit("ssh.service", "loaded", "active", "running", svc("notify", 2, 3, 4915, 1_700_000_000_123_456)),
        unit("cron.service", "loaded", "active", "running", svc("simple", 0, 1, u64::MAX, 1_700_000_100_000_000)),
        unit("broken.service", "loaded", "failed", "failed", svc("oneshot", 5, u64::MAX, 100, 0)),
        unit("starting.service", "loaded", "activating", "start", svc("forking", 1, 0, 10, 0)),
        unit("stopping.service", "loaded", "deactivating", "stop-sigterm", svc("exec", 0, 2, 10, 0)),
        unit("idle.service", "loaded", "inactive", "dead", svc("simple", 0, 0, 10, 0)),
        unit("weird.service", "loaded", "reloading", "reload", svc("notify-reload", 0, 4, 10, 1_600_000_000_000_000)),
        unit("gone.service", "not-found", "inactive", "dead", vec![]),
        unit("getty@tty1.service", "loaded", "active", "running", svc("idle", 0, 1, 10, 1_700_000_000_000_000)),
        unit(
            "dbus.socket",
            "loaded",
            "active",
            "running",
            vec![
                ("Socket", "NAccepted", U32(42)),
                ("Socket", "NConnections", U32(3)),
                ("Socket", "NRefused", U32(1)),
                ("Unit", "ActiveEnterTimestamp", U64(1_700_000_000_000_000)),
            ],
        ),
        // An older systemd without NRefused.
        unit(
            "old.socket",
            "loaded",
            "active",
            "listening",
            vec![
                ("Socket", "NAccepted", U32(7)),
                ("Socket", "NConnections", U32(0)),
                ("Unit", "ActiveEnterTimestamp", U64(1_700_000_000_000_000)),
            ],
        ),
        unit(
            "logrotate.timer",
            "loaded",
            "active",
            "waiting",
            vec![
                ("Timer", "LastTriggerUSec", U64(1_700_000_000_000_000)),
                ("Unit", "ActiveEnterTimestamp", U64(1_699_000_000_000_000)),
            ],
        ),
        unit("never.timer", "loaded", "inactive", "dead", vec![("Timer", "LastTriggerUSec", U64(0))]),
        unit(
            "home.mount",
            "loaded",
            "active",
            "mounted",
            vec![("Mount", "Type", Str("ext4")), ("Unit", "ActiveEnterTimestamp", U64(1_700_000_000_000_000))],
        ),
        unit("dev-sda.device", "loaded", "active", "plugged", vec![]),
        unit("user.slice", "loaded", "active", "active", vec![]),
        unit(
            "multi-user.target",
            "loaded",
            "active",
            "active",
            vec![("Unit", "ActiveEnterTimestamp", U64(1_700_000_000_000_000))],
        ),
    ]
}

/// `n` generated units `gen-00000.service`… in rotating types and states.
fn generated_units(n: usize) -> Vec<Unit> {
    use Prop::{Str, U32, U64};
    const ACTIVE: [(&str, &str); 5] = [
        ("active", "running"),
        ("inactive", "dead"),
        ("failed", "failed"),
        ("activating", "start"),
        ("deactivating", "stop"),
    ];
    const TYPES: [&str; 4] = ["simple", "forking", "oneshot", "notify"];
    (0..n)
        .map(|i| {
            let (active, sub) = ACTIVE[i % ACTIVE.len()];
            let load = if i % 13 == 12 { "not-found" } else { "loaded" };
            let since = Prop::U64(1_700_000_000_000_000 + i as u64 * 1_000_000);
            match i % 10 {
                0..=5 => unit(
                    &format!("gen-{i:05}.service"),
                    load,
                    active,
                    sub,
                    vec![
                        ("Service", "Type", Str(TYPES[i % TYPES.len()])),
                        ("Service", "NRestarts", U32((i % 4) as u32)),
                        ("Service", "TasksCurrent", U64((i % 9) as u64)),
                        ("Service", "TasksMax", U64(4915)),
                        ("Unit", "ActiveEnterTimestamp", since),
                    ],
                ),
                6 => unit(
                    &format!("gen-{i:05}.socket"),
                    load,
                    active,
                    sub,
                    vec![
                        ("Socket", "NAccepted", U32(i as u32)),
                        ("Socket", "NConnections", U32((i % 5) as u32)),
                        ("Socket", "NRefused", U32(0)),
                        ("Unit", "ActiveEnterTimestamp", since),
                    ],
                ),
                7 => unit(
                    &format!("gen-{i:05}.timer"),
                    load,
                    active,
                    sub,
                    vec![
                        ("Timer", "LastTriggerUSec", U64(1_700_000_000_000_000 + i as u64)),
                        ("Unit", "ActiveEnterTimestamp", since),
                    ],
                ),
                8 => unit(
                    &format!("gen-{i:05}.mount"),
                    load,
                    active,
                    sub,
                    vec![("Mount", "Type", Str("tmpfs")), ("Unit", "ActiveEnterTimestamp", since)],
                ),
                _ => unit(
                    &format!("gen-{i:05}.target"),
                    load,
                    active,
                    sub,
                    vec![("Unit", "ActiveEnterTimestamp", since)],
                ),
            }
        })
        .collect()
}

/// systemd's object path label escaping (`sd_bus_path_encode`): alphanumerics stay, except a
/// leading digit; everything else becomes `_xx`.
fn escape(name: &str) -> String {
    if name.is_empty() {
        return "_".into();
    }
    let mut s = String::with_capacity(name.len() * 2);
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            s.push(b as char);
        } else {
            let _ = write!(s, "_{b:02x}");
        }
    }
    s
}

/// `ListUnits`' element: name, description, load, active, sub, followed, path, job id, job
/// type, job path.
type ListEntry = (String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath);

const MANAGER_PATH: &str = "/org/freedesktop/systemd1";

struct State {
    units: Vec<Unit>,
    by_path: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    manager: Vec<(&'static str, Prop)>,
}

impl State {
    fn path(name: &str) -> String {
        format!("{MANAGER_PATH}/unit/{}", escape(name))
    }

    fn props(&self, path: &str, iface: &str) -> Option<Vec<(&'static str, Value<'static>)>> {
        if path == MANAGER_PATH {
            return (iface == "org.freedesktop.systemd1.Manager")
                .then(|| self.manager.iter().map(|(k, v)| (*k, v.value())).collect());
        }
        let u = &self.units[*self.by_path.get(path)?];
        let suffix = iface.strip_prefix("org.freedesktop.systemd1.")?;
        let mut out: Vec<(&'static str, Value<'static>)> =
            u.props.iter().filter(|(i, ..)| *i == suffix).map(|(_, k, v)| (*k, v.value())).collect();
        if suffix == "Unit" {
            out.push(("Id", Value::from(u.name.clone())));
            out.push(("LoadState", Value::from(u.load)));
            out.push(("ActiveState", Value::from(u.active)));
            out.push(("SubState", Value::from(u.sub)));
        }
        Some(out)
    }

    fn list_units(&self) -> Vec<ListEntry> {
        let root = OwnedObjectPath::try_from("/").expect("root path");
        self.units
            .iter()
            .map(|u| {
                (
                    u.name.clone(),
                    format!("Fake {}", u.name),
                    u.load.to_owned(),
                    u.active.to_owned(),
                    u.sub.to_owned(),
                    String::new(),
                    OwnedObjectPath::try_from(Self::path(&u.name)).expect("escaped path"),
                    0,
                    String::new(),
                    root.clone(),
                )
            })
            .collect()
    }
}

fn error(msg: &Message, name: &str, text: &str) -> zbus::Result<Message> {
    Message::error(&msg.header(), name)?.build(&text)
}

fn answer(state: &State, msg: &Message) -> zbus::Result<Message> {
    let h = msg.header();
    let path = h.path().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let iface = h.interface().map(|i| i.as_str().to_owned()).unwrap_or_default();
    let member = h.member().map(|m| m.as_str().to_owned()).unwrap_or_default();
    match (iface.as_str(), member.as_str()) {
        ("org.freedesktop.DBus.Properties", "Get") => {
            let (pi, name): (String, String) = msg.body().deserialize()?;
            let Some(props) = state.props(&path, &pi) else {
                return error(msg, "org.freedesktop.DBus.Error.UnknownObject", "no such object or interface");
            };
            match props.into_iter().find(|(k, _)| *k == name) {
                Some((_, v)) => Message::method_return(&h)?.build(&v),
                None => error(msg, "org.freedesktop.DBus.Error.UnknownProperty", "Unknown property"),
            }
        }
        ("org.freedesktop.DBus.Properties", "GetAll") => {
            let (pi,): (String,) = msg.body().deserialize()?;
            let Some(props) = state.props(&path, &pi) else {
                return error(msg, "org.freedesktop.DBus.Error.UnknownObject", "no such object or interface");
            };
            let map: HashMap<&str, Value<'_>> = props.into_iter().collect();
            Message::method_return(&h)?.build(&map)
        }
        ("org.freedesktop.systemd1.Manager", "ListUnits") => Message::method_return(&h)?.build(&state.list_units()),
        ("org.freedesktop.systemd1.Manager", "GetUnit") => {
            let (name,): (String,) = msg.body().deserialize()?;
            if state.by_name.contains_key(&name) {
                let p = ObjectPath::try_from(State::path(&name))?;
                Message::method_return(&h)?.build(&p)
            } else {
                error(msg, "org.freedesktop.systemd1.NoSuchUnit", &format!("Unit {name} not loaded."))
            }
        }
        ("org.freedesktop.DBus.Peer", "Ping") => Message::method_return(&h)?.build(&()),
        _ => error(msg, "org.freedesktop.DBus.Error.UnknownMethod", &format!("Unknown method {iface}.{member}")),
    }
}

fn usage() -> ! {
    eprintln!("usage: fake-systemd --address ADDR [--units N] [--version V] [--system-state S]");
    std::process::exit(2)
}

fn main() {
    let mut address = None;
    let mut extra = 0usize;
    let mut version = "252.39-1~deb12u1";
    let mut system_state = "running";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--address" => address = Some(val()),
            "--units" => extra = val().parse().unwrap_or_else(|_| usage()),
            "--version" => version = Box::leak(val().into_boxed_str()),
            "--system-state" => system_state = Box::leak(val().into_boxed_str()),
            _ => usage(),
        }
    }
    let Some(address) = address else { usage() };
    let mut units = known_units();
    units.extend(generated_units(extra));
    let by_path = units.iter().enumerate().map(|(i, u)| (State::path(&u.name), i)).collect();
    let by_name = units.iter().enumerate().map(|(i, u)| (u.name.clone(), i)).collect();
    let state = State {
        units,
        by_path,
        by_name,
        manager: vec![
            ("Version", Prop::Str(version)),
            ("Virtualization", Prop::Str("kvm")),
            ("SystemState", Prop::Str(system_state)),
        ],
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let res: zbus::Result<()> = rt.block_on(async {
        let conn = zbus::connection::Builder::address(address.as_str())?.build().await?;
        let mut stream = zbus::MessageStream::from(&conn);
        conn.request_name("org.freedesktop.systemd1").await?;
        println!("READY");
        let _ = std::io::stdout().flush();
        while let Some(msg) = stream.next().await {
            let Ok(msg) = msg else { continue };
            if msg.message_type() != MsgType::MethodCall {
                continue;
            }
            let reply = answer(&state, &msg)?;
            conn.send(&reply).await?;
        }
        Ok(())
    });
    if let Err(e) = res {
        eprintln!("fake-systemd: {e}");
        std::process::exit(1);
    }
}
