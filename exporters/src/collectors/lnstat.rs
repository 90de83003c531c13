//! `lnstat`: per-CPU network cache statistics from `/proc/net/stat/*` (node_exporter compatible;
//! disabled by default as there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "lnstat",
    default_enabled: false,
    help: "Exposes stats from /proc/net/stat/.",
    flags: &[],
    build: |ctx| Ok(Box::new(Lnstat { dir: ctx.paths.proc("net/stat") })),
};

/// Reports `node_lnstat_<column>_total{cpu,subsystem}` for every file and column.
struct Lnstat {
    dir: PathBuf,
}

impl Collector for Lnstat {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        for file in list_dir(&self.dir)? {
            let path = self.dir.join(&file);
            let text = read_string(&path)?;
            let mut lines = text.lines();
            let headers: Vec<&str> = lines.next().unwrap_or_default().split_ascii_whitespace().collect();
            for (cpu, line) in lines.filter(|l| !l.trim().is_empty()).enumerate() {
                let values: Vec<&str> = line.split_ascii_whitespace().collect();
                if values.len() != headers.len() {
                    let msg = format!("CPU {cpu}: {} values for {} columns", values.len(), headers.len());
                    return Err(CollectError::parse(&path, msg));
                }
                let cpu = cpu.to_string();
                for (h, v) in headers.iter().zip(values) {
                    let v = u64::from_str_radix(v, 16)
                        .map_err(|_| CollectError::parse(&path, format!("{h}: {v:?} is not hexadecimal")))?;
                    let labels = [("cpu", cpu.as_str()), ("subsystem", file.as_str())];
                    out.counter_with(&format!("node_lnstat_{h}_total"), "linux network cache stats", &labels, v as f64);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("lnstat", &|f| f.starts_with("node_lnstat_"));
    }
}
