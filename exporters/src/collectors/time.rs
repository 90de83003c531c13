//! `time`: the system clock, time zone and clocksources (node_exporter compatible).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "time",
    default_enabled: true,
    help: "Exposes the current system time.",
    flags: &[],
    build: |ctx| {
        Ok(Box::new(Time {
            clocksource: ctx.paths.sys("devices/system/clocksource"),
            // Like Go's time.Local: the zone of the agent's own system, not of --path.rootfs.
            localtime: PathBuf::from("/etc/localtime"),
        }))
    },
};

/// Reports `node_time_seconds`, `node_time_zone_offset_seconds` and clocksource info.
struct Time {
    clocksource: PathBuf,
    localtime: PathBuf,
}

impl Collector for Time {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        out.gauge("node_time_seconds", "System time in seconds since epoch (1970).", now.as_nanos() as f64 / 1e9);
        let (zone, offset) = std::env::var("TZ")
            .ok()
            .filter(|tz| tz == "UTC" || tz.is_empty())
            .map(|_| ("UTC".to_owned(), 0))
            .or_else(|| std::fs::read(&self.localtime).ok().and_then(|b| tzif_zone(&b, now.as_secs() as i64)))
            .unwrap_or_else(|| ("UTC".to_owned(), 0));
        out.gauge_with(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            &[("time_zone", &zone)],
            f64::from(offset),
        );
        let Ok(devices) = list_dir(&self.clocksource) else { return Ok(()) };
        for dev in devices.iter().filter_map(|d| d.strip_prefix("clocksource")) {
            let dir = self.clocksource.join(format!("clocksource{dev}"));
            let available = read_trimmed(&dir.join("available_clocksource"))?;
            for cs in available.split_ascii_whitespace() {
                out.gauge_with(
                    "node_time_clocksource_available_info",
                    "Available clocksources read from '/sys/devices/system/clocksource'.",
                    &[("device", dev), ("clocksource", cs)],
                    1.0,
                );
            }
            let current = read_trimmed(&dir.join("current_clocksource"))?;
            out.gauge_with(
                "node_time_clocksource_current_info",
                "Current clocksource read from '/sys/devices/system/clocksource'.",
                &[("device", dev), ("clocksource", &current)],
                1.0,
            );
        }
        Ok(())
    }
}

/// The zone abbreviation and UTC offset in force at `now` according to a TZif file
/// (version 1 data block; the table covers the years that matter to a running host).
fn tzif_zone(b: &[u8], now: i64) -> Option<(String, i32)> {
    if b.get(..4)? != b"TZif" {
        return None;
    }
    let count = |i: usize| -> Option<usize> {
        let at = 20 + 4 * i;
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let (timecnt, typecnt, charcnt) = (count(3)?, count(4)?, count(5)?);
    let times = 44;
    let idx = times + 4 * timecnt;
    let types = idx + timecnt;
    let chars = types + 6 * typecnt;
    let mut ty = 0usize;
    for i in 0..timecnt {
        let at = times + 4 * i;
        let t = i64::from(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?));
        if t > now {
            break;
        }
        ty = usize::from(*b.get(idx + i)?);
    }
    let rec = b.get(types + 6 * ty..types + 6 * ty + 6)?;
    let offset = i32::from_be_bytes(rec[..4].try_into().ok()?);
    let name_at = chars + usize::from(rec[5]);
    let name_bytes = b.get(name_at..chars + charcnt)?;
    let end = name_bytes.iter().position(|&c| c == 0).unwrap_or(name_bytes.len());
    Some((String::from_utf8_lossy(&name_bytes[..end]).into_owned(), offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal TZif v1 file: one transition at t=100 from type 0 (UTC, 0) to type 1 (CET, 3600).
    fn tzif() -> Vec<u8> {
        let mut b = b"TZif2".to_vec();
        b.extend_from_slice(&[0; 15]);
        for n in [0u32, 0, 0, 1, 2, 8] {
            b.extend_from_slice(&n.to_be_bytes());
        }
        b.extend_from_slice(&100i32.to_be_bytes());
        b.push(1);
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&3600i32.to_be_bytes());
        b.extend_from_slice(&[0, 4]);
        b.extend_from_slice(b"UTC\0CET\0");
        b
    }

    #[test]
    fn reads_zone_from_tzif() {
        assert_eq!(tzif_zone(&tzif(), 50), Some(("UTC".into(), 0)));
        assert_eq!(tzif_zone(&tzif(), 1_000), Some(("CET".into(), 3600)));
        assert_eq!(tzif_zone(b"nope", 0), None);
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("time", &|f| f.starts_with("node_time_"));
    }
}
