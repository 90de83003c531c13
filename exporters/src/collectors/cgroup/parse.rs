//! Parsers for the cgroup files the collector reads (v2 and the v1 equivalents).

/// `cpu.stat` (v2): times in microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CpuStat {
    /// `user_usec`.
    pub user_usec: u64,
    /// `system_usec`.
    pub system_usec: u64,
    /// `throttled_usec`, present when the cpu controller is enabled.
    pub throttled_usec: Option<u64>,
    /// `nr_throttled`.
    pub nr_throttled: Option<u64>,
}

/// Parses v2 `cpu.stat` (`key value` lines); `None` without `user_usec`/`system_usec`.
pub fn cpu_stat(text: &str) -> Option<CpuStat> {
    let (mut user, mut system, mut throttled, mut nr) = (None, None, None, None);
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(k), Some(v)) = (f.next(), f.next()) else { continue };
        let v = v.parse::<u64>().ok();
        match k {
            "user_usec" => user = v,
            "system_usec" => system = v,
            "throttled_usec" => throttled = v,
            "nr_throttled" => nr = v,
            _ => {}
        }
    }
    Some(CpuStat { user_usec: user?, system_usec: system?, throttled_usec: throttled, nr_throttled: nr })
}

/// A PSI file's `total=` values (µs) of its `some` and `full` lines.
pub fn pressure(text: &str) -> (Option<u64>, Option<u64>) {
    let total = |kind: &str| {
        let line = text.lines().find(|l| l.split_ascii_whitespace().next() == Some(kind))?;
        line.split_ascii_whitespace().find_map(|kv| kv.strip_prefix("total="))?.parse().ok()
    };
    (total("some"), total("full"))
}

/// One device's IO counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DevIo {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Bytes read.
    pub rbytes: u64,
    /// Bytes written.
    pub wbytes: u64,
    /// Read operations.
    pub rios: u64,
    /// Write operations.
    pub wios: u64,
}

