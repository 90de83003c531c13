//! `entropy`: available entropy from `/proc/sys/kernel/random` (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "entropy",
    default_enabled: true,
    help: "Exposes available entropy.",
    flags: &[],
    build: |ctx| Ok(Box::new(Entropy { dir: ctx.paths.proc("sys/kernel/random") })),
};

/// Reports `node_entropy_available_bits` and `node_entropy_pool_size_bits`.
struct Entropy {
    dir: PathBuf,
}

impl Collector for Entropy {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let avail = read_u64(&self.dir.join("entropy_avail"))?;
        out.gauge("node_entropy_available_bits", "Bits of available entropy.", avail as f64);
        let pool = read_u64(&self.dir.join("poolsize"))?;
        out.gauge("node_entropy_pool_size_bits", "Bits of entropy pool.", pool as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("entropy", &|f| f.starts_with("node_entropy_"));
    }
}
