//! `drbd`: DRBD 8 replication statistics from `/proc/drbd` (node_exporter compatible; disabled
//! by default as there; hosts without DRBD report no data).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "drbd",
    default_enabled: false,
    help: "Exposes Distributed Replicated Block Device statistics (to version 8.4).",
    flags: &[],
    build: |ctx| Ok(Box::new(Drbd { path: ctx.paths.proc("drbd") })),
};

/// (`/proc/drbd` key, metric suffix, HELP, is counter, multiplier). The multipliers are
/// node_exporter's: the kernel prints KiB for these; `nr` is passed through unscaled there, and
/// here too, so that dashboards agree.
const NUMERICAL: &[(&str, &str, &str, bool, f64)] = &[
    ("ns", "network_sent_bytes_total", "Total number of bytes sent via the network.", true, 1024.0),
    ("nr", "network_received_bytes_total", "Total number of bytes received via the network.", true, 1.0),
    ("dw", "disk_written_bytes_total", "Net data written on local hard disk; in bytes.", true, 1024.0),
    ("dr", "disk_read_bytes_total", "Net data read from local hard disk; in bytes.", true, 1024.0),
    ("al", "activitylog_writes_total", "Number of updates of the activity log area of the meta data.", true, 1.0),
    ("bm", "bitmap_writes_total", "Number of updates of the bitmap area of the meta data.", true, 1.0),
    ("lo", "local_pending", "Number of open requests to the local I/O sub-system.", false, 1.0),
    (
        "pe",
        "remote_pending",
        "Number of requests sent to the peer, but that have not yet been answered by the latter.",
        false,
        1.0,
    ),
    (
        "ua",
        "remote_unacknowledged",
        "Number of requests received by the peer via the network connection, but that have not yet been answered.",
        false,
        1.0,
    ),
    (
        "ap",
        "application_pending",
        "Number of block I/O requests forwarded to DRBD, but not yet answered by DRBD.",
        false,
        1.0,
    ),
    ("ep", "epochs", "Number of Epochs currently on the fly.", false, 1.0),
    ("oos", "out_of_sync_bytes", "Amount of data known to be out of sync; in bytes.", false, 1024.0),
];

/// (key, metric suffix, HELP, the value that means 1) for `local/remote` pairs.
const PAIRS: &[(&str, &str, &str, &str)] = &[
    ("ro", "node_role_is_primary", "Whether the role of the node is in the primary state.", "Primary"),
    ("ds", "disk_state_is_up_to_date", "Whether the disk of the node is up to date.", "UpToDate"),
];

/// Reports `node_drbd_*{device}` per DRBD minor.
struct Drbd {
    path: PathBuf,
}

impl Collector for Drbd {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string_or_no_data(&self.path)?;
        let mut device = "unknown".to_owned();
        // Whitespace-separated `key:value` words; `N:` starts device `drbdN`; other words are skipped.
        for word in text.split_ascii_whitespace() {
            let Some((key, value)) = word.split_once(':').filter(|(_, v)| !v.contains(':')) else { continue };
            if value.is_empty() {
                if let Ok(id) = key.parse::<u64>() {
                    device = format!("drbd{id}");
                }
                continue;
            }
            let dev = [("device", device.as_str())];
            if let Some(&(_, suffix, help, counter, mult)) = NUMERICAL.iter().find(|n| n.0 == key) {
                let v: f64 = value
                    .parse()
                    .map_err(|_| CollectError::parse(&self.path, format!("{key}: {value:?} is not a number")))?;
                let kind = if counter { MetricType::Counter } else { MetricType::Gauge };
                out.add(&format!("node_drbd_{suffix}"), help, kind, &dev, v * mult);
            } else if let Some(&(_, suffix, help, ok)) = PAIRS.iter().find(|p| p.0 == key) {
                let mut sides = value.split('/');
                for node in ["local", "remote"] {
                    let v = f64::from(u8::from(sides.next() == Some(ok)));
                    out.gauge_with(&format!("node_drbd_{suffix}"), help, &[("device", &device), ("node", node)], v);
                }
            } else if key == "cs" {
                let v = f64::from(u8::from(value == "Connected"));
                out.gauge_with("node_drbd_connected", "Whether DRBD is connected to the peer.", &dev, v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("drbd", &|f| f.starts_with("node_drbd_"));
    }
}
