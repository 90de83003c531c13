//! The steady-state path of a text-format scrape, as Prometheus' scrape cache does it: when
//! every sample line names a series the target's cache already holds (same exposed name and
//! labels) and the comment lines (`# HELP`, `# TYPE`, …) are those of the last full parse, the
//! lines are not parsed into the metric model: each line's series part is turned into the
//! cache key in a reused buffer, its value (and timestamp) read, and the sample appended to the
//! cached series. Anything else — a new series, a changed comment, a line in a spelling this
//! reader does not take (blanks inside braces, unusual escapes or number spellings, a
//! normalized `le`) — makes it give up, and the full parser takes the whole body.
//!
//! A key built here matches a cache entry only if the line exposes exactly that entry's name
//! and labels: names are checked to be ASCII identifiers and values hold no 0xfe/0xff bytes
//! (the key's separators, never part of UTF-8), so segments cannot shift.

use std::borrow::Cow;

/// One sample line, read: the cache key is in the buffer given to [`read_line`].
pub(crate) struct Line {
    /// The value.
    pub(crate) value: f64,
    /// The explicit timestamp (ms), if any.
    pub(crate) timestamp_ms: Option<i64>,
}

/// What a body line is.
pub(crate) enum Kind<'a> {
    /// Blank: ignored.
    Empty,
    /// Starts with `#`.
    Comment(&'a [u8]),
    /// Anything else: a sample line.
    Sample(&'a [u8]),
}

/// Classifies a line (without its `\n`).
pub(crate) fn kind(line: &[u8]) -> Kind<'_> {
    match line.first() {
        None => Kind::Empty,
        Some(b'#') => Kind::Comment(line),
        Some(_) => Kind::Sample(line),
    }
}

/// Feeds a comment line into the running hash of a body's comments.
pub(crate) fn hash_comment(h: &mut impl std::hash::Hasher, line: &[u8]) {
    h.write(line);
    h.write_u8(b'\n');
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
        i += 1;
    }
    i
}

