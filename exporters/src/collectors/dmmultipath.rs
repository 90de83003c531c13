//! `dmmultipath`: device-mapper multipath devices and the state of their paths, from
//! `/sys/block/dm-*` (node_exporter compatible; enabled by default as in current
//! node_exporter; a host without multipath devices reports nothing).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "dmmultipath",
    default_enabled: true,
    help: "Exposes device-mapper multipath device and path metrics from /sys/block/dm-*.",
    flags: &[],
    build: |ctx| Ok(Box::new(DmMultipath { block: ctx.paths.sys("block") })),
};

/// Reports `node_dmmultipath_*` per multipath device (a `dm-*` whose `dm/uuid` starts `mpath-`).
struct DmMultipath {
    /// `/sys/block`.
    block: PathBuf,
}

impl Collector for DmMultipath {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let entries = list_dir_or_no_data(&self.block)?;
        for sysfs_name in entries.iter().filter(|n| n.starts_with("dm-")) {
            let dir = self.block.join(sysfs_name);
            let uuid = match read_trimmed(&dir.join("dm/uuid")) {
                Ok(u) => u,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            if !uuid.starts_with("mpath-") {
                continue;
            }
            let name = read_trimmed(&dir.join("dm/name"))?;
            let suspended = read_u64(&dir.join("dm/suspended"))? == 1;
            let sectors = read_u64(&dir.join("size"))?;
            let mut paths = Vec::new();
            match list_dir(&dir.join("slaves")) {
                Ok(slaves) => {
                    for dev in slaves {
                        let state = read_trimmed(&self.block.join(&dev).join("device/state"))?;
                        paths.push((dev, state));
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            let dev = [("device", name.as_str()), ("sysfs_name", sysfs_name.as_str())];
            out.gauge_with(
                "node_dmmultipath_device_info",
                "Non-numeric information about a DM-multipath device.",
                &[("device", &name), ("sysfs_name", sysfs_name), ("uuid", &uuid)],
                1.0,
            );
            out.gauge_with(
                "node_dmmultipath_device_active",
                "Whether the multipath device-mapper device is active (1) or suspended (0).",
                &dev,
                if suspended { 0.0 } else { 1.0 },
            );
            out.gauge_with(
                "node_dmmultipath_device_size_bytes",
                "Size of the multipath device in bytes, read from /sys/block/<dm>/size.",
                &dev,
                (sectors * 512) as f64,
            );
            let active = paths.iter().filter(|(_, s)| s == "running" || s == "live").count();
            for (path, state) in &paths {
                out.gauge_with(
                    "node_dmmultipath_path_state",
                    "Reports the underlying device state for a multipath path, as read from /sys/block/<dev>/device/state.",
                    &[("device", &name), ("path", path), ("state", state)],
                    1.0,
                );
            }
            out.gauge_with(
                "node_dmmultipath_device_paths",
                "Number of paths for a multipath device.",
                &dev,
                paths.len() as f64,
            );
            out.gauge_with(
                "node_dmmultipath_device_paths_active",
                "Number of paths in active state (SCSI running or NVMe live) for a multipath device.",
                &dev,
                active as f64,
            );
            out.gauge_with(
                "node_dmmultipath_device_paths_failed",
                "Number of paths not in active state for a multipath device.",
                &dev,
                (paths.len() - active) as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::DmMultipath;

    /// The unpacked fixture tree lost the empty `slaves/*` directories of `sys.ttar`, so
    /// upstream's e2e case runs in the integration test (`tests/it/node_exporter_e2e.rs`, over
    /// the archive itself); this builds the same shape by hand.
    #[test]
    fn counts_paths_by_state_and_skips_non_multipath_dm_devices() {
        let tmp = std::env::temp_dir().join(format!("osprey-dmmultipath-{}", std::process::id()));
        let w = |rel: &str, text: &str| {
            let p = tmp.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("dm-5/dm/uuid", "mpath-3600a\n");
        w("dm-5/dm/name", "mpathA\n");
        w("dm-5/dm/suspended", "0\n");
        w("dm-5/size", "104857600\n");
        for (dev, state) in [("sdi", "running"), ("sdj", "live"), ("sdl", "offline")] {
            std::fs::create_dir_all(tmp.join("dm-5/slaves").join(dev)).unwrap();
            w(&format!("{dev}/device/state"), &format!("{state}\n"));
        }
        w("dm-0/dm/uuid", "LVM-abc\n");
        std::fs::create_dir_all(tmp.join("dm-1")).unwrap();
        let text = crate::testutil::render(&DmMultipath { block: tmp.clone() });
        std::fs::remove_dir_all(&tmp).unwrap();
        for line in [
            "node_dmmultipath_device_info{device=\"mpathA\",sysfs_name=\"dm-5\",uuid=\"mpath-3600a\"} 1",
            "node_dmmultipath_device_active{device=\"mpathA\",sysfs_name=\"dm-5\"} 1",
            "node_dmmultipath_device_size_bytes{device=\"mpathA\",sysfs_name=\"dm-5\"} 5.36870912e+10",
            "node_dmmultipath_device_paths{device=\"mpathA\",sysfs_name=\"dm-5\"} 3",
            "node_dmmultipath_device_paths_active{device=\"mpathA\",sysfs_name=\"dm-5\"} 2",
            "node_dmmultipath_device_paths_failed{device=\"mpathA\",sysfs_name=\"dm-5\"} 1",
            "node_dmmultipath_path_state{device=\"mpathA\",path=\"sdl\",state=\"offline\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("dm-0") && !text.contains("dm-1"), "{text}");
    }
}
