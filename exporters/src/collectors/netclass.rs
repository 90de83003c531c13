//! `netclass`: network interface properties from `/sys/class/net/<iface>/` (node_exporter
//! compatible, sysfs path; `--collector.netclass.netlink` is accepted and reads sysfs too).

use std::io;

use regex::Regex;

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "netclass",
    default_enabled: true,
    help: "Exposes network interface info from /sys/class/net/",
    flags: &[
        Flag {
            name: "collector.netclass.ignored-devices",
            help: "Regexp of net devices to ignore for netclass collector.",
            kind: FlagKind::Str("^$"),
        },
        Flag {
            name: "collector.netclass.ignore-invalid-speed",
            help: "Ignore devices where the speed is invalid. This will be the default behavior in 2.x.",
            kind: FlagKind::Bool(false),
        },
        Flag {
            name: "collector.netclass.netlink",
            help: "Use netlink to gather stats instead of /proc/net/dev.",
            kind: FlagKind::Bool(false),
        },
    ],
    build: |ctx| {
        Ok(Box::new(NetClass {
            dir: ctx.paths.sys("class/net"),
            // Unlike most regex flags, an empty value is a regex too (it matches every device).
            ignored: Some(Regex::new(ctx.str("collector.netclass.ignored-devices")).map_err(|e| {
                anyhow::anyhow!("--collector.netclass.ignored-devices: invalid regular expression: {e}")
            })?),
            ignore_invalid_speed: ctx.bool("collector.netclass.ignore-invalid-speed"),
        }))
    },
};

/// Reports `node_network_up`, `node_network_info` and one gauge or counter per numeric
/// attribute of every interface in `/sys/class/net`.
struct NetClass {
    /// `/sys/class/net`.
    dir: PathBuf,
    /// Devices matching this are skipped (node_exporter's `ignored-devices`, unanchored).
    ignored: Option<Regex>,
    /// Drop `speed_bytes` when the kernel reports a negative speed.
    ignore_invalid_speed: bool,
}

/// Text attributes, in the order of [`Iface::text`].
const TEXT_ATTRS: [&str; 5] = ["address", "broadcast", "duplex", "operstate", "ifalias"];

/// Numeric attributes: (file, metric suffix, is counter), in the order node_exporter emits.
const NUM_ATTRS: [(&str, &str, bool); 17] = [
    ("addr_assign_type", "address_assign_type", false),
    ("carrier", "carrier", false),
    ("carrier_changes", "carrier_changes_total", true),
    ("carrier_up_count", "carrier_up_changes_total", true),
    ("carrier_down_count", "carrier_down_changes_total", true),
    ("dev_id", "device_id", false),
    ("dormant", "dormant", false),
    ("flags", "flags", false),
    ("ifindex", "iface_id", false),
    ("iflink", "iface_link", false),
    ("link_mode", "iface_link_mode", false),
    ("mtu", "mtu_bytes", false),
    ("name_assign_type", "name_assign_type", false),
    ("netdev_group", "net_dev_group", false),
    ("speed", "speed_bytes", false),
    ("tx_queue_len", "transmit_queue_length", false),
    ("type", "protocol_type", false),
];

/// Index of `flags` and `speed` in [`NUM_ATTRS`].
const FLAGS: usize = 7;
/// See [`FLAGS`].
const SPEED: usize = 14;

/// What one interface directory holds.
#[derive(Debug, Default, PartialEq)]
struct Iface {
    /// Interface name.
    name: String,
    /// Values of [`TEXT_ATTRS`] (empty when absent).
    text: [String; 5],
    /// Values of [`NUM_ATTRS`] (`None` when absent or unreadable).
    num: [Option<i64>; 17],
}

impl Collector for NetClass {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        // As upstream: gather everything first; a missing or unreadable tree means "no data".
        let ifaces = self.gather().map_err(|e| match &e {
            CollectError::Io { source, .. }
                if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) =>
            {
                CollectError::NoData
            }
            _ => e,
        })?;
        let mut name = String::new();
        let mut help = String::new();
        for i in &ifaces {
            let dev = i.name.as_str();
            let up = if i.text[3] == "up" { 1.0 } else { 0.0 };
            out.gauge_with("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", &[("device", dev)], up);
            out.gauge_with(
                "node_network_info",
                "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                &[
                    ("device", dev),
                    ("address", &i.text[0]),
                    ("broadcast", &i.text[1]),
                    ("duplex", &i.text[2]),
                    ("operstate", &i.text[3]),
                    ("adminstate", admin_state(i.num[FLAGS])),
                    ("ifalias", &i.text[4]),
                ],
                1.0,
            );
            for (idx, (&(_, suffix, counter), value)) in NUM_ATTRS.iter().zip(i.num).enumerate() {
                let Some(mut v) = value else { continue };
                if idx == SPEED {
                    if v < 0 && self.ignore_invalid_speed {
                        continue;
                    }
                    v = v.wrapping_mul(1_000_000) / 8;
                }
                name.clear();
                name.push_str("node_network_");
                name.push_str(suffix);
                help.clear();
                help.push_str("Network device property: ");
                help.push_str(suffix);
                let kind = if counter { MetricType::Counter } else { MetricType::Gauge };
                out.add(&name, &help, kind, &[("device", dev)], v as f64);
            }
        }
        Ok(())
    }
}

