//! `xfrm`: IPsec transformation statistics from `/proc/net/xfrm_stat` (node_exporter
//! compatible; disabled by default as there; kernels without XFRM report no data).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "xfrm",
    default_enabled: false,
    help: "Exposes statistics from /proc/net/xfrm_stat.",
    flags: &[],
    build: |ctx| Ok(Box::new(Xfrm { path: ctx.paths.proc("net/xfrm_stat") })),
};

/// (`xfrm_stat` key, metric suffix, HELP): every counter node_exporter reports; a key the
/// kernel does not print reads as 0, as there.
const STATS: &[(&str, &str, &str)] = &[
    ("XfrmInError", "in_error_packets_total", "All errors not matched by other"),
    ("XfrmInBufferError", "in_buffer_error_packets_total", "No buffer is left"),
    ("XfrmInHdrError", "in_hdr_error_packets_total", "Header error"),
    (
        "XfrmInNoStates",
        "in_no_states_packets_total",
        "No state is found i.e. Either inbound SPI, address, or IPsec protocol at SA is wrong",
    ),
    (
        "XfrmInStateProtoError",
        "in_state_proto_error_packets_total",
        "Transformation protocol specific error e.g. SA key is wrong",
    ),
    ("XfrmInStateModeError", "in_state_mode_error_packets_total", "Transformation mode specific error"),
    ("XfrmInStateSeqError", "in_state_seq_error_packets_total", "Sequence error i.e. Sequence number is out of window"),
    ("XfrmInStateExpired", "in_state_expired_packets_total", "State is expired"),
    (
        "XfrmInStateMismatch",
        "in_state_mismatch_packets_total",
        "State has mismatch option e.g. UDP encapsulation type is mismatch",
    ),
    ("XfrmInStateInvalid", "in_state_invalid_packets_total", "State is invalid"),
    (
        "XfrmInTmplMismatch",
        "in_tmpl_mismatch_packets_total",
        "No matching template for states e.g. Inbound SAs are correct but SP rule is wrong",
    ),
    (
        "XfrmInNoPols",
        "in_no_pols_packets_total",
        "No policy is found for states e.g. Inbound SAs are correct but no SP is found",
    ),
    ("XfrmInPolBlock", "in_pol_block_packets_total", "Policy discards"),
    ("XfrmInPolError", "in_pol_error_packets_total", "Policy error"),
    ("XfrmOutError", "out_error_packets_total", "All errors which is not matched others"),
    ("XfrmOutBundleGenError", "out_bundle_gen_error_packets_total", "Bundle generation error"),
    ("XfrmOutBundleCheckError", "out_bundle_check_error_packets_total", "Bundle check error"),
    ("XfrmOutNoStates", "out_no_states_packets_total", "No state is found"),
    ("XfrmOutStateProtoError", "out_state_proto_error_packets_total", "Transformation protocol specific error"),
    ("XfrmOutStateModeError", "out_state_mode_error_packets_total", "Transformation mode specific error"),
    ("XfrmOutStateSeqError", "out_state_seq_error_packets_total", "Sequence error i.e. Sequence number overflow"),
    ("XfrmOutStateExpired", "out_state_expired_packets_total", "State is expired"),
    ("XfrmOutPolBlock", "out_pol_block_packets_total", "Policy discards"),
    ("XfrmOutPolDead", "out_pol_dead_packets_total", "Policy is dead"),
    ("XfrmOutPolError", "out_pol_error_packets_total", "Policy error"),
    ("XfrmFwdHdrError", "fwd_hdr_error_packets_total", "Forward routing of a packet is not allowed"),
    ("XfrmOutStateInvalid", "out_state_invalid_packets_total", "State is invalid, perhaps expired"),
    ("XfrmAcquireError", "acquire_error_packets_total", "State hasn’t been fully acquired before use"),
];

/// Reports `node_xfrm_*_packets_total`.
struct Xfrm {
    path: PathBuf,
}

impl Collector for Xfrm {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let text = read_string_or_no_data(&self.path)?;
        let mut values = [0.0; STATS.len()];
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut f = line.split_ascii_whitespace();
            let (Some(key), Some(v), None) = (f.next(), f.next(), f.next()) else {
                return Err(CollectError::parse(&self.path, format!("expected `key value`, got {line:?}")));
            };
            let v: u64 =
                v.parse().map_err(|_| CollectError::parse(&self.path, format!("{key}: {v:?} is not a count")))?;
            if let Some(i) = STATS.iter().position(|(k, _, _)| *k == key) {
                values[i] = v as f64;
            }
        }
        for ((_, suffix, help), v) in STATS.iter().zip(values) {
            out.counter(&format!("node_xfrm_{suffix}"), help, v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("xfrm", &|f| f.starts_with("node_xfrm_"));
    }
}
