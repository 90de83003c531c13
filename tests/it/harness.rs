//! The integration harness: builds and starts real binaries on free ports, gives each test its
//! own temp dir, finds peers on PATH (failing when `OSPREY_REQUIRE_PEERS=1`), and offers
//! `eventually` instead of fixed sleeps.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// node_exporter's conformance data (`../shared/conformance/node_exporter`).
pub fn conformance() -> PathBuf {
    match std::env::var_os("OSPREY_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d).join("node_exporter"),
        None => workspace().join("../shared/conformance/node_exporter"),
    }
}

/// Path of the `osprey-agent` binary. With `OSPREY_BIN_DIR` set (`.ci/run` sets it after its
/// `cargo build --workspace --bins`), the binary is taken from there as is. Otherwise it is
/// built once per test process with the same arguments as `.ci/run`; a build from inside a test
/// sees the test runner's environment, which some build scripts track, so CI avoids it (it
/// rebuilt dependencies inside the first test, over a minute).
pub fn agent_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built_bin("osprey-agent"))
}

/// A binary of this workspace by name: from `OSPREY_BIN_DIR`, or built (see [`agent_bin`]).
pub fn built_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("OSPREY_BIN_DIR") {
        let bin = PathBuf::from(dir).join(name);
        assert!(bin.is_file(), "{} missing: run `cargo build --workspace --bins` first", bin.display());
        return bin;
    }
    static BUILD: OnceLock<()> = OnceLock::new();
    BUILD.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Without the package variables cargo set for this test (CARGO_PKG_NAME,
        // CARGO_MANIFEST_DIR, …): ring's build script tracks them, and values other than a plain
        // `cargo build` sees would rebuild ring and everything above it on every test run.
        let mut cmd = Command::new(cargo);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_", "CARGO_TARGET_TMPDIR"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(k.as_ref());
            }
        }
        let status = cmd
            .args(["build", "--quiet", "--workspace", "--bins"])
            .current_dir(workspace())
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the workspace binaries failed");
    });
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    target.join("debug").join(name)
}

/// A peer program from PATH; `None` (with a visible SKIP line) when missing, unless
/// `OSPREY_REQUIRE_PEERS=1`, where a missing peer fails the test.
pub fn peer(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        assert!(
            std::env::var("OSPREY_REQUIRE_PEERS").as_deref() != Ok("1"),
            "peer {name} not found on PATH and OSPREY_REQUIRE_PEERS=1 (install it: see .ci/run)"
        );
        eprintln!("SKIP: peer {name} not on PATH (set OSPREY_REQUIRE_PEERS=1 to make this a failure)");
    }
    found
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A fresh temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/osprey-it-<name>-<pid>-<n>`.
    pub fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("osprey-it-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }

    /// A path inside the dir.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` every 50 ms until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The fleet simulator (`osprey-fleet-sim`) serving `targets` × `series` on loopback, killed on
/// drop; `sd_text` is the file_sd JSON it wrote (at `sd`) once all targets were listed.
pub struct FleetSim {
    child: Child,
    /// The file_sd JSON naming every target.
    pub sd_text: String,
}

impl FleetSim {
    /// Starts the simulator writing its targets to `sd` and waits until all are listed.
    pub fn start(targets: usize, series: usize, sd: &Path) -> Self {
        let child = Command::new(built_bin("osprey-fleet-sim"))
            .args(["--targets", &targets.to_string(), "--series", &series.to_string(), "--file-sd"])
            .arg(sd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting osprey-fleet-sim");
        let mut sim = Self { child, sd_text: String::new() };
        sim.sd_text = eventually(Duration::from_secs(20), || {
            std::fs::read_to_string(sd).ok().filter(|t| t.matches("127.0.0.1:").count() == targets)
        })
        .unwrap_or_else(|| panic!("fleet simulator did not write {}", sd.display()));
        sim
    }
}

impl Drop for FleetSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed on drop.
pub struct Proc {
    /// The child.
    pub child: Child,
    /// Its listen port.
    pub port: u16,
    log: PathBuf,
}

impl Proc {
    /// Starts `bin args…` with stderr/stdout to a log file, then waits until `GET path` on
    /// `port` answers.
    pub fn start(bin: &Path, args: &[String], port: u16, ready_path: &str, dir: &TempDir) -> Self {
        let log = dir.join(&format!(
            "{}-{port}.log",
            bin.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let f = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .args(args)
            .stdout(f.try_clone().expect("dup"))
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut p = Self { child, port, log };
        let up = eventually(Duration::from_secs(30), || {
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("{} exited early with {st}: {}", bin.display(), p.log_text());
            }
            http_get(port, ready_path).ok().filter(|r| r.status == 200)
        });
        assert!(up.is_some(), "{} did not become ready: {}", bin.display(), p.log_text());
        p
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `HUP`, …).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([format!("-{sig}"), self.child.id().to_string()]).status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `osprey-agent` on a free port with `args` (plus `--web.listen-address`).
pub fn start_agent(args: &[&str], dir: &TempDir) -> Proc {
    let port = free_port();
    let mut a: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    a.push(format!("--web.listen-address=127.0.0.1:{port}"));
    Proc::start(agent_bin(), &a, port, "/-/healthy", dir)
}

/// A minimal HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// `GET path` on 127.0.0.1:`port` with optional extra headers (HTTP/1.0, no keep-alive).
pub fn http_get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    http_request(port, "GET", path, headers)
}

/// `GET path` on 127.0.0.1:`port`.
pub fn http_get(port: u16, path: &str) -> std::io::Result<Response> {
    http_get_with(port, path, &[])
}

/// A request with `method` (body-less).
pub fn http_request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response { status, headers, body: raw[split + 4..].to_vec() })
}

/// Runs a command to completion, capturing output.
pub fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}
