//! `filefd`: file descriptor statistics from `/proc/sys/fs/file-nr` (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "filefd",
    default_enabled: true,
    help: "Exposes file descriptor statistics from /proc/sys/fs/file-nr.",
    flags: &[],
    build: |ctx| Ok(Box::new(FileFd { path: ctx.paths.proc("sys/fs/file-nr") })),
};

/// Reports `node_filefd_allocated` and `node_filefd_maximum`.
struct FileFd {
    path: PathBuf,
}

impl Collector for FileFd {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string(&self.path)?;
        let (allocated, maximum) = parse(&text)
            .ok_or_else(|| CollectError::parse(&self.path, format!("expected three numbers, got {text:?}")))?;
        out.gauge("node_filefd_allocated", "File descriptor statistics: allocated.", allocated);
        out.gauge("node_filefd_maximum", "File descriptor statistics: maximum.", maximum);
        Ok(())
    }
}

/// The allocated (first) and maximum (third) fields of `file-nr`.
fn parse(text: &str) -> Option<(f64, f64)> {
    let f: Vec<u64> = text.split_ascii_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    match f.as_slice() {
        [allocated, _, maximum] => Some((*allocated as f64, *maximum as f64)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_file_nr() {
        assert_eq!(super::parse("1024\t0\t1631329\n"), Some((1024.0, 1_631_329.0)));
        assert_eq!(super::parse("1024 0"), None);
        assert_eq!(super::parse("a b c"), None);
    }

    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("filefd", &|f| f.starts_with("node_filefd_"));
    }
}
