//! `mdadm`: Linux software RAID state from `/proc/mdstat` and `/sys/block/md*/md`
//! (node_exporter compatible).

use std::sync::LazyLock;

use regex::Regex;

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "mdadm",
    default_enabled: true,
    help: "Exposes statistics about devices in /proc/mdstat (does nothing if no /proc/mdstat present).",
    flags: &[],
    build: |ctx| Ok(Box::new(Mdadm { mdstat: ctx.paths.proc("mdstat"), sys_block: ctx.paths.sys("block") })),
};

/// Reads `/proc/mdstat` and the md attributes in sysfs.
struct Mdadm {
    mdstat: PathBuf,
    sys_block: PathBuf,
}

impl Collector for Mdadm {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string_or_no_data(&self.mdstat)?;
        let arrays = parse_mdstat(&text).map_err(|e| CollectError::parse(&self.mdstat, e))?;
        for md in &arrays {
            emit_mdstat(out, md);
        }
        for md in self.sysfs_arrays()? {
            if let Some(disks) = md.raid_disks {
                out.gauge_with(
                    "node_md_raid_disks",
                    "Number of raid disks on device.",
                    &[("device", &md.device)],
                    disks as f64,
                );
            }
            out.gauge_with(
                "node_md_degraded",
                "Number of degraded disks on device.",
                &[("device", &md.device)],
                md.degraded as f64,
            );
        }
        Ok(())
    }
}

/// Writes the `/proc/mdstat` metrics of one array.
fn emit_mdstat(out: &mut Sink, md: &MdStat) {
    let dev = md.name.as_str();
    out.gauge_with(
        "node_md_disks_required",
        "Total number of disks of device.",
        &[("device", dev)],
        md.disks_total as f64,
    );
    let disks_help = "Number of active/failed/spare disks of device.";
    for (state, v) in [("active", md.disks_active), ("failed", md.disks_failed), ("spare", md.disks_spare)] {
        out.gauge_with("node_md_disks", disks_help, &[("device", dev), ("state", state)], v as f64);
    }
    // Label value, and the activity state of /proc/mdstat it stands for.
    let states = [
        ("active", "active"),
        ("inactive", "inactive"),
        ("recovering", "recovering"),
        ("resync", "resyncing"),
        ("check", "checking"),
    ];
    for (label, activity) in states {
        let v = if md.activity == activity { 1.0 } else { 0.0 };
        out.gauge_with("node_md_state", "Indicates the state of md-device.", &[("device", dev), ("state", label)], v);
    }
    out.gauge_with("node_md_blocks", "Total number of blocks on device.", &[("device", dev)], md.blocks_total as f64);
    out.gauge_with(
        "node_md_blocks_synced",
        "Number of blocks synced on device.",
        &[("device", dev)],
        md.blocks_synced as f64,
    );
}

/// One array as `/proc/mdstat` describes it.
#[derive(Debug, PartialEq, Eq)]
struct MdStat {
    name: String,
    /// `active`, `inactive`, `recovering`, `resyncing`, `checking` or `reshaping`.
    activity: String,
    disks_active: i64,
    disks_total: i64,
    disks_failed: i64,
    disks_spare: i64,
    blocks_total: i64,
    blocks_synced: i64,
}

/// `<size> blocks ... [total/active] [UU_]` on an array's status line.
static STATUS_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]").expect("valid regex"));
/// `(synced/total)` on a sync line.
static SYNC_BLOCKS_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\((\d+/\d+)\)").expect("valid regex"));
/// `= 8.5%`, `finish=17.0min`, `speed=259783K/sec` on a sync line.
static SYNC_PCT_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"= (.+)%").expect("valid regex"));
static SYNC_FINISH_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"finish=(.+)min").expect("valid regex"));
static SYNC_SPEED_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"speed=(.+)[A-Z]").expect("valid regex"));

