//! The `cgroup` collector on the real kernel: a cgroup named like a service is created in the
//! host's cgroup file system (v2, or systemd's and the unified hierarchy of a hybrid host), a
//! busy child is moved into it, and the agent must report its CPU time and pressure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{TempDir, eventually, http_get, start_agent};

/// The cgroup directories created for the test unit, removed (child killed first) on drop.
struct TestUnit {
    dirs: Vec<PathBuf>,
    child: Option<Child>,
}

impl Drop for TestUnit {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // The whole process group: the shell's `sleep` child lives in the cgroup too.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", c.id())]).status();
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            // The kernel empties the cgroup once the killed child is reaped.
            let _ = eventually(Duration::from_secs(5), || std::fs::remove_dir(d).ok());
        }
    }
}

/// Where to create the unit: (hierarchies to create it in, the one that carries `cpu.stat`).
fn hierarchies(root: &Path) -> Option<Vec<PathBuf>> {
    if root.join("cgroup.controllers").is_file() {
        return Some(vec![root.to_owned()]);
    }
    let systemd = root.join("systemd");
    let unified = root.join("unified");
    (systemd.is_dir() && unified.join("cgroup.controllers").is_file()).then(|| vec![systemd, unified])
}

#[test]
fn busy_service_cgroup_reports_cpu_and_pressure() {
    let root = Path::new("/sys/fs/cgroup");
    let Some(hier) = hierarchies(root) else {
        println!("SKIP: no cgroup v2 or hybrid (systemd + unified) hierarchy at /sys/fs/cgroup on this host");
        return;
    };
    let unit = format!("osprey-it-{}.service", std::process::id());
    let mut t = TestUnit { dirs: Vec::new(), child: None };
    for h in &hier {
        let d = h.join(&unit);
        if let Err(e) = std::fs::create_dir(&d) {
            println!("SKIP: cannot create a cgroup in {} ({e}): needs root and a writable cgroup fs", h.display());
            return;
        }
        t.dirs.push(d);
    }
    let mut cmd = Command::new("sh");
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .args(["-c", "read x; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 300"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id().to_string();
    t.child = Some(child);
    for d in &t.dirs {
        std::fs::write(d.join("cgroup.procs"), &pid).expect("move the child into the test cgroup");
    }
    // Release the loop only now, so its CPU time is charged to the test cgroup.
    if let Some(stdin) = t.child.as_mut().and_then(|c| c.stdin.as_mut()) {
        use std::io::Write as _;
        stdin.write_all(b"go\n").expect("release");
    }
    let dir = TempDir::new("cgroup-live");
    let agent = start_agent(
        &["--collector.disable-defaults", "--collector.cgroup", &format!("--collector.cgroup.unit-include={unit}")],
        &dir,
    );
    let user_cpu = format!("systemd_unit_cpu_seconds_total{{mode=\"user\",name=\"{unit}\",type=\"service\"}} ");
    let body = eventually(Duration::from_secs(20), || {
        let b = http_get(agent.port, "/metrics").ok()?.text();
        let v: f64 = b.lines().find_map(|l| l.strip_prefix(&user_cpu))?.parse().ok()?;
        (v > 0.05).then_some(b)
    });
    let body = body.unwrap_or_else(|| {
        panic!("no user CPU for {unit}: {}", http_get(agent.port, "/metrics").map(|r| r.text()).unwrap_or_default())
    });
    assert!(body.contains(&format!("osprey_service_pressure_cpu_waiting_seconds_total{{name=\"{unit}\"}}")), "{body}");
    assert!(body.contains("node_scrape_collector_success{collector=\"cgroup\"} 1"), "{body}");
    // Only the test unit passes the include filter.
    let names: Vec<&str> =
        body.lines().filter_map(|l| l.split("name=\"").nth(1)).filter_map(|r| r.split('"').next()).collect();
    assert!(names.iter().all(|n| *n == unit), "{names:?}");
    drop(agent);
    drop(t);
}
