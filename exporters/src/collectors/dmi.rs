//! `dmi`: firmware and hardware identity from `/sys/class/dmi/id` as `node_dmi_info`
//! (node_exporter compatible). Like upstream, the files are read once, when the collector is
//! built: they do not change until the next boot.

use std::io;

use agent_core::model::Label;

use crate::prelude::*;
use crate::sysfs::{ATTR_BUF, go_valid_utf8, read_raw};

/// Catalog entry.
pub static DEF: Def = Def {
    name: "dmi",
    default_enabled: true,
    help: "Expose Desktop Management Interface (DMI) info from /sys/class/dmi/id/",
    flags: &[],
    build: |ctx| Ok(Box::new(Dmi { info: read_dmi(&ctx.paths.sys("class/dmi/id")) })),
};

/// `node_dmi_info`'s HELP text.
const HELP: &str = "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, \
board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, \
chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, \
product_version, system_vendor if provided by DMI.";

/// (file in `/sys/class/dmi/id`, label) for every attribute upstream reports.
const ATTRS: [(&str, &str); 20] = [
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("sys_vendor", "system_vendor"),
];

/// Reports the DMI labels read at start-up.
struct Dmi {
    /// The labels of `node_dmi_info`, or why reading them failed.
    info: Result<Vec<Label>, String>,
}

impl Collector for Dmi {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        match &self.info {
            Ok(labels) if labels.is_empty() => Err(CollectError::NoData),
            Ok(labels) => {
                out.add_owned("node_dmi_info", HELP, MetricType::Gauge, labels.clone(), 1.0);
                Ok(())
            }
            Err(e) => Err(CollectError::Other(e.clone())),
        }
    }
}

/// Reads every known attribute in `dir` that is a regular file. A missing directory means no
/// DMI (no labels); unreadable serial numbers (root only) are skipped; other errors fail.
fn read_dmi(dir: &Path) -> Result<Vec<Label>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("failed to read Desktop Management Interface (DMI) information: {e}")),
    };
    let mut labels = Vec::new();
    let mut buf = [0u8; ATTR_BUF];
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file = entry.file_name();
        let Some(&(_, label)) = ATTRS.iter().find(|(f, _)| file.to_str() == Some(f)) else { continue };
        let path = entry.path();
        match read_raw(&path, &mut buf) {
            Ok(raw) => labels.push((label.to_owned(), attr_value(raw))),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(format!("failed to read file {}: {e}", path.display())),
        }
    }
    labels.sort_unstable();
    Ok(labels)
}

/// An attribute's label value: trimmed, invalid UTF-8 runs replaced as Go's
/// `strings.ToValidUTF8` does.
fn attr_value(raw: &[u8]) -> String {
    go_valid_utf8(raw).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_trimmed_valid_utf8() {
        assert_eq!(attr_value(b"Dell Inc.\n"), "Dell Inc.");
        assert_eq!(attr_value(b"\n"), "");
        assert_eq!(attr_value(b"\xef\xbf\xbd\x1c[\xff\xfe\n"), "\u{FFFD}\u{1c}[\u{FFFD}");
    }

    #[test]
    fn missing_directory_is_no_data() {
        let c = Dmi { info: read_dmi(Path::new("/nonexistent/dmi/id")) };
        assert!(matches!(c.collect(&mut Sink::new()), Err(CollectError::NoData)));
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("dmi", &|f| f == "node_dmi_info");
    }
}
