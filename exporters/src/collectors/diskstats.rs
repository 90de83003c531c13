//! `diskstats`: block device I/O statistics from `/proc/diskstats`, with device details from
//! sysfs and the udev database (node_exporter compatible).

use crate::prelude::*;

/// node_exporter's default `--collector.diskstats.device-exclude`.
const DEFAULT_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
/// Flag name of the exclude regex.
const EXCLUDE_FLAG: &str = "collector.diskstats.device-exclude";
/// Flag name of the include regex.
const INCLUDE_FLAG: &str = "collector.diskstats.device-include";

/// Catalog entry.
pub static DEF: Def = Def {
    name: "diskstats",
    default_enabled: true,
    help: "Exposes disk I/O statistics.",
    flags: &[
        Flag {
            name: EXCLUDE_FLAG,
            help: "Regexp of diskstats devices to exclude (mutually exclusive to device-include).",
            kind: FlagKind::Str(DEFAULT_EXCLUDE),
        },
        Flag {
            name: INCLUDE_FLAG,
            help: "Regexp of diskstats devices to include (mutually exclusive to device-exclude).",
            kind: FlagKind::Str(""),
        },
    ],
    build: |ctx| Ok(Box::new(DiskStats::new(ctx)?)),
};

/// Seconds per kernel tick in `/proc/diskstats` (milliseconds).
const SECONDS_PER_TICK: f64 = 1.0 / 1000.0;
/// Sectors in `/proc/diskstats` are always 512 bytes.
const SECTOR_SIZE: f64 = 512.0;

/// The counters of one `/proc/diskstats` line, in file order: name, help, is-counter, scale.
const STATS: [(&str, &str, bool, f64); 17] = [
    ("node_disk_reads_completed_total", "The total number of reads completed successfully.", true, 1.0),
    ("node_disk_reads_merged_total", "The total number of reads merged.", true, 1.0),
    ("node_disk_read_bytes_total", "The total number of bytes read successfully.", true, SECTOR_SIZE),
    ("node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.", true, SECONDS_PER_TICK),
    ("node_disk_writes_completed_total", "The total number of writes completed successfully.", true, 1.0),
    ("node_disk_writes_merged_total", "The number of writes merged.", true, 1.0),
    ("node_disk_written_bytes_total", "The total number of bytes written successfully.", true, SECTOR_SIZE),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        true,
        SECONDS_PER_TICK,
    ),
    ("node_disk_io_now", "The number of I/Os currently in progress.", false, 1.0),
    ("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", true, SECONDS_PER_TICK),
    ("node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", true, SECONDS_PER_TICK),
    ("node_disk_discards_completed_total", "The total number of discards completed successfully.", true, 1.0),
    ("node_disk_discards_merged_total", "The total number of discards merged.", true, 1.0),
    // Upstream reports discarded sectors unscaled.
    ("node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.", true, 1.0),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        true,
        SECONDS_PER_TICK,
    ),
    ("node_disk_flush_requests_total", "The total number of flush requests completed successfully", true, 1.0),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        true,
        SECONDS_PER_TICK,
    ),
];

/// The ATA udev properties reported as gauges when `ID_ATA` is set: property, name, help.
const ATA: [(&str, &str, &str); 3] = [
    ("ID_ATA_WRITE_CACHE", "node_disk_ata_write_cache", "ATA disk has a write cache."),
    ("ID_ATA_WRITE_CACHE_ENABLED", "node_disk_ata_write_cache_enabled", "ATA disk has its write cache enabled."),
    ("ID_ATA_ROTATION_RATE_RPM", "node_disk_ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs)."),
];

/// Reads `/proc/diskstats` and, per device, `/sys/block/<dev>/queue/rotational` and the udev
/// database entry `b<major>:<minor>`.
struct DiskStats {
    diskstats: PathBuf,
    sys_block: PathBuf,
    /// `None` when the udev database directory is missing (as upstream, checked once).
    udev: Option<PathBuf>,
    filter: DeviceFilter,
}

