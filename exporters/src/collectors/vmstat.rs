//! `vmstat`: selected fields of `/proc/vmstat` (node_exporter compatible).

use regex::Regex;

use crate::prelude::*;

const FIELDS: &str = "collector.vmstat.fields";

/// Catalog entry.
pub static DEF: Def = Def {
    name: "vmstat",
    default_enabled: true,
    help: "Exposes statistics from /proc/vmstat.",
    flags: &[Flag {
        name: FIELDS,
        help: "Regexp of fields to return for vmstat collector.",
        kind: FlagKind::Str("^(oom_kill|pgpg|pswp|pg.*fault).*"),
    }],
    build: |ctx| {
        let fields = ctx.regex(FIELDS)?.unwrap_or_else(|| Regex::new("^$").expect("static regex"));
        Ok(Box::new(VmStat { path: ctx.paths.proc("vmstat"), fields }))
    },
};

/// Reports `node_vmstat_<field>` (untyped) for fields matching `--collector.vmstat.fields`.
struct VmStat {
    path: PathBuf,
    fields: Regex,
}

impl Collector for VmStat {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        let mut name = String::new();
        let mut help = String::new();
        for line in text.lines() {
            let mut f = line.split_ascii_whitespace();
            let (Some(key), Some(value)) = (f.next(), f.next()) else { continue };
            if !self.fields.is_match(key) {
                continue;
            }
            let value: f64 = value.parse().map_err(|e| CollectError::parse(&self.path, format!("{key}: {e}")))?;
            name.clear();
            name.push_str("node_vmstat_");
            name.push_str(key);
            help.clear();
            help.push_str("/proc/vmstat information field ");
            help.push_str(key);
            help.push('.');
            out.untyped_with(&name, &help, &[], value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("vmstat", &|f| f.starts_with("node_vmstat_"));
    }
}
