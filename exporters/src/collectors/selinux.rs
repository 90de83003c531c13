//! `selinux`: whether SELinux is enabled and its configured and current enforcement modes
//! (node_exporter compatible; it uses the go-selinux library, whose checks we follow).
//!
//! SELinux counts as enabled when selinuxfs is mounted read-write at `<sysfs>/fs/selinux` and
//! our own security context is not `kernel`. Unlike go-selinux we do not search the mount
//! table for selinuxfs mounted elsewhere (only pre-3.0 kernels used `/selinux`).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "selinux",
    default_enabled: true,
    help: "Exposes SELinux statistics.",
    flags: &[],
    build: |ctx| {
        Ok(Box::new(Selinux {
            selinuxfs: ctx.paths.sys("fs/selinux"),
            config: ctx.paths.root("etc/selinux/config"),
            context: ctx.paths.proc("thread-self/attr/current"),
            check_fs_type: true,
        }))
    },
};

/// `SELINUX_MAGIC`: the file system type of selinuxfs.
const SELINUX_MAGIC: u32 = 0xf97c_ff8c;

/// Reads the SELinux state.
struct Selinux {
    /// Where selinuxfs is mounted.
    selinuxfs: PathBuf,
    /// `/etc/selinux/config`.
    config: PathBuf,
    /// Our security context (`/proc/thread-self/attr/current`).
    context: PathBuf,
    /// Require `selinuxfs` to really be selinuxfs (off only in tests on plain directories).
    check_fs_type: bool,
}

impl Selinux {
    /// True when selinuxfs is mounted read-write at `self.selinuxfs`.
    fn selinuxfs_mounted(&self) -> bool {
        if !self.check_fs_type {
            return self.selinuxfs.join("enforce").exists();
        }
        match rustix::fs::statfs(&self.selinuxfs) {
            Ok(st) => st.f_type as u32 == SELINUX_MAGIC && (st.f_flags as u64 & 1) == 0, // ST_RDONLY
            Err(_) => false,
        }
    }

    /// go-selinux's `GetEnabled`.
    fn enabled(&self) -> bool {
        // An unreadable context counts as "not kernel", as in go-selinux.
        self.selinuxfs_mounted() && !is_kernel_context(&std::fs::read(&self.context).unwrap_or_default())
    }
}

impl Collector for Selinux {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        let enabled_help = "SELinux is enabled, 1 is true, 0 is false";
        if !self.enabled() {
            out.gauge("node_selinux_enabled", enabled_help, 0.0);
            return Ok(());
        }
        out.gauge("node_selinux_enabled", enabled_help, 1.0);
        let config = std::fs::read_to_string(&self.config).unwrap_or_default();
        out.gauge("node_selinux_config_mode", "Configured SELinux enforcement mode", config_mode(&config) as f64);
        let enforce = std::fs::read(self.selinuxfs.join("enforce")).ok();
        out.gauge(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
            enforce.map_or(-1, |b| current_mode(&b)) as f64,
        );
        Ok(())
    }
}

/// True when a security context (as read from `attr/current`) is the kernel's.
fn is_kernel_context(raw: &[u8]) -> bool {
    raw.strip_suffix(b"\0").unwrap_or(raw) == b"kernel"
}

/// The `SELINUX=` mode of `/etc/selinux/config`: 1 enforcing, 0 permissive, -1 otherwise.
fn config_mode(config: &str) -> i64 {
    let value = config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
        .find_map(|l| l.split_once('=').filter(|(k, _)| *k == "SELINUX").map(|(_, v)| v.trim_matches('"')));
    match value {
        Some("enforcing") => 1,
        Some("permissive") => 0,
        _ => -1,
    }
}

