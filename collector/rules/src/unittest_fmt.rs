//! promtool's text formats for unit-test failures: Go's `%q`, `labels.Labels.String()`,
//! `strconv.FormatFloat(v, 'E', -1, 64)`, `time.Duration` and `model.Duration` strings.

use std::fmt::Write as _;
use std::time::Duration;

use crate::eval::Labels;

/// `model.Duration(ms).String()`: `0s`, `5m`, `1h30m`, `1w`.
pub fn model_duration(ms: i64) -> String {
    crate::duration::format_duration(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Go's `time.Duration.String()` at millisecond precision: `0s`, `500ms`, `1m0s`, `1h2m3.5s`.
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{neg}{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut secs = s.to_string();
    if frac > 0 {
        let f = format!("{frac:03}");
        let _ = write!(secs, ".{}", f.trim_end_matches('0'));
    }
    if h > 0 {
        format!("{neg}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{neg}{m}m{secs}s")
    } else {
        format!("{neg}{secs}s")
    }
}

/// Go's `strconv.Quote`: double quotes, `\"`, `\\`, `\n`-style escapes, `\x`/`\u` for the rest.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `labels.Labels.String()`: `{a="1", b="2"}`.
pub fn labels_string(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={}", go_quote(v))).collect();
    format!("{{{}}}", inner.join(", "))
}

/// `strconv.FormatFloat(v, 'E', -1, 64)`: `1E+00`, `3.5E-07`, `NaN`, `+Inf`.
pub fn go_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:E}");
    let (m, e) = s.split_once('E').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}E{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// promtool's `indentLines`: every line after the first gets `indent`.
pub fn indent_lines(text: &str, indent: &str) -> String {
    text.split('\n').collect::<Vec<_>>().join(&format!("\n{indent}"))
}

/// promtool's `labelsAndAnnotations.String()`.
pub fn alerts_string(v: &[(Labels, Labels)]) -> String {
    if v.is_empty() {
        return "[]".into();
    }
    let one = |(l, a): &(Labels, Labels)| format!("\nLabels:{}\nAnnotations:{}", labels_string(l), labels_string(a));
    let mut s = format!("[\n0:{}", indent_lines(&one(&v[0]), "  "));
    for (i, x) in v.iter().enumerate().skip(1) {
        let _ = write!(s, ",\n{i}:{}", indent_lines(&one(x), "  "));
    }
    s.push_str("\n]");
    s
}

/// promtool's `parsedSamplesString`: `nil`, or `{…} 1E+00, {…} 2E+00`.
pub fn samples_string(v: &[(Labels, f64)]) -> String {
    if v.is_empty() {
        return "nil".into();
    }
    v.iter().map(|(l, x)| format!("{} {}", labels_string(l), go_float_e(*x))).collect::<Vec<_>>().join(", ")
}

/// Parses an RFC 3339 timestamp (`2024-01-01T00:00:00Z`, `…T01:02:03.5+02:00`) to Unix ms.
#[allow(clippy::many_single_char_names)] // y, d, h, … are the date fields' names
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let st = i + 1;
        i = st;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(st..i)?;
        let padded: String = digits.chars().chain(std::iter::repeat('0')).take(3).collect();
        frac_ms = padded.parse().ok()?;
    }
    let off_min = match s.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(&tz[..1], "+" | "-") && &tz[3..4] == ":" => {
            let v = tz[1..3].parse::<i64>().ok()? * 60 + tz[4..6].parse::<i64>().ok()?;
            if tz.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = agent_core::calendar::days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(d).ok()?);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se - off_min * 60) * 1000) + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_float_e(1.0), "1E+00");
        assert_eq!(go_float_e(0.0), "0E+00");
        assert_eq!(go_float_e(1234.5), "1.2345E+03");
        assert_eq!(go_float_e(3.0e-7), "3E-07");
        assert_eq!(go_float_e(1e100), "1E+100");
        assert_eq!(go_float_e(f64::NEG_INFINITY), "-Inf");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(3_723_500), "1h2m3.5s");
        assert_eq!(go_duration(250), "250ms");
        assert_eq!(model_duration(300_000), "5m");
        assert_eq!(go_quote("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\x01\"");
        let mut l = Labels::new();
        l.insert("b".into(), "2".into());
        l.insert("a".into(), "1".into());
        assert_eq!(labels_string(&l), "{a=\"1\", b=\"2\"}");
        assert_eq!(indent_lines("a\nb\nc", "  "), "a\n  b\n  c");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("2024-01-01T00:00:00Z"), Some(1_704_067_200_000));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00.5+01:00"), Some(500));
        assert_eq!(parse_rfc3339_ms("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }
}
