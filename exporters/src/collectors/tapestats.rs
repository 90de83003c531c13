//! `tapestats`: SCSI tape drive I/O statistics from `/sys/class/scsi_tape/st*/stats`
//! (node_exporter compatible).

use crate::prelude::*;
use crate::sysfs::{ATTR_BUF, read_attr};

/// Catalog entry.
pub static DEF: Def = Def {
    name: "tapestats",
    default_enabled: true,
    help: "Exposes SCSI tape device I/O statistics from /sys/class/scsi_tape/.",
    flags: &[Flag {
        name: "collector.tapestats.ignored-devices",
        help: "Regexp of devices to ignore for tapestats.",
        kind: FlagKind::Str("^$"),
    }],
    build: |ctx| {
        Ok(Box::new(TapeStats {
            dir: ctx.paths.sys("class/scsi_tape"),
            ignored: ctx.regex("collector.tapestats.ignored-devices")?,
        }))
    },
};

/// Reports `node_tape_*{device}` for every `st<N>` device.
struct TapeStats {
    /// `/sys/class/scsi_tape`.
    dir: PathBuf,
    /// `--collector.tapestats.ignored-devices`.
    ignored: Option<regex::Regex>,
}

/// Statistics files: (file in `stats/`, metric, is counter, scale, HELP), in upstream's order.
const STATS: [(&str, &str, bool, f64, &str); 10] = [
    ("in_flight", "node_tape_io_now", false, 1.0, "The number of I/Os currently outstanding to this device."),
    (
        "io_ns",
        "node_tape_io_time_seconds_total",
        true,
        1e-9,
        "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.",
    ),
    (
        "other_cnt",
        "node_tape_io_others_total",
        true,
        1.0,
        "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total",
    ),
    ("read_byte_cnt", "node_tape_read_bytes_total", true, 1.0, "The number of bytes read from the tape drive."),
    ("read_cnt", "node_tape_reads_completed_total", true, 1.0, "The number of read requests issued to the tape drive."),
    (
        "read_ns",
        "node_tape_read_time_seconds_total",
        true,
        1e-9,
        "The amount of time spent waiting for read requests to complete.",
    ),
    (
        "resid_cnt",
        "node_tape_residual_total",
        true,
        1.0,
        "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.",
    ),
    ("write_byte_cnt", "node_tape_written_bytes_total", true, 1.0, "The number of bytes written to the tape drive."),
    (
        "write_cnt",
        "node_tape_writes_completed_total",
        true,
        1.0,
        "The number of write requests issued to the tape drive.",
    ),
    (
        "write_ns",
        "node_tape_write_time_seconds_total",
        true,
        1e-9,
        "The amount of time spent waiting for write requests to complete.",
    ),
];

impl Collector for TapeStats {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let names = list_dir_or_no_data(&self.dir)?;
        // procfs parses `^st\d+$` only (not the nst/a/l/m variants); any failure fails all.
        let tapes = names
            .into_iter()
            .filter(|n| n.strip_prefix("st").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())))
            .map(|n| read_tape(&self.dir, n))
            .collect::<Result<Vec<_>, _>>()?;
        for (name, counters) in &tapes {
            if self.ignored.as_ref().is_some_and(|r| r.is_match(name)) {
                continue;
            }
            for (&(_, metric, counter, scale, help), &v) in STATS.iter().zip(counters) {
                let labels = [("device", name.as_str())];
                let value = if scale == 1.0 { v as f64 } else { v as f64 * scale };
                if counter {
                    out.counter_with(metric, help, &labels, value);
                } else {
                    out.gauge_with(metric, help, &labels, value);
                }
            }
        }
        Ok(())
    }
}

/// Reads every file of a tape's `stats/` directory; unknown files are read but ignored.
fn read_tape(class_dir: &Path, name: String) -> Result<(String, [u64; 10]), CollectError> {
    let path = class_dir.join(&name);
    let stats = sysfs_dir(&path).unwrap_or(path).join("stats");
    let mut counters = [0u64; 10];
    let mut buf = [0u8; ATTR_BUF];
    for file in list_dir(&stats)? {
        let p = stats.join(&file);
        let v = read_attr(&p, &mut buf).map_err(|e| CollectError::io(&p, e))?;
        if let Some(i) = STATS.iter().position(|s| s.0 == file) {
            counters[i] = v.parse().map_err(|_| CollectError::parse(&p, format!("{v:?}")))?;
        }
    }
    Ok((name, counters))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixture_ctx;

    #[test]
    fn reads_only_st_devices_and_honours_ignore_regex() {
        let ctx = fixture_ctx(&[]);
        let dir = ctx.paths.sys("class/scsi_tape");
        let c = TapeStats { dir: dir.clone(), ignored: None };
        let mut sink = Sink::new();
        c.collect(&mut sink).unwrap();
        let fam = sink.families().iter().find(|f| f.name == "node_tape_io_now").unwrap();
        assert_eq!(fam.samples.len(), 1);
        let c = TapeStats { dir, ignored: Some(regex::Regex::new("^st0$").unwrap()) };
        let mut sink = Sink::new();
        c.collect(&mut sink).unwrap();
        assert!(sink.is_empty());
    }

    #[test]
    fn non_numeric_stat_fails() {
        let tmp = std::env::temp_dir().join(format!("osprey-tape-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("st0/stats")).unwrap();
        std::fs::write(tmp.join("st0/stats/read_cnt"), "many\n").unwrap();
        let c = TapeStats { dir: tmp.clone(), ignored: None };
        assert!(c.collect(&mut Sink::new()).is_err());
        std::fs::remove_dir_all(tmp).unwrap();
    }
}
