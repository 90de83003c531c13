//! `bcache`: Linux block cache statistics from `/sys/fs/bcache/<uuid>/` (node_exporter
//! compatible, including `--collector.bcache.priorityStats`).

use std::io;

use crate::prelude::*;
use crate::sysfs::follow;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "bcache",
    default_enabled: true,
    help: "Exposes bcache statistics from /sys/fs/bcache/.",
    flags: &[Flag {
        name: "collector.bcache.priorityStats",
        help: "Expose expensive priority stats.",
        kind: FlagKind::Bool(false),
    }],
    build: |ctx| {
        Ok(Box::new(Bcache {
            dir: ctx.paths.sys("fs/bcache"),
            priority_stats: ctx.bool("collector.bcache.priorityStats"),
        }))
    },
};

/// Reports per-cache-set, per-backing-device and per-cache-device bcache statistics.
struct Bcache {
    /// `/sys/fs/bcache`.
    dir: PathBuf,
    /// Also read each cache device's `priority_stats` (costly for the kernel).
    priority_stats: bool,
}

/// Cache-set gauges: (file under the uuid directory, metric suffix, HELP).
const SET_GAUGES: [(&str, &str, &str); 6] = [
    ("average_key_size", "average_key_size_sectors", "Average data per key in the btree (sectors)."),
    ("btree_cache_size", "btree_cache_size_bytes", "Amount of memory currently used by the btree cache."),
    (
        "cache_available_percent",
        "cache_available_percent",
        "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).",
    ),
    ("congested", "congested", "Congestion."),
    (
        "root_usage_percent",
        "root_usage_percent",
        "Percentage of the root btree node in use (tree depth increases if too high).",
    ),
    ("tree_depth", "tree_depth", "Depth of the btree."),
];

/// Files of `internal/`, in [`Set::internal`] order.
const INTERNAL: [&str; 4] =
    ["active_journal_entries", "btree_nodes", "btree_read_average_duration_us", "cache_read_races"];

/// Backing-device `stats_total/` counters: (file, metric suffix, HELP), in [`Bdev::total`] order.
const PERIOD: [(&str, &str, &str); 7] = [
    ("bypassed", "bypassed_bytes_total", "Amount of IO (both reads and writes) that has bypassed the cache."),
    ("cache_hits", "cache_hits_total", "Hits counted per individual IO as bcache sees them."),
    ("cache_misses", "cache_misses_total", "Misses counted per individual IO as bcache sees them."),
    ("cache_bypass_hits", "cache_bypass_hits_total", "Hits for IO intended to skip the cache."),
    ("cache_bypass_misses", "cache_bypass_misses_total", "Misses for IO intended to skip the cache."),
    (
        "cache_miss_collisions",
        "cache_miss_collisions_total",
        "Instances where data insertion from cache miss raced with write (data already present).",
    ),
    ("cache_readaheads", "cache_readaheads_total", "Count of times readahead occurred."),
];

/// Index of `cache_readaheads` in [`PERIOD`] (reported only when non-zero).
const READAHEADS: usize = 6;

/// One cache set (`/sys/fs/bcache/<uuid>`).
#[derive(Debug, Default)]
struct Set {
    /// The set's UUID.
    uuid: String,
    /// Values of [`SET_GAUGES`].
    gauges: [u64; 6],
    /// Values of [`INTERNAL`].
    internal: [u64; 4],
    /// Backing devices (`bdev<N>`).
    bdevs: Vec<Bdev>,
    /// Cache devices (`cache<N>`).
    caches: Vec<Cache>,
}

/// One backing device (`<uuid>/bdev<N>`).
#[derive(Debug, Default)]
struct Bdev {
    /// `bdev<N>`.
    name: String,
    /// `dirty_data`.
    dirty_data: u64,
    /// `writeback_rate_debug`.
    writeback: Writeback,
    /// Values of [`PERIOD`] from `stats_total/`.
    total: [u64; 7],
}

/// One cache device (`<uuid>/cache<N>`).
#[derive(Debug, Default)]
struct Cache {
    /// `cache<N>`.
    name: String,
    /// `io_errors`, `metadata_written`, `written`.
    values: [u64; 3],
    /// `Unused` and `Metadata` percentages of `priority_stats` (when enabled).
    priority: [u64; 2],
}

/// What upstream reports of `writeback_rate_debug`.
#[derive(Debug, Default, PartialEq)]
struct Writeback {
    /// `rate:` in bytes per second.
    rate: u64,
    /// `target:` in bytes.
    target: u64,
    /// `proportional:` term.
    proportional: i64,
    /// `integral:` term.
    integral: i64,
    /// `change:` per second.
    change: i64,
}

