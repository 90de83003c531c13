//! `cpufreq`: CPU frequency scaling from `/sys/devices/system/cpu/cpu*/cpufreq`
//! (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "cpufreq",
    default_enabled: true,
    help: "Exposes CPU frequency statistics.",
    flags: &[],
    build: |ctx| Ok(Box::new(CpuFreq { root: ctx.paths.sys("devices/system/cpu") })),
};

/// `(file, metric, help)`; values are kHz in sysfs and Hz in the metric.
const FREQS: [(&str, &str, &str); 7] = [
    ("cpuinfo_cur_freq", "node_cpu_frequency_hertz", "Current CPU thread frequency in hertz."),
    ("cpuinfo_avg_freq", "node_cpu_frequency_avg_hertz", "Average CPU thread frequency in hertz."),
    ("cpuinfo_min_freq", "node_cpu_frequency_min_hertz", "Minimum CPU thread frequency in hertz."),
    ("cpuinfo_max_freq", "node_cpu_frequency_max_hertz", "Maximum CPU thread frequency in hertz."),
    ("scaling_cur_freq", "node_cpu_scaling_frequency_hertz", "Current scaled CPU thread frequency in hertz."),
    ("scaling_min_freq", "node_cpu_scaling_frequency_min_hertz", "Minimum scaled CPU thread frequency in hertz."),
    ("scaling_max_freq", "node_cpu_scaling_frequency_max_hertz", "Maximum scaled CPU thread frequency in hertz."),
];

/// Reports frequencies and the governor per CPU thread.
struct CpuFreq {
    root: PathBuf,
}

impl Collector for CpuFreq {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let entries = list_dir(&self.root)?;
        let mut found = false;
        let mut buf = [0u8; 4096];
        for cpu in entries
            .iter()
            .filter_map(|e| e.strip_prefix("cpu"))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            let Ok(dir) = AttrDir::open(&self.root.join(format!("cpu{cpu}/cpufreq"))) else { continue };
            found = true;
            for (file, metric, help) in FREQS {
                // Unreadable (cpuinfo_cur_freq is root-only) or absent attributes are skipped.
                if let Ok(Ok(khz)) = dir.read(file, &mut buf).map(str::parse::<u64>) {
                    out.gauge_with(metric, help, &[("cpu", cpu)], khz as f64 * 1000.0);
                }
            }
            let governor = dir.read("scaling_governor", &mut buf).map(str::to_owned).unwrap_or_default();
            if governor.is_empty() {
                continue;
            }
            let available = dir.read("scaling_available_governors", &mut buf).unwrap_or("");
            for g in available.split(' ') {
                out.gauge_with(
                    "node_cpu_scaling_governor",
                    "Current enabled CPU frequency governor.",
                    &[("cpu", cpu), ("governor", g)],
                    if g == governor { 1.0 } else { 0.0 },
                );
            }
        }
        if found { Ok(()) } else { Err(CollectError::NoData) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("cpufreq", &|f| f.starts_with("node_cpu_scaling_"));
    }
}
