//! Tests of the `filesystem` collector: mountinfo fixtures, filters and hung mounts.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicUsize;

use agent_core::encode::{Format, encode};
use agent_core::model::normalize;

use super::*;
use crate::catalog::Value;
use crate::testutil::{conformance_dir, fixture_ctx};

/// A `statfs` that answers the same numbers for every path.
fn fixed_stat() -> StatFn {
    Arc::new(|_: &Path| {
        Ok(FsStats { block_size: 4096, blocks: 1000, blocks_free: 500, blocks_avail: 400, files: 100, files_free: 60 })
    })
}

/// Mount points the collector sees with `procfs` (and `rootfs`).
fn mountpoints(procfs: PathBuf, rootfs: &str) -> BTreeSet<String> {
    let mut ctx = fixture_ctx(&[]);
    ctx.paths.procfs = procfs;
    ctx.paths.rootfs = rootfs.into();
    let c = Filesystem::new(&ctx, fixed_stat()).unwrap();
    c.mounts().unwrap().into_iter().map(|m| m.mountpoint).collect()
}

/// Runs one scrape and returns the exposition text.
fn scrape(c: &Filesystem) -> String {
    let mut sink = Sink::new();
    c.collect(&mut sink).unwrap();
    let mut fams = sink.into_families();
    normalize(&mut fams);
    let mut out = Vec::new();
    encode(&mut out, &fams, Format::Text);
    String::from_utf8(out).unwrap()
}

