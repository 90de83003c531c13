//! OpenMetrics 1.0.0 text, as its specification describes it.

use std::collections::HashMap;

use super::lex::{Cursor, LResult, parse_float, parse_om_timestamp};
use super::text::check_bounds;
use super::{ErrorKind, Limits, LineError, ParseError, check_line_len, end_position, lines, printable};
use crate::model::{MetricFamily, MetricType, Sample, Suffix};

const TYPES: &str = "`counter`, `gauge`, `histogram`, `gaugehistogram`, `stateset`, `info`, `summary`, `unknown`";

/// The sample-name suffixes of a family of `kind`, and which part of the family each is.
fn parts(kind: MetricType) -> &'static [(&'static str, Suffix)] {
    use MetricType as T;
    match kind {
        T::Counter => &[("_total", Suffix::None), ("_created", Suffix::Created)],
        T::Gauge | T::Untyped | T::StateSet => &[("", Suffix::None)],
        T::Info => &[("_info", Suffix::None)],
        T::Summary => {
            &[("", Suffix::None), ("_sum", Suffix::Sum), ("_count", Suffix::Count), ("_created", Suffix::Created)]
        }
        T::Histogram => &[
            ("_bucket", Suffix::Bucket),
            ("_sum", Suffix::Sum),
            ("_count", Suffix::Count),
            ("_created", Suffix::Created),
        ],
        T::GaugeHistogram => &[("_bucket", Suffix::Bucket), ("_gsum", Suffix::GSum), ("_gcount", Suffix::GCount)],
    }
}

/// The part of a family of `kind` that a sample named family name + `rest` is.
fn om_suffix(kind: MetricType, rest: &str) -> Option<Suffix> {
    parts(kind).iter().find(|(s, _)| *s == rest).map(|&(_, suffix)| suffix)
}

/// Every non-empty suffix of [`parts`].
const SUFFIXES: [&str; 8] = ["_total", "_created", "_sum", "_count", "_bucket", "_gsum", "_gcount", "_info"];

const KINDS: [MetricType; 8] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Untyped,
    MetricType::Summary,
    MetricType::Histogram,
    MetricType::Info,
    MetricType::StateSet,
    MetricType::GaugeHistogram,
];

fn kind_bit(kind: MetricType) -> u8 {
    1 << KINDS.iter().position(|&k| k == kind).unwrap_or(0)
}

/// What a family of `kind` needs after its name (for errors about plain-named samples).
fn expected_suffixes(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Counter => "a `_total` or `_created` suffix",
        MetricType::Info => "an `_info` suffix",
        MetricType::Histogram => "a `_bucket`, `_sum`, `_count` or `_created` suffix",
        _ => "a `_bucket`, `_gsum` or `_gcount` suffix",
    }
}

pub(super) fn parse(input: &str, limits: &Limits) -> Result<Vec<MetricFamily>, ParseError> {
    let mut p = OmParser {
        limits,
        families: Vec::new(),
        seen: HashMap::new(),
        cur: None,
        line_no: 0,
        scratch: Vec::new(),
        name_buf: String::new(),
    };
    let mut eof = false;
    for (no, line) in lines(input) {
        if eof {
            return Err(ParseError { line: no, column: 1, kind: ErrorKind::AfterEof });
        }
        check_line_len(no, line, limits)?;
        p.line_no = no;
        if line == "# EOF" {
            eof = true;
            p.finish_family().map_err(|e| e.at_line(no, line))?;
            continue;
        }
        p.line(line).map_err(|e| e.at_line(no, line))?;
    }
    if !eof {
        let (line, column) = end_position(input);
        return Err(ParseError { line, column, kind: ErrorKind::MissingEof });
    }
    Ok(p.families)
}

