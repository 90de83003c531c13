//! Tokens shared by both formats: names, label sets, escaped strings, floats, timestamps.

use super::{ErrorKind, Found, Limits, LineError};
use crate::model::Label;

pub(super) type LResult<T> = Result<T, Box<LineError>>;

/// Bytes that may start a metric name (`[a-zA-Z_:]`) or label name (`[a-zA-Z_]`), and continue
/// either (`[a-zA-Z0-9_]`, plus `:` for metric names). One table lookup per byte.
const fn name_table() -> [u8; 256] {
    const START: u8 = 1;
    const CONT: u8 = 2;
    const COLON: u8 = 4;
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[b] = START | CONT;
        } else if c.is_ascii_digit() {
            t[b] = CONT;
        } else if c == b':' {
            t[b] = COLON;
        }
        b += 1;
    }
    t
}
static NAME: [u8; 256] = name_table();

/// A position in one line.
pub(super) struct Cursor<'a> {
    pub line: &'a str,
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(line: &'a str) -> Self {
        Self { line, pos: 0 }
    }

    pub fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    pub fn rest(&self) -> &'a str {
        self.line.get(self.pos..).unwrap_or("")
    }

    pub fn found(&self) -> Found {
        self.rest().chars().next().map_or(Found::EndOfLine, Found::Char)
    }

    pub fn err(&self, kind: ErrorKind) -> Box<LineError> {
        LineError::new(self.pos, kind)
    }

    pub fn expected(&self, expected: &'static str) -> Box<LineError> {
        self.err(ErrorKind::Expected { expected, found: self.found() })
    }

    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, b: u8, what: &'static str) -> LResult<()> {
        if self.eat(b) { Ok(()) } else { Err(self.expected(what)) }
    }

    /// Skips spaces and tabs; returns how many.
    pub fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// The text up to the next space (or tab, when `tabs`) or the end of the line.
    pub fn token(&mut self, tabs: bool) -> &'a str {
        let rest = self.rest();
        let len = rest.bytes().position(|b| b == b' ' || (tabs && b == b'\t')).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// A metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    pub fn metric_name(&mut self, limits: &Limits) -> LResult<&'a str> {
        self.name(true, "metric name", limits)
    }

    /// A label name `[a-zA-Z_][a-zA-Z0-9_]*`.
    pub fn label_name(&mut self, limits: &Limits, expected: &'static str) -> LResult<&'a str> {
        self.name(false, expected, limits)
    }

    fn name(&mut self, colon: bool, expected: &'static str, limits: &Limits) -> LResult<&'a str> {
        let bytes = self.line.as_bytes();
        let (start_mask, cont_mask) = if colon { (1 | 4, 2 | 4) } else { (1, 2) };
        let start = self.pos;
        match bytes.get(start) {
            Some(&b) if NAME[b as usize] & start_mask != 0 => {}
            _ => return Err(self.expected(expected)),
        }
        let mut end = start + 1;
        while end < bytes.len() && NAME[bytes[end] as usize] & cont_mask != 0 {
            end += 1;
        }
        if end - start > limits.max_name_len {
            return Err(self.err(ErrorKind::NameTooLong(limits.max_name_len)));
        }
        self.pos = end;
        Ok(&self.line[start..end])
    }

    /// A label set starting at `{`. `text` allows blanks around tokens and a trailing comma.
    /// `special` receives the byte offset of an `le` or `quantile` label value's quote.
    pub fn labels(&mut self, text: bool, limits: &Limits, special: &mut [Option<usize>; 2]) -> LResult<Vec<Label>> {
        debug_assert_eq!(self.peek(), Some(b'{'));
        self.pos += 1;
        let mut labels: Vec<Label> = Vec::new();
        let blanks = |c: &mut Self| {
            if text {
                c.skip_blanks();
            }
        };
        blanks(self);
        if self.eat(b'}') {
            return Ok(labels);
        }
        loop {
            let name_pos = self.pos;
            let name =
                self.label_name(limits, if text || labels.is_empty() { "label name or `}`" } else { "label name" })?;
            if name == "__name__" {
                return Err(LineError::new(name_pos, ErrorKind::ReservedLabelName));
            }
            if labels.iter().any(|(n, _)| n == name) {
                return Err(LineError::new(name_pos, ErrorKind::DuplicateLabel(name.to_owned())));
            }
            if labels.len() == limits.max_labels {
                return Err(LineError::new(name_pos, ErrorKind::TooManyLabels(limits.max_labels)));
            }
            blanks(self);
            self.expect(b'=', "`=` after label name")?;
            blanks(self);
            match name {
                "le" => special[0] = Some(self.pos),
                "quantile" => special[1] = Some(self.pos),
                _ => {}
            }
            let value = self.quoted(limits)?;
            labels.push((name.to_owned(), value));
            blanks(self);
            if self.eat(b'}') {
                return Ok(labels);
            }
            self.expect(b',', "`,` or `}` after label value")?;
            blanks(self);
            if text && self.eat(b'}') {
                return Ok(labels);
            }
        }
    }

    /// A `"`-quoted label value with `\\`, `\"` and `\n` escapes.
    fn quoted(&mut self, limits: &Limits) -> LResult<String> {
        let open = self.pos;
        self.expect(b'"', "`\"` to start the label value")?;
        let bytes = self.line.as_bytes();
        let mut out: Option<String> = None;
        let mut start = self.pos;
        loop {
            let Some(off) = bytes[self.pos..].iter().position(|&b| b == b'"' || b == b'\\') else {
                return Err(LineError::new(open, ErrorKind::UnterminatedQuote));
            };
            let at = self.pos + off;
            if bytes[at] == b'"' {
                let value = match out {
                    None => self.line[start..at].to_owned(),
                    Some(mut s) => {
                        s.push_str(&self.line[start..at]);
                        s
                    }
                };
                self.pos = at + 1;
                if value.len() > limits.max_label_value_len {
                    return Err(LineError::new(open, ErrorKind::LabelValueTooLong(limits.max_label_value_len)));
                }
                return Ok(value);
            }
            let s = out.get_or_insert_with(String::new);
            s.push_str(&self.line[start..at]);
            self.pos = at + 1;
            s.push(self.escape(true, r#"`\\`, `\"` and `\n`"#)?);
            start = self.pos;
        }
    }

    /// The character an escape stands for; the cursor is just past the backslash.
    fn escape(&mut self, quote: bool, allowed: &'static str) -> LResult<char> {
        let c = match self.peek() {
            Some(b'\\') => '\\',
            Some(b'n') => '\n',
            Some(b'"') if quote => '"',
            _ => {
                let found = match self.found() {
                    Found::EndOfLine => String::new(),
                    Found::Char(c) => super::printable(&c.to_string()),
                };
                return Err(LineError::new(self.pos - 1, ErrorKind::InvalidEscape { found, allowed }));
            }
        };
        self.pos += 1;
        Ok(c)
    }

    /// The rest of the line as HELP text: `\\` and `\n` escapes, plus `\"` when `quote`.
    pub fn help(&mut self, quote: bool) -> LResult<String> {
        let allowed = if quote { r#"`\\`, `\"` and `\n`"# } else { r"`\\` and `\n`" };
        let rest = self.rest();
        let Some(first) = rest.find('\\') else {
            self.pos = self.line.len();
            return Ok(rest.to_owned());
        };
        let mut out = String::with_capacity(rest.len());
        out.push_str(&rest[..first]);
        self.pos += first;
        while !self.at_end() {
            let rest = self.rest();
            let n = rest.find('\\').unwrap_or(rest.len());
            out.push_str(&rest[..n]);
            self.pos += n;
            if self.eat(b'\\') {
                out.push(self.escape(quote, allowed)?);
            }
        }
        Ok(out)
    }
}

/// Parses a float as Go's `strconv.ParseFloat` does, minus hex and underscores: decimals
/// with optional exponent, `Inf`/`Infinity` with optional sign and `NaN`, any case.
/// `Err(true)` means out of range, `Err(false)` malformed.
pub(super) fn parse_float(tok: &str) -> Result<f64, bool> {
    let b = tok.as_bytes();
    let (sign, digits) = match b.first() {
        Some(b'+' | b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.first().is_some_and(|c| !c.is_ascii_digit() && *c != b'.') {
        let word = &tok[usize::from(sign)..];
        if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("infinity") {
            return Ok(if b[0] == b'-' { f64::NEG_INFINITY } else { f64::INFINITY });
        }
        if !sign && word.eq_ignore_ascii_case("nan") {
            return Ok(f64::NAN);
        }
        return Err(false);
    }
    if !is_decimal(digits) {
        return Err(false);
    }
    // Rust's parser accepts a superset of the grammar just checked and rounds correctly.
    match tok.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err(true),
        Ok(v) => Ok(v),
        Err(_) => Err(false),
    }
}

/// `digits [. digits] [e [sign] digits]` with at least one mantissa digit.
fn is_decimal(b: &[u8]) -> bool {
    let mut i = 0;
    let mut mantissa = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        mantissa += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            mantissa += 1;
        }
    }
    if mantissa == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// Parses an OpenMetrics timestamp (seconds, a decimal float) into milliseconds, exactly:
/// digits beyond milliseconds are truncated toward zero, as Prometheus' `int64(ts * 1000)`
/// does, but without the binary rounding error (`1.001` is 1001 ms, not 1000).
pub(super) fn parse_om_timestamp(tok: &str) -> Option<i64> {
    let b = tok.as_bytes();
    let (neg, rest) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if !is_decimal(rest) {
        return None;
    }
    let epos = rest.iter().position(|&c| c == b'e' || c == b'E').unwrap_or(rest.len());
    let (mant, exp) = rest.split_at(epos);
    let exp: i64 = if exp.is_empty() {
        0
    } else {
        let e = std::str::from_utf8(&exp[1..]).ok()?;
        // Saturate: huge exponents are out of range (or zero) either way.
        e.parse::<i64>().unwrap_or(if e.starts_with('-') { -10_000 } else { 10_000 }).clamp(-10_000, 10_000)
    };
    let int_len = mant.iter().position(|&c| c == b'.').unwrap_or(mant.len()) as i64;
    let digits = mant.iter().filter(|c| c.is_ascii_digit()).map(|c| i128::from(c - b'0'));
    // Keep the digits left of the point after scaling by 10^(exp + 3).
    let keep = int_len + exp + 3;
    let mut ms: i128 = 0;
    let mut taken = 0;
    for d in digits {
        if taken >= keep {
            break;
        }
        ms = ms.checked_mul(10)?.checked_add(d)?;
        taken += 1;
        if ms > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    while taken < keep {
        if ms != 0 {
            ms = ms.checked_mul(10)?;
            if ms > i128::from(i64::MAX) + 1 {
                return None;
            }
        }
        taken += 1;
        if taken > 40 && ms == 0 {
            break;
        }
    }
    let ms = if neg { -ms } else { ms };
    i64::try_from(ms).ok()
}

/// The canonical OpenMetrics spelling of an `le`/`quantile` value, or `None` if it already
/// is canonical. `Err` when the value is not a float.
pub(super) fn canonical_bound(value: &str, scratch: &mut Vec<u8>) -> Result<Option<String>, ()> {
    let v = parse_float(value).map_err(|_| ())?;
    scratch.clear();
    crate::encode::write_float_om(scratch, v);
    if scratch.as_slice() == value.as_bytes() {
        Ok(None)
    } else {
        Ok(Some(String::from_utf8_lossy(scratch).into_owned()))
    }
}
