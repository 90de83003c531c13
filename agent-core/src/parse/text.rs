//! The Prometheus text format 0.0.4, with client_golang `expfmt.TextParser` semantics.

use std::collections::HashMap;

use super::lex::{Cursor, LResult, canonical_bound, parse_float};
use super::{ErrorKind, Limits, LineError, ParseError, check_line_len, lines, printable};
use crate::model::{Label, MetricFamily, MetricType, Sample, Suffix};

const TYPES: &str = "`counter`, `gauge`, `histogram`, `summary`, `untyped`";

pub(super) fn parse(input: &str, limits: &Limits) -> Result<Vec<MetricFamily>, ParseError> {
    let mut p = TextParser {
        limits,
        families: Vec::new(),
        state: Vec::new(),
        index: HashMap::new(),
        last: None,
        scratch: Vec::new(),
    };
    for (no, line) in lines(input) {
        check_line_len(no, line, limits)?;
        p.line(line).map_err(|e| e.at_line(no, line))?;
    }
    Ok(p.families)
}

#[derive(Default, Clone, Copy)]
struct State {
    has_help: bool,
    has_type: bool,
    has_samples: bool,
}

struct TextParser<'a, 'l> {
    limits: &'l Limits,
    families: Vec<MetricFamily>,
    state: Vec<State>,
    /// Family index by name (names borrowed from the input).
    index: HashMap<&'a str, usize>,
    /// The last name and where it resolved (`Suffix::None`: the family of exactly that name):
    /// consecutive lines of one family skip the hash lookup (SipHash lookups were ~10% of
    /// parse time on node_exporter output). Metadata lines replace it, as they can change
    /// where other names resolve.
    last: Option<(&'a str, usize, Suffix)>,
    scratch: Vec<u8>,
}

impl<'a> TextParser<'a, '_> {
    fn line(&mut self, line: &'a str) -> LResult<()> {
        let mut c = Cursor::new(line);
        c.skip_blanks();
        match c.peek() {
            None => Ok(()),
            Some(b'#') => self.comment(c),
            Some(_) => self.sample(c),
        }
    }

    fn comment(&mut self, mut c: Cursor<'a>) -> LResult<()> {
        c.pos += 1;
        c.skip_blanks();
        let word_pos = c.pos;
        let word = c.token(true);
        let help = match word {
            "HELP" => true,
            "TYPE" => false,
            "EOF" if c.rest().trim_matches([' ', '\t']).is_empty() => {
                return Err(LineError::new(word_pos, ErrorKind::EofInText));
            }
            _ => return Ok(()), // any other comment
        };
        if c.skip_blanks() == 0 {
            return Err(c.expected("a blank and a metric name"));
        }
        let name_pos = c.pos;
        let name = c.metric_name(self.limits)?;
        let idx = match self.last {
            // HELP x, TYPE x, x ...: one lookup serves the whole family.
            Some((n, i, Suffix::None)) if n == name => i,
            _ => self.family(name),
        };
        // After metadata for `name`, a sample `name` resolves to exactly this family; what
        // other names resolve to may have changed.
        self.last = Some((name, idx, Suffix::None));
        let st = &mut self.state[idx];
        if help {
            if st.has_help {
                return Err(LineError::new(name_pos, ErrorKind::DuplicateMetadata("HELP", name.to_owned())));
            }
            if !c.at_end() && c.skip_blanks() == 0 {
                return Err(c.expected("a blank before the help text"));
            }
            st.has_help = true;
            self.families[idx].help = c.help(false)?;
            return Ok(());
        }
        if st.has_type {
            return Err(LineError::new(name_pos, ErrorKind::DuplicateMetadata("TYPE", name.to_owned())));
        }
        if st.has_samples {
            return Err(LineError::new(name_pos, ErrorKind::MetadataAfterSamples("TYPE", name.to_owned())));
        }
        if c.skip_blanks() == 0 {
            return Err(c.expected("a blank and a metric type"));
        }
        let type_pos = c.pos;
        let kind = match c.token(true) {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            other => return Err(LineError::new(type_pos, ErrorKind::UnknownType(printable(other), TYPES))),
        };
        c.skip_blanks();
        if !c.at_end() {
            return Err(c.expected("end of line after the metric type"));
        }
        st.has_type = true;
        self.families[idx].kind = kind;
        Ok(())
    }

    /// The family called `name`, created (untyped, no help) when new.
    fn family(&mut self, name: &'a str) -> usize {
        *self.index.entry(name).or_insert_with(|| {
            self.families.push(MetricFamily::new(name, "", MetricType::Untyped));
            self.state.push(State::default());
            self.families.len() - 1
        })
    }

