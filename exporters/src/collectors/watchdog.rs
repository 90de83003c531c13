//! `watchdog`: watchdog device state from `/sys/class/watchdog` (node_exporter compatible).

use std::io;

use crate::prelude::*;
use crate::sysfs::{ATTR_BUF, parse_go_int};

/// Catalog entry.
pub static DEF: Def = Def {
    name: "watchdog",
    default_enabled: true,
    help: "Exposes watchdog devices and their state from /sys/class/watchdog/.",
    flags: &[],
    build: |ctx| Ok(Box::new(Watchdog { dir: ctx.paths.sys("class/watchdog") })),
};

/// Reports `node_watchdog_*` for every device under `/sys/class/watchdog`.
struct Watchdog {
    /// `/sys/class/watchdog`.
    dir: PathBuf,
}

/// Numeric attributes: (file, metric, HELP), in upstream's emission order.
const GAUGES: [(&str, &str, &str); 7] = [
    ("bootstatus", "node_watchdog_bootstatus", "Value of /sys/class/watchdog/<watchdog>/bootstatus"),
    ("fw_version", "node_watchdog_fw_version", "Value of /sys/class/watchdog/<watchdog>/fw_version"),
    ("nowayout", "node_watchdog_nowayout", "Value of /sys/class/watchdog/<watchdog>/nowayout"),
    ("timeleft", "node_watchdog_timeleft_seconds", "Value of /sys/class/watchdog/<watchdog>/timeleft"),
    ("timeout", "node_watchdog_timeout_seconds", "Value of /sys/class/watchdog/<watchdog>/timeout"),
    ("pretimeout", "node_watchdog_pretimeout_seconds", "Value of /sys/class/watchdog/<watchdog>/pretimeout"),
    ("access_cs0", "node_watchdog_access_cs0", "Value of /sys/class/watchdog/<watchdog>/access_cs0"),
];

/// Text attributes that become labels of `node_watchdog_info` (file = label name).
const INFO: [&str; 5] = ["options", "identity", "state", "status", "pretimeout_governor"];

/// What one watchdog device directory holds; absent files stay `None`.
#[derive(Debug, Default, PartialEq)]
struct Device {
    /// Device name (`watchdog0`).
    name: String,
    /// Values of [`GAUGES`].
    gauges: [Option<i64>; 7],
    /// Values of [`INFO`] (absent → empty label).
    info: [String; 5],
}

impl Collector for Watchdog {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let names = list_dir(&self.dir).map_err(no_data_if_unreadable)?;
        // As upstream: one unreadable device fails the whole collection.
        let devices = names.into_iter().map(|n| read_device(&self.dir, n)).collect::<Result<Vec<_>, _>>()?;
        for d in &devices {
            let name = [("name", d.name.as_str())];
            for (&(_, metric, help), v) in GAUGES.iter().zip(d.gauges) {
                if let Some(v) = v {
                    out.gauge_with(metric, help, &name, v as f64);
                }
            }
            let mut labels = vec![("name", d.name.as_str())];
            labels.extend(INFO.iter().zip(&d.info).map(|(&k, v)| (k, v.as_str())));
            out.gauge_with("node_watchdog_info", "Info of /sys/class/watchdog/<watchdog>", &labels, 1.0);
        }
        Ok(())
    }
}

/// Upstream reports "no data" when the class directory is missing, forbidden or invalid.
fn no_data_if_unreadable(e: CollectError) -> CollectError {
    match &e {
        CollectError::Io { source, .. }
            if matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
            ) =>
        {
            CollectError::NoData
        }
        _ => e,
    }
}

/// Reads one device directory. Missing attributes are skipped; other read errors and
/// non-integer values of numeric attributes fail.
fn read_device(class_dir: &Path, name: String) -> Result<Device, CollectError> {
    let path = sysfs_dir(&class_dir.join(&name)).unwrap_or_else(|| class_dir.join(&name));
    let mut dev = Device { name, ..Device::default() };
    let dir = match AttrDir::open(&path) {
        Ok(d) => d,
        Err(e) => return Err(CollectError::io(path, e)),
    };
    let mut buf = [0u8; ATTR_BUF];
    for (slot, &(file, _, _)) in dev.gauges.iter_mut().zip(GAUGES.iter()) {
        match dir.read(file, &mut buf) {
            Ok(v) => {
                *slot = Some(parse_go_int(v).ok_or_else(|| CollectError::parse(path.join(file), format!("{v:?}")))?);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CollectError::io(path.join(file), e)),
        }
    }
    for (slot, &file) in dev.info.iter_mut().zip(INFO.iter()) {
        match dir.read(file, &mut buf) {
            Ok(v) => v.clone_into(slot),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CollectError::io(path.join(file), e)),
        }
    }
    Ok(dev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixture_ctx;

    #[test]
    fn reads_fixture_device_with_all_attributes() {
        let ctx = fixture_ctx(&[]);
        let dir = ctx.paths.sys("class/watchdog");
        let d = read_device(&dir, "watchdog0".into()).unwrap();
        assert_eq!(d.gauges, [Some(1), Some(2), Some(0), Some(300), Some(60), Some(120), Some(0)]);
        assert_eq!(d.info, ["0x8380", "Software Watchdog", "active", "0x8000", "noop"].map(String::from));
    }

    #[test]
    fn empty_device_reports_only_info_with_empty_labels() {
        let tmp = std::env::temp_dir().join(format!("osprey-wd-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("watchdog1")).unwrap();
        let c = Watchdog { dir: tmp.clone() };
        let mut sink = Sink::new();
        c.collect(&mut sink).unwrap();
        let names: Vec<_> = sink.families().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["node_watchdog_info"]);
        std::fs::remove_dir_all(tmp).unwrap();
    }

    #[test]
    fn non_integer_numeric_attribute_fails_the_device() {
        let tmp = std::env::temp_dir().join(format!("osprey-wd-bad-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("watchdog0")).unwrap();
        std::fs::write(tmp.join("watchdog0/timeout"), "sixty\n").unwrap();
        let c = Watchdog { dir: tmp.clone() };
        assert!(c.collect(&mut Sink::new()).is_err());
        std::fs::remove_dir_all(tmp).unwrap();
    }

    #[test]
    fn missing_class_dir_is_no_data() {
        let c = Watchdog { dir: PathBuf::from("/nonexistent/class/watchdog") };
        assert!(matches!(c.collect(&mut Sink::new()), Err(CollectError::NoData)));
    }
}