#[test]
fn mountpoints_of_pid1_fixture() {
    let got = mountpoints(conformance_dir().join("fixtures/proc"), "/");
    let vmdk = "bafb9e5a-8856-7e6c-699c-801844e77a4a/kubernetes-dynamic-pvc-3eba5bba-48a3-11e8-89ab-005056b92113.vmdk";
    let mut want: BTreeSet<String> = [
        "/",
        "/sys",
        "/proc",
        "/dev",
        "/dev/pts",
        "/run",
        "/sys/kernel/security",
        "/dev/shm",
        "/run/lock",
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/systemd",
        "/sys/fs/pstore",
        "/sys/fs/cgroup/cpuset",
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/devices",
        "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup/net_cls,net_prio",
        "/sys/fs/cgroup/blkio",
        "/sys/fs/cgroup/perf_event",
        "/proc/sys/fs/binfmt_misc",
        "/dev/mqueue",
        "/sys/kernel/debug",
        "/dev/hugepages",
        "/sys/fs/fuse/connections",
        "/boot",
        "/run/rpc_pipefs",
        "/run/user/1000",
        "/run/user/1000/gvfs",
        "/var/lib/containers/storage/overlay",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let base = "/var/lib/kubelet/plugins/kubernetes.io/vsphere-volume/mounts/[vsanDatastore]";
    want.insert(format!("{base} {vmdk}"));
    want.insert(format!("{base}\t{vmdk}"));
    assert_eq!(got, want);
}

#[test]
fn falls_back_to_self_mountinfo_when_pid1_is_hidden() {
    let got = mountpoints(conformance_dir().join("fixtures_hidepid/proc"), "/");
    assert_eq!(got, BTreeSet::from(["/".to_owned()]));
}

#[test]
fn rootfs_prefix_is_stripped_from_mountpoints() {
    let got = mountpoints(conformance_dir().join("fixtures_bindmount/proc"), "/host");
    let want = ["/", "/media/volume1", "/media/volume2", "/dev/shm", "/run/lock", "/sys/fs/cgroup"];
    assert_eq!(got, want.into_iter().map(String::from).collect());
}

#[test]
fn missing_mountinfo_is_an_error() {
    let mut ctx = fixture_ctx(&[]);
    ctx.paths.procfs = "/nonexistent/proc".into();
    let c = Filesystem::new(&ctx, fixed_stat()).unwrap();
    let err = c.collect(&mut Sink::new()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/proc/self/mountinfo"), "{err}");
}

#[test]
fn default_filters_and_metrics_on_fixture() {
    let mut ctx = fixture_ctx(&[]);
    ctx.paths.rootfs = "/".into();
    let c = Filesystem::new(&ctx, fixed_stat()).unwrap();
    let text = scrape(&c);
    let devices: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("node_filesystem_readonly{"))
        .map(|l| l.split("mountpoint=\"").nth(1).unwrap().split('"').next().unwrap())
        .collect();
    // /dev, /proc, /sys, docker/containers storage and pseudo file systems are excluded.
    assert_eq!(devices.len(), 8, "{devices:?}");
    assert!(devices.contains("/") && devices.contains("/boot") && devices.contains("/run/user/1000/gvfs"));
    for line in [
        "node_filesystem_size_bytes{device=\"/dev/dm-2\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 4.096e+06",
        "node_filesystem_free_bytes{device=\"/dev/dm-2\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 2.048e+06",
        "node_filesystem_avail_bytes{device=\"/dev/dm-2\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 1.6384e+06",
        "node_filesystem_files{device=\"/dev/dm-2\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 100",
        "node_filesystem_files_free{device=\"/dev/dm-2\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 60",
        "node_filesystem_readonly{device=\"/dev/dm-2\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 0",
        "node_filesystem_device_error{device=\"/dev/dm-2\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 0",
        "node_filesystem_mount_info{device=\"/dev/dm-2\",major=\"259\",minor=\"2\",mountpoint=\"/\"} 1",
        "# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.",
        "# TYPE node_filesystem_avail_bytes gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
}

#[test]
fn statfs_errors_are_reported_per_mount() {
    let mut ctx = fixture_ctx(&[(MP_INCLUDE, Value::Str("^/(boot|run)$".into()))]);
    ctx.paths.rootfs = "/".into();
    let stat: StatFn =
        Arc::new(
            |p: &Path| {
                if p == Path::new("/boot") { Err(io::Error::from_raw_os_error(13)) } else { fixed_stat()(p) }
            },
        );
    let text = scrape(&Filesystem::new(&ctx, stat).unwrap());
    let boot = "{device=\"/dev/sda3\",device_error=\"permission denied\",fstype=\"ext2\",mountpoint=\"/boot\"}";
    assert!(text.contains(&format!("node_filesystem_device_error{boot} 1")), "{text}");
    assert!(text.contains(&format!("node_filesystem_readonly{boot} 0")), "{text}");
    assert!(!text.contains("node_filesystem_size_bytes{device=\"/dev/sda3\""), "{text}");
    assert!(text.contains(
        "node_filesystem_size_bytes{device=\"tmpfs\",device_error=\"\",fstype=\"tmpfs\",mountpoint=\"/run\"}"
    ));
}

#[test]
fn include_flags_replace_default_excludes() {
    let s = |v: &str| Value::Str(v.into());
    let ctx = fixture_ctx(&[(MP_INCLUDE, s("^/run")), (FS_INCLUDE, s("^tmpfs$"))]);
    let c = Filesystem::new(&ctx, fixed_stat()).unwrap();
    assert!(!c.mountpoints.ignored("/run/lock") && c.mountpoints.ignored("/"));
    assert!(!c.fs_types.ignored("tmpfs") && c.fs_types.ignored("ext4"));
    let ctx = fixture_ctx(&[(MP_INCLUDE, s("^/run")), (MP_EXCLUDE, s("^/x"))]);
    assert!(Filesystem::new(&ctx, fixed_stat()).is_err());
    let ctx = fixture_ctx(&[(TIMEOUT, s("5 parsecs"))]);
    let err = Filesystem::new(&ctx, fixed_stat()).err().unwrap().to_string();
    assert!(err.contains("--collector.filesystem.mount-timeout"), "{err}");
}

#[test]
fn go_durations_and_errors() {
    assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
    assert_eq!(parse_go_duration("5"), None);
    assert_eq!(parse_go_duration(""), None);
    assert_eq!(go_error_string(&io::Error::from_raw_os_error(2)), "no such file or directory");
    assert_eq!(go_error_string(&io::Error::from_raw_os_error(5)), "input/output error");
}

/// A temporary procfs holding `proc/1/mountinfo` with `text`.
fn temp_procfs(tag: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("osprey-fs-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("1")).unwrap();
    std::fs::write(dir.join("1/mountinfo"), text).unwrap();
    dir
}

#[test]
fn stuck_mount_does_not_block_scrape() {
    let procfs = temp_procfs(
        "stuck",
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:50 / /stuck rw - nfs srv:/x rw\n3 1 8:2 / /data rw - xfs /dev/sda2 rw\n",
    );
    let mut ctx = fixture_ctx(&[(TIMEOUT, Value::Str("100ms".into()))]);
    ctx.paths.procfs = procfs.clone();
    ctx.paths.rootfs = "/".into();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let stuck_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&stuck_calls);
    let stat: StatFn = Arc::new(move |p: &Path| {
        if p == Path::new("/stuck") && calls.fetch_add(1, Ordering::SeqCst) == 0 {
            // The first statfs of /stuck hangs until the test releases it.
            let _ = gate.lock().unwrap().recv();
        }
        fixed_stat()(p)
    });
    let c = Filesystem::new(&ctx, stat).unwrap();
    let stuck_line = "node_filesystem_device_error{device=\"srv:/x\",device_error=\"mountpoint timeout\",fstype=\"nfs\",mountpoint=\"/stuck\"} 1";

    let t = Instant::now();
    let text = scrape(&c);
    assert!(t.elapsed() < Duration::from_millis(900), "first scrape took {:?}", t.elapsed());
    assert!(text.contains(stuck_line), "{text}");
    assert!(!text.contains("node_filesystem_size_bytes{device=\"srv:/x\""), "{text}");
    assert!(text.contains("node_filesystem_size_bytes{device=\"/dev/sda2\""), "{text}");

    // While stuck, the mount is skipped without a new statfs and without waiting.
    let t = Instant::now();
    let text = scrape(&c);
    assert!(t.elapsed() < Duration::from_millis(90), "second scrape took {:?}", t.elapsed());
    assert!(text.contains(stuck_line), "{text}");
    assert_eq!(stuck_calls.load(Ordering::SeqCst), 1);

    // Once the hung statfs returns, the mount is monitored again.
    release.send(()).unwrap();
    let t = Instant::now();
    while c.stuck.lock().unwrap().contains("/stuck") {
        assert!(t.elapsed() < Duration::from_secs(5), "mount never recovered");
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = scrape(&c);
    assert!(text.contains("node_filesystem_size_bytes{device=\"srv:/x\",device_error=\"\",fstype=\"nfs\",mountpoint=\"/stuck\"} 4.096e+06"), "{text}");
    assert_eq!(stuck_calls.load(Ordering::SeqCst), 2);
    let _ = std::fs::remove_dir_all(procfs);
}
