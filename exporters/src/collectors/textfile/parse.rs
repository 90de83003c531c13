//! A small, strict parser of the Prometheus text format 0.0.4 for `*.prom` files.
//!
//! It follows `expfmt.TextParser` (legacy name validation) closely enough for the textfile
//! collector: HELP/TYPE comments, samples with labels and an optional timestamp, summaries
//! and histograms grouped by family. Where expfmt would silently accept odd input (a summary
//! sample without `quantile`, quoted UTF-8 names) this parser reports an error instead.
//! The shared parser in `agent-core` will replace it; [`parse`] is the only entry point.

use std::collections::HashMap;

use agent_core::model::{Label, MetricFamily, MetricType, Sample, Suffix};

/// Parses a whole file into families (in order of first appearance, empty ones dropped).
///
/// Summary quantiles carry a `quantile` label and histogram buckets an `le` label (as written
/// in the file, validated as floats); `_sum`/`_count`/`_bucket` samples are marked by their
/// [`Suffix`]. A family's help is empty when the file gave none.
pub fn parse(text: &str) -> Result<Vec<MetricFamily>, String> {
    let mut p = Parser::default();
    let mut lines = text.split('\n').peekable();
    let mut no = 0;
    while let Some(line) = lines.next() {
        no += 1;
        if lines.peek().is_none() && !line.trim_matches([' ', '\t']).is_empty() {
            return Err(format!("line {no}: unexpected end of input stream"));
        }
        p.line(line).map_err(|e| format!("line {no}: {e}"))?;
    }
    Ok(p.families.into_iter().filter(|f| !f.samples.is_empty()).collect())
}

/// Parser state: the families seen so far.
#[derive(Default)]
struct Parser {
    families: Vec<MetricFamily>,
    /// Index by name.
    index: HashMap<String, usize>,
    /// Whether a family got a `# HELP` / `# TYPE` line (a TYPE after samples is an error).
    has_help: Vec<bool>,
    has_type: Vec<bool>,
}

/// Which part of a summary or histogram a sample name addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Plain,
    Sum,
    Count,
}

