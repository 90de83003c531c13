//! `hwmon`: hardware sensors (temperatures, voltages, fans, power) from `/sys/class/hwmon`
//! (node_exporter compatible, including its chip naming from the device path).

use std::collections::{BTreeMap, HashMap};
use std::path::Component;

use crate::prelude::*;

const CHIP_INCLUDE: &str = "collector.hwmon.chip-include";
const CHIP_EXCLUDE: &str = "collector.hwmon.chip-exclude";
const SENSOR_INCLUDE: &str = "collector.hwmon.sensor-include";
const SENSOR_EXCLUDE: &str = "collector.hwmon.sensor-exclude";

/// Catalog entry.
pub static DEF: Def = Def {
    name: "hwmon",
    default_enabled: true,
    help: "Expose hardware monitoring and sensor data from /sys/class/hwmon/.",
    flags: &[
        Flag {
            name: CHIP_INCLUDE,
            help: "Regexp of hwmon chip to include (mutually exclusive to device-exclude).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: CHIP_EXCLUDE,
            help: "Regexp of hwmon chip to exclude (mutually exclusive to device-include).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: SENSOR_INCLUDE,
            help: "Regexp of hwmon sensor to include (mutually exclusive to sensor-exclude).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: SENSOR_EXCLUDE,
            help: "Regexp of hwmon sensor to exclude (mutually exclusive to sensor-include).",
            kind: FlagKind::Str(""),
        },
    ],
    build: |ctx| {
        Ok(Box::new(Hwmon {
            root: ctx.paths.sys("class/hwmon"),
            chips: ctx.device_filter(CHIP_EXCLUDE, CHIP_INCLUDE)?,
            sensors: ctx.device_filter(SENSOR_EXCLUDE, SENSOR_INCLUDE)?,
        }))
    },
};

/// Sensor types node_exporter reports.
const SENSOR_TYPES: &[&str] = &[
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
];

/// Reports `node_hwmon_*`.
struct Hwmon {
    root: PathBuf,
    chips: DeviceFilter,
    sensors: DeviceFilter,
}

/// node_exporter's `cleanMetricName`: lower case, `[^a-z0-9:_]` → `_`, trimmed of `_`.
fn clean(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' { c } else { '_' })
        .collect();
    s.trim_matches('_').to_owned()
}

/// Splits `temp1_crit_alarm` into (`temp`, 1, `crit_alarm`) like upstream's filename regex.
fn explode(file: &str) -> Option<(&str, u32, &str)> {
    let type_end = file.find(|c: char| c.is_ascii_digit()).unwrap_or(file.len());
    if type_end == 0 {
        return None;
    }
    let (kind, rest) = file.split_at(type_end);
    let id_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (id, rest) = rest.split_at(id_end);
    let prop = match rest {
        "" => "",
        r => r.strip_prefix('_').filter(|p| !p.is_empty())?,
    };
    let id = if id.is_empty() { 0 } else { id.parse().ok()? };
    Some((kind, id, prop))
}

/// Lexically normalises `a/b/../c` → `a/c`.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// `filepath.EvalSymlinks`, also following the symlink stubs of fixture trees.
fn eval_links(path: &Path) -> Option<PathBuf> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.is_file() && meta.len() <= 4096 {
        let text = std::fs::read_to_string(path).ok()?;
        let target = text.trim();
        if target.starts_with("../") {
            return eval_links(&normalize(&path.parent()?.join(target)));
        }
    }
    std::fs::canonicalize(path).ok()
}

/// One read of at most 128 bytes without the trailing newline (upstream's `sysReadFile`).
fn read_value(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; 128];
    let n = f.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).trim_matches('\n').to_owned())
}

/// Sensor → property → raw value, from the files of `dir`.
fn collect_sensor_data(dir: &Path, data: &mut BTreeMap<String, BTreeMap<String, String>>) -> Result<(), CollectError> {
    for file in list_dir(dir)? {
        let Some((kind, id, prop)) = explode(&file) else { continue };
        if !SENSOR_TYPES.contains(&kind) {
            continue;
        }
        if let Some(v) = read_value(&dir.join(&file)) {
            data.entry(format!("{kind}{id}")).or_default().insert(prop.to_owned(), v);
        }
    }
    Ok(())
}