impl DiskStats {
    /// Builds the collector; the include flag replaces the default exclude, as upstream.
    fn new(ctx: &Ctx) -> anyhow::Result<Self> {
        let exclude = ctx.str(EXCLUDE_FLAG);
        let filter = if !ctx.str(INCLUDE_FLAG).is_empty() && (exclude.is_empty() || exclude == DEFAULT_EXCLUDE) {
            DeviceFilter { exclude: None, include: ctx.regex(INCLUDE_FLAG)? }
        } else {
            ctx.device_filter(EXCLUDE_FLAG, INCLUDE_FLAG)?
        };
        let udev = ctx.paths.udev_data.is_dir().then(|| ctx.paths.udev_data.clone());
        if udev.is_none() {
            tracing::warn!(path = %ctx.paths.udev_data.display(), "udev data directory missing, disabling udev device properties");
        }
        Ok(Self { diskstats: ctx.paths.proc("diskstats"), sys_block: ctx.paths.sys("block"), udev, filter })
    }
}

impl Collector for DiskStats {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.diskstats)?;
        let lines = parse(&text).map_err(|msg| CollectError::parse(&self.diskstats, msg))?;
        let mut udev_text = String::new();
        for line in lines.iter().filter(|l| !self.filter.ignored(l.name)) {
            udev_text.clear();
            if let Some(dir) = &self.udev {
                let path = dir.join(format!("b{}:{}", line.major, line.minor));
                match std::fs::read_to_string(&path) {
                    Ok(t) => udev_text = t,
                    Err(e) => tracing::debug!(path = %path.display(), error = %e, "no udev data"),
                }
            }
            let info = Udev::parse(&udev_text);
            let rotational = self.rotational(line.name);
            emit(out, line, &info, rotational);
        }
        Ok(())
    }
}

impl DiskStats {
    /// `"1"` for a rotational device; `"0"` otherwise, including when the attribute is missing.
    fn rotational(&self, dev: &str) -> &'static str {
        let path = self.sys_block.join(dev).join("queue/rotational");
        match read_u64(&path) {
            Ok(1) => "1",
            _ => "0",
        }
    }
}

/// Writes one device's metrics.
fn emit(out: &mut Sink, line: &Line<'_>, info: &Udev<'_>, rotational: &str) {
    let dev = line.name;
    let serial = ["SCSI_IDENT_SERIAL", "ID_SERIAL_SHORT", "ID_SERIAL"]
        .iter()
        .map(|k| info.get(k))
        .find(|s| !s.is_empty())
        .unwrap_or("");
    let (major, minor) = (line.major.to_string(), line.minor.to_string());
    out.gauge_with(
        "node_disk_info",
        "Info of /sys/block/<block_device>.",
        &[
            ("device", dev),
            ("major", &major),
            ("minor", &minor),
            ("path", info.get("ID_PATH")),
            ("wwn", info.get("ID_WWN")),
            ("model", info.get("ID_MODEL")),
            ("serial", serial),
            ("revision", info.get("ID_REVISION")),
            ("rotational", rotational),
        ],
        1.0,
    );
    for (&(name, help, counter, scale), &v) in STATS.iter().zip(&line.values[..line.count]) {
        let kind = if counter { MetricType::Counter } else { MetricType::Gauge };
        out.add(name, help, kind, &[("device", dev)], v as f64 * scale);
    }
    let fs_type = info.get("ID_FS_TYPE");
    if !fs_type.is_empty() {
        out.gauge_with(
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            &[
                ("device", dev),
                ("type", fs_type),
                ("usage", info.get("ID_FS_USAGE")),
                ("uuid", info.get("ID_FS_UUID")),
                ("version", info.get("ID_FS_VERSION")),
            ],
            1.0,
        );
    }
    let dm_name = info.get("DM_NAME");
    if !dm_name.is_empty() {
        out.gauge_with(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            &[
                ("device", dev),
                ("name", dm_name),
                ("uuid", info.get("DM_UUID")),
                ("vg_name", info.get("DM_VG_NAME")),
                ("lv_name", info.get("DM_LV_NAME")),
                ("lv_layer", info.get("DM_LV_LAYER")),
            ],
            1.0,
        );
    }
    if !info.get("ID_ATA").is_empty() {
        for (prop, name, help) in ATA {
            let Some(raw) = info.find(prop) else { continue };
            if let Ok(v) = raw.parse::<f64>() {
                out.gauge_with(name, help, &[("device", dev)], v);
            } else {
                tracing::warn!(device = dev, property = prop, value = raw, "unparsable ATA value");
            }
        }
    }
}

