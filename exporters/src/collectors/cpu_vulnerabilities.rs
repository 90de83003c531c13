//! `cpu_vulnerabilities`: the kernel's CPU vulnerability report from
//! `/sys/devices/system/cpu/vulnerabilities` (node_exporter compatible; disabled by default as
//! there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "cpu_vulnerabilities",
    default_enabled: false,
    help: "Exposes CPU vulnerability information from sysfs.",
    flags: &[],
    build: |ctx| Ok(Box::new(CpuVulnerabilities { dir: ctx.paths.sys("devices/system/cpu/vulnerabilities") })),
};

/// Reports `node_cpu_vulnerabilities_info{codename,mitigation,state} 1` per file.
struct CpuVulnerabilities {
    dir: PathBuf,
}

impl Collector for CpuVulnerabilities {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        for name in list_dir(&self.dir)? {
            let (state, mitigation) = classify(&read_string(&self.dir.join(&name))?);
            out.gauge_with(
                "node_cpu_vulnerabilities_info",
                "Details of each CPU vulnerability reported by sysfs. The value of the series is an int encoded state of the vulnerability. The same state is stored as a string in the label",
                &[("codename", &name), ("mitigation", &mitigation), ("state", state)],
                1.0,
            );
        }
        Ok(())
    }
}

/// The state word and the mitigation text of one vulnerability file, as node_exporter reads
/// them: `Not affected`; `Vulnerable[: …]`, `Mitigation: …` and `Unknown: …` keep the words after
/// the first (whitespace collapsed); anything else is `unknown` with the whole text.
fn classify(raw: &str) -> (&'static str, String) {
    let raw = raw.trim();
    let lower = raw.to_ascii_lowercase();
    let rest = || raw.split_ascii_whitespace().skip(1).collect::<Vec<_>>().join(" ");
    if lower.starts_with("not affected") {
        ("not affected", String::new())
    } else if lower.starts_with("vulnerable") {
        ("vulnerable", rest())
    } else if lower.starts_with("mitigation") {
        ("mitigation", rest())
    } else if lower.starts_with("unknown") {
        ("unknown", rest())
    } else {
        ("unknown", raw.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn classifies_states_like_procfs() {
        assert_eq!(classify("Not affected\n"), ("not affected", String::new()));
        assert_eq!(classify("Vulnerable\n"), ("vulnerable", String::new()));
        assert_eq!(
            classify("Vulnerable: Clear CPU buffers attempted,  no microcode\n"),
            ("vulnerable", "Clear CPU buffers attempted, no microcode".to_owned())
        );
        assert_eq!(classify("Mitigation: PTI\n"), ("mitigation", "PTI".to_owned()));
        assert_eq!(classify("Processor vulnerable\n"), ("unknown", "Processor vulnerable".to_owned()));
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("cpu_vulnerabilities", &|f| f.starts_with("node_cpu_vulnerabilities_"));
    }
}
