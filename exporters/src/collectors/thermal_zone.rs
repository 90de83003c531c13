//! `thermal_zone`: thermal zone temperatures and cooling device states from
//! `/sys/class/thermal` (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "thermal_zone",
    default_enabled: true,
    help: "Exposes thermal zone & cooling device statistics from /sys/class/thermal.",
    flags: &[],
    build: |ctx| Ok(Box::new(ThermalZone { root: ctx.paths.sys("class/thermal") })),
};

/// Reports `node_thermal_zone_temp` and `node_cooling_device_{cur,max}_state`.
struct ThermalZone {
    root: PathBuf,
}

impl Collector for ThermalZone {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let entries = list_dir_or_no_data(&self.root)?;
        let mut buf = [0u8; 256];
        for name in entries.iter().filter_map(|e| e.strip_prefix("thermal_zone")) {
            let Some(dir) = sysfs_dir(&self.root.join(format!("thermal_zone{name}"))) else { continue };
            let attrs = AttrDir::open(&dir).map_err(|e| CollectError::io(&dir, e))?;
            let kind = attrs.read("type", &mut buf).map_err(|e| CollectError::io(dir.join("type"), e))?.to_owned();
            // A zone whose sensor cannot be read (EINVAL/ENODATA on some firmware) is skipped,
            // as procfs does.
            let Ok(temp) = attrs.read("temp", &mut buf).map(str::parse::<i64>) else { continue };
            let temp = temp.map_err(|e| CollectError::parse(dir.join("temp"), e.to_string()))?;
            out.gauge_with(
                "node_thermal_zone_temp",
                "Zone temperature in Celsius",
                &[("zone", name), ("type", &kind)],
                temp as f64 / 1000.0,
            );
        }
        for name in entries.iter().filter_map(|e| e.strip_prefix("cooling_device")) {
            let Some(dir) = sysfs_dir(&self.root.join(format!("cooling_device{name}"))) else { continue };
            let attrs = AttrDir::open(&dir).map_err(|e| CollectError::io(&dir, e))?;
            let kind = attrs.read("type", &mut buf).map_err(|e| CollectError::io(dir.join("type"), e))?.to_owned();
            let mut state = |file: &str| -> Result<f64, CollectError> {
                let v = attrs.read(file, &mut buf).map_err(|e| CollectError::io(dir.join(file), e))?;
                v.parse::<i64>().map(|n| n as f64).map_err(|e| CollectError::parse(dir.join(file), e.to_string()))
            };
            let (cur, max) = (state("cur_state")?, state("max_state")?);
            let labels = [("name", name), ("type", kind.as_str())];
            out.gauge_with(
                "node_cooling_device_cur_state",
                "Current throttle state of the cooling device",
                &labels,
                cur,
            );
            out.gauge_with(
                "node_cooling_device_max_state",
                "Maximum throttle state of the cooling device",
                &labels,
                max,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("thermal_zone", &|f| {
            f.starts_with("node_thermal_zone_") || f.starts_with("node_cooling_device_")
        });
    }
}
