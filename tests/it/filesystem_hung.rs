//! A really hung mount: a FUSE file system whose server never answers (the `/dev/fuse` fd is
//! held open and never read), mounted in a private mount namespace. `statfs` on it blocks
//! forever, as on a dead NFS server. The agent must report it with
//! `node_filesystem_device_error 1` and keep answering scrapes quickly.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{TempDir, agent_bin, eventually, free_port, http_get};

/// Whether this machine can run the test (root, `unshare`, `/dev/fuse`); with
/// `OSPREY_REQUIRE_PEERS=1` a missing piece is a failure.
fn fuse_available() -> bool {
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let ok = root && Path::new("/dev/fuse").exists() && Path::new("/usr/bin/unshare").exists();
    if !ok {
        assert!(
            std::env::var("OSPREY_REQUIRE_PEERS").as_deref() != Ok("1"),
            "hung-mount test needs root, /dev/fuse and unshare (OSPREY_REQUIRE_PEERS=1)"
        );
        eprintln!("SKIP: hung-mount test needs root, /dev/fuse and unshare");
    }
    ok
}

#[test]
fn stuck_mount_does_not_block_scrape() {
    if !fuse_available() {
        return;
    }
    let dir = TempDir::new("hungfs");
    let mnt = dir.join("hung");
    let fake_proc = dir.join("proc");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    std::fs::create_dir_all(fake_proc.join("1")).expect("mkdir");
    std::fs::copy("/proc/stat", fake_proc.join("stat")).expect("copy /proc/stat");
    let port = free_port();
    // Inside a private mount namespace: open /dev/fuse as fd 3, mount it (the agent inherits
    // fd 3 and never reads it, so the FUSE connection stays alive and unanswered), publish
    // the namespace's mount table as the fake procfs' 1/mountinfo, then exec the agent.
    let script = format!(
        "set -e; exec 3<>/dev/fuse; \
         mount -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 osprey-hung '{mnt}'; \
         cp /proc/self/mountinfo '{proc}/1/mountinfo'; \
         exec '{bin}' --path.procfs='{proc}' --collector.disable-defaults --collector.filesystem \
           --collector.filesystem.mount-timeout=500ms --web.listen-address=127.0.0.1:{port}",
        mnt = mnt.display(),
        proc = fake_proc.display(),
        bin = agent_bin().display(),
    );
    let log = std::fs::File::create(dir.join("agent.log")).expect("log");
    let mut child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stderr(log)
        .spawn()
        .expect("unshare");
    let mountpoint = format!("mountpoint=\"{}\"", mnt.display());
    let result = (|| {
        eventually(Duration::from_secs(30), || http_get(port, "/-/healthy").ok().filter(|r| r.status == 200))
            .ok_or("agent did not start")?;
        let mut timings = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let body = http_get(port, "/metrics").map_err(|_| "scrape failed")?.text();
            timings.push(start.elapsed());
            let line = body
                .lines()
                .find(|l| l.starts_with("node_filesystem_device_error{") && l.contains(&mountpoint))
                .ok_or("hung mount not reported")?
                .to_owned();
            if !line.ends_with(" 1") {
                return Err("hung mount not reported as device_error 1");
            }
            if !body.contains("node_scrape_collector_success{collector=\"filesystem\"} 1") {
                return Err("filesystem collector failed as a whole");
            }
        }
        Ok(timings)
    })();
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    let timings = result.unwrap_or_else(|e| panic!("{e}; agent log:\n{log}"));
    println!("scrape times with a hung mount: {timings:?}");
    // First scrape waits for the 500 ms mount timeout; later scrapes skip the stuck mount.
    assert!(timings[0] < Duration::from_secs(2), "first scrape took {:?}", timings[0]);
    for t in &timings[1..] {
        assert!(*t < Duration::from_millis(400), "later scrapes must skip the stuck mount: {timings:?}");
    }
}
