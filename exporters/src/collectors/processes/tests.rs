//! The collector against the real `/proc`, with child processes of known names.

use std::collections::HashMap;
use std::process::{Child, Command};

use agent_core::Sink;

use crate::catalog::{Ctx, Value};

/// A copy of `sleep` named `name` (comm is the executable's file name), started `n` times.
struct Kids {
    dir: PathBuf,
    children: Vec<Child>,
}

use super::*;

impl Kids {
    fn start(name: &str, n: usize, script: Option<&str>) -> Self {
        let dir = std::env::temp_dir().join(format!("osprey-proc-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = if script.is_some() { "/bin/sh" } else { "/bin/sleep" };
        let exe = dir.join(name);
        std::fs::copy(src, &exe).unwrap();
        let children = (0..n)
            .map(|_| {
                let mut c = Command::new(&exe);
                std::os::unix::process::CommandExt::process_group(&mut c, 0);
                match script {
                    Some(s) => c.args(["-c", s]),
                    None => c.arg("300"),
                };
                c.spawn().unwrap()
            })
            .collect();
        Self { dir, children }
    }
}

impl Kids {
    /// Kills every child with its whole process group (grandchildren too).
    fn kill_all(&mut self) {
        for c in &mut self.children {
            if let Some(pid) = rustix::process::Pid::from_raw(c.id().cast_signed()) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = c.wait();
        }
    }
}

/// True when some process has `pid` as its parent.
fn has_child(pid: u32) -> bool {
    read::list_pids(Path::new("/proc")).unwrap().into_iter().any(|p| {
        std::fs::read(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|b| read::parse_stat(&b))
            .is_some_and(|s| s.ppid == pid.cast_signed())
    })
}

impl Drop for Kids {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn collector(toml: &str) -> Box<dyn Collector> {
    let values = crate::config_file::parse(toml, "test.toml").unwrap();
    let mut map = HashMap::new();
    map.insert("processes".to_owned(), values["processes"].clone());
    let ctx = Ctx { paths: HostPaths::default(), values: map };
    (DEF.build)(&ctx).unwrap()
}

fn scrape(c: &dyn Collector) -> HashMap<String, f64> {
    let mut sink = Sink::new();
    c.collect(&mut sink).unwrap();
    let mut out = HashMap::new();
    for f in sink.families() {
        for s in &f.samples {
            let labels: Vec<String> = s.labels.iter().map(|l| format!("{}={}", l.0, l.1)).collect();
            out.insert(format!("{}{{{}}}", f.name, labels.join(",")), s.value);
        }
    }
    out
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

#[test]
fn counts_procs_threads_and_fds_of_named_children() {
    let kids = Kids::start("ospreyslpA", 3, None);
    let c = collector("[[processes.group]]\nname = \"g-{{.Comm}}\"\ncomm = [\"ospreyslpA\"]\n");
    let pids: Vec<u32> = kids.children.iter().map(Child::id).collect();
    // The children may not have exec'd yet: wait until their comm is the copy's name.
    assert!(wait_until(|| pids
        .iter()
        .all(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "ospreyslpA"))));
    let m = scrape(&*c);
    assert_eq!(m["namedprocess_namegroup_num_procs{groupname=g-ospreyslpA}"], 3.0, "{m:?}");
    assert_eq!(m["namedprocess_namegroup_num_threads{groupname=g-ospreyslpA}"], 3.0);
    let fds: usize = pids.iter().map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).unwrap().count()).sum();
    assert_eq!(m["namedprocess_namegroup_open_filedesc{groupname=g-ospreyslpA}"], fds as f64);
    assert_eq!(m["namedprocess_namegroup_states{groupname=g-ospreyslpA,state=Sleeping}"], 3.0);
    assert!(m["namedprocess_namegroup_oldest_start_time_seconds{groupname=g-ospreyslpA}"] > 1.6e9);
    assert!(m["namedprocess_namegroup_worst_fd_ratio{groupname=g-ospreyslpA}"] > 0.0);
}

#[test]
fn exited_processes_keep_counters_and_the_group() {
    // Children started after the collector's first read count their whole CPU time.
    let c = collector("[[processes.group]]\ncomm = [\"ospreyburnB\"]\nname = \"burn\"\n");
    let mut kids =
        Kids::start("ospreyburnB", 1, Some("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 300 & wait"));
    let pid = kids.children[0].id();
    let cpu_of = |m: &HashMap<String, f64>| {
        m.get("namedprocess_namegroup_cpu_seconds_total{groupname=burn,mode=user}").copied().unwrap_or(0.0)
            + m.get("namedprocess_namegroup_cpu_seconds_total{groupname=burn,mode=system}").copied().unwrap_or(0.0)
    };
    // Wait for the busy loop to finish (the shell then waits for its `sleep` child).
    assert!(wait_until(|| has_child(pid)));
    let m1 = scrape(&*c);
    let before = cpu_of(&m1);
    assert!(before > 0.0, "busy child burned no CPU? {m1:?}");
    assert_eq!(m1["namedprocess_namegroup_num_procs{groupname=burn}"], 2.0, "{m1:?}");
    kids.kill_all();
    // The orphaned `sleep` may linger as a zombie until its new parent reaps it.
    let mut m2 = HashMap::new();
    assert!(
        wait_until(|| {
            m2 = scrape(&*c);
            m2["namedprocess_namegroup_num_procs{groupname=burn}"] == 0.0
        }),
        "{m2:?}"
    );
    assert!(cpu_of(&m2) >= before, "counter decreased: {} < {before}", cpu_of(&m2));
    assert_eq!(m2["namedprocess_namegroup_oldest_start_time_seconds{groupname=burn}"], super::group::GO_ZERO_TIME);
}

#[test]
fn children_join_their_parents_group() {
    // sh (named ospreyparC) forks a `sleep` child, which matches nothing itself.
    let kids = Kids::start("ospreyparC", 1, Some("sleep 300 & sleep 300 & wait"));
    let pid = kids.children[0].id();
    assert!(wait_until(|| read::list_pids(Path::new("/proc"))
        .unwrap()
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|b| read::parse_stat(&b))
                .is_some_and(|s| s.ppid == pid.cast_signed() && s.comm == "sleep")
        })
        .count()
        == 2));
    let c = collector("[[processes.group]]\ncomm = [\"ospreyparC\"]\nname = \"par\"\n");
    let m = scrape(&*c);
    assert_eq!(m["namedprocess_namegroup_num_procs{groupname=par}"], 3.0, "{m:?}");
    let c = collector("[processes]\nchildren = false\n[[processes.group]]\ncomm = [\"ospreyparC\"]\nname = \"par\"\n");
    let m = scrape(&*c);
    assert_eq!(m["namedprocess_namegroup_num_procs{groupname=par}"], 1.0, "{m:?}");
}

