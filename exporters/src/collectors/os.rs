//! `os`: operating system identification from os-release (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "os",
    default_enabled: true,
    help: "Expose OS release info.",
    flags: &[],
    build: |ctx| Ok(Box::new(Os { files: [ctx.paths.root("/etc/os-release"), ctx.paths.root("/usr/lib/os-release")] })),
};

/// The labels of `node_os_info`, as os-release keys.
const INFO_KEYS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

/// Reports `node_os_info` and `node_os_version`.
struct Os {
    files: [PathBuf; 2],
}

/// Parses os-release (shell-like `KEY=value` lines; quotes and backslash escapes).
fn parse(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        let value = if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            unescape(inner)
        } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            unescape(v)
        };
        out.push((k.trim().to_owned(), value));
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The leading `major.minor` of VERSION_ID as a number (0 when there is none).
fn version_number(version_id: &str) -> f64 {
    let digits = version_id.find(|c: char| !c.is_ascii_digit()).unwrap_or(version_id.len());
    if digits == 0 {
        return 0.0;
    }
    let mut end = digits;
    if version_id[end..].starts_with('.') {
        end += 1;
        end += version_id[end..].find(|c: char| !c.is_ascii_digit()).unwrap_or(version_id.len() - end);
    }
    version_id[..end].trim_end_matches('.').parse().unwrap_or(0.0)
}

impl Collector for Os {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let mut last_err = None;
        let mut text = None;
        for f in &self.files {
            match read_string(f) {
                Ok(t) => {
                    text = Some(t);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let Some(text) = text else {
            return Err(last_err.unwrap_or(CollectError::NoData));
        };
        let kv = parse(&text);
        let get = |k: &str| kv.iter().rev().find(|(key, _)| key == k).map_or(String::new(), |(_, v)| v.clone());
        let labels = INFO_KEYS.iter().map(|(label, key)| ((*label).to_owned(), get(key))).collect();
        out.add_owned(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
            MetricType::Gauge,
            labels,
            1.0,
        );
        out.add_owned(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
            MetricType::Gauge,
            vec![("id".into(), get("ID")), ("id_like".into(), get("ID_LIKE")), ("name".into(), get("NAME"))],
            version_number(&get("VERSION_ID")),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_and_versions() {
        let kv = parse("NAME=\"Debian GNU/Linux\"\nID=debian\n# c\nX='a b'\nY=\"q\\\"x\"\n");
        assert_eq!(kv[0], ("NAME".into(), "Debian GNU/Linux".into()));
        assert_eq!(kv[2], ("X".into(), "a b".into()));
        assert_eq!(kv[3], ("Y".into(), "q\"x".into()));
        assert_eq!(version_number("20.04"), 20.04);
        assert_eq!(version_number("12"), 12.0);
        assert_eq!(version_number("7.9.2009"), 7.9);
        assert_eq!(version_number("rolling"), 0.0);
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("os", &|f| f.starts_with("node_os_"));
    }
}
