//! Small sysfs helpers shared by collectors: procfs-style attribute reads, Go-compatible
//! integer parsing, and the fixture trees' symlink stubs.

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};

/// procfs' `SysReadFile` buffer: a sysfs attribute is read with one `read(2)` of this size.
pub const ATTR_BUF: usize = 128;

/// For a regular file holding a relative path (`../..`) to an existing directory — how some
/// fixture trees store symlinks — that directory. Real sysfs never has such files.
pub fn link_stub_target(file: &Path) -> Option<PathBuf> {
    if std::fs::metadata(file).ok()?.is_dir() {
        return None;
    }
    agent_core::collector::sysfs_dir(file)
}

/// `path` itself, or the directory a fixture symlink stub at `path` points to (see
/// [`link_stub_target`]). Use where upstream follows a symlink to a directory.
pub fn follow(path: PathBuf) -> PathBuf {
    agent_core::collector::sysfs_dir(&path).unwrap_or(path)
}

/// One `read(2)` of at most [`ATTR_BUF`] bytes, untrimmed (procfs' `SysReadFile` before trimming).
/// System-wide sysfs attributes are held open between scrapes ([`agent_core::heldfile`]).
pub fn read_raw<'a>(path: &Path, buf: &'a mut [u8; ATTR_BUF]) -> io::Result<&'a [u8]> {
    let n = agent_core::heldfile::read_once(path, buf)?;
    Ok(&buf[..n])
}

/// procfs' `SysReadFile`: one `read(2)` of at most [`ATTR_BUF`] bytes, trimmed. Invalid UTF-8
/// reads as the empty string (attributes holding numbers or keywords are ASCII).
pub fn read_attr<'a>(path: &Path, buf: &'a mut [u8; ATTR_BUF]) -> io::Result<&'a str> {
    let raw = read_raw(path, buf)?;
    Ok(std::str::from_utf8(raw).unwrap_or("").trim())
}

/// Errors procfs skips silently: missing, forbidden, unsupported or invalid attributes.
pub fn ignorable(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput)
        || matches!(e.raw_os_error(), Some(22 | 95))
}

/// Go's `strings.ToValidUTF8(s, "\u{FFFD}")`: every run of invalid bytes becomes one U+FFFD
/// (unlike `String::from_utf8_lossy`, which may emit several for one run).
pub fn go_valid_utf8(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 2);
    let mut in_bad_run = false;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        if !valid.is_empty() {
            out.push_str(valid);
            in_bad_run = false;
        }
        if !chunk.invalid().is_empty() && !in_bad_run {
            out.push('\u{FFFD}');
            in_bad_run = true;
        }
    }
    Cow::Owned(out)
}

/// Splits Go's base prefixes off an unsigned number: (radix, digits, had a prefix).
fn go_radix(body: &str) -> (u32, &str, bool) {
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("0x") => (16, &body[2..], true),
        Some("0o") => (8, &body[2..], true),
        Some("0b") => (2, &body[2..], true),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..], true),
        _ => (10, body, false),
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: `0x`, `0o`, `0b` or leading-`0` octal prefixes,
/// underscores allowed between digits (Go literal syntax), no sign.
pub fn parse_go_uint(s: &str) -> Option<u64> {
    let (radix, digits, prefixed) = go_radix(s);
    let cleaned;
    let digits = if digits.contains('_') {
        let bad = digits.ends_with('_') || digits.contains("__") || (!prefixed && digits.starts_with('_'));
        if bad {
            return None;
        }
        cleaned = digits.replace('_', "");
        cleaned.as_str()
    } else {
        digits
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then as [`parse_go_uint`].
pub fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_go_uint(body)?;
    if neg { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integers_like_go() {
        assert_eq!(parse_go_int("1500"), Some(1500));
        assert_eq!(parse_go_int("0x1303"), Some(4867));
        assert_eq!(parse_go_int("-1"), Some(-1));
        assert_eq!(parse_go_int("010"), Some(8));
        assert_eq!(parse_go_int("0"), Some(0));
        assert_eq!(parse_go_int("0b101"), Some(5));
        assert_eq!(parse_go_int("0x_1_0"), Some(16));
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_int("9223372036854775808"), None);
        assert_eq!(parse_go_int(""), None);
        assert_eq!(parse_go_int("up"), None);
        assert_eq!(parse_go_int("0x"), None);
        assert_eq!(parse_go_int("--1"), None);
        assert_eq!(parse_go_int("1_000"), Some(1000));
    }

    #[test]
    fn parses_unsigned_like_go() {
        assert_eq!(parse_go_uint("0xffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_go_uint("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_go_uint("18446744073709551616"), None);
        assert_eq!(parse_go_uint("+1"), None);
        assert_eq!(parse_go_uint("-1"), None);
        assert_eq!(parse_go_uint("N/A (no PMA)"), None);
    }

    #[test]
    fn replaces_invalid_utf8_runs_once() {
        assert_eq!(go_valid_utf8(b"abc"), "abc");
        assert_eq!(go_valid_utf8(b"a\xff\xfeb"), "a\u{FFFD}b");
        assert_eq!(go_valid_utf8(b"\xff\x1c[\xe2\x82"), "\u{FFFD}\u{1c}[\u{FFFD}");
        assert_eq!(go_valid_utf8("\u{FFFD}x".as_bytes()), "\u{FFFD}x");
    }

    #[test]
    fn resolves_fixture_symlink_stubs_only() {
        let net = crate::testutil::fixtures().join("sys/class/net");
        assert!(link_stub_target(&net.join("eth0")).is_some_and(|d| d.join("mtu").is_file()));
        assert_eq!(link_stub_target(&net.join("bonding_masters")), None);
        assert_eq!(follow(net.join("bonding_masters")), net.join("bonding_masters"));
        assert_eq!(follow(net.clone()), net);
    }
}