impl Parser {
    fn line(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            return Ok(());
        }
        if let Some(comment) = line.strip_prefix('#') {
            return self.comment(comment);
        }
        if line.starts_with('{') {
            return Err("quoted metric names are not supported".into());
        }
        self.sample(line)
    }

    /// `# HELP name text`, `# TYPE name type`, or any other comment (ignored).
    fn comment(&mut self, rest: &str) -> Result<(), String> {
        let rest = rest.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_token(rest);
        if rest.is_empty() || (keyword != "HELP" && keyword != "TYPE") {
            return Ok(());
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let (name, rest) = take_name(rest, true);
        if rest.is_empty() {
            return Ok(());
        }
        if !rest.starts_with([' ', '\t']) {
            return Err("invalid metric name in comment".into());
        }
        let (idx, _) = self.family_for(name);
        let text = rest.trim_start_matches([' ', '\t']);
        if text.is_empty() {
            return Ok(());
        }
        if keyword == "HELP" {
            if self.has_help[idx] {
                return Err(format!("second HELP line for metric name {name:?}"));
            }
            self.families[idx].help = unescape(text, true)?;
            self.has_help[idx] = true;
        } else {
            if self.has_type[idx] {
                return Err(format!("second TYPE line for metric name {name:?}, or TYPE reported after samples"));
            }
            self.families[idx].kind = match text.to_ascii_uppercase().as_str() {
                "COUNTER" => MetricType::Counter,
                "GAUGE" => MetricType::Gauge,
                "UNTYPED" => MetricType::Untyped,
                "SUMMARY" => MetricType::Summary,
                "HISTOGRAM" => MetricType::Histogram,
                "GAUGE_HISTOGRAM" | "GAUGEHISTOGRAM" => MetricType::GaugeHistogram,
                _ => return Err(format!("unknown metric type {text:?}")),
            };
            self.has_type[idx] = true;
        }
        Ok(())
    }

    /// `name{labels} value [timestamp]`.
    fn sample(&mut self, line: &str) -> Result<(), String> {
        let (name, mut rest) = take_name(line, true);
        if name.is_empty() {
            return Err("invalid metric name".into());
        }
        let (idx, part) = self.family_for(name);
        self.has_type[idx] = true; // a later TYPE line is an error, as in expfmt
        let kind = self.families[idx].kind;
        rest = rest.trim_start_matches([' ', '\t']);
        let mut labels: Vec<Label> = Vec::new();
        let mut special: Option<Label> = None; // quantile / le
        if let Some(r) = rest.strip_prefix('{') {
            rest = Self::labels(r, kind, &mut labels, &mut special)?;
        }
        let (value, rest) = split_token(rest);
        let value = parse_float(value).ok_or_else(|| format!("expected float as value, got {value:?}"))?;
        let timestamp_ms = if rest.is_empty() {
            None
        } else {
            let (ts, tail) = split_token(rest.trim_start_matches([' ', '\t']));
            let ts = ts.parse::<i64>().map_err(|_| format!("expected integer as timestamp, got {ts:?}"))?;
            if !tail.is_empty() {
                return Err(format!("spurious string after timestamp: {tail:?}"));
            }
            Some(ts)
        };
        let suffix = match (kind, part, &special) {
            (MetricType::Summary | MetricType::Histogram | MetricType::GaugeHistogram, Part::Sum, _) => Suffix::Sum,
            (MetricType::Summary | MetricType::Histogram | MetricType::GaugeHistogram, Part::Count, _) => Suffix::Count,
            (MetricType::Histogram | MetricType::GaugeHistogram, _, Some(_)) => Suffix::Bucket,
            (MetricType::Summary, _, None) => {
                return Err(format!("summary sample {name:?} without quantile label"));
            }
            (MetricType::Histogram | MetricType::GaugeHistogram, _, None) => {
                return Err(format!("histogram sample {name:?} without le label"));
            }
            _ => Suffix::None,
        };
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        if suffix == Suffix::None || suffix == Suffix::Bucket {
            labels.extend(special);
        }
        self.families[idx].samples.push(Sample { suffix, labels, value, timestamp_ms });
        Ok(())
    }

    /// Parses `a="b",c="d"}` (after the `{`); returns what follows the `}` minus blanks.
    fn labels<'a>(
        mut rest: &'a str,
        kind: MetricType,
        labels: &mut Vec<Label>,
        special: &mut Option<Label>,
    ) -> Result<&'a str, String> {
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            if let Some(r) = rest.strip_prefix('}') {
                return Ok(r.trim_start_matches([' ', '\t']));
            }
            let (name, r) = take_name(rest, false);
            if name.is_empty() {
                return Err("invalid label name".into());
            }
            let r = r.trim_start_matches([' ', '\t']);
            let r = r.strip_prefix('=').ok_or_else(|| format!("expected '=' after label name {name:?}"))?;
            let r = r.trim_start_matches([' ', '\t']);
            let r = r.strip_prefix('"').ok_or("expected '\"' at start of label value")?;
            let end = value_end(r).ok_or_else(|| format!("unterminated value of label {name:?}"))?;
            let value = unescape(&r[..end], false)?;
            rest = &r[end + 1..];
            if name == "__name__" {
                return Err("label name \"__name__\" is reserved".into());
            }
            let is_special = match kind {
                MetricType::Summary => name == "quantile",
                MetricType::Histogram | MetricType::GaugeHistogram => name == "le",
                _ => false,
            };
            if is_special {
                parse_float(&value)
                    .ok_or_else(|| format!("expected float as value for {name:?} label, got {value:?}"))?;
                *special = Some((name.to_owned(), value));
            } else if labels.iter().any(|(n, _)| n == name) {
                return Err(format!("duplicate label names for metric, {name:?}"));
            } else {
                labels.push((name.to_owned(), value));
            }
            rest = rest.trim_start_matches([' ', '\t']);
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("unexpected end of label value {:?}", labels.last().map_or("", |l| l.1.as_str())));
            }
        }
    }

    /// The family a (sample or comment) name belongs to, created if new: `x_sum`/`x_count`
    /// (and `x_bucket`) go to an existing summary (histogram) `x`, as in expfmt.
    fn family_for(&mut self, name: &str) -> (usize, Part) {
        if let Some(&i) = self.index.get(name) {
            return (i, Part::Plain);
        }
        let part = if name.len() > 6 && name.ends_with("_count") {
            Part::Count
        } else if name.len() > 4 && name.ends_with("_sum") {
            Part::Sum
        } else {
            Part::Plain
        };
        let base = match part {
            Part::Count => &name[..name.len() - 6],
            Part::Sum => &name[..name.len() - 4],
            Part::Plain if name.len() > 7 && name.ends_with("_bucket") => &name[..name.len() - 7],
            Part::Plain => name,
        };
        if let Some(&i) = self.index.get(base) {
            let kind = self.families[i].kind;
            let bucket = part == Part::Plain && base != name;
            if (kind == MetricType::Summary && !bucket)
                || matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram)
            {
                return (i, part);
            }
        }
        self.index.insert(name.to_owned(), self.families.len());
        self.families.push(MetricFamily::new(name, "", MetricType::Untyped));
        self.has_help.push(false);
        self.has_type.push(false);
        (self.families.len() - 1, Part::Plain)
    }
}

/// Splits at the first blank or tab.
fn split_token(s: &str) -> (&str, &str) {
    s.split_at(s.find([' ', '\t']).unwrap_or(s.len()))
}