#[test]
fn without_groups_only_node_exporter_metrics() {
    let c = (DEF.build)(&Ctx::default()).unwrap();
    let m = scrape(&*c);
    assert!(m["node_processes_pids{}"] > 1.0, "{m:?}");
    assert!(m["node_processes_threads{}"] >= m["node_processes_pids{}"]);
    assert!(m.keys().any(|k| k.starts_with("node_processes_state{state=")));
    assert!(m.keys().any(|k| k.starts_with("node_processes_threads_state{thread_state=")));
    assert!(!m.keys().any(|k| k.starts_with("namedprocess_")), "{m:?}");
    let mut values = HashMap::new();
    values.insert("x".to_owned(), Value::Bool(true));
    assert!((DEF.build)(&Ctx { paths: HostPaths::default(), values }).is_ok());
}

#[test]
fn matches_upstream_e2e() {
    crate::testutil::assert_matches_e2e("processes", &|f| f.starts_with("node_processes_"));
}

#[test]
fn smaps_and_username_template() {
    let kids = Kids::start("ospreysmapD", 1, None);
    let pid = kids.children[0].id();
    assert!(wait_until(
        || std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "ospreysmapD")
    ));
    let c = collector(
        "[processes]\nsmaps = true\n[[processes.group]]\nname = \"{{.Username}}-{{.Comm}}\"\ncomm = [\"ospreysmapD\"]\n",
    );
    let m = scrape(&*c);
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:").and_then(|v| v.split_whitespace().nth(1)).map(str::to_owned))
        .unwrap();
    let user = lookup_user(Path::new("/etc/passwd"), uid.parse().unwrap());
    let g = format!("{user}-ospreysmapD");
    assert_eq!(m[&format!("namedprocess_namegroup_num_procs{{groupname={g}}}")], 1.0, "{m:?}");
    assert!(m[&format!("namedprocess_namegroup_memory_bytes{{groupname={g},memtype=proportionalResident}}")] > 0.0);
    assert!(
        m.contains_key(&format!("namedprocess_namegroup_memory_bytes{{groupname={g},memtype=proportionalSwapped}}"))
    );
}
