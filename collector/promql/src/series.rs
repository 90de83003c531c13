//! The series notation of PromQL test scripts and promtool unit tests: `metric{a="b"}` label
//! sets and expanding values (`1+2x3`, `_`, `_x4`, `stale`, `{{…}}` native histograms).

// Byte-level scanners: short index names read best here.
#![allow(clippy::many_single_char_names)]

use crate::labels::Labels;

/// One expected or loaded point: `None` = no sample at that step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Point {
    /// A float (stale markers are their NaN pattern).
    Float(f64),
    /// A native histogram (not supported: only its presence is recorded).
    Histogram,
    /// `_`
    Omitted,
}

/// A series line: labels and its expanded values.
#[derive(Debug, Clone)]
pub struct SeriesLine {
    /// Labels (including `__name__`).
    pub labels: Labels,
    /// Values, one per step.
    pub points: Vec<Point>,
}

/// Parses a float as the script notation writes it (`Inf`, `-Inf`, `NaN`, decimals).
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse::<f64>().ok(),
    }
}

/// Expands one value token (`1+2x3`, `_x4`, `stale`, `5`) into points.
fn expand_token(tok: &str, out: &mut Vec<Point>) -> Result<(), String> {
    if tok == "_" {
        out.push(Point::Omitted);
        return Ok(());
    }
    if tok == "stale" {
        out.push(Point::Float(crate::storage::stale_nan()));
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("bad repetition {tok:?}"))?;
        out.extend(std::iter::repeat_n(Point::Omitted, n));
        return Ok(());
    }
    if let Some(v) = parse_float(tok) {
        out.push(Point::Float(v));
        return Ok(());
    }
    // a[+-]bxN or axN
    let Some(xpos) = tok.rfind('x') else { return Err(format!("bad value {tok:?}")) };
    let times: usize = tok[xpos + 1..].parse().map_err(|_| format!("bad value {tok:?}"))?;
    let head = &tok[..xpos];
    let bytes = head.as_bytes();
    let mut split = None;
    for i in 1..bytes.len() {
        if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            split = Some(i);
        }
    }
    let (a, b) = match split {
        Some(i) => {
            let a = parse_float(&head[..i]).ok_or_else(|| format!("bad value {tok:?}"))?;
            let mut b = parse_float(&head[i + 1..]).ok_or_else(|| format!("bad value {tok:?}"))?;
            if bytes[i] == b'-' {
                b = -b;
            }
            (a, b)
        }
        None => (parse_float(head).ok_or_else(|| format!("bad value {tok:?}"))?, 0.0),
    };
    let mut k = a;
    for _ in 0..=times {
        out.push(Point::Float(k));
        k += b;
    }
    Ok(())
}

/// Splits `metric{a="b"} rest` into labels and the rest.
pub fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
        i += 1;
    }
    if i > 0 {
        pairs.push(("__name__".into(), s[..i].to_string()));
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                return Err(format!("unterminated labels in {s:?}"));
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let name = if b[i] == b'"' {
                let (v, n) = parse_quoted(&s[i..])?;
                i += n;
                v
            } else {
                let st = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if st == i {
                    return Err(format!("unexpected character inside braces: {:?}", char::from(b[i])));
                }
                s[st..i].to_string()
            };
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                let (v, n) = parse_quoted(&s[i..])?;
                i += n;
                pairs.push((name, v));
            } else {
                pairs.push(("__name__".into(), name));
            }
        }
    }
    Ok((Labels::from_vec(pairs), &s[i..]))
}

/// Parses a Go-style double-quoted (or back-quoted/single-quoted) string; returns it and bytes used.
pub fn parse_quoted(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else { return Err("expected string".into()) };
    if q != '"' && q != '\'' && q != '`' {
        return Err(format!("expected quoted string at {s:?}"));
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == q {
            return Ok((out, i + 1));
        }
        if c == '\\' && q != '`' {
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'x' => {
                    let h: String = (0..2).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    let v = u8::from_str_radix(&h, 16).map_err(|_| "bad \\x escape".to_string())?;
                    // Invalid UTF-8 bytes are kept as the replacement character.
                    out.push(char::from(v));
                }
                'u' => {
                    let h: String = (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    let v = u32::from_str_radix(&h, 16).map_err(|_| "bad \\u escape".to_string())?;
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    Err(format!("unterminated string {s:?}"))
}

/// Parses a series line `labels values…`.
pub fn parse_series(line: &str) -> Result<SeriesLine, String> {
    let (labels, rest) = parse_labels(line)?;
    Ok(SeriesLine { labels, points: parse_values(rest)? })
}

/// Expands a values string (`0+1x10 _ stale 5 {{…}}`) into one point per step.
pub fn parse_values(values: &str) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    let mut rest = values.trim();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            // Native histogram literal, possibly with `+{{…}}xN` / `xN` suffix.
            let end = rest.find("}}").ok_or("unterminated histogram")? + 2;
            let mut tail = &rest[end..];
            let mut n = 1;
            if let Some(t) = tail.strip_prefix(['+', '-'])
                && t.starts_with("{{")
            {
                let e2 = t.find("}}").ok_or("unterminated histogram")? + 2;
                tail = &t[e2..];
            }
            if let Some(t) = tail.strip_prefix('x') {
                let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
                n = digits.parse::<usize>().map_err(|_| "bad histogram repetition")? + 1;
                tail = &t[digits.len()..];
            }
            points.extend(std::iter::repeat_n(Point::Histogram, n));
            rest = tail.trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        expand_token(&rest[..end], &mut points)?;
        rest = rest[end..].trim_start();
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expand_like_promtool() {
        let v = parse_values("1+2x2 _ _x2 stale -1-1x1 3x1").unwrap();
        let f: Vec<String> = v
            .iter()
            .map(|p| match p {
                Point::Float(x) if crate::storage::is_stale(*x) => "stale".into(),
                Point::Float(x) => x.to_string(),
                Point::Omitted => "_".into(),
                Point::Histogram => "h".into(),
            })
            .collect();
        assert_eq!(f, ["1", "3", "5", "_", "_", "_", "stale", "-1", "-2", "3", "3"]);
        assert!(parse_values("1 b").is_err());
    }

    #[test]
    fn bad_label_syntax_is_an_error_not_a_hang() {
        assert!(parse_series(r#"up{job="a", 0+0x5"#).is_err());
        let s = parse_series(r#"up{job="a"} 1 2"#).unwrap();
        assert_eq!(s.labels.get("job"), Some("a"));
        assert_eq!(s.points.len(), 2);
    }
}
