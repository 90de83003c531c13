//! A reader for upstream's `ttar` text archives (node_exporter's `sys.ttar`, `udev.ttar`), so
//! the conformance run uses the archive itself — real symlinks and empty directories — rather
//! than an unpacked copy that lost them.

use std::path::Path;

/// Unpacks `archive` into `dest` (which must exist). Panics with the line number on a
/// malformed archive: the archives are upstream's test data, not user input.
pub fn unpack(archive: &Path, dest: &Path) {
    let text = std::fs::read_to_string(archive).unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    let fail = |i: usize, what: &str| -> ! { panic!("{}:{}: {what}", archive.display(), i + 1) };
    while i < lines.len() {
        let line = lines[i];
        // Modes are not restored: the tree is only read.
        if line.is_empty() || line.starts_with('#') || line.starts_with("Mode: ") {
            i += 1;
            continue;
        }
        if let Some(dir) = line.strip_prefix("Directory: ") {
            std::fs::create_dir_all(dest.join(dir)).unwrap_or_else(|e| fail(i, &e.to_string()));
            i += 1;
            continue;
        }
        let Some(path) = line.strip_prefix("Path: ") else { fail(i, "expected Path: or Directory:") };
        let target = dest.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| fail(i, &e.to_string()));
        }
        let next = lines.get(i + 1).copied().unwrap_or_default();
        if let Some(link) = next.strip_prefix("SymlinkTo: ") {
            std::os::unix::fs::symlink(link, &target).unwrap_or_else(|e| fail(i, &e.to_string()));
            i += 2;
            continue;
        }
        let Some(n) = next.strip_prefix("Lines: ").and_then(|n| n.parse::<usize>().ok()) else {
            fail(i + 1, "expected Lines: N or SymlinkTo:")
        };
        let mut content = Vec::new();
        for l in &lines[i + 2..i + 2 + n] {
            content.extend(decode_line(l));
        }
        std::fs::write(&target, content).unwrap_or_else(|e| fail(i, &e.to_string()));
        i += 2 + n;
    }
}

/// One content line: `NULLBYTE` is a NUL, a trailing unescaped `EOF` means "no newline", and
/// `\NULLBYTE` / `\EOF` are the literal words (ttar's escaping).
fn decode_line(line: &str) -> Vec<u8> {
    let (body, newline) = match line.strip_suffix("EOF") {
        Some(b) if !b.ends_with('\\') => (b, false),
        _ => (line, true),
    };
    let mut out = Vec::with_capacity(body.len() + 1);
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("\\NULLBYTE") {
            out.extend_from_slice(b"NULLBYTE");
            rest = r;
        } else if let Some(r) = rest.strip_prefix("NULLBYTE") {
            out.push(0);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("\\EOF") {
            out.extend_from_slice(b"EOF");
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            rest = &rest[c.len_utf8()..];
        }
    }
    if newline {
        out.push(b'\n');
    }
    out
}

#[test]
fn ttar_decodes_escapes_and_missing_newline() {
    assert_eq!(decode_line("abc"), b"abc\n");
    assert_eq!(decode_line("abcEOF"), b"abc");
    assert_eq!(decode_line("a\\EOF"), b"aEOF\n");
    assert_eq!(decode_line("aNULLBYTEb"), b"a\0b\n");
    assert_eq!(decode_line("a\\NULLBYTE"), b"aNULLBYTE\n");
}
