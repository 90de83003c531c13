//! `kernel_hung`: tasks the kernel's hung-task detector has reported, from
//! `/proc/sys/kernel/hung_task_detect_count` (node_exporter compatible; enabled by default as
//! in current node_exporter; kernels without the file report no data).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "kernel_hung",
    default_enabled: true,
    help: "Exposes the number of tasks detected as hung since boot.",
    flags: &[],
    build: |ctx| Ok(Box::new(KernelHung { path: ctx.paths.proc("sys/kernel/hung_task_detect_count") })),
};

/// Reports `node_kernel_hung_tasks_total`.
struct KernelHung {
    path: PathBuf,
}

impl Collector for KernelHung {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let n = read_u64(&self.path).map_err(CollectError::missing_as_no_data)?;
        out.counter(
            "node_kernel_hung_tasks_total",
            "Total number of tasks that have been detected as hung since the system booted.",
            n as f64,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("kernel_hung", &|f| f.starts_with("node_kernel_hung_"));
    }
}
