//! `uname`: `node_uname_info` from the uname system call (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "uname",
    default_enabled: true,
    help: "Exposes system information as provided by the uname system call.",
    flags: &[],
    build: |_| Ok(Box::new(Uname)),
};

/// Reports `node_uname_info` with the uname fields as labels.
struct Uname;

impl Collector for Uname {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let u = rustix::system::uname();
        let s = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
        out.add_owned(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            MetricType::Gauge,
            vec![
                ("domainname".into(), s(u.domainname())),
                ("machine".into(), s(u.machine())),
                ("nodename".into(), s(u.nodename())),
                ("release".into(), s(u.release())),
                ("sysname".into(), s(u.sysname())),
                ("version".into(), s(u.version())),
            ],
            1.0,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_one_info_series() {
        let mut sink = Sink::new();
        Uname.collect(&mut sink).unwrap();
        let f = &sink.families()[0];
        assert_eq!(f.samples[0].label("sysname"), Some("Linux"));
        assert_eq!(f.samples[0].labels.len(), 6);
    }
}
