//! Exposition parser: Prometheus text format 0.0.4 and OpenMetrics 1.0.0, the inverse of
//! [`crate::encode`].
//!
//! The parser is strict: anything the formats do not allow is an error that names the line,
//! the column (1-based, in characters) and what was expected there. It validates UTF-8 once
//! up front, then scans line by line, borrowing names from the input; it allocates only the
//! strings the model owns (names, help, label pairs).
//!
//! Semantics, where the formats leave room:
//!
//! * **Text 0.0.4** follows client_golang's `expfmt.TextParser` (what promtool and the
//!   node_exporter textfile collector use): blanks and tabs may separate tokens, blank lines and
//!   other `#` comments are skipped, a trailing comma in a label set is fine. Samples of one
//!   family may be interleaved with other families' lines; they are merged into the family of
//!   their first appearance (as client_golang does). A second `HELP` or `TYPE` for a family,
//!   or a `TYPE` after the family's samples, is an error. A `_sum`/`_count`/`_bucket` sample
//!   joins an earlier summary/histogram family; samples with no `TYPE` form untyped families.
//! * **OpenMetrics** follows the specification: single spaces, no blank lines, no other
//!   comments, `# EOF` last. A family's lines must be contiguous and its metadata (`TYPE`,
//!   `UNIT`, `HELP`, each at most once) must precede its samples. One exception, because
//!   client_golang writes it: metadata repeating the current family's name after its samples
//!   or TYPE starts a new family of that name (gauge `x` followed by counter `x` with samples
//!   `x_total`). Families must not share a sample name (so a family cannot reappear after
//!   another one) nor a model name (histogram `x` and gauge `x`). Exemplars are validated and
//!   dropped (the model has none).
//! * In both formats the `le` label of histogram buckets and the `quantile` label of summary
//!   quantiles must be floats and are normalized to their canonical OpenMetrics spelling
//!   (`1` → `1.0`), as Prometheus 3 does on ingestion, so a family means the same whichever
//!   format carried it.
//! * Floats are Go's `strconv.ParseFloat` forms without hex and underscores (as Prometheus'
//!   OpenMetrics parser): decimals with exponents, `NaN`, `Inf`/`Infinity` with a sign, any
//!   case. Out-of-range values (`1e400`) are errors.

mod lex;
mod openmetrics;
mod text;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fmt;

pub use crate::encode::Format;
use crate::model::MetricFamily;

/// Bounds on what one exposition may contain; an input beyond them is an error, not a
/// truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line in bytes, without its newline.
    pub max_line_len: usize,
    /// Most label pairs on one sample.
    pub max_labels: usize,
    /// Longest metric or label name in bytes.
    pub max_name_len: usize,
    /// Longest label value in bytes, after unescaping.
    pub max_label_value_len: usize,
}

impl Default for Limits {
    /// 64 KiB lines and label values, 128 labels, 1024-byte names. Prometheus has no label
    /// limit by default; 128 is far above what exporters emit (node_exporter's widest series
    /// carry about 10).
    fn default() -> Self {
        Self { max_line_len: 64 * 1024, max_labels: 128, max_name_len: 1024, max_label_value_len: 64 * 1024 }
    }
}

/// A parse failure: where it happened and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What was found where something else was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// The line ended.
    EndOfLine,
    /// This character.
    Char(char),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EndOfLine => f.write_str("end of line"),
            Self::Char(c) => write!(f, "`{}`", printable(&c.to_string())),
        }
    }
}

