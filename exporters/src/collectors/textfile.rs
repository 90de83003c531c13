//! `textfile`: metrics from `*.prom` files in `--collector.textfile.directory` (node_exporter
//! compatible, including its merge rules across files).
//!
//! * Directories may be globs; a pattern that matches nothing is read as a literal directory.
//! * A file that does not parse, or that carries client-side timestamps, is skipped whole and
//!   sets `node_textfile_scrape_error 1`; the other files still appear.
//! * Families with the same name merge across files. A family without HELP gets
//!   `Metric read from <files>`; a later file giving a different HELP is dropped (and counts
//!   as an error). As client_golang would at gather time, a later family of another type and
//!   repeated series are dropped.
//! * Missing labels within a family are filled with `""`.

mod parse;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read as _;

use agent_core::encode::write_go_float;
use agent_core::model::{Label, Suffix};

use crate::prelude::*;

/// Flag name of the directories.
const DIRECTORY: &str = "collector.textfile.directory";

/// Catalog entry.
pub static DEF: Def = Def {
    name: "textfile",
    default_enabled: true,
    help: "Read prometheus metrics from a text file.",
    flags: &[Flag {
        name: DIRECTORY,
        help: "Directory to read text files with metrics from, supports glob matching. (repeatable)",
        kind: FlagKind::List,
    }],
    build: |ctx| {
        // A single string value (e.g. from a config file or a test) is one directory.
        let dirs = match ctx.str(DIRECTORY) {
            "" => ctx.list(DIRECTORY).to_vec(),
            one => vec![one.to_owned()],
        };
        Ok(Box::new(TextFile { dirs, fixed_mtime: None }))
    },
};

/// Reads every `*.prom` file in the configured directories on each scrape.
struct TextFile {
    dirs: Vec<String>,
    /// Reported instead of real mtimes (tests only, as upstream's tests do).
    fixed_mtime: Option<f64>,
}

/// The text-format parser; the only call into it (to be replaced by the shared parser).
fn parse_text(text: &str) -> Result<Vec<MetricFamily>, String> {
    parse::parse(text)
}

/// One family read from one file.
struct FileFamily {
    fam: MetricFamily,
    /// The file's HELP was present.
    has_help: bool,
}

impl Collector for TextFile {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let mut errored = false;
        let mut parsed: Vec<FileFamily> = Vec::new();
        let mut files_of: HashMap<String, Vec<String>> = HashMap::new();
        // First HELP seen per name, and the conflicting one once a conflict happened.
        let mut help_of: HashMap<String, (String, Option<String>)> = HashMap::new();
        let mut mtimes: BTreeMap<String, f64> = BTreeMap::new();

        for dir in self.dirs.iter().flat_map(|g| glob_or_literal(g)) {
            let entries = match std::fs::read_dir(&dir) {
                Ok(rd) => {
                    let mut names: Vec<String> =
                        rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                    names.sort();
                    names
                }
                Err(e) => {
                    if !dir.is_empty() {
                        errored = true;
                        tracing::error!(path = %dir, error = %e, "failed to read textfile collector directory");
                    }
                    Vec::new()
                }
            };
            for name in entries.iter().filter(|n| is_prom(n)) {
                let path = go_clean(&format!("{dir}/{name}"));
                let (mtime, families) = match read_file(&path) {
                    Ok(r) => r,
                    Err(e) => {
                        errored = true;
                        tracing::error!(file = %name, error = %e, "failed to collect textfile data");
                        continue;
                    }
                };
                for fam in families {
                    let has_help = !fam.help.is_empty();
                    if let Some((first, conflict)) = help_of.get_mut(&fam.name)
                        && ((has_help && *first != fam.help) || conflict.is_some())
                    {
                        errored = true;
                        tracing::error!(metric = %fam.name, original_help_text = %first, new_help_text = %fam.help, file = %path, "inconsistent metric help text");
                        *conflict = Some(fam.help);
                        continue;
                    }
                    if has_help {
                        help_of.insert(fam.name.clone(), (fam.help.clone(), None));
                    }
                    files_of.entry(fam.name.clone()).or_default().push(path.clone());
                    parsed.push(FileFamily { fam, has_help });
                }
                mtimes.insert(path, self.fixed_mtime.unwrap_or(mtime));
            }
        }

        let mut gate = Gate::default();
        for FileFamily { mut fam, has_help } in parsed {
            if !has_help {
                fam.help =
                    format!("Metric read from {}", files_of.get(&fam.name).map_or(String::new(), |f| f.join(", ")));
            }
            emit_family(out, &mut gate, &fam);
        }
        for (file, mtime) in &mtimes {
            out.gauge_with(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                &[("file", file)],
                *mtime,
            );
        }
        out.gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            if errored { 1.0 } else { 0.0 },
        );
        Ok(())
    }
}

/// Whether a directory entry is read: node_exporter matches the suffix case-sensitively.
#[expect(clippy::case_sensitive_file_extension_comparisons, reason = "as node_exporter")]
fn is_prom(name: &str) -> bool {
    name.ends_with(".prom")
}