/// The chip name node_exporter derives: `<bus>_<device>` from the device link, else the
/// `name` file, else the directory's own name.
fn chip_base_name(dir: &Path) -> Option<String> {
    if let Some(dev) = eval_links(&dir.join("device")) {
        let name = dev.file_name().map(|n| clean(&n.to_string_lossy())).unwrap_or_default();
        let kind = dev.parent().and_then(Path::file_name).map(|n| clean(&n.to_string_lossy())).unwrap_or_default();
        if !kind.is_empty() && !name.is_empty() {
            return Some(format!("{kind}_{name}"));
        }
        if !name.is_empty() {
            return Some(name);
        }
    }
    if let Ok(raw) = std::fs::read_to_string(dir.join("name")) {
        let c = clean(&raw);
        if !c.is_empty() {
            return Some(c);
        }
    }
    let real = eval_links(dir)?;
    let c = clean(&real.file_name()?.to_string_lossy());
    (!c.is_empty()).then_some(c)
}

impl Hwmon {
    fn update_chip(&self, out: &mut Sink, dir: &Path, chip: &str) -> Result<(), CollectError> {
        let mut data = BTreeMap::new();
        collect_sensor_data(dir, &mut data)?;
        if let Some(dev) = eval_links(&dir.join("device")).filter(|d| d.is_dir()) {
            collect_sensor_data(&dev, &mut data)?;
        }
        if let Ok(raw) = std::fs::read_to_string(dir.join("name")) {
            let c = clean(&raw);
            if !c.is_empty() {
                out.gauge_with(
                    "node_hwmon_chip_names",
                    "Annotation metric for human-readable chip names",
                    &[("chip", chip), ("chip_name", &c)],
                    1.0,
                );
            }
        }
        for (sensor, props) in &data {
            if self.sensors.ignored(&format!("{chip};{sensor}")) {
                continue;
            }
            let Some((kind, _, _)) = explode(sensor) else { continue };
            let labels = [("chip", chip), ("sensor", sensor.as_str())];
            if let Some(label) = props.get("label") {
                out.gauge_with(
                    "node_hwmon_sensor_label",
                    "Label for given chip and sensor",
                    &[("chip", chip), ("sensor", sensor), ("label", label)],
                    1.0,
                );
            }
            let raw = props.get("").map(String::as_str);
            match kind {
                "beep_enable" => {
                    let v = if raw == Some("1") { 1.0 } else { 0.0 };
                    out.gauge_with("node_hwmon_beep_enabled", "Hardware beep enabled", &labels, v);
                    continue;
                }
                "vrm" => {
                    if let Some(v) = raw.and_then(|r| r.parse::<f64>().ok()) {
                        out.gauge_with(
                            "node_hwmon_voltage_regulator_version",
                            "Hardware voltage regulator",
                            &labels,
                            v,
                        );
                    }
                    continue;
                }
                "update_interval" => {
                    if let Some(v) = raw.and_then(|r| r.parse::<f64>().ok()) {
                        out.gauge_with(
                            "node_hwmon_update_interval_seconds",
                            "Hardware monitor update interval",
                            &labels,
                            v * 0.001,
                        );
                    }
                    continue;
                }
                _ => {}
            }
            for (element, value) in props {
                if element == "label" {
                    continue;
                }
                let mut name = format!("node_hwmon_{kind}");
                if element == "input" {
                    if props.contains_key("") {
                        name.push_str("_input");
                    }
                } else if !element.is_empty() {
                    name.push('_');
                    name.push_str(&clean(element));
                }
                let Ok(v) = value.trim().parse::<f64>() else { continue };
                let el = element.as_str();
                let (metric, help, kind_of, value) = match (kind, el) {
                    (_, "fault" | "alarm") => {
                        (name, format!("Hardware sensor {el} status ({kind})"), MetricType::Gauge, v)
                    }
                    (_, "beep") => (
                        format!("{name}_enabled"),
                        "Hardware monitor sensor has beeping enabled".to_owned(),
                        MetricType::Gauge,
                        v,
                    ),
                    ("in" | "cpu", _) => (
                        format!("{name}_volts"),
                        format!("Hardware monitor for voltage ({el})"),
                        MetricType::Gauge,
                        v * 0.001,
                    ),
                    ("temp", e) if e != "type" => {
                        let e = if e.is_empty() { "input" } else { e };
                        (
                            format!("{name}_celsius"),
                            format!("Hardware monitor for temperature ({e})"),
                            MetricType::Gauge,
                            v * 0.001,
                        )
                    }
                    ("curr", _) => (
                        format!("{name}_amps"),
                        format!("Hardware monitor for current ({el})"),
                        MetricType::Gauge,
                        v * 0.001,
                    ),
                    ("energy", _) => (
                        format!("{name}_joule_total"),
                        format!("Hardware monitor for joules used so far ({el})"),
                        MetricType::Counter,
                        v / 1_000_000.0,
                    ),
                    ("power", "accuracy") => (
                        name,
                        "Hardware monitor power meter accuracy, as a ratio".to_owned(),
                        MetricType::Gauge,
                        v / 1_000_000.0,
                    ),
                    ("power", "average_interval" | "average_interval_min" | "average_interval_max") => (
                        format!("{name}_seconds"),
                        format!("Hardware monitor power usage update interval ({el})"),
                        MetricType::Gauge,
                        v * 0.001,
                    ),
                    ("power", _) => (
                        format!("{name}_watt"),
                        format!("Hardware monitor for power usage in watts ({el})"),
                        MetricType::Gauge,
                        v / 1_000_000.0,
                    ),
                    ("humidity", _) => (
                        name,
                        format!(
                            "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({el})"
                        ),
                        MetricType::Gauge,
                        v / 1_000_000.0,
                    ),
                    ("fan", "input" | "min" | "max" | "target") => (
                        format!("{name}_rpm"),
                        format!("Hardware monitor for fan revolutions per minute ({el})"),
                        MetricType::Gauge,
                        v,
                    ),
                    ("freq", "input") => {
                        if let Some(label) = props.get("label") {
                            out.add(
                                &format!("{name}_freq_mhz"),
                                "Hardware monitor for GPU frequency in MHz",
                                MetricType::Gauge,
                                &[("chip", chip), ("sensor", &clean(label))],
                                v / 1_000_000.0,
                            );
                        }
                        continue;
                    }
                    _ => (name, format!("Hardware monitor {kind} element {el}"), MetricType::Gauge, v),
                };
                out.add(&metric, &help, kind_of, &labels, value);
            }
        }
        Ok(())
    }
}

