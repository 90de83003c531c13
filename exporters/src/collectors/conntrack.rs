//! `conntrack`: netfilter connection tracking table size and statistics, from
//! `/proc/sys/net/netfilter/nf_conntrack_{count,max}` and `/proc/net/stat/nf_conntrack`
//! (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "conntrack",
    default_enabled: true,
    help: "Shows conntrack statistics (does nothing if no /proc/sys/net/netfilter/ present).",
    flags: &[],
    build: |ctx| {
        Ok(Box::new(Conntrack {
            count: ctx.paths.proc("sys/net/netfilter/nf_conntrack_count"),
            max: ctx.paths.proc("sys/net/netfilter/nf_conntrack_max"),
            stat: ctx.paths.proc("net/stat/nf_conntrack"),
        }))
    },
};

/// Reports `node_nf_conntrack_entries`, `…_entries_limit` and `node_nf_conntrack_stat_*`.
struct Conntrack {
    /// Current number of entries.
    count: PathBuf,
    /// Table size limit.
    max: PathBuf,
    /// Per-CPU statistics table.
    stat: PathBuf,
}

/// Statistic columns reported: (column index, metric suffix, help), column 16 optional.
const STATS: [(usize, &str, &str); 8] = [
    (2, "found", "Number of searched entries which were successful."),
    (4, "invalid", "Number of packets seen which can not be tracked."),
    (5, "ignore", "Number of packets seen which are already connected to a conntrack entry."),
    (8, "insert", "Number of entries inserted into the list."),
    (9, "insert_failed", "Number of entries for which list insertion was attempted but failed."),
    (10, "drop", "Number of packets dropped due to conntrack failure."),
    (
        11,
        "early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (16, "search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
];

impl Collector for Conntrack {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        // A missing file means conntrack is not loaded: no data, not an error.
        let count = read_decimal(&self.count).map_err(CollectError::missing_as_no_data)?;
        out.gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            count as f64,
        );
        let max = read_decimal(&self.max).map_err(CollectError::missing_as_no_data)?;
        out.gauge("node_nf_conntrack_entries_limit", "Maximum size of connection tracking table.", max as f64);
        let text = read_string(&self.stat).map_err(CollectError::missing_as_no_data)?;
        let totals = stat_totals(&text).map_err(|m| CollectError::parse(&self.stat, m))?;
        let mut name = String::new();
        for ((_, suffix, help), v) in STATS.iter().zip(totals) {
            name.clear();
            name.push_str("node_nf_conntrack_stat_");
            name.push_str(suffix);
            out.gauge(&name, help, v as f64);
        }
        Ok(())
    }
}

/// A file holding one decimal unsigned integer (surrounding whitespace allowed).
fn read_decimal(path: &Path) -> Result<u64, CollectError> {
    let text = read_string(path)?;
    let t = text.trim();
    if t.starts_with('+') {
        return Err(CollectError::parse(path, format!("invalid number {t:?}")));
    }
    t.parse().map_err(|e| CollectError::parse(path, format!("{e}: {t:?}")))
}

/// Sums the [`STATS`] columns over the per-CPU rows of `/proc/net/stat/nf_conntrack` (header
/// skipped; each row 16 or 17 hexadecimal fields).
fn stat_totals(text: &str) -> Result<[u64; 8], String> {
    let mut totals = [0u64; 8];
    let mut row = [0u64; 17];
    for line in text.lines().skip(1) {
        let mut n = 0;
        for field in line.split_ascii_whitespace() {
            let v = if field.starts_with('+') { None } else { u64::from_str_radix(field, 16).ok() };
            let v = v.ok_or_else(|| format!("cannot parse entry {field:?}"))?;
            if n < row.len() {
                row[n] = v;
            }
            n += 1;
        }
        if !(16..=17).contains(&n) {
            return Err(format!("invalid conntrackstat entry, invalid number of fields: {n}"));
        }
        if n == 16 {
            row[16] = 0;
        }
        for (t, (col, _, _)) in totals.iter_mut().zip(STATS) {
            *t = t.wrapping_add(row[col]);
        }
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_cpu_rows() {
        let text = "entries searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error expect_new expect_create expect_delete search_restart
00000021 0 1 0 00000003 0000588a 0 0 2 3 4 5 0 0 0 0 00000001
00000021 0 1 0 00000002 000056a4 0 0 2 3 4 5 0 0 0 0
";
        assert_eq!(stat_totals(text), Ok([2, 5, 0x588a + 0x56a4, 4, 6, 8, 10, 1]));
    }

    #[test]
    fn rejects_bad_rows() {
        assert!(stat_totals("h\n1 2 3\n").is_err());
        assert!(stat_totals("h\n0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 zz\n").is_err());
        assert!(stat_totals("h\n\n").is_err());
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("conntrack", &|f| f.starts_with("node_nf_conntrack_"));
    }
}
