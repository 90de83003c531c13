//! `bonding`: configured and active slaves of Linux bonding interfaces, from
//! `/sys/class/net/bonding_masters` and each slave's `bonding_slave/mii_status`.

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "bonding",
    default_enabled: true,
    help: "Exposes the number of configured and active slaves of Linux bonding interfaces.",
    flags: &[],
    build: |ctx| Ok(Box::new(Bonding { net: ctx.paths.sys("class/net") })),
};

/// Reads the bonding state under `/sys/class/net`.
struct Bonding {
    net: PathBuf,
}

impl Collector for Bonding {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let masters = read_string_or_no_data(&self.net.join("bonding_masters"))?;
        // node_exporter reads every master before emitting anything: one bad file fails all.
        let mut stats = Vec::new();
        for master in masters.split_ascii_whitespace() {
            let dir = self.net.join(master);
            let slaves = read_string(&dir.join("bonding/slaves"))?;
            let (mut configured, mut active) = (0u32, 0u32);
            for slave in slaves.split_ascii_whitespace() {
                let state = match read_string(&dir.join(format!("lower_{slave}/bonding_slave/mii_status"))) {
                    // Older kernels name the link `slave_<name>`.
                    Err(e) if e.is_not_found() => {
                        read_string(&dir.join(format!("slave_{slave}/bonding_slave/mii_status")))?
                    }
                    r => r?,
                };
                configured += 1;
                if is_up(&state) {
                    active += 1;
                }
            }
            stats.push((master, configured, active));
        }
        for (master, configured, active) in stats {
            let l = &[("master", master)];
            out.gauge_with(
                "node_bonding_slaves",
                "Number of configured slaves per bonding interface.",
                l,
                f64::from(configured),
            );
            out.gauge_with(
                "node_bonding_active",
                "Number of active slaves per bonding interface.",
                l,
                f64::from(active),
            );
        }
        Ok(())
    }
}

/// True when a `mii_status` attribute says the link is up.
fn is_up(mii_status: &str) -> bool {
    mii_status.trim() == "up"
}

#[cfg(test)]
mod tests {
    #[test]
    fn mii_status_up_only_when_exactly_up() {
        assert!(super::is_up("up\n"));
        assert!(!super::is_up("down\n"));
        assert!(!super::is_up("upper"));
    }

    #[test]
    fn missing_bonding_masters_is_no_data() {
        let dir = std::env::temp_dir().join(format!("osprey-bonding-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = super::Bonding { net: dir.clone() };
        let mut sink = agent_core::Sink::new();
        let r = agent_core::Collector::collect(&c, &mut sink);
        assert!(matches!(r, Err(agent_core::CollectError::NoData)));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[cfg(test)]
mod conformance {
    #[test]
    fn matches_upstream_e2e() {
        crate::testutil::assert_matches_e2e("bonding", &|f| f.starts_with("node_bonding_"));
    }
}
