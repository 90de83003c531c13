//! Duration expressions (Prometheus 3): arithmetic, `step()`, `range()`, `min_of`/`max_of`
//! inside `[…]` ranges/subquery steps and after `offset`.
//!
//! `promql-parser` accepts only literal durations there, so before parsing such expressions are
//! evaluated (with the query's range and step known) and replaced by a literal in
//! milliseconds. After `offset` only one operand binds, as upstream's grammar does:
//! `x offset 100 + 2` is `(x offset 100) + 2`, `x offset (100 + 2)` offsets by 102 s.

use std::fmt::Write as _;

/// Rewrites duration expressions in `query` into literals; `range_ms`/`step_ms` give `range()`
/// and `step()` (both 0 for an instant query).
pub fn expand(query: &str, range_ms: i64, step_ms: i64) -> Result<String, String> {
    if !query.contains('[') && !query.to_ascii_lowercase().contains("offset") {
        return Ok(query.to_string());
    }
    let ctx = Ctx { range_s: range_ms as f64 / 1000.0, step_s: step_ms as f64 / 1000.0 };
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            let end = skip_string(b, i);
            out.push_str(&query[i..end]);
            i = end;
        } else if c == b'{' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'}' {
                j = if matches!(b[j], b'"' | b'\'' | b'`') { skip_string(b, j) } else { j + 1 };
            }
            let end = (j + 1).min(b.len());
            out.push_str(&query[i..end]);
            i = end;
        } else if c == b'[' {
            let Some(close) = query[i..].find(']').map(|k| i + k) else {
                out.push_str(&query[i..]);
                break;
            };
            out.push('[');
            let inner = &query[i + 1..close];
            let parts = split_top_colon(inner);
            for (k, part) in parts.iter().enumerate() {
                if k > 0 {
                    out.push(':');
                }
                if part.trim().is_empty() || is_literal(part.trim()) {
                    out.push_str(part);
                } else {
                    let secs = ctx.eval_all(part)?;
                    let _ = write!(out, "{}ms", (secs * 1000.0).round() as i64);
                }
            }
            out.push(']');
            i = close + 1;
        } else if is_word_at(b, i, "offset") {
            let mark = out.len();
            out.push_str(&query[i..i + 6]);
            i += 6;
            while i < b.len() && b[i].is_ascii_whitespace() {
                out.push(b[i] as char);
                i += 1;
            }
            let end = operand_end(b, i);
            let atom = &query[i..end];
            if is_literal(atom.trim_start_matches(['-', '+'])) {
                out.push_str(atom);
            } else {
                let ms = (ctx.eval_all(atom)? * 1000.0).round() as i64;
                if ms == 0 {
                    // A zero offset is no offset (the parser rejects `offset 0ms`).
                    out.truncate(mark);
                } else {
                    let _ = write!(out, "{ms}ms");
                }
            }
            i = end;
        } else {
            let ch = query[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    Ok(out)
}

fn skip_string(b: &[u8], start: usize) -> usize {
    let q = b[start];
    let mut j = start + 1;
    while j < b.len() && b[j] != q {
        if b[j] == b'\\' && q != b'`' {
            j += 1;
        }
        j += 1;
    }
    (j + 1).min(b.len())
}

fn is_word_at(b: &[u8], i: usize, w: &str) -> bool {
    let wb = w.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    b.len() >= i + wb.len()
        && b[i..i + wb.len()].eq_ignore_ascii_case(wb)
        && (i == 0 || !ident(b[i - 1]))
        && b.get(i + wb.len()).is_none_or(|&c| !ident(c))
}

fn split_top_colon(s: &str) -> Vec<&str> {
    let mut depth = 0i32;
    for (k, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth == 0 => return vec![&s[..k], &s[k + 1..]],
            _ => {}
        }
    }
    vec![s]
}

/// A plain duration or number literal (`5m`, `1h30m`, `100`, `1.5`).
fn is_literal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.') && s.as_bytes()[0].is_ascii_digit()
}

