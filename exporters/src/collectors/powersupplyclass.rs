//! `powersupplyclass`: batteries and power supplies from `/sys/class/power_supply`
//! (node_exporter compatible).

use regex::Regex;

use crate::prelude::*;
use crate::sysfs::parse_go_int;

const IGNORED: &str = "collector.powersupply.ignored-supplies";

/// Catalog entry.
pub static DEF: Def = Def {
    name: "powersupplyclass",
    default_enabled: true,
    help: "Exposes Power Supply statistics from /sys/class/power_supply.",
    flags: &[Flag {
        name: IGNORED,
        help: "Regexp of power supplies to ignore for powersupplyclass collector.",
        kind: FlagKind::Str("^$"),
    }],
    build: |ctx| {
        Ok(Box::new(PowerSupply {
            root: ctx.paths.sys("class/power_supply"),
            ignored: ctx.regex(IGNORED)?.unwrap_or_else(|| Regex::new("^$").expect("static regex")),
        }))
    },
};

/// sysfs attribute → (metric suffix, divisor): integers, micro-units and tenths of °C.
const NUMERIC: &[(&str, &str, f64)] = &[
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    ("constant_charge_current_max", "constant_charge_current_max", 1e6),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    ("constant_charge_voltage_max", "constant_charge_voltage_max", 1e6),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

/// Text attributes that become labels of `node_power_supply_info`.
const INFO: &[&str] = &[
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
];

/// Reports `node_power_supply_*` per supply.
struct PowerSupply {
    root: PathBuf,
    ignored: Regex,
}

impl Collector for PowerSupply {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let supplies = list_dir_or_no_data(&self.root)?;
        let mut buf = [0u8; 4096];
        let mut name = String::new();
        let mut help = String::new();
        for supply in supplies.iter().filter(|s| !self.ignored.is_match(s)) {
            let Some(dir) = sysfs_dir(&self.root.join(supply)) else { continue };
            let attrs = AttrDir::open(&dir).map_err(|e| CollectError::io(&dir, e))?;
            let files = list_dir(&dir)?;
            let mut info = vec![("power_supply".to_owned(), supply.clone())];
            for file in &files {
                let numeric = NUMERIC.iter().find(|(f, _, _)| f == file);
                let is_info = INFO.contains(&file.as_str());
                if numeric.is_none() && !is_info {
                    continue;
                }
                let value = match attrs.read(file, &mut buf) {
                    Ok(v) => v,
                    // Absent, unsupported or not-a-file attributes are skipped, as procfs does.
                    Err(e) if matches!(e.raw_os_error(), Some(2 | 19 | 21 | 22 | 61 | 95)) => continue,
                    Err(e) => return Err(CollectError::io(dir.join(file), e)),
                };
                if let Some((_, suffix, div)) = numeric {
                    let Some(v) = parse_go_int(value) else { continue };
                    name.clear();
                    name.push_str("node_power_supply_");
                    name.push_str(suffix);
                    help.clear();
                    help.push_str(suffix);
                    help.push_str(" value of /sys/class/power_supply/<power_supply>.");
                    out.gauge_with(&name, &help, &[("power_supply", supply)], v as f64 / div);
                } else if !value.is_empty() {
                    info.push((file.clone(), value.to_owned()));
                }
            }
            out.add_owned(
                "node_power_supply_info",
                "info of /sys/class/power_supply/<power_supply>.",
                MetricType::Gauge,
                info,
                1.0,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("powersupplyclass", &|f| f.starts_with("node_power_supply_"));
    }
}