    /// Where a sample called `name` belongs: an exact family, else the summary or histogram
    /// its `_sum`/`_count`/`_bucket` suffix points to, else a new untyped family.
    fn resolve(&mut self, name: &'a str) -> (usize, Suffix) {
        if let Some((n, idx, suffix)) = self.last
            && n == name
        {
            return (idx, suffix);
        }
        let found = self.index.get(name).map(|&i| (i, Suffix::None)).or_else(|| {
            [("_bucket", Suffix::Bucket), ("_sum", Suffix::Sum), ("_count", Suffix::Count)].into_iter().find_map(
                |(s, suffix)| {
                    let &i = self.index.get(name.strip_suffix(s)?)?;
                    match (self.families[i].kind, suffix) {
                        (MetricType::Histogram, _) | (MetricType::Summary, Suffix::Sum | Suffix::Count) => {
                            Some((i, suffix))
                        }
                        _ => None,
                    }
                },
            )
        });
        let (idx, suffix) = found.unwrap_or_else(|| (self.family(name), Suffix::None));
        self.last = Some((name, idx, suffix));
        (idx, suffix)
    }

    fn sample(&mut self, mut c: Cursor<'a>) -> LResult<()> {
        let name_pos = c.pos;
        let name = c.metric_name(self.limits)?;
        let mut special = [None; 2];
        let blanks = c.skip_blanks();
        let labels = if c.peek() == Some(b'{') {
            let l = c.labels(true, self.limits, &mut special)?;
            c.skip_blanks();
            l
        } else {
            if blanks == 0 && !c.at_end() {
                return Err(c.expected("`{` or a blank after the metric name"));
            }
            Vec::new()
        };
        let value_pos = c.pos;
        let tok = c.token(true);
        if tok.is_empty() {
            return Err(c.expected("a sample value"));
        }
        let value = parse_float(tok).map_err(|range| {
            let t = printable(tok);
            LineError::new(value_pos, if range { ErrorKind::ValueOutOfRange(t) } else { ErrorKind::InvalidValue(t) })
        })?;
        c.skip_blanks();
        let mut timestamp_ms = None;
        if !c.at_end() {
            let ts_pos = c.pos;
            let tok = c.token(true);
            timestamp_ms = Some(tok.parse::<i64>().map_err(|_| {
                LineError::new(ts_pos, ErrorKind::InvalidTimestamp(printable(tok), "an integer number of milliseconds"))
            })?);
            c.skip_blanks();
            if !c.at_end() {
                return Err(c.expected("end of line after the timestamp"));
            }
        }
        let (idx, suffix) = self.resolve(name);
        let mut sample = Sample { suffix, labels, value, timestamp_ms };
        let fam = &self.families[idx];
        check_bounds(fam.kind, &fam.name, name, name_pos, &mut sample, special, &mut self.scratch)?;
        sample.sort_labels();
        self.state[idx].has_samples = true;
        self.families[idx].samples.push(sample);
        Ok(())
    }
}

/// Histogram buckets need a float `le`, summary quantiles a float `quantile`, and a
/// histogram has no plain-named samples. Both bounds are normalized to canonical spelling.
pub(super) fn check_bounds(
    kind: MetricType,
    family: &str,
    name: &str,
    name_pos: usize,
    sample: &mut Sample,
    special: [Option<usize>; 2],
    scratch: &mut Vec<u8>,
) -> LResult<()> {
    let (what, label, pos) = match (kind, sample.suffix) {
        (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => ("histogram bucket", "le", special[0]),
        (MetricType::Summary, Suffix::None) => ("summary quantile", "quantile", special[1]),
        (MetricType::Histogram, Suffix::None) => {
            return Err(LineError::new(
                name_pos,
                ErrorKind::InvalidSampleName(
                    name.to_owned(),
                    "histogram",
                    family.to_owned(),
                    "a `_bucket`, `_sum` or `_count` suffix",
                ),
            ));
        }
        _ => return Ok(()),
    };
    let Some(pos) = pos else {
        return Err(LineError::new(name_pos, ErrorKind::MissingLabel(what, name.to_owned(), label)));
    };
    if let Some(l) = sample.labels.iter_mut().find(|l: &&mut Label| l.0 == label) {
        match canonical_bound(&l.1, scratch) {
            Ok(None) => {}
            Ok(Some(canon)) => l.1 = canon,
            Err(()) => return Err(LineError::new(pos, ErrorKind::InvalidBound(label, printable(&l.1)))),
        }
    }
    Ok(())
}
