//! `/proc/<pid>/mountinfo` parsing for the `filesystem` collector (procfs' rules).

/// One mount as the filesystem collector labels it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The mount source (`device` label), valid UTF-8.
    pub device: String,
    /// The mount point, unescaped (`\040`, `\011`), before `--path.rootfs` stripping.
    pub mountpoint: String,
    /// The file system type (`fstype` label).
    pub fs_type: String,
    /// Major device number (`major` label of `node_filesystem_mount_info`).
    pub major: String,
    /// Minor device number.
    pub minor: String,
    /// Mounted or superblock read-only (`ro` in either option list, or `emergency_ro`).
    pub read_only: bool,
}

/// Parses a whole mountinfo file; any malformed line fails the file, as procfs does.
pub fn parse(bytes: &[u8]) -> Result<Vec<Mount>, String> {
    // Line splitting as Go's bufio.Scanner: no empty token after a final newline, `\r\n` ok.
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(no, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            parse_line(line).map_err(|e| format!("line {}: {e}", no + 1))
        })
        .collect()
}

/// Parses one line: `id parent major:minor root mountpoint options [optional...] - fstype
/// source super_options`.
fn parse_line(line: &[u8]) -> Result<Mount, String> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let n = fields.len();
    if n < 10 {
        return Err(format!("too few fields in mount string: {}", String::from_utf8_lossy(line)));
    }
    if fields[n - 4] != b"-" {
        return Err(format!("couldn't find separator in expected field: {}", String::from_utf8_lossy(fields[n - 4])));
    }
    for (what, f) in [("mount ID", fields[0]), ("parent ID", fields[1])] {
        if go_atoi(f).is_none() {
            return Err(format!("{what}: {:?}", String::from_utf8_lossy(f)));
        }
    }
    let major_minor = to_valid_utf8(fields[2]);
    let (major, minor) = major_minor
        .split_once(':')
        .and_then(|(a, b)| Some((go_atoi(a.as_bytes())?, go_atoi(b.as_bytes())?)))
        .ok_or_else(|| format!("malformed mount point MajorMinorVer: {major_minor:?}"))?;
    let mountpoint = to_valid_utf8(fields[4]).replace("\\040", " ").replace("\\011", "\t");
    let has = |opts: &[u8], want: &[u8]| opts.split(|&b| b == b',').any(|o| o == want);
    let (opts, super_opts) = (fields[5], fields[n - 1]);
    Ok(Mount {
        device: to_valid_utf8(fields[n - 2]),
        mountpoint,
        fs_type: to_valid_utf8(fields[n - 3]),
        major: major.to_string(),
        minor: minor.to_string(),
        read_only: has(opts, b"ro") || has(super_opts, b"ro") || has(super_opts, b"emergency_ro"),
    })
}

/// Go's `strconv.Atoi` (optional sign, decimal digits) as used by procfs.
fn go_atoi(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Go's `strings.ToValidUTF8(s, "\u{FFFD}")`: each run of invalid bytes becomes one U+FFFD.
pub fn to_valid_utf8(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut in_bad_run = false;
    for chunk in b.utf8_chunks() {
        if !chunk.valid().is_empty() {
            out.push_str(chunk.valid());
            in_bad_run = false;
        }
        if !chunk.invalid().is_empty() && !in_bad_run {
            out.push('\u{FFFD}');
            in_bad_run = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_optional_fields_and_options() {
        let m = parse(b"29 1 259:2 / / rw,relatime shared:1 master:2 - ext4 /dev/dm-2 errors=remount-ro\n").unwrap();
        assert_eq!(
            m,
            [Mount {
                device: "/dev/dm-2".into(),
                mountpoint: "/".into(),
                fs_type: "ext4".into(),
                major: "259".into(),
                minor: "2".into(),
                read_only: false,
            }]
        );
        let m = parse(b"1128 67 253:0 /x /y rw,relatime - xfs /dev/mapper/rhel-root rw,seclabel").unwrap();
        assert_eq!((m[0].mountpoint.as_str(), m[0].fs_type.as_str()), ("/y", "xfs"));
    }

    #[test]
    fn read_only_from_mount_or_super_options() {
        let ro =
            |opts: &str, sup: &str| parse(format!("1 1 0:1 / /m {opts} - t d {sup}").as_bytes()).unwrap()[0].read_only;
        assert!(!ro("rw,nosuid,nodev,noexec,relatime", "rw,devices"));
        assert!(ro("ro,relatime", "rw,fd=22,pgrp=1,timeout=300"));
        assert!(ro("rw,user_id=1000", "ro"));
        assert!(ro("rw,user_id=1000", "emergency_ro"));
        assert!(!ro("rw,errors=remount-ro", "rw,errors=remount-ro"));
    }

    #[test]
    fn malformed_lines_fail_the_file() {
        assert!(parse(b"1 2 3\n").unwrap_err().contains("too few fields"));
        assert!(parse(b"1 1 0:1 / /m rw x - t d rw extra\n").unwrap_err().contains("separator"));
        assert!(parse(b"x 1 0:1 / /m rw - t d rw\n").unwrap_err().contains("mount ID"));
        assert!(parse(b"1 1 nope / /m rw - t d rw\n").unwrap_err().contains("MajorMinorVer"));
        assert!(parse(b"1 1 0:1 / /m rw - t d rw\n\n1 1 0:1 / /n rw - t d rw\n").is_err());
    }

    #[test]
    fn invalid_utf8_is_replaced_per_run() {
        assert_eq!(to_valid_utf8(b"/dev/sd\xe9"), "/dev/sd\u{FFFD}");
        assert_eq!(to_valid_utf8(b"a\xff\xfe\xfdb"), "a\u{FFFD}b");
        let m = parse(b"1 1 0:0 / /mnt/cass\xe9 rw - ext\xe9 /dev/sd\xe9 rw\n").unwrap();
        assert_eq!(m[0].mountpoint, "/mnt/cass\u{FFFD}");
        assert_eq!(m[0].fs_type, "ext\u{FFFD}");
    }
}