fn dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Parses v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` per line.
pub fn io_stat(text: &str) -> Vec<DevIo> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some((major, minor)) = f.next().and_then(dev) else { continue };
        let mut d = DevIo { major, minor, ..DevIo::default() };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let v = v.parse().unwrap_or(0);
            match k {
                "rbytes" => d.rbytes = v,
                "wbytes" => d.wbytes = v,
                "rios" => d.rios = v,
                "wios" => d.wios = v,
                _ => {}
            }
        }
        out.push(d);
    }
    out
}

/// Parses v1 `blkio.throttle.io_service_bytes` + `blkio.throttle.io_serviced`
/// (`MAJ:MIN Read N` / `Write N` / … lines, then `Total N`) into per-device counters.
pub fn blkio_v1(bytes: &str, ops: &str) -> Vec<DevIo> {
    let mut out: Vec<DevIo> = Vec::new();
    let mut apply = |text: &str, is_bytes: bool| {
        for line in text.lines() {
            let mut f = line.split_ascii_whitespace();
            let (Some(d), Some(op), Some(v)) = (f.next(), f.next(), f.next()) else { continue };
            let Some((major, minor)) = dev(d) else { continue };
            let Ok(v) = v.parse::<u64>() else { continue };
            let idx = if let Some(i) = out.iter().position(|x| x.major == major && x.minor == minor) {
                i
            } else {
                out.push(DevIo { major, minor, ..DevIo::default() });
                out.len() - 1
            };
            let e = &mut out[idx];
            match (op, is_bytes) {
                ("Read", true) => e.rbytes = v,
                ("Write", true) => e.wbytes = v,
                ("Read", false) => e.rios = v,
                ("Write", false) => e.wios = v,
                _ => {}
            }
        }
    };
    apply(bytes, true);
    apply(ops, false);
    out
}

/// A single-number file (`memory.current`, `pids.current`); `max` reads as `None`.
pub fn single(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// v1 `cpuacct.stat`: `user` and `system` in USER_HZ ticks.
pub fn cpuacct_stat(text: &str) -> Option<(u64, u64)> {
    let (mut user, mut system) = (None, None);
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        match (f.next(), f.next().and_then(|v| v.parse::<u64>().ok())) {
            (Some("user"), v) => user = v,
            (Some("system"), v) => system = v,
            _ => {}
        }
    }
    Some((user?, system?))
}

/// `DEVNAME` of a `/sys/dev/block/MAJ:MIN/uevent` file.
pub fn uevent_devname(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("DEVNAME=")).map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/collectors/cgroup/fixtures").join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    const NGINX: &str = "v2/sys/fs/cgroup/system.slice/nginx.service";

    #[test]
    fn cpu_stat_with_and_without_the_cpu_controller() {
        let full = cpu_stat(&fixture(&format!("{NGINX}/cpu.stat"))).unwrap();
        assert_eq!(
            full,
            CpuStat {
                user_usec: 85_206_132,
                system_usec: 31_020_522,
                throttled_usec: Some(1_203_811),
                nr_throttled: Some(40)
            }
        );
        // Only the core lines (this machine's real file: no cpu controller in the subtree).
        let core = cpu_stat(&fixture("v2/sys/fs/cgroup/system.slice/cron.service/cpu.stat")).unwrap();
        assert_eq!(core, CpuStat { user_usec: 998_781, system_usec: 0, throttled_usec: None, nr_throttled: None });
        assert!(cpu_stat("usage_usec 5\n").is_none());
    }

    #[test]
    fn pressure_some_and_full() {
        assert_eq!(pressure(&fixture(&format!("{NGINX}/cpu.pressure"))), (Some(2805), Some(2804)));
        assert_eq!(pressure(&fixture(&format!("{NGINX}/io.pressure"))), (Some(5_004_639), Some(4_656_745)));
        assert_eq!(pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"), (Some(7), None));
    }

    #[test]
    fn io_stat_lines() {
        let v = io_stat(&fixture(&format!("{NGINX}/io.stat")));
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], DevIo { major: 254, minor: 0, rbytes: 2_215_936, wbytes: 487_424, rios: 112, wios: 61 });
        assert_eq!((v[2].major, v[2].minor), (259, 7));
        assert!(io_stat("garbage\n\n").is_empty());
    }

    #[test]
    fn memory_and_pids_single_values() {
        assert_eq!(single(&fixture(&format!("{NGINX}/memory.current"))), Some(9_433_088));
        assert_eq!(single(&fixture(&format!("{NGINX}/memory.peak"))), Some(14_229_504));
        assert_eq!(single(&fixture(&format!("{NGINX}/memory.swap.current"))), Some(0));
        assert_eq!(single(&fixture(&format!("{NGINX}/pids.current"))), Some(5));
        assert_eq!(single(&fixture(&format!("{NGINX}/pids.max"))), Some(4915));
        assert_eq!(single("max\n"), None);
    }

    #[test]
    fn v1_formats() {
        let d = "v1/sys/fs/cgroup";
        assert_eq!(
            cpuacct_stat(&fixture(&format!("{d}/cpu,cpuacct/system.slice/nginx.service/cpuacct.stat"))),
            Some((12526, 4376))
        );
        let io = blkio_v1(
            &fixture(&format!("{d}/blkio/system.slice/nginx.service/blkio.throttle.io_service_bytes")),
            &fixture(&format!("{d}/blkio/system.slice/nginx.service/blkio.throttle.io_serviced")),
        );
        assert_eq!(io, vec![DevIo { major: 254, minor: 0, rbytes: 1_048_576, wbytes: 4096, rios: 20, wios: 1 }]);
    }

    #[test]
    fn uevent() {
        assert_eq!(uevent_devname(&fixture("v2/sys/dev/block/254:0/uevent")), Some("vda"));
        assert_eq!(uevent_devname("MAJOR=1\n"), None);
    }
}