/// The family being read: its lines must be contiguous.
struct Current<'a> {
    base: &'a str,
    idx: usize,
    /// Where the family started (line number, byte offset of its name).
    line_no: usize,
    pos: usize,
    has_type: bool,
    has_help: bool,
    has_unit: bool,
    has_samples: bool,
    /// The type is final (set by TYPE or by the first sample) and was checked for clashes.
    checked: bool,
}

struct OmParser<'a, 'l> {
    limits: &'l Limits,
    families: Vec<MetricFamily>,
    /// The types of the families seen so far, by name as on their metadata lines (one bit per
    /// type: client_golang writes a gauge `x` and a counter `x_total` both as family `x`).
    seen: HashMap<&'a str, u8>,
    cur: Option<Current<'a>>,
    line_no: usize,
    scratch: Vec<u8>,
    name_buf: String,
}

impl<'a> OmParser<'a, '_> {
    fn line(&mut self, line: &'a str) -> LResult<()> {
        let c = Cursor::new(line);
        match c.peek() {
            None => Err(c.err(ErrorKind::EmptyLine)),
            Some(b'#') => self.metadata(c),
            Some(_) => self.sample(c),
        }
    }

    /// Ends the current family, checking it if no TYPE or sample did.
    fn finish_family(&mut self) -> LResult<()> {
        let Some(cur) = &self.cur else { return Ok(()) };
        let (line, column) = (cur.line_no, cur.pos + 1);
        self.check_family().map_err(|mut e| {
            e.elsewhere = Some((line, column));
            e
        })
    }

    /// Fixes the current family's type: its sample names must not overlap an earlier
    /// family's. The error position is the caller's to set.
    fn check_family(&mut self) -> LResult<()> {
        let Some(cur) = &mut self.cur else { return Ok(()) };
        if std::mem::replace(&mut cur.checked, true) {
            return Ok(());
        }
        let base = cur.base;
        let kind = self.families[cur.idx].kind;
        let clash = |sample: String, earlier: MetricType, family: &str| {
            LineError::new(
                0,
                ErrorKind::NameClash(base.to_owned(), sample, earlier.openmetrics_name(), family.to_owned()),
            )
        };
        let mine = parts(kind);
        // The same family name: the sample-name suffixes must differ.
        if let Some(&bits) = self.seen.get(base) {
            for k in KINDS.into_iter().filter(|&k| bits & kind_bit(k) != 0) {
                if let Some((s, _)) = parts(k).iter().find(|(s, _)| mine.iter().any(|(m, _)| m == s)) {
                    return Err(clash(format!("{base}{s}"), k, base));
                }
            }
        }
        // `base` is an earlier family's sample name (`x_sum` after histogram `x`).
        if om_suffix(kind, "").is_some() {
            for s in SUFFIXES {
                if let Some(prefix) = base.strip_suffix(s)
                    && let Some(&bits) = self.seen.get(prefix)
                    && let Some(k) = KINDS.into_iter().find(|&k| bits & kind_bit(k) != 0 && om_suffix(k, s).is_some())
                {
                    return Err(clash(base.to_owned(), k, prefix));
                }
            }
        }
        // One of our sample names is an earlier family's name (`x_total` before counter `x`).
        for (s, _) in mine.iter().filter(|(s, _)| !s.is_empty()) {
            self.name_buf.clear();
            self.name_buf.push_str(base);
            self.name_buf.push_str(s);
            if let Some(&bits) = self.seen.get(self.name_buf.as_str())
                && let Some(k) = KINDS.into_iter().find(|&k| bits & kind_bit(k) != 0 && om_suffix(k, "").is_some())
            {
                return Err(clash(self.name_buf.clone(), k, &self.name_buf));
            }
        }
        self.check_model_name(base, kind)?;
        *self.seen.entry(base).or_insert(0) |= kind_bit(kind);
        Ok(())
    }

    /// The model names families by their text-format name (`x_total` for counter `x`,
    /// `x_info` for info `x`, else `x`): two families must not end up with the same one
    /// (a histogram `x` and a gauge `x` share no sample name, but would share that).
    fn check_model_name(&mut self, base: &str, kind: MetricType) -> LResult<()> {
        let plain: u8 = [
            MetricType::Gauge,
            MetricType::Untyped,
            MetricType::StateSet,
            MetricType::Summary,
            MetricType::Histogram,
            MetricType::GaugeHistogram,
        ]
        .into_iter()
        .map(kind_bit)
        .sum();
        let bits = |seen: &HashMap<&str, u8>, name: &str| seen.get(name).copied().unwrap_or(0);
        let first = |bits: u8| KINDS.into_iter().find(|&k| bits & kind_bit(k) != 0).unwrap_or(MetricType::Untyped);
        let clash = |earlier: MetricType, earlier_base: &str, model: &str| {
            let e = ErrorKind::SameModelName(
                base.to_owned(),
                kind.openmetrics_name(),
                earlier_base.to_owned(),
                earlier.openmetrics_name(),
                model.to_owned(),
            );
            Err(LineError::new(0, e))
        };
        if kind_bit(kind) & plain != 0 {
            let same = bits(&self.seen, base) & plain;
            if same != 0 {
                return clash(first(same), base, base);
            }
            for (suffix, k) in [("_total", MetricType::Counter), ("_info", MetricType::Info)] {
                if let Some(p) = base.strip_suffix(suffix)
                    && bits(&self.seen, p) & kind_bit(k) != 0
                {
                    return clash(k, p, base);
                }
            }
        } else {
            self.name_buf.clear();
            self.name_buf.push_str(base);
            self.name_buf.push_str(if kind == MetricType::Counter { "_total" } else { "_info" });
            let other = bits(&self.seen, &self.name_buf) & plain;
            if other != 0 {
                return clash(first(other), &self.name_buf, &self.name_buf);
            }
        }
        Ok(())
    }

    /// Starts a new family named `base` at byte `pos` of the current line.
    fn start_family(&mut self, base: &'a str, pos: usize) -> LResult<&mut Current<'a>> {
        self.finish_family()?;
        self.families.push(MetricFamily::new(base, "", MetricType::Untyped));
        let cur = Current {
            base,
            idx: self.families.len() - 1,
            line_no: self.line_no,
            pos,
            has_type: false,
            has_help: false,
            has_unit: false,
            has_samples: false,
            checked: false,
        };
        Ok(self.cur.insert(cur))
    }

    fn metadata(&mut self, mut c: Cursor<'a>) -> LResult<()> {
        let what = match c.line.get(..7) {
            Some("# HELP ") => "HELP",
            Some("# TYPE ") => "TYPE",
            Some("# UNIT ") => "UNIT",
            _ => return Err(c.err(ErrorKind::InvalidComment)),
        };
        c.pos = 7;
        let name_pos = c.pos;
        let name = c.metric_name(self.limits)?;
        let continues = match &self.cur {
            Some(cur) if cur.base == name => {
                if !cur.has_samples && !meta_flag(cur, what) {
                    true
                } else if cur.has_samples || cur.has_type {
                    // client_golang starts another family of the same name this way (gauge `x`,
                    // then counter `x_total`); the family checks decide if both can exist.
                    false
                } else {
                    return Err(LineError::new(name_pos, ErrorKind::DuplicateMetadata(what, name.to_owned())));
                }
            }
            _ => false,
        };
        if !continues {
            self.start_family(name, name_pos)?;
        }
        let Some(cur) = self.cur.as_mut() else { return Ok(()) };
        *meta_flag_mut(cur, what) = true;
        let idx = cur.idx;
        let msg = match what {
            "HELP" => "a space and the help text",
            "TYPE" => "a space and a metric type",
            _ => "a space and a unit",
        };
        c.expect(b' ', msg)?;
        match what {
            "HELP" => self.families[idx].help = c.help(true)?,
            "TYPE" => self.set_type(c, name, name_pos, idx)?,
            _ => self.set_unit(c, name, idx)?,
        }
        Ok(())
    }

    fn set_type(&mut self, mut c: Cursor<'a>, base: &'a str, name_pos: usize, idx: usize) -> LResult<()> {
        use MetricType as T;
        let type_pos = c.pos;
        let kind = match c.token(false) {
            "counter" => T::Counter,
            "gauge" => T::Gauge,
            "histogram" => T::Histogram,
            "gaugehistogram" => T::GaugeHistogram,
            "stateset" => T::StateSet,
            "info" => T::Info,
            "summary" => T::Summary,
            "unknown" => T::Untyped,
            other => return Err(LineError::new(type_pos, ErrorKind::UnknownType(printable(other), TYPES))),
        };
        if !c.at_end() {
            return Err(c.expected("end of line after the metric type"));
        }
        let fam = &mut self.families[idx];
        if matches!(kind, T::Info | T::StateSet) && !fam.unit.is_empty() {
            return Err(LineError::new(type_pos, ErrorKind::UnitNotAllowed(kind.openmetrics_name(), base.to_owned())));
        }
        fam.kind = kind;
        match kind {
            T::Counter => fam.name.push_str("_total"),
            T::Info => fam.name.push_str("_info"),
            _ => {}
        }
        self.check_family().map_err(|mut e| {
            e.pos = name_pos;
            e
        })
    }

    fn set_unit(&mut self, mut c: Cursor<'a>, base: &str, idx: usize) -> LResult<()> {
        let unit_pos = c.pos;
        let unit = c.rest();
        if let Some(bad) = unit.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')) {
            c.pos += bad;
            return Err(c.expected("a unit made of `[a-zA-Z0-9_:]` characters"));
        }
        let fam = &mut self.families[idx];
        if !unit.is_empty() {
            if !base.strip_suffix(unit).is_some_and(|b| b.ends_with('_')) {
                return Err(LineError::new(unit_pos, ErrorKind::UnitNotSuffix(unit.to_owned(), base.to_owned())));
            }
            if matches!(fam.kind, MetricType::Info | MetricType::StateSet) {
                let e = ErrorKind::UnitNotAllowed(fam.kind.openmetrics_name(), base.to_owned());
                return Err(LineError::new(unit_pos, e));
            }
        }
        unit.clone_into(&mut fam.unit);
        Ok(())
    }

    fn sample(&mut self, mut c: Cursor<'a>) -> LResult<()> {
        let name_pos = c.pos;
        let name = c.metric_name(self.limits)?;
        let mut special = [None; 2];
        let labels = if c.peek() == Some(b'{') {
            let l = c.labels(false, self.limits, &mut special)?;
            c.expect(b' ', "a space before the sample value")?;
            l
        } else {
            c.expect(b' ', "`{` or a space after the metric name")?;
            Vec::new()
        };
        let value_pos = c.pos;
        let tok = c.token(false);
        if tok.is_empty() {
            return Err(c.expected("a sample value"));
        }
        let value = parse_float(tok).map_err(|range| {
            let t = printable(tok);
            LineError::new(value_pos, if range { ErrorKind::ValueOutOfRange(t) } else { ErrorKind::InvalidValue(t) })
        })?;
        let mut timestamp_ms = None;
        let mut exemplar_pos = None;
        if c.eat(b' ') {
            if c.peek() == Some(b'#') {
                exemplar_pos = Some(c.pos);
            } else {
                timestamp_ms = Some(Self::timestamp(&mut c)?);
                if c.eat(b' ') {
                    exemplar_pos = Some(c.pos);
                }
            }
        }
        if exemplar_pos.is_some() {
            self.exemplar(&mut c)?;
        }
        if !c.at_end() {
            return Err(c.expected("end of line"));
        }
        let (idx, suffix) = self.resolve(name, name_pos)?;
        let kind = self.families[idx].kind;
        if let Some(pos) = exemplar_pos
            && !matches!(
                (kind, suffix),
                (MetricType::Counter, Suffix::None)
                    | (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket)
            )
        {
            return Err(LineError::new(pos, ErrorKind::ExemplarNotAllowed));
        }
        let mut sample = Sample { suffix, labels, value, timestamp_ms };
        check_bounds(kind, &self.families[idx].name, name, name_pos, &mut sample, special, &mut self.scratch)?;
        sample.sort_labels();
        self.families[idx].samples.push(sample);
        Ok(())
    }

    fn timestamp(c: &mut Cursor<'a>) -> LResult<i64> {
        let pos = c.pos;
        let tok = c.token(false);
        if tok.is_empty() {
            return Err(c.expected("a timestamp or an exemplar"));
        }
        parse_om_timestamp(tok).ok_or_else(|| {
            LineError::new(
                pos,
                ErrorKind::InvalidTimestamp(
                    printable(tok),
                    "seconds since the epoch as a decimal number, within ±2^63 ms",
                ),
            )
        })
    }

    /// ` # {labels} value [timestamp]`, validated and dropped.
    fn exemplar(&self, c: &mut Cursor<'a>) -> LResult<()> {
        c.expect(b'#', "`#` starting an exemplar")?;
        c.expect(b' ', "a space after `#`")?;
        if c.peek() != Some(b'{') {
            return Err(c.expected("`{` starting the exemplar labels"));
        }
        let labels_pos = c.pos;
        let labels = c.labels(false, self.limits, &mut [None; 2])?;
        let chars: usize = labels.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum();
        if chars > 128 {
            return Err(LineError::new(labels_pos, ErrorKind::ExemplarTooLong));
        }
        c.expect(b' ', "a space before the exemplar value")?;
        let pos = c.pos;
        let tok = c.token(false);
        if tok.is_empty() {
            return Err(c.expected("an exemplar value"));
        }
        parse_float(tok).map_err(|_| LineError::new(pos, ErrorKind::InvalidValue(printable(tok))))?;
        if c.eat(b' ') {
            Self::timestamp(c)?;
        }
        Ok(())
    }

    /// The family a sample belongs to: the current one if the name fits its type, else a new
    /// family of unknown type.
    fn resolve(&mut self, name: &'a str, name_pos: usize) -> LResult<(usize, Suffix)> {
        if let Some(cur) = &mut self.cur {
            let kind = self.families[cur.idx].kind;
            if let Some(rest) = name.strip_prefix(cur.base)
                && let Some(suffix) = om_suffix(kind, rest)
            {
                cur.has_samples = true;
                let idx = cur.idx;
                self.check_family().map_err(|mut e| {
                    e.pos = name_pos;
                    e
                })?;
                return Ok((idx, suffix));
            }
            if name == cur.base {
                let e = ErrorKind::InvalidSampleName(
                    name.to_owned(),
                    kind.openmetrics_name(),
                    cur.base.to_owned(),
                    expected_suffixes(kind),
                );
                return Err(LineError::new(name_pos, e));
            }
        }
        let cur = self.start_family(name, name_pos)?;
        cur.has_samples = true;
        let idx = cur.idx;
        self.check_family().map_err(|mut e| {
            e.pos = name_pos;
            e
        })?;
        Ok((idx, Suffix::None))
    }
}

fn meta_flag(cur: &Current<'_>, what: &str) -> bool {
    match what {
        "HELP" => cur.has_help,
        "TYPE" => cur.has_type,
        _ => cur.has_unit,
    }
}

fn meta_flag_mut<'c>(cur: &'c mut Current<'_>, what: &str) -> &'c mut bool {
    match what {
        "HELP" => &mut cur.has_help,
        "TYPE" => &mut cur.has_type,
        _ => &mut cur.has_unit,
    }
}
