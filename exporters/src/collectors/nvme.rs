//! `nvme`: NVMe controllers and namespaces from `/sys/class/nvme` (node_exporter compatible).

use std::io;

use crate::prelude::*;
use crate::sysfs::ATTR_BUF;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "nvme",
    default_enabled: true,
    help: "Exposes NVMe info from /sys/class/nvme/.",
    flags: &[],
    build: |ctx| Ok(Box::new(Nvme { dir: ctx.paths.sys("class/nvme") })),
};

/// Reports `node_nvme_info` and the `node_nvme_namespace_*` families.
struct Nvme {
    /// `/sys/class/nvme`.
    dir: PathBuf,
}

/// Controller attributes, read in this order (all required, as upstream).
const DEVICE_ATTRS: [&str; 5] = ["firmware_rev", "model", "serial", "state", "cntlid"];

/// One controller.
#[derive(Debug, PartialEq)]
struct Device {
    /// `nvme0`.
    name: String,
    /// Values of [`DEVICE_ATTRS`].
    attrs: [String; 5],
    /// Its namespaces, in directory order.
    namespaces: Vec<Namespace>,
}

/// One namespace (`nvme0n1`).
#[derive(Debug, PartialEq)]
struct Namespace {
    /// The number after `n` (`1`).
    id: String,
    /// `ana_state`, `unknown` when the file is absent.
    ana_state: String,
    /// `size` in logical blocks.
    size_blocks: u64,
    /// `nuse` in logical blocks.
    used_blocks: u64,
    /// `queue/logical_block_size` in bytes.
    block_size: u64,
}

impl Collector for Nvme {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let names = list_dir_or_no_data(&self.dir)?;
        let devices = names.into_iter().map(|n| read_device(&self.dir, n)).collect::<Result<Vec<_>, _>>()?;
        for d in &devices {
            let [fw, model, serial, state, cntlid] = &d.attrs;
            out.gauge_with(
                "node_nvme_info",
                "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
                &[
                    ("device", &d.name),
                    ("firmware_revision", fw),
                    ("model", model),
                    ("serial", serial),
                    ("state", state),
                    ("cntlid", cntlid),
                ],
                1.0,
            );
            for ns in &d.namespaces {
                let labels = [("device", d.name.as_str()), ("nsid", ns.id.as_str())];
                out.gauge_with(
                    "node_nvme_namespace_info",
                    "Information about NVMe namespaces. Value is always 1",
                    &[("device", &d.name), ("nsid", &ns.id), ("ana_state", &ns.ana_state)],
                    1.0,
                );
                let size = ns.size_blocks.wrapping_mul(ns.block_size) as f64;
                out.gauge_with(
                    "node_nvme_namespace_capacity_bytes",
                    "Capacity of the NVMe namespace in bytes. Computed as namespace_size * namespace_logical_block_size",
                    &labels,
                    size,
                );
                out.gauge_with(
                    "node_nvme_namespace_size_bytes",
                    "Size of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/size",
                    &labels,
                    size,
                );
                out.gauge_with(
                    "node_nvme_namespace_used_bytes",
                    "Used space of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/nuse",
                    &labels,
                    ns.used_blocks.wrapping_mul(ns.block_size) as f64,
                );
                out.gauge_with(
                    "node_nvme_namespace_logical_block_size_bytes",
                    "Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in /sys/class/nvme/<device>/<namespace>/queue/logical_block_size",
                    &labels,
                    ns.block_size as f64,
                );
            }
        }
        Ok(())
    }
}

/// The namespace id of a directory named like `nvme<N>n<ID>` (procfs matches `nvme\d+n(\d+)`
/// anywhere in the name).
fn namespace_id(name: &str) -> Option<&str> {
    let mut rest = name;
    while let Some(pos) = rest.find("nvme") {
        let after = &rest[pos + 4..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with('n') {
            let id = &after[digits + 1..];
            let id_len = id.bytes().take_while(u8::is_ascii_digit).count();
            if id_len > 0 {
                return Some(&id[..id_len]);
            }
        }
        rest = &rest[pos + 4..];
    }
    None
}

/// Reads one controller and its namespaces.
fn read_device(class_dir: &Path, name: String) -> Result<Device, CollectError> {
    let path = class_dir.join(&name);
    let path = sysfs_dir(&path).unwrap_or(path);
    let dir = AttrDir::open(&path).map_err(|e| CollectError::io(&path, e))?;
    let mut buf = [0u8; ATTR_BUF];
    let mut attrs: [String; 5] = Default::default();
    for (slot, &file) in attrs.iter_mut().zip(DEVICE_ATTRS.iter()) {
        dir.read(file, &mut buf).map_err(|e| CollectError::io(path.join(file), e))?.clone_into(slot);
    }
    let mut namespaces = Vec::new();
    for entry in list_dir(&path)? {
        let Some(id) = namespace_id(&entry) else { continue };
        let ns_path = path.join(&entry);
        let read = |file: &str, buf: &mut [u8; ATTR_BUF]| -> Result<u64, CollectError> {
            let p = ns_path.join(file);
            let v = crate::sysfs::read_attr(&p, buf).map_err(|e| CollectError::io(&p, e))?;
            // Upstream keeps 0 when the value does not parse.
            Ok(v.parse().unwrap_or(0))
        };
        let used_blocks = read("nuse", &mut buf)?;
        let size_blocks = read("size", &mut buf)?;
        let block_size = read("queue/logical_block_size", &mut buf)?;
        let ana = ns_path.join("ana_state");
        let ana_state = match crate::sysfs::read_attr(&ana, &mut buf) {
            Ok(v) => v.to_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound || crate::sysfs::ignorable(&e) => "unknown".to_owned(),
            Err(_) => "unknown".to_owned(),
        };
        namespaces.push(Namespace { id: id.to_owned(), ana_state, size_blocks, used_blocks, block_size });
    }
    Ok(Device { name, attrs, namespaces })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixture_ctx;

    #[test]
    fn namespace_ids_like_procfs_regex() {
        assert_eq!(namespace_id("nvme0n1"), Some("1"));
        assert_eq!(namespace_id("nvme12n34"), Some("34"));
        assert_eq!(namespace_id("ng0n1"), None);
        assert_eq!(namespace_id("nvme0c0n1"), None);
        assert_eq!(namespace_id("power"), None);
    }

    #[test]
    fn fixture_controller_and_namespace() {
        let ctx = fixture_ctx(&[]);
        let d = read_device(&ctx.paths.sys("class/nvme"), "nvme0".into()).unwrap();
        assert_eq!(d.attrs[1], "Samsung SSD 970 PRO 512GB");
        assert_eq!(d.namespaces.len(), 1);
        let ns = &d.namespaces[0];
        assert_eq!((ns.id.as_str(), ns.ana_state.as_str(), ns.block_size), ("1", "optimized", 4096));
        assert_eq!(ns.size_blocks * ns.block_size, 16_000_000_000_000);
    }

    #[test]
    fn missing_required_attribute_fails() {
        let tmp = std::env::temp_dir().join(format!("osprey-nvme-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("nvme0")).unwrap();
        std::fs::write(tmp.join("nvme0/model"), "x\n").unwrap();
        assert!(read_device(&tmp, "nvme0".into()).is_err());
        std::fs::remove_dir_all(tmp).unwrap();
    }
}
