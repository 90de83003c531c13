//! `sysctl`: selected kernel parameters from `/proc/sys` (node_exporter compatible; disabled by
//! default as there). `--collector.sysctl.include=NAME[:key,key…]` exports numeric values (one
//! series, an `index` label per field, or one series per named field);
//! `--collector.sysctl.include-info=NAME` exports string values as `node_sysctl_info`.

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "sysctl",
    default_enabled: false,
    help: "Exposes selected sysctl values.",
    flags: &[
        Flag { name: "collector.sysctl.include", help: "Select sysctl metrics to include", kind: FlagKind::List },
        Flag {
            name: "collector.sysctl.include-info",
            help: "Select sysctl metrics to include as info metrics",
            kind: FlagKind::List,
        },
    ],
    build: |ctx| {
        let numeric = ctx.list("collector.sysctl.include").iter().map(|s| Sysctl::new(s, true));
        let info = ctx.list("collector.sysctl.include-info").iter().map(|s| Sysctl::new(s, false));
        Ok(Box::new(Sysctls { sys: ctx.paths.proc("sys"), sysctls: numeric.chain(info).collect() }))
    },
};

/// Reports the selected sysctls.
struct Sysctls {
    /// `/proc/sys`.
    sys: PathBuf,
    sysctls: Vec<Sysctl>,
}

/// One `--collector.sysctl.include[-info]` value.
struct Sysctl {
    /// Dotted name, e.g. `fs.file-nr`.
    name: String,
    /// Names for the fields (`fs.file-nr:total,current,max`).
    keys: Vec<String>,
    numeric: bool,
}

impl Sysctl {
    fn new(spec: &str, numeric: bool) -> Self {
        let (name, keys) = match spec.split_once(':') {
            Some((n, k)) => (n, k.split(',').map(str::to_owned).collect()),
            None => (spec, Vec::new()),
        };
        Self { name: name.to_owned(), keys, numeric }
    }

    /// `node_sysctl_<name>` with every run of characters outside `[A-Za-z0-9_]` (and the
    /// underscores around it) replaced by one `_`, as node_exporter sanitises names.
    fn metric_name(&self) -> String {
        let mut out = String::from("node_sysctl_");
        let mut pending = false;
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                if pending {
                    out.push('_');
                    pending = false;
                }
                out.push(c);
            } else if c == '_' && !pending {
                out.push('_');
            } else {
                // An invalid character: drop the underscores just written before it and emit one later.
                while out.ends_with('_') && out.len() > "node_sysctl_".len() {
                    out.pop();
                }
                pending = true;
            }
        }
        if pending {
            out.push('_');
        }
        out
    }
}

impl Collector for Sysctls {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        for s in &self.sysctls {
            let path = self.sys.join(s.name.replace('.', "/"));
            let text = read_string(&path)?;
            let fields: Vec<&str> = text.split_ascii_whitespace().collect();
            if fields.is_empty() {
                return Err(CollectError::parse(&path, format!("sysctl {} has no values", s.name)));
            }
            if !s.numeric {
                for (i, v) in fields.iter().enumerate() {
                    let index = i.to_string();
                    out.gauge_with(
                        "node_sysctl_info",
                        "sysctl info",
                        &[("index", &index), ("name", &s.name), ("value", v)],
                        1.0,
                    );
                }
                continue;
            }
            let values =
                fields.iter().map(|f| f.parse::<i64>().map(|v| v as f64)).collect::<Result<Vec<_>, _>>().map_err(
                    |_| CollectError::parse(&path, format!("sysctl {}: expected integers, got {text:?}", s.name)),
                )?;
            let help = format!("sysctl {}", s.name);
            match (values.len(), s.keys.len()) {
                (1, 0) => out.add(&s.metric_name(), &help, MetricType::Untyped, &[], values[0]),
                (1, _) => {
                    return Err(CollectError::parse(
                        &path,
                        format!("sysctl {} has only one value, but keys {:?} were given", s.name, s.keys),
                    ));
                }
                (_, 0) => {
                    for (i, v) in values.iter().enumerate() {
                        out.untyped_with(&s.metric_name(), &help, &[("index", &i.to_string())], *v);
                    }
                }
                (n, k) if n != k => {
                    return Err(CollectError::parse(
                        &path,
                        format!("sysctl {} has {n} values but {k} keys were given", s.name),
                    ));
                }
                _ => {
                    for (i, (key, v)) in s.keys.iter().zip(&values).enumerate() {
                        let name = format!("{}_{key}", s.metric_name());
                        out.add(&name, &format!("sysctl {}, field {i}", s.name), MetricType::Untyped, &[], *v);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Sysctl;

    #[test]
    fn names_are_sanitised_like_node_exporter() {
        let n = |s: &str| Sysctl::new(s, true).metric_name();
        assert_eq!(n("fs.file-nr"), "node_sysctl_fs_file_nr");
        assert_eq!(n("kernel.threads-max"), "node_sysctl_kernel_threads_max");
        assert_eq!(n("net.ipv4.tcp_rmem"), "node_sysctl_net_ipv4_tcp_rmem");
        assert_eq!(n("a_.-_b"), "node_sysctl_a_b");
        assert_eq!(Sysctl::new("fs.file-nr:total,current,max", true).keys, ["total", "current", "max"]);
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("sysctl", &|f| f.starts_with("node_sysctl_"));
    }
}
