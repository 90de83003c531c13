//! `cgroups`: cgroup v1 controller summary from `/proc/cgroups` (node_exporter compatible;
//! disabled by default as there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "cgroups",
    default_enabled: false,
    help: "Exposes the number of cgroups per controller from /proc/cgroups.",
    flags: &[],
    build: |ctx| Ok(Box::new(Cgroups { path: ctx.paths.proc("cgroups") })),
};

/// Reports `node_cgroups_cgroups{subsys_name}` and `node_cgroups_enabled{subsys_name}`.
struct Cgroups {
    path: PathBuf,
}

impl Collector for Cgroups {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            let parsed = match f.as_slice() {
                [name, _hierarchy, n, enabled] => {
                    n.parse::<u64>().ok().zip(enabled.parse::<u64>().ok()).map(|v| (*name, v))
                }
                _ => None,
            };
            let (name, (n, enabled)) = parsed.ok_or_else(|| {
                CollectError::parse(
                    &self.path,
                    format!("expected `subsys_name hierarchy num_cgroups enabled`, got {line:?}"),
                )
            })?;
            // Both HELP texts are node_exporter's (the second is its copy of the first).
            let help = "Current cgroup number of the subsystem.";
            out.gauge_with("node_cgroups_cgroups", help, &[("subsys_name", name)], n as f64);
            out.gauge_with("node_cgroups_enabled", help, &[("subsys_name", name)], enabled as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("cgroups", &|f| f.starts_with("node_cgroups_"));
    }
}