impl NetClass {
    /// Reads every non-ignored interface.
    fn gather(&self) -> Result<Vec<Iface>, CollectError> {
        let mut entries: Vec<_> =
            std::fs::read_dir(&self.dir).map_err(|e| CollectError::io(&self.dir, e))?.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        let mut out = Vec::new();
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            let dev_dir = if is_file {
                // A regular file is not an interface (`bonding_masters`), unless it is a
                // symlink that a fixture tree stored as a file holding the link target.
                match link_stub_target(&entry.path()) {
                    Some(d) => d,
                    None => continue,
                }
            } else {
                entry.path()
            };
            if self.ignored.as_ref().is_some_and(|r| r.is_match(&name)) {
                continue;
            }
            out.push(read_iface(&dev_dir, name)?);
        }
        Ok(out)
    }
}

/// For a regular file holding a relative path (`../..`) to an existing directory — how some
/// fixture trees store symlinks — that directory. Real sysfs never has such files.
fn link_stub_target(file: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(file).ok()?;
    if meta.len() > 4096 {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let target = text.trim();
    if !target.starts_with("../") {
        return None;
    }
    let dir = file.parent()?.join(target);
    dir.is_dir().then_some(dir)
}

/// Reads one interface directory: every known attribute that is a regular file.
fn read_iface(dir: &Path, name: String) -> Result<Iface, CollectError> {
    let mut iface = Iface { name, ..Iface::default() };
    let rd = std::fs::read_dir(dir).map_err(|e| CollectError::io(dir, e))?;
    let attrs = AttrDir::open(dir).map_err(|e| CollectError::io(dir, e))?;
    let mut buf = [0u8; 128];
    for entry in rd.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let text_slot = TEXT_ATTRS.iter().position(|&a| a == file);
        let num_slot = NUM_ATTRS.iter().position(|&(a, _, _)| a == file);
        if text_slot.is_none() && num_slot.is_none() {
            continue;
        }
        let value = match attrs.read(file, &mut buf) {
            Ok(v) => v,
            Err(e) if ignorable(&e) => continue,
            Err(e) => return Err(CollectError::io(entry.path(), e)),
        };
        if let Some(i) = text_slot {
            value.clone_into(&mut iface.text[i]);
        } else if let Some(i) = num_slot {
            iface.num[i] = Some(parse_go_int(value).unwrap_or(0));
        }
    }
    Ok(iface)
}

/// Errors procfs skips silently: missing, forbidden, unsupported or invalid attributes.
fn ignorable(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput)
        || matches!(e.raw_os_error(), Some(22 | 95))
}

/// node_exporter's `adminstate` label from the `flags` attribute (`IFF_UP`).
fn admin_state(flags: Option<i64>) -> &'static str {
    match flags {
        None => "unknown",
        Some(f) if f & 1 == 1 => "up",
        Some(_) => "down",
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`, `0o`, `0b` or leading-`0`
/// octal prefixes, underscores allowed between digits.
pub(super) fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits, prefixed) = match lower.as_deref() {
        Some("0x") => (16, &body[2..], true),
        Some("0o") => (8, &body[2..], true),
        Some("0b") => (2, &body[2..], true),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..], true),
        _ => (10, body, false),
    };
    let cleaned;
    let digits = if digits.contains('_') {
        let bad = digits.ends_with('_') || digits.contains("__") || (!prefixed && digits.starts_with('_'));
        if bad {
            return None;
        }
        cleaned = digits.replace('_', "");
        cleaned.as_str()
    } else {
        digits
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integers_like_go() {
        assert_eq!(parse_go_int("1500"), Some(1500));
        assert_eq!(parse_go_int("0x1303"), Some(4867));
        assert_eq!(parse_go_int("-1"), Some(-1));
        assert_eq!(parse_go_int("010"), Some(8));
        assert_eq!(parse_go_int("0"), Some(0));
        assert_eq!(parse_go_int("0b101"), Some(5));
        assert_eq!(parse_go_int("1_000"), Some(1000));
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_int("9223372036854775808"), None);
        assert_eq!(parse_go_int(""), None);
        assert_eq!(parse_go_int("up"), None);
        assert_eq!(parse_go_int("0x"), None);
        assert_eq!(parse_go_int("--1"), None);
    }

    #[test]
    fn admin_state_from_flags() {
        assert_eq!(admin_state(Some(0x1003)), "up");
        assert_eq!(admin_state(Some(0x1002)), "down");
        assert_eq!(admin_state(None), "unknown");
    }

    #[test]
    fn reads_fixture_interface() {
        let dir = crate::testutil::fixtures().join("sys/class/net/bond0");
        let i = read_iface(&dir, "bond0".into()).unwrap();
        assert_eq!(i.text[0], "01:01:01:01:01:01");
        assert_eq!(i.text[4], "");
        assert_eq!(i.num[FLAGS], Some(4867));
        assert_eq!(i.num[SPEED], Some(-1));
    }

    #[test]
    fn resolves_fixture_symlink_stubs_only() {
        let net = crate::testutil::fixtures().join("sys/class/net");
        assert!(link_stub_target(&net.join("eth0")).is_some_and(|d| d.join("mtu").is_file()));
        assert_eq!(link_stub_target(&net.join("bonding_masters")), None);
    }
}

#[cfg(test)]
mod conformance {
    /// Families of the netclass collector.
    const FAMILIES: &[&str] = &[
        "up",
        "info",
        "address_assign_type",
        "carrier",
        "carrier_changes_total",
        "carrier_up_changes_total",
        "carrier_down_changes_total",
        "device_id",
        "dormant",
        "flags",
        "iface_id",
        "iface_link",
        "iface_link_mode",
        "mtu_bytes",
        "name_assign_type",
        "net_dev_group",
        "speed_bytes",
        "transmit_queue_length",
        "protocol_type",
    ];

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("netclass", &|f| {
            f.strip_prefix("node_network_").is_some_and(|s| FAMILIES.contains(&s))
        });
    }
}
