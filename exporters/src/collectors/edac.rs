//! `edac`: memory error counters from `/sys/devices/system/edac/mc` (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "edac",
    default_enabled: true,
    help: "Exposes error detection and correction statistics.",
    flags: &[],
    build: |ctx| Ok(Box::new(Edac { root: ctx.paths.sys("devices/system/edac/mc") })),
};

/// Reports correctable/uncorrectable error counters per controller, csrow and channel.
struct Edac {
    root: PathBuf,
}

/// Numeric suffixes of entries named `<prefix><digits>`, sorted numerically.
fn numbered<'a>(names: &'a [String], prefix: &str) -> Vec<&'a str> {
    let mut v: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix(prefix))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    v.sort_by_key(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    v
}

/// node_exporter's DIMM label normalisation (`mc#0csrow#0channel#0` → `mc0_csrow0_channel0`).
fn dimm_label(raw: Option<String>) -> String {
    raw.map_or_else(
        || "unknown".to_owned(),
        |l| l.trim().replace('#', "").replace("csrow", "_csrow").replace("channel", "_channel"),
    )
}

impl Collector for Edac {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let Ok(controllers) = list_dir(&self.root) else { return Ok(()) };
        for mc in numbered(&controllers, "mc") {
            let dir = self.root.join(format!("mc{mc}"));
            let count = |p: PathBuf| read_u64(&p).map(|v| v as f64);
            out.counter_with(
                "node_edac_correctable_errors_total",
                "Total correctable memory errors.",
                &[("controller", mc)],
                count(dir.join("ce_count"))?,
            );
            out.counter_with(
                "node_edac_csrow_correctable_errors_total",
                "Total correctable memory errors for this csrow.",
                &[("controller", mc), ("csrow", "unknown")],
                count(dir.join("ce_noinfo_count"))?,
            );
            out.counter_with(
                "node_edac_uncorrectable_errors_total",
                "Total uncorrectable memory errors.",
                &[("controller", mc)],
                count(dir.join("ue_count"))?,
            );
            out.counter_with(
                "node_edac_csrow_uncorrectable_errors_total",
                "Total uncorrectable memory errors for this csrow.",
                &[("controller", mc), ("csrow", "unknown")],
                count(dir.join("ue_noinfo_count"))?,
            );
            let rows = list_dir(&dir)?;
            for row in numbered(&rows, "csrow") {
                let rdir = dir.join(format!("csrow{row}"));
                out.counter_with(
                    "node_edac_csrow_correctable_errors_total",
                    "Total correctable memory errors for this csrow.",
                    &[("controller", mc), ("csrow", row)],
                    count(rdir.join("ce_count"))?,
                );
                out.counter_with(
                    "node_edac_csrow_uncorrectable_errors_total",
                    "Total uncorrectable memory errors for this csrow.",
                    &[("controller", mc), ("csrow", row)],
                    count(rdir.join("ue_count"))?,
                );
                let files = list_dir(&rdir)?;
                for chan in files.iter().filter_map(|f| f.strip_prefix("ch")?.strip_suffix("_ce_count")) {
                    if chan.is_empty() || !chan.bytes().all(|b| b.is_ascii_digit()) {
                        continue;
                    }
                    let label = dimm_label(std::fs::read_to_string(rdir.join(format!("ch{chan}_dimm_label"))).ok());
                    let labels =
                        [("controller", mc), ("csrow", row), ("channel", chan), ("dimm_label", label.as_str())];
                    out.counter_with(
                        "node_edac_channel_correctable_errors_total",
                        "Total correctable memory errors for this channel.",
                        &labels,
                        count(rdir.join(format!("ch{chan}_ce_count")))?,
                    );
                    if let Ok(ue) = count(rdir.join(format!("ch{chan}_ue_count"))) {
                        out.counter_with(
                            "node_edac_channel_uncorrectable_errors_total",
                            "Total uncorrectable memory errors for this channel.",
                            &labels,
                            ue,
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_dimm_labels() {
        assert_eq!(dimm_label(Some("mc#0csrow#1channel#0\n".into())), "mc0_csrow1_channel0");
        assert_eq!(dimm_label(None), "unknown");
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("edac", &|f| f.starts_with("node_edac_"));
    }
}