/// End of the single operand after `offset`: optional sign, then a parenthesised group, a call
/// (`step()`, `min_of(…)`), or a literal.
fn operand_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    if i < b.len() && b[i] == b'(' {
        let mut depth = 0;
        while i < b.len() {
            match b[i] {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    i
}

struct Ctx {
    range_s: f64,
    step_s: f64,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl Lexer<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
}

impl Ctx {
    fn eval_all(&self, s: &str) -> Result<f64, String> {
        let mut lx = Lexer { s: s.as_bytes(), i: 0, src: s };
        let v = self.add(&mut lx)?;
        if lx.peek().is_some() {
            return Err(format!("unexpected {:?} in duration expression {s:?}", &s[lx.i..]));
        }
        Ok(v)
    }

    fn add(&self, lx: &mut Lexer<'_>) -> Result<f64, String> {
        let mut v = self.mul(lx)?;
        loop {
            if lx.eat(b'+') {
                v += self.mul(lx)?;
            } else if lx.eat(b'-') {
                v -= self.mul(lx)?;
            } else {
                return Ok(v);
            }
        }
    }

    fn mul(&self, lx: &mut Lexer<'_>) -> Result<f64, String> {
        let mut v = self.unary(lx)?;
        loop {
            if lx.eat(b'*') {
                v *= self.unary(lx)?;
            } else if lx.eat(b'/') {
                let r = self.unary(lx)?;
                if r == 0.0 {
                    return Err("division by zero".into());
                }
                v /= r;
            } else if lx.eat(b'%') {
                let r = self.unary(lx)?;
                if r == 0.0 {
                    return Err("modulo by zero".into());
                }
                v %= r;
            } else {
                return Ok(v);
            }
        }
    }

    fn unary(&self, lx: &mut Lexer<'_>) -> Result<f64, String> {
        if lx.eat(b'-') {
            return Ok(-self.unary(lx)?);
        }
        if lx.eat(b'+') {
            return self.unary(lx);
        }
        self.pow(lx)
    }

    fn pow(&self, lx: &mut Lexer<'_>) -> Result<f64, String> {
        let base = self.atom(lx)?;
        if lx.eat(b'^') {
            let exp = self.unary(lx)?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn atom(&self, lx: &mut Lexer<'_>) -> Result<f64, String> {
        if lx.eat(b'(') {
            let v = self.add(lx)?;
            if !lx.eat(b')') {
                return Err("missing ) in duration expression".into());
            }
            return Ok(v);
        }
        lx.ws();
        let st = lx.i;
        while lx.i < lx.s.len() && (lx.s[lx.i].is_ascii_alphanumeric() || lx.s[lx.i] == b'_' || lx.s[lx.i] == b'.') {
            lx.i += 1;
        }
        let word = &lx.src[st..lx.i];
        if word.is_empty() {
            return Err(format!("expected a duration in {:?}", lx.src));
        }
        let lower = word.to_ascii_lowercase();
        match lower.as_str() {
            "step" | "range" => {
                if !(lx.eat(b'(') && lx.eat(b')')) {
                    return Err(format!("expected {lower}()"));
                }
                Ok(if lower == "step" { self.step_s } else { self.range_s })
            }
            "min_of" | "max_of" => {
                if !lx.eat(b'(') {
                    return Err(format!("expected ( after {lower}"));
                }
                let a = self.add(lx)?;
                if !lx.eat(b',') {
                    return Err(format!("expected , in {lower}"));
                }
                let b = self.add(lx)?;
                if !lx.eat(b')') {
                    return Err(format!("expected ) after {lower}"));
                }
                Ok(if lower == "min_of" { a.min(b) } else { a.max(b) })
            }
            _ => literal_secs(word).ok_or_else(|| format!("bad duration {word:?}")),
        }
    }
}

/// Seconds of a number (`1.5`) or a duration (`1h30m`, `8000ms`).
fn literal_secs(w: &str) -> Option<f64> {
    if let Ok(v) = w.parse::<f64>() {
        return Some(v);
    }
    let b = w.as_bytes();
    let (mut i, mut total) = (0, 0.0);
    while i < b.len() {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: f64 = w[st..i].parse().ok()?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        total += n * match &w[us..i] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn ranges_and_offsets_are_folded() {
        assert_eq!(expand("changes(x[26m+4m])", 0, 0).unwrap(), "changes(x[1800000ms])");
        assert_eq!(expand("x[29s+1s:5s+5s]", 0, 0).unwrap(), "x[30000ms:10000ms]");
        assert_eq!(expand("x offset 100 + 2", 0, 0).unwrap(), "x offset 100 + 2");
        assert_eq!(expand("x offset (100 + 2)", 0, 0).unwrap(), "x offset 102000ms");
        assert_eq!(expand("x offset -step()*2", 0, 5000).unwrap(), "x offset -5000ms*2");
        assert_eq!(expand("x offset (-2 ^ 2)", 0, 0).unwrap(), "x offset -4000ms");
        assert_eq!(expand("x offset range() + 1", 0, 0).unwrap(), "x  + 1");
        assert_eq!(expand(r#"x{a="[1+1]"}[5m]"#, 0, 0).unwrap(), r#"x{a="[1+1]"}[5m]"#);
    }
}

/// Rejects a plain-number duration (`x[1e30]`, `x offset 99999999999999999999`) too large for
/// a `Duration`: `promql-parser` converts it with `Duration::from_secs_f64`, which panics, and
/// the release build aborts on panic. Run on the text the parser will see (found by the
/// engine fuzzer).
pub fn check_number_durations(query: &str) -> Result<(), String> {
    let b = query.as_bytes();
    let mut i = 0;
    let mut in_brackets = false;
    let mut prev_word = String::new();
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_string(b, i);
            continue;
        }
        let duration_position = (in_brackets && matches!(prev_word.as_str(), "[" | ":")) || prev_word == "offset";
        if c.is_ascii_digit() || c == b'.' {
            let st = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || b[i] == b'_'
                    || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            let tok = &query[st..i];
            if duration_position {
                let v = if let Some(h) = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
                    u64::from_str_radix(h, 16).ok().map(|n| n as f64)
                } else {
                    tok.parse::<f64>().ok()
                };
                // `Duration::from_secs_f64` takes at most u64::MAX seconds; keep well inside.
                if v.is_some_and(|v| !v.is_finite() || v.abs() >= 9.2e18) {
                    return Err(format!("duration out of range: {tok:?}"));
                }
            }
            tok.clone_into(&mut prev_word);
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            prev_word = query[st..i].to_ascii_lowercase();
            continue;
        }
        match c {
            b'[' => in_brackets = true,
            b']' => in_brackets = false,
            _ => {}
        }
        if !(c.is_ascii_whitespace() || c == b'-' && prev_word == "offset") {
            prev_word = (c as char).to_string();
        }
        i += 1;
    }
    Ok(())
}

/// Parses with `promql-parser` after [`check_number_durations`], with Go's byte escapes in
/// string literals applied first ([`crate::strlit::normalize`]).
pub fn parse_checked(query: &str) -> Result<promql_parser::parser::Expr, String> {
    check_number_durations(query)?;
    promql_parser::parser::parse(&crate::strlit::normalize(query))
}

#[cfg(test)]
mod number_duration_tests {
    use super::parse_checked;

    #[test]
    fn huge_number_durations_are_errors_not_panics() {
        for q in ["rate(x[99999999999999999999])", "x offset 1e30", "x offset -1e300", "max_over_time(x[5m:1e400])"] {
            let e = parse_checked(q).unwrap_err();
            assert!(e.starts_with("duration out of range"), "{q}: {e}");
        }
        for q in ["rate(x[300])", "x offset 60", "x[5m:30]", "x{a=\"[99999999999999999999]\"}", "x > 1e30"] {
            assert!(parse_checked(q).is_ok(), "{q}");
        }
    }
}
