//! Tools behind `osprey-collector tsdb …`: import from OpenMetrics text (as
//! `promtool tsdb create-blocks-from openmetrics`) and from a Prometheus data directory.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use crate::block::{Compaction, write_block};
use crate::db::lock_for_tool;
use crate::labels::Labels;
use crate::promblock;

/// Range of imported blocks (2 h, as promtool's default).
pub const IMPORT_BLOCK_MS: i64 = 2 * 3600 * 1000;

/// What an import wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Blocks written.
    pub blocks: u64,
    /// Series (summed over blocks).
    pub series: u64,
    /// Samples written.
    pub samples: u64,
    /// Prometheus chunks skipped because they are not float (native histograms).
    pub skipped_chunks: u64,
}

/// A parse error with its location.
fn perr(file: &Path, line: usize, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}:{line}: {what}", file.display()))
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Parses one sample line: `name{l="v",…} value timestamp_seconds`.
fn parse_line(line: &str) -> Result<(Labels, i64, f64), &'static str> {
    let name_end = line.find(['{', ' ']).ok_or("expected a metric name followed by labels or a space")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("expected a metric name");
    }
    let mut pairs = vec![("__name__".to_owned(), name.to_owned())];
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("expected `label=\"value\"` or `}`")?;
            let lname = rest[..eq].trim();
            rest = rest[eq + 1..].strip_prefix('"').ok_or("expected `\"` starting a label value")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => return Err("unterminated escape in label value"),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value"),
                }
            };
            rest = &rest[end + 1..];
            pairs.push((lname.to_owned(), value));
        }
    }
    // Drop an exemplar (` # {…} …`).
    let rest = rest.split(" # ").next().unwrap_or("");
    let mut it = rest.split_ascii_whitespace();
    let v = parse_value(it.next().ok_or("expected a value")?).ok_or("value is not a number")?;
    let ts: f64 = it
        .next()
        .ok_or("expected a timestamp (seconds) after the value")?
        .parse()
        .map_err(|_| "timestamp is not a number")?;
    if !ts.is_finite() {
        return Err("timestamp is not finite");
    }
    if it.next().is_some() {
        return Err("unexpected text after the timestamp");
    }
    Ok((Labels::from_owned(pairs), (ts * 1000.0) as i64, v))
}

/// Parses an OpenMetrics file into series (time-sorted; the first sample of a duplicate
/// timestamp wins).
pub fn parse_openmetrics(file: &Path) -> io::Result<BTreeMap<Labels, Vec<(i64, f64)>>> {
    let text = fs::read_to_string(file).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let mut saw_eof = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if saw_eof && !line.is_empty() {
            return Err(perr(file, i + 1, "content after `# EOF`"));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (l, t, v) = parse_line(line).map_err(|what| perr(file, i + 1, what))?;
        series.entry(l).or_default().push((t, v));
    }
    if !saw_eof {
        return Err(perr(file, text.lines().count(), "expected `# EOF` at the end of an OpenMetrics file"));
    }
    for s in series.values_mut() {
        s.sort_by_key(|x| x.0);
        s.dedup_by_key(|x| x.0);
    }
    Ok(series)
}

/// `tsdb import-openmetrics FILE`: writes the file's samples into `data_dir` as 2 h blocks.
pub fn import_openmetrics(file: &Path, data_dir: &Path) -> io::Result<ImportReport> {
    let series = parse_openmetrics(file)?;
    let _lock = lock_for_tool(data_dir).map_err(|e| io::Error::other(e.to_string()))?;
    let mut windows: BTreeMap<i64, Vec<(Labels, Vec<(i64, f64)>)>> = BTreeMap::new();
    for (l, samples) in series {
        let mut start = 0;
        while start < samples.len() {
            let w = samples[start].0.div_euclid(IMPORT_BLOCK_MS) * IMPORT_BLOCK_MS;
            let end = start + samples[start..].partition_point(|s| s.0 < w + IMPORT_BLOCK_MS);
            windows.entry(w).or_default().push((l.clone(), samples[start..end].to_vec()));
            start = end;
        }
    }
    let mut report = ImportReport::default();
    for (w, list) in windows {
        let c = Compaction { level: 1, sources: Vec::new(), imported: true };
        if let Some(meta) = write_block(data_dir, w, w + IMPORT_BLOCK_MS, c, list)? {
            report.blocks += 1;
            report.series += meta.stats.num_series;
            report.samples += meta.stats.num_samples;
        }
    }
    Ok(report)
}

/// `tsdb import-prometheus DIR`: converts every block of a Prometheus data directory (or a
/// single block directory) into an Osprey block with the same time range.
pub fn import_prometheus(prom_dir: &Path, data_dir: &Path) -> io::Result<ImportReport> {
    let mut dirs = Vec::new();
    if prom_dir.join("index").is_file() {
        dirs.push(prom_dir.to_path_buf());
    } else {
        for e in fs::read_dir(prom_dir).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", prom_dir.display())))? {
            let p = e?.path();
            if p.join("meta.json").is_file() && p.join("index").is_file() {
                dirs.push(p);
            }
        }
    }
    if dirs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no Prometheus blocks found", prom_dir.display()),
        ));
    }
    dirs.sort();
    let _lock = lock_for_tool(data_dir).map_err(|e| io::Error::other(e.to_string()))?;
    let mut report = ImportReport::default();
    for d in dirs {
        let (meta, series, skipped) = promblock::read_block(&d)?;
        report.skipped_chunks += skipped.non_float_chunks;
        let c = Compaction { level: 1, sources: Vec::new(), imported: true };
        let iter = series.into_iter().map(|s| (s.labels, s.samples));
        if let Some(m) = write_block(data_dir, meta.min_time, meta.max_time, c, iter)? {
            tracing::info!(from = %meta.ulid, to = %m.ulid, samples = m.stats.num_samples, "imported Prometheus block");
            report.blocks += 1;
            report.series += m.stats.num_series;
            report.samples += m.stats.num_samples;
        }
    }
    Ok(report)
}