/// Reads and parses one file: its mtime (whole seconds) and families. Client-side
/// timestamps make the whole file an error.
fn read_file(path: &str) -> Result<(f64, Vec<MetricFamily>), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("failed to open textfile data file {path:?}: {e}"))?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(|e| format!("failed to read textfile data file {path:?}: {e}"))?;
    let families = parse_text(&text).map_err(|e| format!("failed to parse textfile data from {path:?}: {e}"))?;
    if families.iter().any(|f| f.samples.iter().any(|s| s.timestamp_ms.is_some())) {
        return Err(format!("textfile {path:?} contains unsupported client-side timestamps, skipping entire file"));
    }
    // Stat only after parsing, so that a broken file does not look fresh.
    let modified = f.metadata().and_then(|m| m.modified()).map_err(|e| format!("failed to stat {path:?}: {e}"))?;
    let secs = match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as f64,
        Err(e) => -(e.duration().as_secs() as f64),
    };
    Ok((secs, families))
}

/// client_golang's gather-time checks: the first family of a name fixes help and type, and a
/// series (name and labels) is reported once.
#[derive(Default)]
struct Gate {
    meta: HashMap<String, (String, MetricType)>,
    series: HashSet<(String, Vec<Label>)>,
}

impl Gate {
    /// True when a metric of `fam` with `labels` may be reported.
    fn admit(&mut self, fam: &MetricFamily, labels: &[Label]) -> bool {
        let meta = self.meta.entry(fam.name.clone()).or_insert_with(|| (fam.help.clone(), fam.kind));
        if meta.0 != fam.help || meta.1 != fam.kind {
            tracing::warn!(metric = %fam.name, "metric has different help or type than an earlier one of the same name, dropped");
            return false;
        }
        if !self.series.insert((fam.name.clone(), labels.to_vec())) {
            tracing::warn!(metric = %fam.name, "metric was collected before with the same name and label values, dropped");
            return false;
        }
        true
    }
}