impl Collector for Bcache {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        // Like a glob: an unreadable or missing directory simply has no cache sets.
        let names = list_dir(&self.dir).unwrap_or_default();
        let mut sets = Vec::new();
        for uuid in names.into_iter().filter(|n| n.contains('-')) {
            sets.push(self.read_set(uuid)?);
        }
        for s in &sets {
            emit(out, s, self.priority_stats);
        }
        Ok(())
    }
}

impl Bcache {
    /// Reads one cache set with its backing and cache devices.
    fn read_set(&self, uuid: String) -> Result<Set, CollectError> {
        let dir = self.dir.join(&uuid);
        let mut set = Set { uuid, ..Set::default() };
        for (slot, &(file, _, _)) in set.gauges.iter_mut().zip(SET_GAUGES.iter()) {
            *slot = read_value(&dir.join(file))?;
        }
        let internal = dir.join("internal");
        for (slot, file) in set.internal.iter_mut().zip(INTERNAL) {
            *slot = read_value(&internal.join(file))?;
        }
        let entries = list_dir(&dir).unwrap_or_default();
        for name in entries.iter().filter(|n| numbered(n, "bdev")) {
            let d = follow(dir.join(name));
            let mut b = Bdev { name: name.clone(), dirty_data: read_value(&d.join("dirty_data"))?, ..Bdev::default() };
            let path = d.join("writeback_rate_debug");
            b.writeback = parse_writeback(&read_string(&path)?).map_err(|m| CollectError::parse(&path, m))?;
            let total = d.join("stats_total");
            for (slot, &(file, _, _)) in b.total.iter_mut().zip(PERIOD.iter()) {
                *slot = read_value(&total.join(file))?;
            }
            set.bdevs.push(b);
        }
        for name in entries.iter().filter(|n| numbered(n, "cache")) {
            let d = follow(dir.join(name));
            let mut c = Cache { name: name.clone(), ..Cache::default() };
            for (slot, file) in c.values.iter_mut().zip(["io_errors", "metadata_written", "written"]) {
                *slot = read_value(&d.join(file))?;
            }
            if self.priority_stats {
                let path = d.join("priority_stats");
                c.priority = parse_priority(&read_string(&path)?).map_err(|m| CollectError::parse(&path, m))?;
            }
            set.caches.push(c);
        }
        Ok(set)
    }
}

/// Writes one cache set's metrics.
fn emit(out: &mut Sink, set: &Set, priority_stats: bool) {
    let mut name = String::new();
    let mut put = |suffix: &str, help: &str, kind: MetricType, extra: Option<(&str, &str)>, v: f64| {
        name.clear();
        name.push_str("node_bcache_");
        name.push_str(suffix);
        match extra {
            Some(l) => out.add(&name, help, kind, &[("uuid", &set.uuid), l], v),
            None => out.add(&name, help, kind, &[("uuid", &set.uuid)], v),
        }
    };
    let (gauge, counter) = (MetricType::Gauge, MetricType::Counter);
    for (&(_, suffix, help), v) in SET_GAUGES.iter().zip(set.gauges) {
        put(suffix, help, gauge, None, v as f64);
    }
    let [journal, nodes, read_avg, races] = set.internal;
    put(
        "active_journal_entries",
        "Number of journal entries that are newer than the index.",
        gauge,
        None,
        journal as f64,
    );
    put("btree_nodes", "Total nodes in the btree.", gauge, None, nodes as f64);
    // The file holds microseconds; upstream scales it as nanoseconds, and so do we.
    put("btree_read_average_duration_seconds", "Average btree read duration.", gauge, None, read_avg as f64 * 1e-9);
    put(
        "cache_read_races_total",
        "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.",
        counter,
        None,
        races as f64,
    );
    for bdev in &set.bdevs {
        let dev = Some(("backing_device", bdev.name.as_str()));
        let wb = &bdev.writeback;
        put(
            "dirty_data_bytes",
            "Amount of dirty data for this backing device in the cache.",
            gauge,
            dev,
            bdev.dirty_data as f64,
        );
        put(
            "dirty_target_bytes",
            "Current dirty data target threshold for this backing device in bytes.",
            gauge,
            dev,
            wb.target as f64,
        );
        put("writeback_rate", "Current writeback rate for this backing device in bytes.", gauge, dev, wb.rate as f64);
        put(
            "writeback_rate_proportional_term",
            "Current result of proportional controller, part of writeback rate",
            gauge,
            dev,
            wb.proportional as f64,
        );
        put(
            "writeback_rate_integral_term",
            "Current result of integral controller, part of writeback rate",
            gauge,
            dev,
            wb.integral as f64,
        );
        put(
            "writeback_change",
            "Last writeback rate change step for this backing device.",
            gauge,
            dev,
            wb.change as f64,
        );
        for (i, (&(_, suffix, help), v)) in PERIOD.iter().zip(bdev.total).enumerate() {
            if i == READAHEADS && v == 0 {
                continue;
            }
            put(suffix, help, counter, dev, v as f64);
        }
    }
    for cache in &set.caches {
        let dev = Some(("cache_device", cache.name.as_str()));
        let [io_errors, metadata, written] = cache.values;
        put(
            "io_errors",
            "Number of errors that have occurred, decayed by io_error_halflife.",
            gauge,
            dev,
            io_errors as f64,
        );
        put(
            "metadata_written_bytes_total",
            "Sum of all non data writes (btree writes and all other metadata).",
            counter,
            dev,
            metadata as f64,
        );
        put("written_bytes_total", "Sum of all data that has been written to the cache.", counter, dev, written as f64);
        if priority_stats {
            let [unused, meta] = cache.priority;
            put(
                "priority_stats_unused_percent",
                "The percentage of the cache that doesn't contain any data.",
                gauge,
                dev,
                unused as f64,
            );
            put("priority_stats_metadata_percent", "Bcache's metadata overhead.", gauge, dev, meta as f64);
        }
    }
}