/// A quoted label value starting after its opening quote: (value, index after the closing
/// quote). `None` for escapes other than `\\`, `\"`, `\n`, or separator bytes.
fn quoted(b: &[u8], start: usize) -> Option<(Cow<'_, [u8]>, usize)> {
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => return Some((Cow::Borrowed(&b[start..i]), i + 1)),
            b'\\' => break,
            0xfe | 0xff => return None,
            _ => i += 1,
        }
    }
    let mut out = b[start..i].to_vec();
    while i < b.len() {
        match b[i] {
            b'"' => return Some((Cow::Owned(out), i + 1)),
            b'\\' => {
                out.push(match b.get(i + 1)? {
                    b'\\' => b'\\',
                    b'"' => b'"',
                    b'n' => b'\n',
                    _ => return None,
                });
                i += 2;
            }
            0xfe | 0xff => return None,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// Powers of ten that are exact in an f64.
const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// A value in the spellings this reader takes: a decimal number or `NaN`, `Inf`, `+Inf`,
/// `-Inf`. Others (and out-of-range numbers) are left to the full parser.
fn value(tok: &[u8]) -> Option<f64> {
    match tok {
        b"NaN" => return Some(f64::NAN),
        b"+Inf" | b"Inf" => return Some(f64::INFINITY),
        b"-Inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let digits = match tok.first()? {
        b'+' | b'-' => &tok[1..],
        _ => tok,
    };
    let mut i = 0;
    let mut mantissa = 0;
    // The digits as an integer and the number of them after the point, for the exact path.
    let mut int: u64 = 0;
    let mut fraction = 0;
    while i < digits.len() && digits[i].is_ascii_digit() {
        int = int.wrapping_mul(10).wrapping_add(u64::from(digits[i] - b'0'));
        i += 1;
        mantissa += 1;
    }
    if i < digits.len() && digits[i] == b'.' {
        i += 1;
        while i < digits.len() && digits[i].is_ascii_digit() {
            int = int.wrapping_mul(10).wrapping_add(u64::from(digits[i] - b'0'));
            i += 1;
            mantissa += 1;
            fraction += 1;
        }
    }
    if mantissa == 0 {
        return None;
    }
    if i == digits.len() && mantissa <= 15 {
        // At most 15 digits: the integer is below 2^53 and 10^fraction (≤ 10^15) is exact,
        // so one correctly rounded division gives the correctly rounded value, as `parse`.
        let v = int as f64 / POW10[fraction];
        return Some(if tok[0] == b'-' { -v } else { v });
    }
    if i < digits.len() && (digits[i] == b'e' || digits[i] == b'E') {
        i += 1;
        if i < digits.len() && (digits[i] == b'+' || digits[i] == b'-') {
            i += 1;
        }
        let exp = i;
        while i < digits.len() && digits[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp {
            return None;
        }
    }
    if i != digits.len() {
        return None;
    }
    // ASCII by construction.
    let v: f64 = std::str::from_utf8(tok).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Reads a sample line into `key` (the cache key, as `append::build_key` makes it from the
/// parsed sample) and its value; `None` when the line is not in a spelling this reader takes.
/// `pairs` is scratch space.
pub(crate) fn read_line<'a>(
    line: &'a [u8],
    key: &mut Vec<u8>,
    pairs: &mut Vec<(&'a [u8], Cow<'a, [u8]>)>,
) -> Option<Line> {
    pairs.clear();
    if !is_name_start(*line.first()?) {
        return None;
    }
    let mut i = 1;
    while i < line.len() && is_name_byte(line[i]) {
        i += 1;
    }
    let name = &line[..i];
    if line.get(i) == Some(&b'{') {
        i += 1;
        loop {
            if line.get(i) == Some(&b'}') {
                i += 1;
                break;
            }
            let start = i;
            if !is_label_start(*line.get(i)?) {
                return None;
            }
            while i < line.len() && is_label_byte(line[i]) {
                i += 1;
            }
            let lname = &line[start..i];
            if line.get(i) != Some(&b'=') || line.get(i + 1) != Some(&b'"') {
                return None;
            }
            let (v, next) = quoted(line, i + 2)?;
            pairs.push((lname, v));
            i = next;
            match line.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return None,
            }
        }
        i = skip_blanks(line, i);
    } else {
        let after = skip_blanks(line, i);
        if after == i {
            return None;
        }
        i = after;
    }
    let sample = read_value(line, i)?;
    if !pairs.is_sorted_by(|a, b| a.0 < b.0) {
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
    }
    key.clear();
    key.extend_from_slice(name);
    for (n, v) in pairs.iter() {
        if v.is_empty() {
            continue;
        }
        key.push(0xff);
        key.extend_from_slice(n);
        key.push(0xfe);
        key.extend_from_slice(v);
    }
    Some(sample)
}

/// Reads the value (and optional timestamp) that start at `i`, up to the end of the line.
pub(crate) fn read_value(line: &[u8], i: usize) -> Option<Line> {
    let end = token_end(line, i);
    let v = value(&line[i..end])?;
    let i = skip_blanks(line, end);
    let mut timestamp_ms = None;
    if i < line.len() {
        let end = token_end(line, i);
        timestamp_ms = Some(std::str::from_utf8(&line[i..end]).ok()?.parse::<i64>().ok()?);
        if skip_blanks(line, end) != line.len() {
            return None;
        }
    }
    Some(Line { value: v, timestamp_ms })
}

/// Length of the identifier at `line[i..]`: a `start` byte, then `rest` bytes (0 if none).
fn ident_len(line: &[u8], i: usize, start: fn(u8) -> bool, rest: fn(u8) -> bool) -> usize {
    match line.get(i) {
        Some(&b) if start(b) => 1 + line[i + 1..].iter().take_while(|&&b| rest(b)).count(),
        _ => 0,
    }
}

/// Whether the series part of `line` is exactly the series of cache key `key`, in a spelling
/// [`read_line`] takes and for which it would build `key` (labels in the key's order, none
/// with an empty value, no escapes): then the index where the value starts, so the caller
/// skips building the key and looking it up. `None` on any difference; the caller then falls
/// back to [`read_line`] (which also takes other orders, empty values and escapes).
pub(crate) fn match_key(line: &[u8], key: &[u8]) -> Option<usize> {
    let n = ident_len(line, 0, is_name_start, is_name_byte);
    if n == 0 || key.get(..n)? != &line[..n] {
        return None;
    }
    let (mut i, mut k) = (n, n);
    if line.get(i) != Some(&b'{') {
        // No labels: the key must end here, and blanks must follow.
        let after = skip_blanks(line, i);
        return (k == key.len() && after > i).then_some(after);
    }
    i += 1;
    loop {
        if line.get(i) == Some(&b'}') {
            i += 1;
            break;
        }
        // A label: `0xff name 0xfe value` in the key, `name="value"` in the line.
        let n = ident_len(line, i, is_label_start, is_label_byte);
        if n == 0
            || key.get(k) != Some(&0xff)
            || key.get(k + 1..k + 1 + n)? != &line[i..i + n]
            || key.get(k + 1 + n) != Some(&0xfe)
            || line.get(i + n..i + n + 2)? != b"=\""
        {
            return None;
        }
        k += n + 2;
        i += n + 2;
        let v = line[i..].iter().position(|&b| matches!(b, b'"' | b'\\' | 0xfe | 0xff))?;
        if v == 0 || line[i + v] != b'"' || key.get(k..k + v)? != &line[i..i + v] {
            return None;
        }
        k += v;
        if k < key.len() && key[k] != 0xff {
            return None;
        }
        i += v + 1;
        match line.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            _ => return None,
        }
    }
    (k == key.len()).then(|| skip_blanks(line, i))
}

/// The hash of a body's comment lines, as the fast path computes it while reading.
pub(crate) fn comments_hash(body: &[u8], mut h: impl std::hash::Hasher) -> u64 {
    for line in body.split(|&b| b == b'\n') {
        if let Kind::Comment(c) = kind(line) {
            hash_comment(&mut h, c);
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(line: &str) -> Option<(Vec<u8>, f64, Option<i64>)> {
        let mut key = Vec::new();
        let mut pairs = Vec::new();
        read_line(line.as_bytes(), &mut key, &mut pairs).map(|l| (key, l.value, l.timestamp_ms))
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> Vec<u8> {
        let mut k = name.as_bytes().to_vec();
        for (n, v) in labels {
            k.push(0xff);
            k.extend_from_slice(n.as_bytes());
            k.push(0xfe);
            k.extend_from_slice(v.as_bytes());
        }
        k
    }

    #[test]
    fn reads_the_usual_spellings() {
        assert_eq!(read("up 1"), Some((key("up", &[]), 1.0, None)));
        assert_eq!(
            read("m{b=\"2\",a=\"1\"} 2.5e3 1700000000000"),
            Some((key("m", &[("a", "1"), ("b", "2")]), 2500.0, Some(1_700_000_000_000)))
        );
        assert_eq!(
            read("m{a=\"x\\\"y\\n\\\\\",} -Inf"),
            Some((key("m", &[("a", "x\"y\n\\")]), f64::NEG_INFINITY, None))
        );
        assert_eq!(read("m{a=\"\",b=\"v\"}\t7"), Some((key("m", &[("b", "v")]), 7.0, None)), "empty values skipped");
        assert!(read("m NaN").is_some_and(|(_, v, _)| v.is_nan()));
    }

    #[test]
    fn leaves_everything_else_to_the_full_parser() {
        for line in [
            " up 1",
            "m{ a=\"1\"} 1",
            "m{a=\"1\" } 1",
            "m{a=\"\\t\"} 1",
            "m{a=\"1\",a=\"2\"} 1",
            "m{a=\"1\"} 0x10",
            "m{a=\"1\"} 1e999",
            "m{a=\"1\"} infinity",
            "m1",
            "m{a=\"1\"} 1 2 3",
            "m{a=\"1\"} 1 1.5",
        ] {
            assert!(read(line).is_none(), "{line:?}");
        }
        let mut key = Vec::new();
        assert!(read_line(b"m{a=\"\xff\"} 1", &mut key, &mut Vec::new()).is_none(), "separator byte in a value");
    }

    /// The exact path for short decimals gives the bits `str::parse` gives.
    #[test]
    fn short_decimals_read_as_parse_reads_them() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut toks: Vec<String> = [
            "0",
            "-0",
            "+0",
            "0.0",
            "-0.000",
            "1",
            "0.1",
            "0.3",
            "123456789012345",
            "999999999999999",
            ".5",
            "5.",
            "-.25",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for _ in 0..20_000 {
            let digits = (next() % 15 + 1) as usize;
            let int = next() % 10u64.pow(digits as u32);
            let mut t = format!("{int:0digits$}");
            let point = (next() % (digits as u64 + 1)) as usize;
            if point < digits {
                t.insert(point, '.');
            }
            if next() % 3 == 0 {
                t.insert(0, '-');
            }
            toks.push(t);
        }
        for t in toks {
            let want: f64 = t.parse().unwrap();
            assert_eq!(value(t.as_bytes()).map(f64::to_bits), Some(want.to_bits()), "{t}");
        }
    }

    /// `match_key` against the key `read_line` builds for the same line: a match exactly when
    /// the line is in sorted order without empty values, and then the same value is read.
    #[test]
    fn match_key_agrees_with_read_line() {
        let lines = [
            "up 1",
            "up{} 1",
            "up\t2 1700000000000",
            "m{a=\"1\",b=\"2\"} 2.5e3",
            "m{a=\"1\",b=\"2\",} 3",
            "m{a=\"1\",b=\"2\"}4",
            "m{a=\"x\\\"y\\n\\\\\"} -Inf",
            "m{a=\"\",b=\"v\"} 7",
            "m{b=\"2\",a=\"1\"} 5",
            "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1234.5",
        ];
        let mut keys = Vec::new();
        for line in lines {
            let mut key = Vec::new();
            let read = read_line(line.as_bytes(), &mut key, &mut Vec::new()).expect(line);
            let canonical = !line.contains("=\"\"") && !line.contains("b=\"2\",a") && !line.contains('\\');
            match match_key(line.as_bytes(), &key) {
                Some(at) => {
                    assert!(canonical, "{line:?} matched although read_line reorders or drops labels");
                    let v = read_value(line.as_bytes(), at).expect(line);
                    assert_eq!(
                        (v.value.to_bits(), v.timestamp_ms),
                        (read.value.to_bits(), read.timestamp_ms),
                        "{line:?}"
                    );
                }
                None => assert!(!canonical, "{line:?} did not match its own key"),
            }
            keys.push(key);
        }
        // Other series never match: every line against every other line's key.
        for (i, line) in lines.iter().enumerate() {
            for (j, key) in keys.iter().enumerate() {
                if keys[i] != *key {
                    assert_eq!(match_key(line.as_bytes(), key), None, "{line:?} against key {j}");
                }
            }
        }
        // Prefixes and extensions of a key, names that only start alike, bad spellings.
        let key = key("m", &[("a", "1"), ("b", "2")]);
        for line in [
            "m{a=\"1\"} 1",
            "m{a=\"1\",b=\"2\",c=\"3\"} 1",
            "m{a=\"1\",b=\"22\"} 1",
            "mm{a=\"1\",b=\"2\"} 1",
            "m{a=\"1\",b=\"2\" } 1",
            "m{a=\"1\" b=\"2\"} 1",
            "m{a=1,b=\"2\"} 1",
            "m{a=\"1\",b=\"2\\t\"} 1",
            "m{a=\"1\",b=\"2",
            "m",
            "",
        ] {
            assert_eq!(match_key(line.as_bytes(), &key), None, "{line:?}");
        }
        assert_eq!(match_key(b"m{a=\"1\",b=\"\xff\"} 1", &key), None, "separator byte in a value");
        assert_eq!(match_key(b"up 1", b"\xff\xffstale"), None, "keys no exposition produces");
    }
}
