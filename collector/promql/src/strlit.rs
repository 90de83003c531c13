//! Go's byte escapes in PromQL string literals.
//!
//! In Prometheus a string literal is a Go string: `"\xff"` is the single byte 0xFF (not valid
//! UTF-8) and `"\xc3\xbf"` is the two bytes of `ÿ`. `promql-parser` turns every `\xHH` or octal
//! escape into the code point U+00HH instead, so `"\xc3\xbf"` would become `Ã¿` and `"\xff"`
//! would become the valid label name `ÿ`. [`normalize`] rewrites such literals before parsing:
//! byte sequences that are valid UTF-8 become their characters, and each byte that is not is
//! replaced by [`INVALID_BYTE`], a noncharacter no real label carries, so functions that must
//! reject invalid UTF-8 (`label_replace`, `label_join` destinations) can recognise it.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Stands for one byte of a string literal that is not valid UTF-8.
pub const INVALID_BYTE: char = '\u{10FFFE}';

/// Whether `s` came from a literal holding bytes that are not valid UTF-8.
pub fn has_invalid_utf8(s: &str) -> bool {
    s.contains(INVALID_BYTE)
}

/// The query with every quoted literal that uses byte escapes above 0x7F rewritten as described
/// in the module docs; borrowed unchanged when there is none (the common case).
pub fn normalize(query: &str) -> Cow<'_, str> {
    if !query.contains('\\') {
        return Cow::Borrowed(query);
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut chars = query.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' => {
                // A comment runs to the end of the line.
                while chars.peek().is_some_and(|&(_, c)| c != '\n') {
                    chars.next();
                }
            }
            '`' => while chars.next().is_some_and(|(_, c)| c != '`') {},
            '"' | '\'' => {
                let mut end = None;
                let mut escaped = false;
                for (j, d) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        end = Some(j);
                        break;
                    }
                }
                let Some(end) = end else { break };
                if let Some(lit) = rewrite(&query[i + 1..end], c) {
                    out.push_str(&query[copied..=i]);
                    out.push_str(&lit);
                    copied = end;
                }
            }
            _ => {}
        }
    }
    if copied == 0 {
        return Cow::Borrowed(query);
    }
    out.push_str(&query[copied..]);
    Cow::Owned(out)
}

/// The body of a literal re-escaped for `promql-parser`, or `None` when it has no byte escape
/// above 0x7F (or is malformed: the parser reports that).
fn rewrite(body: &str, quote: char) -> Option<String> {
    let mut bytes = Vec::with_capacity(body.len());
    let mut high_byte = false;
    let raw = body.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            bytes.push(raw[i]);
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1)?;
        i += 2;
        let simple = match e {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' | b'"' | b'\'' => Some(e),
            _ => None,
        };
        if let Some(v) = simple {
            bytes.push(v);
            continue;
        }
        match e {
            b'x' | b'0'..=b'7' => {
                let (digits, radix) = if e == b'x' { (body.get(i..i + 2)?, 16) } else { (body.get(i - 1..i + 2)?, 8) };
                let v = u8::try_from(u32::from_str_radix(digits, radix).ok()?).ok()?;
                i += 2;
                high_byte |= v > 0x7F;
                bytes.push(v);
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let v = u32::from_str_radix(body.get(i..i + n)?, 16).ok()?;
                i += n;
                let mut buf = [0; 4];
                bytes.extend_from_slice(char::from_u32(v)?.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    if !high_byte {
        return None;
    }
    let mut out = String::with_capacity(body.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for _ in chunk.invalid() {
            out.push(INVALID_BYTE);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{INVALID_BYTE, normalize};

    #[test]
    fn byte_escapes_become_utf8_or_the_invalid_marker() {
        assert_eq!(normalize(r#"f("\xc3\xbf")"#), "f(\"ÿ\")");
        assert_eq!(normalize(r#"f("\303\277")"#), "f(\"ÿ\")");
        assert_eq!(normalize(r#"f("a\xffb")"#), format!("f(\"a{INVALID_BYTE}b\")"));
        assert_eq!(normalize(r#"f('\xff', "\n\x41")"#), format!("f('{INVALID_BYTE}', \"\\n\\x41\")"));
    }

    #[test]
    fn literals_without_high_byte_escapes_are_left_alone() {
        for q in [r#"x{a="\n\"\\"}"#, r"x{a=`\xff`}", "x # \"\\xff\"", r#"x{a="\u00ff"}"#, r#"x{a="\xf"}"#] {
            assert_eq!(normalize(q), q);
        }
    }
}