/// selinuxfs `enforce` as an integer (the kernel writes it without a newline); -1 if invalid.
fn current_mode(enforce: &[u8]) -> i64 {
    std::str::from_utf8(enforce).ok().and_then(|s| s.parse().ok()).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_mode_reads_selinux_key_only() {
        let cfg = "# SELINUX=enforcing\n\nSELINUXTYPE=targeted\n  SELINUX=\"permissive\"  \n";
        assert_eq!(config_mode(cfg), 0);
        assert_eq!(config_mode("SELINUX=enforcing\n"), 1);
        assert_eq!(config_mode("SELINUX=disabled\n"), -1);
        assert_eq!(config_mode("SELINUX = enforcing\n"), -1, "go-selinux does not trim around '='");
        assert_eq!(config_mode(""), -1);
    }

    #[test]
    fn current_mode_is_a_bare_integer() {
        assert_eq!(current_mode(b"1"), 1);
        assert_eq!(current_mode(b"0"), 0);
        assert_eq!(current_mode(b"1\n"), -1);
    }

    #[test]
    fn kernel_context_disables() {
        assert!(is_kernel_context(b"kernel\0"));
        assert!(is_kernel_context(b"kernel"));
        assert!(!is_kernel_context(b"system_u:system_r:unconfined_t:s0\0"));
        assert!(!is_kernel_context(b""));
    }

    /// A fake selinuxfs, config and context in a temp dir.
    fn fake(name: &str, enforce: Option<&str>, config: &str, context: &str) -> (PathBuf, Selinux) {
        let dir = std::env::temp_dir().join(format!("osprey-selinux-{name}-{}", std::process::id()));
        let fs = dir.join("sys/fs/selinux");
        std::fs::create_dir_all(&fs).unwrap();
        if let Some(e) = enforce {
            std::fs::write(fs.join("enforce"), e).unwrap();
        }
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("current"), context).unwrap();
        let c =
            Selinux { selinuxfs: fs, config: dir.join("config"), context: dir.join("current"), check_fs_type: false };
        (dir, c)
    }

    /// Collects and returns `name value` lines (sorted).
    fn run(c: &Selinux) -> Vec<String> {
        let mut sink = Sink::new();
        c.collect(&mut sink).unwrap();
        let mut v: Vec<String> = sink.families().iter().map(|f| format!("{} {}", f.name, f.samples[0].value)).collect();
        v.sort();
        v
    }

    #[test]
    fn enabled_reports_both_modes() {
        let (dir, c) = fake("on", Some("0"), "SELINUX=enforcing\n", "system_u:system_r:init_t:s0\0");
        assert_eq!(run(&c), ["node_selinux_config_mode 1", "node_selinux_current_mode 0", "node_selinux_enabled 1"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_selinuxfs_or_kernel_context_is_disabled() {
        let (dir, c) = fake("nofs", None, "SELINUX=enforcing\n", "system_u:system_r:init_t:s0\0");
        assert_eq!(run(&c), ["node_selinux_enabled 0"]);
        std::fs::remove_dir_all(dir).unwrap();
        let (dir, c) = fake("kernel", Some("1"), "SELINUX=enforcing\n", "kernel\0");
        assert_eq!(run(&c), ["node_selinux_enabled 0"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn plain_directory_is_not_selinuxfs() {
        let (dir, mut c) = fake("plain", Some("1"), "SELINUX=enforcing\n", "x\0");
        c.check_fs_type = true;
        assert_eq!(run(&c), ["node_selinux_enabled 0"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[cfg(test)]
mod conformance {
    use crate::testutil::{fixtures, run_on_fixtures, select_lines};

    /// Upstream's e2e run disables `selinux` (its output depends on the host), so
    /// e2e-output.txt holds none of its families; on the fixture tree (no selinuxfs) we
    /// report SELinux as disabled, exactly as node_exporter does on such a host.
    #[test]
    fn matches_upstream_e2e() {
        let e2e = std::fs::read_to_string(fixtures().join("e2e-output.txt")).unwrap();
        assert!(select_lines(&e2e, &|f| f.starts_with("node_selinux_")).is_empty());
        assert_eq!(
            run_on_fixtures("selinux"),
            "# HELP node_selinux_enabled SELinux is enabled, 1 is true, 0 is false\n\
             # TYPE node_selinux_enabled gauge\nnode_selinux_enabled 0\n"
        );
    }
}