/// The longest legacy metric (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or label name at the start of `s`.
fn take_name(s: &str, metric: bool) -> (&str, &str) {
    let ok = |i: usize, b: u8| {
        b.is_ascii_alphabetic() || b == b'_' || (metric && b == b':') || (i > 0 && b.is_ascii_digit())
    };
    let end = s.bytes().enumerate().find(|&(i, b)| !ok(i, b)).map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// Index of the closing quote of a label value (skipping escaped characters).
fn value_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Resolves `\\`, `\n` and `\"` escapes; any other escape is an error.
fn unescape(s: &str, help: bool) -> Result<String, String> {
    if !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some(other) => return Err(format!("invalid escape sequence '\\{other}'")),
            // A trailing backslash: expfmt keeps reading into the next line; we refuse.
            None => {
                return Err(format!("unterminated escape sequence in {}", if help { "HELP" } else { "label value" }));
            }
        }
    }
    Ok(out)
}

/// Go's `strconv.ParseFloat` as expfmt uses it (no hex, no `_`, no out-of-range values).
pub fn parse_float(s: &str) -> Option<f64> {
    if s.contains(['p', 'P', '_', 'x', 'X']) {
        return None;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.len() != s.len() && unsigned.eq_ignore_ascii_case("nan") {
        return None; // Go accepts NaN only without a sign
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() && !unsigned.to_ascii_lowercase().starts_with("inf") {
        return None; // overflow is ErrRange in Go
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> MetricFamily {
        let mut f = parse(text).unwrap();
        assert_eq!(f.len(), 1);
        f.remove(0)
    }

    #[test]
    fn untyped_samples_with_labels_and_timestamps() {
        let f = one("foo{b=\"x\\\"y\", a = \"1\",} 2.5e3 1441205977284\n");
        assert_eq!((f.name.as_str(), f.kind, f.help.as_str()), ("foo", MetricType::Untyped, ""));
        let s = &f.samples[0];
        assert_eq!(s.labels, [("a".into(), "1".into()), ("b".into(), "x\"y".into())]);
        assert_eq!((s.value, s.timestamp_ms), (2500.0, Some(1_441_205_977_284)));
    }

    #[test]
    fn help_and_type_comments() {
        let f = one("# HELP c_total Some \\\\ help\\nmore\n# TYPE c_total COUNTER\nc_total 1\n# random comment\n");
        assert_eq!((f.kind, f.help.as_str()), (MetricType::Counter, "Some \\ help\nmore"));
        assert_eq!(one("# HELP x \n# TYPE x gauge\nx 1\n").help, "");
        assert!(parse("# TYPE x gauge\n").unwrap().is_empty(), "families without samples are dropped");
    }

    #[test]
    fn summaries_and_histograms_by_suffix() {
        let f = one("# TYPE s summary\ns{quantile=\"0.5\",a=\"x\"} 1\ns_sum{a=\"x\"} 2\ns_count{a=\"x\"} 3\n");
        let parts: Vec<_> = f.samples.iter().map(|s| (s.suffix, s.labels.len())).collect();
        assert_eq!(parts, [(Suffix::None, 2), (Suffix::Sum, 1), (Suffix::Count, 1)]);
        assert_eq!(f.samples[0].labels[1], ("quantile".into(), "0.5".into()), "quantile comes last");
        let f = one("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n");
        assert_eq!(f.samples[0].suffix, Suffix::Bucket);
        assert_eq!(parse("# TYPE g gauge\ng 1\ng_sum 2\n").unwrap().len(), 2, "g_sum is its own family");
    }

    #[test]
    fn rejects_malformed_input() {
        for (text, want) in [
            ("foo 1", "unexpected end of input stream"),
            ("foo 1 \n", "expected integer as timestamp"),
            ("foo 1 2 3\n", "spurious string"),
            ("foo x\n", "expected float"),
            ("foo 1e400\n", "expected float"),
            ("foo{a=\"1\",a=\"2\"} 1\n", "duplicate label"),
            ("foo{__name__=\"x\"} 1\n", "reserved"),
            ("foo{a=\"\\t\"} 1\n", "invalid escape"),
            ("foo{a=1} 1\n", "expected '\"'"),
            ("foo{a=\"1\" b=\"2\"} 1\n", "unexpected end of label value"),
            ("# HELP x a\n# HELP x b\n", "second HELP"),
            ("x 1\n# TYPE x gauge\n", "TYPE reported after samples"),
            ("# TYPE x foo\n", "unknown metric type"),
            ("# TYPE s summary\ns 1\n", "without quantile"),
            ("# TYPE s summary\ns{quantile=\"x\"} 1\n", "for \"quantile\" label"),
            ("{\"utf8.name\"} 1\n", "quoted metric names"),
            ("0foo 1\n", "invalid metric name"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn go_float_syntax() {
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("-nan"), None);
        assert_eq!(parse_float("0x1p-2"), None);
        assert_eq!(parse_float("1_000"), None);
    }
}
