//! `netclass`: network interface properties from `/sys/class/net/<iface>/` (node_exporter
//! compatible, sysfs path; `--collector.netclass.netlink` is accepted and reads sysfs too).

use std::io;

use regex::Regex;

use crate::prelude::*;
use crate::sysfs::{ATTR_BUF, ignorable, link_stub_target, parse_go_int};

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

/// Reads one interface directory: every known attribute that exists. The directory is opened
/// once and each attribute read with `openat(2)`, which skips both the directory listing and
/// the path walk (this collector was the agent's most expensive per scrape).
fn read_iface(dir: &Path, name: String) -> Result<Iface, CollectError> {
    let mut iface = Iface { name, ..Iface::default() };
    let attrs = AttrDir::open(dir).map_err(|e| CollectError::io(dir, e))?;
    let mut buf = [0u8; ATTR_BUF];
    for (i, &file) in TEXT_ATTRS.iter().enumerate() {
        match attrs.read(file, &mut buf) {
            Ok(v) => v.clone_into(&mut iface.text[i]),
            Err(e) if ignorable(&e) || e.raw_os_error() == Some(21) => {}
            Err(e) => return Err(CollectError::io(dir.join(file), e)),
        }
    }
    for (i, &(file, _, _)) in NUM_ATTRS.iter().enumerate() {
        match attrs.read(file, &mut buf) {
            Ok(v) => iface.num[i] = Some(parse_go_int(v).unwrap_or(0)),
            Err(e) if ignorable(&e) || e.raw_os_error() == Some(21) => {}
            Err(e) => return Err(CollectError::io(dir.join(file), e)),
        }
    }
    Ok(iface)
}

/// node_exporter's `adminstate` label from the `flags` attribute (`IFF_UP`).
fn admin_state(flags: Option<i64>) -> &'static str {
    match flags {
        None => "unknown",
        Some(f) if f & 1 == 1 => "up",
        Some(_) => "down",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