/// Parses `/proc/mdstat` with procfs' rules (including what it rejects).
fn parse_mdstat(text: &str) -> Result<Vec<MdStat>, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut personalities_seen = false;
    let mut out = Vec::new();
    for (i, &line) in lines.iter().enumerate() {
        if line.trim().is_empty() || line.starts_with(' ') || line.starts_with("unused") {
            continue;
        }
        if !personalities_seen && line.starts_with("Personalities : ") {
            // procfs only remembers the list to tell raid types from device names.
            personalities_seen = line.split_ascii_whitespace().count() > 2;
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            return Err(format!("expected 3+ fields, got {line:?}"));
        }
        let name = fields[0];
        if lines.len() <= i + 3 {
            return Err(format!("too few lines for md device {name:?}"));
        }
        let (disks_active, disks_total, blocks_total) = status(line, lines[i + 1])?;
        let sync_line = if lines[i + 2].contains("bitmap") { lines[i + 3] } else { lines[i + 2] };
        let syncing = if sync_line.contains("recovery") {
            Some("recovering")
        } else if sync_line.contains("reshape") {
            Some("reshaping")
        } else if sync_line.contains("check") {
            Some("checking")
        } else if sync_line.contains("resync") {
            Some("resyncing")
        } else {
            None
        };
        let blocks_synced = if syncing.is_none() {
            blocks_total
        } else if sync_line.contains("PENDING") || sync_line.contains("DELAYED") {
            0
        } else {
            synced_blocks(sync_line).map_err(|e| format!("cannot parse sync line of md device {name:?}: {e}"))?
        };
        let activity = syncing.unwrap_or(fields[2]);
        out.push(MdStat {
            name: name.to_owned(),
            activity: activity.to_owned(),
            disks_active,
            disks_total,
            disks_failed: line.matches("(F)").count() as i64,
            disks_spare: line.matches("(S)").count() as i64,
            blocks_total,
            blocks_synced,
        });
    }
    Ok(out)
}

/// `(active, total, size)` from an array's device line and status line.
fn status(device_line: &str, status_line: &str) -> Result<(i64, i64, i64), String> {
    let bad = || format!("unexpected status line {status_line:?}");
    let size: i64 = status_line.split_whitespace().next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    if device_line.contains("raid0") || device_line.contains("linear") {
        // Only member disks carry a `[n]` on these lines.
        let total = device_line.matches('[').count() as i64;
        return Ok((total, total, size));
    }
    if device_line.contains("inactive") {
        return Ok((0, 0, size));
    }
    let caps = STATUS_RE.captures(status_line).ok_or_else(bad)?;
    let total = caps[2].parse().map_err(|_| bad())?;
    let active = caps[3].parse().map_err(|_| bad())?;
    Ok((active, total, size))
}

/// The synced block count of a `recovery`/`resync`/`check` line; the percentage, finish time
/// and speed must parse too, as procfs requires.
fn synced_blocks(line: &str) -> Result<i64, String> {
    let caps = SYNC_BLOCKS_RE.captures(line).ok_or("no (synced/total) blocks")?;
    let (synced, total) = caps[1].split_once('/').ok_or("no (synced/total) blocks")?;
    let synced: i64 = synced.parse().map_err(|e| format!("synced blocks: {e}"))?;
    total.parse::<i64>().map_err(|e| format!("total blocks: {e}"))?;
    for (re, what, trim) in
        [(&SYNC_PCT_RE, "percentage", true), (&SYNC_FINISH_RE, "finish time", false), (&SYNC_SPEED_RE, "speed", false)]
    {
        let caps = re.captures(line).ok_or_else(|| format!("no {what}"))?;
        let v = if trim { caps[1].trim() } else { &caps[1] };
        v.parse::<f64>().map_err(|e| format!("{what} {v:?}: {e}"))?;
    }
    Ok(synced)
}

/// What the collector reports from `/sys/block/md*/md`.
#[derive(Debug, PartialEq, Eq)]
struct SysMd {
    device: String,
    /// `raid_disks`; `None` for containers, an empty level or an unparsable count.
    raid_disks: Option<u64>,
    /// `degraded` (raid1/4/5/6/10 only, 0 otherwise).
    degraded: u64,
}

impl Mdadm {
    /// Reads every `/sys/block/md*/md` directory, sorted by device name.
    fn sysfs_arrays(&self) -> Result<Vec<SysMd>, CollectError> {
        let names = match list_dir(&self.sys_block) {
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            r => r?,
        };
        let mut out = Vec::new();
        for name in names.into_iter().filter(|n| n.starts_with("md")) {
            let dir = self.sys_block.join(&name).join("md");
            if std::fs::symlink_metadata(&dir).is_err() {
                continue;
            }
            let level = read_trimmed(&dir.join("level"))?;
            let raid_disks = match level.as_str() {
                "" | "container" | "imsm" | "ddf" => None,
                _ => raid_disks(&read_string(&dir.join("raid_disks"))?),
            };
            let degraded = match level.as_str() {
                "raid1" | "raid4" | "raid5" | "raid6" | "raid10" => read_u64(&dir.join("degraded"))?,
                _ => 0,
            };
            out.push(SysMd { device: name, raid_disks, degraded });
        }
        Ok(out)
    }
}