/// One parsed `/proc/diskstats` line.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    major: u32,
    minor: u32,
    name: &'a str,
    /// The numeric fields after the name (unused tail is zero).
    values: [u64; 17],
    /// How many of `values` the line had (at most 17).
    count: usize,
}

/// Parses `/proc/diskstats`. Lines with fewer than 14 fields are skipped (as procfs does);
/// a non-numeric field is an error.
fn parse(text: &str) -> Result<Vec<Line<'_>>, String> {
    let mut out = Vec::new();
    for (no, raw) in text.lines().enumerate() {
        let mut it = raw.split_ascii_whitespace();
        let bad = |f: &str| format!("line {}: invalid field {f:?}", no + 1);
        let (Some(ma), Some(mi), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let major = ma.parse().map_err(|_| bad(ma))?;
        let minor = mi.parse().map_err(|_| bad(mi))?;
        let mut values = [0u64; 17];
        let mut count = 0;
        for (slot, f) in values.iter_mut().zip(&mut it) {
            *slot = f.parse().map_err(|_| bad(f))?;
            count += 1;
        }
        if count + 3 >= 14 {
            out.push(Line { major, minor, name, values, count });
        }
    }
    Ok(out)
}

/// The `E:` properties of one udev database entry (borrowed from the file text).
struct Udev<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Udev<'a> {
    /// Collects `E:KEY=VALUE` lines; other lines are ignored.
    fn parse(text: &'a str) -> Self {
        Self(text.lines().filter_map(|l| l.strip_prefix("E:")?.split_once('=')).collect())
    }

    /// The value of `key` (the last one wins, as in a map), if present.
    fn find(&self, key: &str) -> Option<&'a str> {
        self.0.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The value of `key`, or `""`.
    fn get(&self, key: &str) -> &'a str {
        self.find(key).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_of_every_kernel_generation() {
        let text = "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n\
                    8 1 sda1 1 2 3 4\n\
                    8 16 sdb 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n\
                    8 32 sdc 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\n";
        let lines = parse(text).unwrap();
        assert_eq!(lines.len(), 3, "the 4-field partition line is skipped");
        assert_eq!((lines[0].major, lines[0].minor, lines[0].name, lines[0].count), (8, 0, "sda", 11));
        assert_eq!(lines[1].count, 15);
        assert_eq!(lines[2].count, 17);
        assert_eq!(lines[2].values[16], 17);
    }

    #[test]
    fn non_numeric_field_is_an_error() {
        let err = parse("8 0 sda 1 2 x 4 5 6 7 8 9 10 11\n").unwrap_err();
        assert!(err.contains("\"x\""), "{err}");
    }

    #[test]
    fn udev_properties() {
        let u = Udev::parse("S:disk/by-id/x\nE:ID_ATA=1\nE:ID_MODEL=A=B\nE:ID_ATA=\nG:systemd\n");
        assert_eq!(u.get("ID_MODEL"), "A=B");
        assert_eq!(u.find("ID_ATA"), Some(""));
        assert_eq!(u.get("DM_NAME"), "");
    }

    #[test]
    fn default_exclude_keeps_whole_disks() {
        let ctx = crate::testutil::fixture_ctx(&[]);
        let c = DiskStats::new(&ctx).unwrap();
        for dev in ["sda1", "ram0", "loop3", "nvme0n1p2", "xvda1", "fd0"] {
            assert!(c.filter.ignored(dev), "{dev}");
        }
        for dev in ["sda", "nvme0n1", "dm-0", "mmcblk0p1", "md0"] {
            assert!(!c.filter.ignored(dev), "{dev}");
        }
    }

    #[test]
    fn include_replaces_default_exclude() {
        let s = |v: &str| crate::catalog::Value::Str(v.to_owned());
        let ctx = crate::testutil::fixture_ctx(&[(INCLUDE_FLAG, s("^sda"))]);
        let c = DiskStats::new(&ctx).unwrap();
        assert!(!c.filter.ignored("sda1"));
        assert!(c.filter.ignored("sdb"));
        let ctx = crate::testutil::fixture_ctx(&[(INCLUDE_FLAG, s("^sda")), (EXCLUDE_FLAG, s("x"))]);
        assert!(DiskStats::new(&ctx).is_err());
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("diskstats", &|f| f.starts_with("node_disk_"));
    }
}
