//! `interrupts`: interrupt counts per CPU from `/proc/interrupts` (node_exporter compatible;
//! disabled by default as there).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "interrupts",
    default_enabled: false,
    help: "Exposes detailed interrupts statistics.",
    flags: &[
        Flag {
            name: "collector.interrupts.name-include",
            help: "Regexp of interrupts name to include (mutually exclusive to --collector.interrupts.name-exclude).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: "collector.interrupts.name-exclude",
            help: "Regexp of interrupts name to exclude (mutually exclusive to --collector.interrupts.name-include).",
            kind: FlagKind::Str(""),
        },
        Flag {
            name: "collector.interrupts.include-zeros",
            help: "Include interrupts that have a zero value",
            kind: FlagKind::Bool(true),
        },
    ],
    build: |ctx| {
        Ok(Box::new(Interrupts {
            path: ctx.paths.proc("interrupts"),
            filter: ctx.device_filter("collector.interrupts.name-exclude", "collector.interrupts.name-include")?,
            include_zeros: ctx.bool("collector.interrupts.include-zeros"),
        }))
    },
};

/// Reports `node_interrupts_total{cpu,devices,info,type}`.
struct Interrupts {
    path: PathBuf,
    /// Matched against `type;info;devices`.
    filter: DeviceFilter,
    include_zeros: bool,
}

/// One row of `/proc/interrupts`.
#[derive(Debug, PartialEq)]
struct Row<'a> {
    name: &'a str,
    info: String,
    devices: String,
    values: Vec<&'a str>,
}

impl Collector for Interrupts {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        for row in parse(&text).map_err(|m| CollectError::parse(&self.path, m))? {
            if self.filter.ignored(&format!("{};{};{}", row.name, row.info, row.devices)) {
                continue;
            }
            for (cpu, v) in row.values.iter().enumerate() {
                let v: f64 = v
                    .parse()
                    .map_err(|_| CollectError::parse(&self.path, format!("{}: {v:?} is not a count", row.name)))?;
                if v == 0.0 && !self.include_zeros {
                    continue;
                }
                out.counter_with(
                    "node_interrupts_total",
                    "Interrupt details.",
                    &[("cpu", &cpu.to_string()), ("devices", &row.devices), ("info", &row.info), ("type", row.name)],
                    v,
                );
            }
        }
        Ok(())
    }
}

/// Parses `/proc/interrupts`: a header with one column per CPU, then `NAME: counts… details`.
/// Numbered interrupts split the details into the chip (`info`) and the device names; named
/// ones (`NMI`, `LOC`, …) keep them all as `info`. Rows with fewer counts than CPUs (`ERR`,
/// `MIS`) are skipped, as node_exporter does. A later row with the same name replaces an
/// earlier one.
fn parse(text: &str) -> Result<Vec<Row<'_>>, String> {
    let mut lines = text.lines();
    let cpus = lines.next().ok_or("empty file")?.split_ascii_whitespace().count();
    let mut rows: Vec<Row<'_>> = Vec::new();
    for line in lines {
        // aarch64 may print no space between the name's colon and the first count.
        let Some((name, rest)) = line.split_once(':') else { continue };
        let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
        if parts.len() < cpus + 1 {
            continue;
        }
        let name = name.trim_start();
        let (info, devices) = if name.parse::<i64>().is_ok() {
            (parts[cpus].to_owned(), parts[cpus + 1..].join(" "))
        } else {
            (parts[cpus..].join(" "), String::new())
        };
        let row = Row { name, info, devices, values: parts[..cpus].to_vec() };
        match rows.iter_mut().find(|r| r.name == name) {
            Some(r) => *r = row,
            None => rows.push(row),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbered_and_named_rows_and_skips_err() {
        let text = "           CPU0       CPU1\n  0:         18          0  IR-IO-APIC-edge      timer\nNMI:   47   5031   Non-maskable interrupts\nERR:          0\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            Row { name: "0", info: "IR-IO-APIC-edge".into(), devices: "timer".into(), values: vec!["18", "0"] }
        );
        assert_eq!(rows[1].info, "Non-maskable interrupts");
        assert_eq!(rows[1].devices, "");
        assert!(parse("").is_err());
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("interrupts", &|f| f.starts_with("node_interrupts_"));
    }
}