/// A summary's or histogram's samples gathered per label set.
#[derive(Default)]
struct Group {
    labels: Vec<Label>,
    /// `(quantile or le, value)`, later duplicates win.
    points: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// Converts one file's family to node_exporter's output and writes it.
fn emit_family(out: &mut Sink, gate: &mut Gate, fam: &MetricFamily) {
    let special = match fam.kind {
        MetricType::Summary => "quantile",
        MetricType::Histogram | MetricType::GaugeHistogram => "le",
        _ => "",
    };
    let mut names: Vec<&str> = Vec::new();
    for s in &fam.samples {
        for (n, _) in &s.labels {
            if n != special && !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let fill = |labels: &[Label]| -> Vec<Label> {
        let mut l: Vec<Label> = labels.iter().filter(|(n, _)| n != special).cloned().collect();
        for n in &names {
            if !l.iter().any(|(k, _)| k == n) {
                l.push(((*n).to_owned(), String::new()));
            }
        }
        l.sort_by(|a, b| a.0.cmp(&b.0));
        l
    };
    if special.is_empty() {
        for s in &fam.samples {
            let labels = fill(&s.labels);
            if gate.admit(fam, &labels) {
                out.push_sample(&fam.name, &fam.help, fam.kind, Sample::new(labels, s.value));
            }
        }
        return;
    }
    if fam.kind == MetricType::GaugeHistogram {
        tracing::warn!(metric = %fam.name, "gauge histograms are not supported in text files, dropped");
        return;
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Vec<Label>, usize> = HashMap::new();
    for s in &fam.samples {
        let labels = fill(&s.labels);
        let i = *index.entry(labels.clone()).or_insert_with(|| {
            groups.push(Group { labels, ..Group::default() });
            groups.len() - 1
        });
        let g = &mut groups[i];
        match s.suffix {
            Suffix::Sum => g.sum = s.value,
            Suffix::Count => g.count = s.value,
            _ => {
                let Some(at) = s.labels.iter().find(|(n, _)| n == special).and_then(|(_, v)| parse::parse_float(v))
                else {
                    continue;
                };
                g.points.retain(|p| p.0.to_bits() != at.to_bits());
                g.points.push((at, s.value));
            }
        }
    }
    for mut g in groups {
        if !gate.admit(fam, &g.labels) {
            continue;
        }
        g.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if fam.kind == MetricType::Histogram {
            // expfmt keeps counts as integers unless one is fractional; then node_exporter
            // reads the (unset) integer fields and reports zeros.
            let whole = |v: f64| v >= 0.0 && v.fract() == 0.0;
            if !(whole(g.count) && g.points.iter().all(|p| whole(p.1))) {
                g.count = 0.0;
                g.points.iter_mut().for_each(|p| p.1 = 0.0);
            }
            if g.points.last().is_none_or(|p| p.0 != f64::INFINITY) {
                g.points.push((f64::INFINITY, g.count));
            }
        } else {
            // client_golang keeps a summary's count as an unsigned integer.
            g.count = g.count.trunc().max(0.0);
        }
        let (suffix, name) =
            if fam.kind == MetricType::Histogram { (Suffix::Bucket, "le") } else { (Suffix::None, "quantile") };
        for (at, v) in &g.points {
            let mut labels = g.labels.clone();
            labels.push((name.to_owned(), go_float(*at)));
            out.push_sample(&fam.name, &fam.help, fam.kind, Sample { suffix, labels, value: *v, timestamp_ms: None });
        }
        for (suffix, value) in [(Suffix::Sum, g.sum), (Suffix::Count, g.count)] {
            let labels = g.labels.clone();
            out.push_sample(&fam.name, &fam.help, fam.kind, Sample { suffix, labels, value, timestamp_ms: None });
        }
    }
}

/// A float as client_golang writes `le` and `quantile` values.
fn go_float(v: f64) -> String {
    let mut b = Vec::new();
    write_go_float(&mut b, v);
    String::from_utf8(b).unwrap_or_default()
}

/// Go's `filepath.Clean`: lexical `.`/`..`/`//` removal.
fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// node_exporter's directory expansion: the glob's matches, or the pattern itself when it
/// matches nothing or is malformed.
fn glob_or_literal(pattern: &str) -> Vec<String> {
    match glob(pattern) {
        Some(v) if !v.is_empty() => v,
        _ => vec![pattern.to_owned()],
    }
}

/// Go's `filepath.Glob` (`*`, `?`, `[...]`, `\` escapes, per path component, sorted).
/// `None` for a malformed pattern.
fn glob(pattern: &str) -> Option<Vec<String>> {
    if !pattern.contains(['*', '?', '[', '\\']) {
        return Some(if std::fs::symlink_metadata(pattern).is_ok() { vec![pattern.to_owned()] } else { Vec::new() });
    }
    let (dir, file) = match pattern.rfind('/') {
        Some(i) => (&pattern[..=i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    let clean_dir = match dir {
        "" => ".".to_owned(),
        d => go_clean(d),
    };
    let dirs = if dir.contains(['*', '?', '[', '\\']) { glob(dir.trim_end_matches('/'))? } else { vec![clean_dir] };
    glob_match(file, "")?; // validate the pattern even when no directory exists
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> =
            rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for n in names {
            if glob_match(file, &n)? {
                out.push(if dir.is_empty() { n } else { format!("{}/{n}", d.trim_end_matches('/')) });
            }
        }
    }
    Some(out)
}

/// Go's `filepath.Match` for one component; `None` for a malformed pattern.
fn glob_match(pattern: &str, name: &str) -> Option<bool> {
    let p: Vec<char> = pattern.chars().collect();
    // Go reports a malformed pattern wherever it is, so check the whole pattern first.
    let mut i = 0;
    while i < p.len() {
        i = match p[i] {
            '[' => class(&p[i + 1..], ' ')?.1 + i + 1,
            '\\' => i + 1 + p.get(i + 1).map(|_| 1)?,
            _ => i + 1,
        };
    }
    let n: Vec<char> = name.chars().collect();
    Some(match_here(&p, &n))
}

/// Matches a validated pattern against a name (a name never contains `/`).
fn match_here(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|k| match_here(&p[1..], &n[k..])),
        Some('?') => !n.is_empty() && match_here(&p[1..], &n[1..]),
        Some('[') => match (n.first(), class(&p[1..], n.first().copied().unwrap_or(' '))) {
            (Some(_), Some((true, used))) => match_here(&p[1 + used..], &n[1..]),
            _ => false,
        },
        Some('\\') => p.get(1).is_some_and(|c| n.first() == Some(c)) && match_here(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && match_here(&p[1..], &n[1..]),
    }
}

/// Matches `c` against a character class (`p` starts after the `[`); returns whether it
/// matched and how many pattern characters the class used, `]` included. `None` when
/// malformed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = usize::from(p.first() == Some(&'^'));
    let negated = i == 1;
    let mut matched = false;
    let mut first = true;
    loop {
        if p.get(i) == Some(&']') && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        let (lo, used) = class_char(&p[i..])?;
        i += used;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, used) = class_char(&p[i + 1..])?;
            hi = h;
            i += 1 + used;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

/// One (possibly escaped) character inside a class and its length; `-`, `]` and the end of
/// the pattern are malformed here.
fn class_char(p: &[char]) -> Option<(char, usize)> {
    match p.first()? {
        '\\' => Some((*p.get(1)?, 2)),
        '-' | ']' => None,
        &c => Some((c, 1)),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        // Upstream ran from the repository root with a relative directory.
        let root = format!("{}/", super::go_clean(&crate::testutil::fixtures().to_string_lossy()));
        let pick = |f: &str| f.starts_with("node_textfile_") || f.starts_with("testmetric");
        crate::testutil::assert_matches_e2e_mapped("textfile", &pick, &|s| s.replace(&root, "collector/fixtures/"));
    }
}