/// The kinds of parse errors. The `Display` text is what users see after the position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The input is not UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A line is longer than [`Limits::max_line_len`].
    #[error("line is longer than the limit of {0} bytes")]
    LineTooLong(usize),
    /// A token was expected.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows here.
        expected: &'static str,
        /// What is there instead.
        found: Found,
    },
    /// A metric or label name is longer than [`Limits::max_name_len`].
    #[error("name is longer than the limit of {0} bytes")]
    NameTooLong(usize),
    /// A label value is longer than [`Limits::max_label_value_len`].
    #[error("label value is longer than the limit of {0} bytes")]
    LabelValueTooLong(usize),
    /// A sample has more labels than [`Limits::max_labels`].
    #[error("more than {0} labels")]
    TooManyLabels(usize),
    /// `__name__` used as a label name.
    #[error("label name `__name__` is reserved")]
    ReservedLabelName,
    /// The same label name twice in one label set.
    #[error("duplicate label name `{0}`")]
    DuplicateLabel(String),
    /// A quoted label value has no closing quote.
    #[error("unterminated label value: missing closing `\"`")]
    UnterminatedQuote,
    /// A backslash escape the format does not define.
    #[error("invalid escape sequence `\\{found}`, only {allowed} are allowed")]
    InvalidEscape {
        /// The character after the backslash (display form).
        found: String,
        /// The escapes this position allows.
        allowed: &'static str,
    },
    /// A sample value that is not a float.
    #[error("invalid sample value `{0}`: expected a float such as `1`, `-2.5e-3`, `NaN` or `+Inf`")]
    InvalidValue(String),
    /// A float beyond the range of f64.
    #[error("value `{0}` is out of the float64 range")]
    ValueOutOfRange(String),
    /// A timestamp that is not an integer (text) or a finite decimal (OpenMetrics).
    #[error("invalid timestamp `{0}`: expected {1}")]
    InvalidTimestamp(String, &'static str),
    /// A `# TYPE` keyword the format does not define.
    #[error("unknown metric type `{0}`, expected one of {1}")]
    UnknownType(String, &'static str),
    /// A second `# HELP`, `# TYPE` or `# UNIT` for one family.
    #[error("second {0} line for metric family `{1}`")]
    DuplicateMetadata(&'static str, String),
    /// Metadata after the family's first sample.
    #[error("{0} line for metric family `{1}` after its samples")]
    MetadataAfterSamples(&'static str, String),
    /// OpenMetrics: a family whose sample names overlap an earlier family's (which includes
    /// a family that reappears after another one started).
    #[error(
        "metric family `{0}` reuses sample name `{1}` of the earlier {2} family `{3}`; OpenMetrics families must be contiguous and distinct"
    )]
    NameClash(String, String, &'static str, String),
    /// OpenMetrics: two families that the model would give the same name.
    #[error("{1} family `{0}` and the earlier {3} family `{2}` would both be named `{4}`")]
    SameModelName(String, &'static str, String, &'static str, String),
    /// A sample name that does not fit its family's type.
    #[error("sample `{0}` does not fit {1} `{2}`: expected {3}")]
    InvalidSampleName(String, &'static str, String, &'static str),
    /// A histogram bucket without `le` or a summary quantile without `quantile`.
    #[error("{0} sample `{1}` needs a `{2}` label")]
    MissingLabel(&'static str, String, &'static str),
    /// An `le` or `quantile` label value that is not a float.
    #[error("`{0}` label value `{1}` is not a float")]
    InvalidBound(&'static str, String),
    /// OpenMetrics: a unit that is not a suffix of the family name.
    #[error("unit `{0}` is not a suffix of metric family name `{1}`")]
    UnitNotSuffix(String, String),
    /// OpenMetrics: a unit on an info or stateset family.
    #[error("{0} metric family `{1}` must not have a unit")]
    UnitNotAllowed(&'static str, String),
    /// OpenMetrics: an exemplar on a sample that cannot carry one.
    #[error("exemplars are only allowed on counter `_total` and histogram `_bucket` samples")]
    ExemplarNotAllowed,
    /// OpenMetrics: an exemplar label set longer than 128 characters.
    #[error("exemplar labels are longer than 128 characters")]
    ExemplarTooLong,
    /// OpenMetrics: an empty line.
    #[error("empty line (not allowed in OpenMetrics)")]
    EmptyLine,
    /// OpenMetrics: a comment other than HELP, TYPE, UNIT or EOF.
    #[error("expected `# HELP`, `# TYPE`, `# UNIT` or `# EOF`")]
    InvalidComment,
    /// OpenMetrics: input does not end with `# EOF`.
    #[error("missing `# EOF` at the end of OpenMetrics input")]
    MissingEof,
    /// OpenMetrics: anything after `# EOF`.
    #[error("unexpected content after `# EOF`")]
    AfterEof,
    /// Text format: `# EOF` belongs to OpenMetrics.
    #[error("`# EOF` is not valid in the text format 0.0.4 (it ends OpenMetrics input)")]
    EofInText,
}

/// `s` with control characters escaped (`\r`, `\u{1b}`), for error messages.
pub(crate) fn printable(s: &str) -> String {
    s.chars().fold(String::with_capacity(s.len()), |mut out, c| {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        out
    })
}

/// Parses an exposition in `format` into metric families, in order of first appearance.
///
/// Counters are named as their samples are in text 0.0.4 (`x_total`), OpenMetrics info
/// families as their samples (`x_info`); see the module documentation for the rules.
pub fn parse(input: &[u8], format: Format, limits: &Limits) -> Result<Vec<MetricFamily>, ParseError> {
    let text = match std::str::from_utf8(input) {
        Ok(t) => t,
        Err(e) => return Err(utf8_error(input, e.valid_up_to())),
    };
    match format {
        Format::Text => text::parse(text, limits),
        Format::OpenMetrics => openmetrics::parse(text, limits),
    }
}

/// The position of the first invalid byte, counted in characters of the valid prefix.
fn utf8_error(input: &[u8], at: usize) -> ParseError {
    let before = &input[..at];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let line = before.split(|&b| b == b'\n').count();
    // The prefix is valid UTF-8, so counting non-continuation bytes counts characters.
    let column = 1 + before[line_start..].iter().filter(|&&b| (b & 0xC0) != 0x80).count();
    ParseError { line, column, kind: ErrorKind::InvalidUtf8 }
}

/// An error inside one line, at a byte offset of that line.
#[derive(Debug)]
pub(crate) struct LineError {
    pos: usize,
    kind: ErrorKind,
    /// An error about an earlier line (line, column), found only later.
    elsewhere: Option<(usize, usize)>,
}

impl LineError {
    /// Boxed: errors are rare and `Result`s on the hot path stay small.
    fn new(pos: usize, kind: ErrorKind) -> Box<Self> {
        Box::new(Self { pos, kind, elsewhere: None })
    }

    /// Attaches the line number and converts the byte offset into a character column.
    fn at_line(self, line_no: usize, line: &str) -> ParseError {
        if let Some((line, column)) = self.elsewhere {
            return ParseError { line, column, kind: self.kind };
        }
        let column = 1 + line.get(..self.pos).map_or(self.pos, |p| p.chars().count());
        ParseError { line: line_no, column, kind: self.kind }
    }
}

/// Splits `input` into lines (without `\n`), numbering from 1. The empty piece after a final
/// newline is not a line.
fn lines(input: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = input;
    let mut no = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        no += 1;
        let line = match rest.find('\n') {
            Some(i) => {
                let l = &rest[..i];
                rest = &rest[i + 1..];
                l
            }
            None => std::mem::take(&mut rest),
        };
        Some((no, line))
    })
}

/// Where the input ends: the line after a final newline, or just past the last character.
fn end_position(input: &str) -> (usize, usize) {
    let lines = input.split('\n').count();
    let last = input.rsplit('\n').next().unwrap_or("");
    (lines, 1 + last.chars().count())
}

fn check_line_len(no: usize, line: &str, limits: &Limits) -> Result<(), ParseError> {
    if line.len() > limits.max_line_len {
        return Err(ParseError { line: no, column: 1, kind: ErrorKind::LineTooLong(limits.max_line_len) });
    }
    Ok(())
}
