//! Crash safety: a writer process is `kill -9`'d at random moments; every acknowledged scrape
//! must survive, whole, and start-up must never fail. Also: a full disk.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TempDir, dump, labels, test_opts};
use osprey_tsdb::fleet::Rng;
use osprey_tsdb::{Db, Options};

const SERIES: usize = 20;

/// Checks the directory: every series holds scrapes 0..=K contiguously with value K (the same
/// K for all: no scrape is half-visible). Returns K.
fn check(dir: &std::path::Path) -> Option<i64> {
    let db = Db::open(dir, test_opts(10_000)).expect("start-up after a crash must not fail");
    let data = dump(&db, i64::MIN, i64::MAX);
    if data.is_empty() {
        return None;
    }
    assert_eq!(data.len(), SERIES, "all series present");
    let mut last = None;
    for (l, samples) in &data {
        for (k, &(t, v)) in samples.iter().enumerate() {
            assert_eq!((t, f64::from_bits(v)), (k as i64 * 100, k as f64), "{l}: scrape {k} intact");
        }
        let k = samples.len() as i64 - 1;
        assert!(last.is_none_or(|x| x == k), "{l}: scrape {k} vs {last:?}: a scrape is half-visible");
        last = Some(k);
    }
    last
}

#[test]
fn kill_dash_nine_writer_loses_no_acknowledged_scrape() {
    let dir = TempDir::new("crash");
    let bin = env!("CARGO_BIN_EXE_osprey-tsdb-crash-writer");
    let mut rng = Rng::new(u64::from(std::process::id()));
    let started = Instant::now();
    let mut acked: Option<i64> = None;
    let mut rounds = 0;
    while rounds < 50 || (rounds < 120 && started.elapsed() < Duration::from_secs(15)) {
        let mut child = Command::new(bin)
            .arg(&dir.0)
            .arg(SERIES.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writer");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines.next().expect("writer printed nothing").expect("read");
        let resume: i64 = ready.strip_prefix("ready ").and_then(|s| s.parse().ok()).expect("ready line");
        assert_eq!(resume, acked.map_or(0, |k| k + 1).max(resume), "resume point never goes backwards");
        assert!(resume > acked.unwrap_or(-1), "writer resumes after every acknowledged scrape");
        // Kill after a random number of acknowledged commits (0..=40), i.e. at a random moment.
        let wait = rng.below(41);
        let killer = std::thread::spawn(move || {
            let mut last = None;
            for (i, line) in lines.by_ref().enumerate() {
                let Ok(line) = line else { break };
                last = line.strip_prefix("committed ").and_then(|s| s.parse::<i64>().ok()).or(last);
                if i as u64 >= wait {
                    break;
                }
            }
            (last, lines)
        });
        let (last, lines) = killer.join().expect("reader thread");
        child.kill().expect("kill -9");
        // Acks printed between our last read and the kill count too.
        let mut final_ack = last;
        for line in lines.map_while(Result::ok) {
            final_ack = line.strip_prefix("committed ").and_then(|s| s.parse::<i64>().ok()).or(final_ack);
        }
        child.wait().expect("reap");
        if final_ack.is_some() {
            acked = final_ack;
        }
        let on_disk = check(&dir.0);
        if let Some(a) = acked {
            let k = on_disk.expect("acknowledged data present");
            assert!(k >= a, "round {rounds}: acknowledged scrape {a} but only {k} on disk");
        }
        rounds += 1;
    }
    let k = check(&dir.0).expect("data");
    eprintln!("{rounds} kill -9 rounds in {:?}; {} scrapes survived", started.elapsed(), k + 1);
    assert!(rounds >= 50);
}

struct Mount(std::path::PathBuf, bool);

impl Drop for Mount {
    fn drop(&mut self) {
        let mut c = if self.1 { Command::new("sudo") } else { Command::new("umount") };
        if self.1 {
            c.args(["-n", "umount"]);
        }
        let _ = c.arg(&self.0).status();
    }
}

#[test]
fn full_disk_fails_appends_cleanly_and_resumes() {
    let dir = TempDir::new("fulldisk");
    let mnt = dir.0.join("mnt");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    // As root, or through passwordless sudo where CI runs as a user.
    let mount = |prefix: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = prefix.iter().map(std::ffi::OsStr::new).collect();
        args.extend(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs"].map(std::ffi::OsStr::new));
        args.push(mnt.as_os_str());
        Command::new(args[0]).args(&args[1..]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    let direct = mount(&[]);
    let sudo = !direct && mount(&["sudo", "-n"]);
    let ok = direct || sudo;
    if !ok {
        // Not root (or no mount permission): say so loudly rather than pass silently.
        assert!(
            std::env::var("OSPREY_REQUIRE_PEERS").as_deref() != Ok("1"),
            "cannot mount a tmpfs for the full-disk test (needs root); CI runs as root"
        );
        eprintln!("KNOWN-SKIP: full-disk test needs root to mount a tmpfs");
        return;
    }
    let _guard = Mount(mnt.clone(), sudo);
    let data = mnt.join("data");
    let ballast = mnt.join("ballast");
    if sudo {
        let _ = Command::new("sudo").args(["-n", "chmod", "1777"]).arg(&mnt).status();
    }
    std::fs::write(&ballast, vec![1u8; 256 << 10]).expect("ballast");
    let opts = Options { wal_segment_size: 128 << 10, ..test_opts(3_600_000) };
    let db = Db::open(&data, opts.clone()).expect("open");
    let mut committed = 0i64;
    let err = loop {
        let mut a = db.appender();
        for i in 0..50 {
            a.append(
                &labels(&[("__name__", "fill"), ("i", &i.to_string())]),
                committed * 1000,
                (committed * 7 + i) as f64,
            )
            .expect("append");
        }
        match a.commit() {
            Ok(()) => committed += 1,
            Err(e) => break e,
        }
        assert!(committed < 100_000, "tmpfs never filled");
    };
    let msg = err.to_string();
    assert!(msg.contains("No space left on device") && msg.contains("wal"), "clear error: {msg}");
    let check = |db: &Db, n: i64| {
        let d = dump(db, i64::MIN, i64::MAX);
        assert_eq!(d.len(), 50);
        for (_, s) in &d {
            assert_eq!(s.len() as i64, n, "exactly the committed scrapes");
        }
    };
    check(&db, committed);
    // Space returns: writing resumes.
    std::fs::remove_file(&ballast).expect("free space");
    let mut a = db.appender();
    for i in 0..50 {
        a.append(&labels(&[("__name__", "fill"), ("i", &i.to_string())]), committed * 1000, 0.5).expect("append");
    }
    a.commit().expect("commit after space returned");
    committed += 1;
    check(&db, committed);
    drop(db);
    let db = Db::open(&data, opts).expect("reopen after full disk");
    check(&db, committed);
    eprintln!("filled the tmpfs after {committed} commits; error was: {msg}");
}