/// `raid_disks`: a plain count, or `current (previous)` while reshaping.
fn raid_disks(text: &str) -> Option<u64> {
    let t = text.trim();
    t.parse().ok().or_else(|| t.split_once(' ').and_then(|(n, _)| n.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(name: &str, activity: &str, act_tot_fail_spare: [i64; 4], blocks: [i64; 2]) -> MdStat {
        let [disks_active, disks_total, disks_failed, disks_spare] = act_tot_fail_spare;
        MdStat {
            name: name.into(),
            activity: activity.into(),
            disks_active,
            disks_total,
            disks_failed,
            disks_spare,
            blocks_total: blocks[0],
            blocks_synced: blocks[1],
        }
    }

    #[test]
    fn parses_sync_states() {
        let text = "Personalities : [raid1] [raid6]\n\
            md6 : active raid1 sdb2[2](F) sdc[1](S) sda2[0]\n      195310144 blocks [2/1] [U_]\n      \
            [=>...................]  recovery =  8.5% (16775552/195310144) finish=17.0min speed=259783K/sec\n\n\
            md7 : active raid6 sdb1[0] sde1[3] sdd1[2] sdc1[1](F)\n      7813735424 blocks super 1.2 level 6, 512k chunk, algorithm 2 [4/3] [U_UU]\n      \
            bitmap: 0/30 pages [0KB], 65536KB chunk\n\n\
            md11 : active (auto-read-only) raid1 sdb2[0] sdc2[1]\n      4190208 blocks super 1.2 [2/2] [UU]\n      resync=PENDING\n\n\
            md4 : inactive raid1 sda3[0](F) sdb3[1](S)\n      4883648 blocks [2/2] [UU]\n\n\
            md120 : active linear sda1[1] sdb1[0]\n        2095104 blocks super 1.2 0k rounding\n\n\
            unused devices: <none>\n";
        assert_eq!(
            parse_mdstat(text).unwrap(),
            [
                md("md6", "recovering", [1, 2, 1, 1], [195_310_144, 16_775_552]),
                md("md7", "active", [3, 4, 1, 0], [7_813_735_424, 7_813_735_424]),
                md("md11", "resyncing", [2, 2, 0, 0], [4_190_208, 0]),
                md("md4", "inactive", [0, 0, 1, 1], [4_883_648, 4_883_648]),
                md("md120", "active", [2, 2, 0, 0], [2_095_104, 2_095_104]),
            ]
        );
    }

    #[test]
    fn rejects_what_procfs_rejects() {
        assert!(parse_mdstat("md0 : active\n").unwrap_err().contains("too few lines"));
        assert!(parse_mdstat("md0 :\n\n\n\n").unwrap_err().contains("3+ fields"));
        let bad_status = "md0 : active raid1 sda[0]\n   x blocks [2/2] [UU]\n\n\n";
        assert!(parse_mdstat(bad_status).unwrap_err().contains("status line"));
        let no_counts = "md0 : active raid1 sda[0]\n   10 blocks super 1.2\n\n\n";
        assert!(parse_mdstat(no_counts).unwrap_err().contains("status line"));
        let bad_sync = "md0 : active raid1 sda[0]\n   10 blocks [2/2] [UU]\n   resync = 1% (1/10)\n\n";
        assert!(parse_mdstat(bad_sync).unwrap_err().contains("finish time"), "{:?}", parse_mdstat(bad_sync));
        assert_eq!(parse_mdstat("Personalities : \nunused devices: <none>\n").unwrap(), []);
    }

    #[test]
    fn raid_disks_during_reshape() {
        assert_eq!(raid_disks("4\n"), Some(4));
        assert_eq!(raid_disks("11 (10)\n"), Some(11));
        assert_eq!(raid_disks("\n"), None);
        assert_eq!(raid_disks("x y"), None);
    }

    #[test]
    fn missing_mdstat_is_no_data() {
        let c = Mdadm { mdstat: "/nonexistent/mdstat".into(), sys_block: "/nonexistent".into() };
        assert!(matches!(c.collect(&mut Sink::new()), Err(CollectError::NoData)));
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("mdadm", &|f| f.starts_with("node_md_"));
    }
}