/// True for `<prefix><digit>…` (the globs `bdev[0-9]*`, `cache[0-9]*`).
fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

/// Reads one value file: missing files count as 0, like upstream.
fn read_value(path: &Path) -> Result<u64, CollectError> {
    match std::fs::read(path) {
        Ok(bytes) => value(&bytes).map_err(|m| CollectError::parse(path, m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(CollectError::io(path, e)),
    }
}

/// A value file's content: its last byte (the newline) dropped, then [`dehumanize`]d.
fn value(bytes: &[u8]) -> Result<u64, String> {
    let Some((_, body)) = bytes.split_last() else { return Err("empty file".into()) };
    let text = std::str::from_utf8(body).map_err(|_| "invalid UTF-8".to_owned())?;
    dehumanize(text)
}

/// Parses a number as Go's `strconv.ParseFloat` would (decimal forms).
fn go_float(s: &str) -> Result<f64, String> {
    s.parse::<f64>().map_err(|_| format!("invalid number {s:?}"))
}

/// Parses the kernel's `bch_hprint` output (`20.4G`, `1.1M`, `512`) into a count. The digits
/// after the point are tenths of 1024ths, so `.4` means 4/10.24; unknown suffixes yield 0.
fn dehumanize(s: &str) -> Result<u64, String> {
    let Some(&last) = s.as_bytes().last() else { return Err("zero-length reply".into()) };
    let x = if last > b'9' {
        let exp = match last {
            b'k' => 10,
            b'M' => 20,
            b'G' => 30,
            b'T' => 40,
            b'P' => 50,
            b'E' => 60,
            b'Z' => 70,
            b'Y' => 80,
            _ => -1,
        };
        let mul = if exp < 0 { 0.0 } else { 2f64.powi(exp) };
        // Not ASCII means not a number; upstream fails on the mantissa then too.
        let mant = pseudo_float(s.get(..s.len() - 1).ok_or_else(|| format!("invalid number {s:?}"))?)?;
        mant * mul
    } else {
        go_float(s)?
    };
    Ok(go_u64(x))
}

/// Go's float64 to uint64 conversion on amd64 for the values that occur (truncation; negative
/// values wrap through int64).
fn go_u64(x: f64) -> u64 {
    if x < 0.0 { (x as i64) as u64 } else { x as u64 }
}

/// `bch_hprint`'s mantissa: integer part plus the fraction digits divided by 10.24.
fn pseudo_float(s: &str) -> Result<f64, String> {
    let mut parts = s.split('.');
    let int = go_float(parts.next().unwrap_or(""))?;
    match parts.next() {
        None => Ok(int),
        Some(frac) => Ok(int + go_float(frac)? / 10.24),
    }
}

/// [`dehumanize`] with an optional leading minus sign.
fn dehumanize_signed(s: &str) -> Result<i64, String> {
    match s.strip_prefix('-') {
        Some(rest) => Ok((dehumanize(rest)? as i64).wrapping_neg()),
        None => Ok(dehumanize(s)? as i64),
    }
}

/// Parses `writeback_rate_debug` (`rate: 1.1M/sec`, `target: 20.4G`, `proportional: 427.5k`, …).
fn parse_writeback(text: &str) -> Result<Writeback, String> {
    let mut w = Writeback::default();
    for line in text.lines() {
        let last = || line.split_ascii_whitespace().next_back().unwrap_or("");
        if line.starts_with("rate:") {
            w.rate = dehumanize(last().strip_suffix("/sec").unwrap_or(last()))?;
        } else if line.starts_with("dirty:") {
            dehumanize(last())?;
        } else if line.starts_with("target:") {
            w.target = dehumanize(last())?;
        } else if line.starts_with("proportional:") {
            w.proportional = dehumanize_signed(last())?;
        } else if line.starts_with("integral:") {
            w.integral = dehumanize_signed(last())?;
        } else if line.starts_with("change:") {
            w.change = dehumanize_signed(last().strip_suffix("/sec").unwrap_or(last()))?;
        } else if line.starts_with("next io:") {
            let v = last().strip_suffix("ms").unwrap_or(last());
            v.parse::<i64>().map_err(|_| format!("invalid next io {v:?}"))?;
        }
    }
    Ok(w)
}

/// Parses the `Unused:` and `Metadata:` percentages of `priority_stats`.
fn parse_priority(text: &str) -> Result<[u64; 2], String> {
    let mut out = [0; 2];
    for line in text.lines() {
        let slot = if line.starts_with("Unused:") {
            0
        } else if line.starts_with("Metadata:") {
            1
        } else {
            continue;
        };
        let last = line.split_ascii_whitespace().next_back().unwrap_or("");
        let v = last.strip_suffix('%').unwrap_or(last);
        out[slot] = v.parse().map_err(|_| format!("invalid percentage {v:?}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dehumanizes_bch_hprint() {
        assert_eq!(dehumanize("512"), Ok(512));
        assert_eq!(dehumanize("20.4G"), Ok(21_894_266_880));
        assert_eq!(dehumanize("1.1M"), Ok(1_150_976));
        assert_eq!(dehumanize("427.5k"), Ok(437_748));
        assert_eq!(dehumanize("3x"), Ok(0));
        assert!(dehumanize("").is_err());
        assert!(dehumanize("abc").is_err());
        assert_eq!(dehumanize_signed("-321.5k"), Ok(-329_204));
        assert_eq!(dehumanize_signed("790.0k"), Ok(808_960));
    }

    #[test]
    fn value_files_drop_their_last_byte() {
        assert_eq!(value(b"1305\n"), Ok(1305));
        assert_eq!(value(b"1305"), Ok(130));
        assert!(value(b"").is_err());
    }

    #[test]
    fn parses_writeback_rate_debug() {
        let text = "rate:\t\t1.1M/sec\ndirty:\t\t20.4G\ntarget:\t\t20.4G\nproportional:\t427.5k\n\
                    integral:\t790.0k\nchange:\t\t-321.5k/sec\nnext io:\t17ms\n";
        let w = parse_writeback(text).unwrap();
        assert_eq!(
            w,
            Writeback {
                rate: 1_150_976,
                target: 21_894_266_880,
                proportional: 437_748,
                integral: 808_960,
                change: -329_204
            }
        );
        assert!(parse_writeback("next io: soonms\n").is_err());
        assert!(parse_writeback("rate:\n").is_err());
    }

    #[test]
    fn parses_priority_stats() {
        let text = "Unused:\t\t99%\nMetadata:\t0%\nAverage:\t10473\nQuantiles:\t[0 0]\n";
        assert_eq!(parse_priority(text), Ok([99, 0]));
        assert!(parse_priority("Unused: lots\n").is_err());
    }

    #[test]
    fn matches_device_globs() {
        assert!(numbered("bdev0", "bdev"));
        assert!(numbered("cache12", "cache"));
        assert!(!numbered("bdev", "bdev"));
        assert!(!numbered("cache_mode", "cache"));
    }

    #[test]
    fn missing_tree_is_empty_success() {
        let c = Bcache { dir: "/nonexistent/fs/bcache".into(), priority_stats: true };
        let mut out = Sink::new();
        assert!(c.collect(&mut out).is_ok());
        assert!(out.is_empty());
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("bcache", &|f| f.starts_with("node_bcache_"));
    }
}