impl Collector for Hwmon {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let entries = list_dir_or_no_data(&self.root)?;
        // (link path, resolved dir, base chip name, name file)
        let mut chips = Vec::new();
        let mut chip_counts: HashMap<String, usize> = HashMap::new();
        let mut name_counts: HashMap<(String, String), usize> = HashMap::new();
        for entry in &entries {
            let link = self.root.join(entry);
            let Some(dir) = eval_links(&link).filter(|d| d.is_dir()) else { continue };
            let Some(base) = chip_base_name(&dir) else { continue };
            let name_file = std::fs::read_to_string(dir.join("name")).map(|s| s.trim().to_owned()).unwrap_or_default();
            *chip_counts.entry(base.clone()).or_default() += 1;
            *name_counts.entry((base.clone(), name_file.clone())).or_default() += 1;
            chips.push((entry, dir, base, name_file));
        }
        let mut last_err = None;
        for (entry, dir, base, name_file) in &chips {
            let mut chip = base.clone();
            if chip_counts[base] > 1 {
                let mut suffix = clean(name_file);
                if suffix.is_empty() || name_counts[&(base.clone(), name_file.clone())] > 1 {
                    suffix = clean(entry);
                }
                chip = format!("{base}_{suffix}");
            }
            if self.chips.ignored(&chip) {
                continue;
            }
            if let Err(e) = self.update_chip(out, dir, &chip) {
                last_err = Some(e);
            }
        }
        last_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explodes_sensor_file_names() {
        assert_eq!(explode("temp1_crit_alarm"), Some(("temp", 1, "crit_alarm")));
        assert_eq!(explode("pwm1"), Some(("pwm", 1, "")));
        assert_eq!(explode("beep_enable"), Some(("beep_enable", 0, "")));
        assert_eq!(explode("pwm1_auto_point1_pwm"), Some(("pwm", 1, "auto_point1_pwm")));
        assert_eq!(explode("1abc"), None);
        assert_eq!(clean("Core 0"), "core_0");
        assert_eq!(clean("coretemp.0"), "coretemp_0");
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("hwmon", &|f| f.starts_with("node_hwmon_"));
    }
}
