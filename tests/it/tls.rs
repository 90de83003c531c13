//! `--web.config.file`: TLS, client certificates and basic auth against the real agent, with
//! certificates made here by rcgen; hot reload of a renewed certificate while scrapes run;
//! bad configs; and Debian's stock `prometheus` scraping the agent over HTTPS with basic auth.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::harness::{TempDir, agent_bin, eventually, free_port, http_get, peer, run};

/// A test CA and what it issued.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, PEM and DER.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        Self { ca: CertifiedIssuer::self_signed(p, KeyPair::generate().expect("ca key")).expect("ca") }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn leaf(&self, sans: &[&str], expired: bool) -> Leaf {
        let mut p = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).expect("params");
        if expired {
            p.not_before = rcgen::date_time_ymd(2001, 1, 1);
            p.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.ca).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

/// A client trusting `ca`, optionally presenting `client`.
fn client(ca: &Pki, client: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.ca.der().clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match client {
        Some(l) => b
            .with_client_auth_cert(vec![l.der.clone()], PrivateKeyDer::Pkcs8(l.key_der.clone().into()))
            .expect("client cert"),
        None => b.with_no_client_auth(),
    })
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

/// What a TLS request returned: status, body and the server certificate seen.
struct Reply {
    status: u16,
    head: String,
    body: String,
    server_cert: Option<CertificateDer<'static>>,
}

/// `GET path` over TLS (HTTP/1.0), with optional basic auth.
fn https_get(
    port: u16,
    path: &str,
    cfg: &Arc<rustls::ClientConfig>,
    auth: Option<(&str, &str)>,
) -> std::io::Result<Reply> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let conn = rustls::ClientConnection::new(Arc::clone(cfg), ServerName::try_from("localhost").expect("name"))
        .map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n");
    if let Some((u, p)) = auth {
        req += "Authorization: Basic ";
        req += &base64(format!("{u}:{p}").as_bytes());
        req += "\r\n";
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A peer closing without close_notify after a complete HTTP/1.0 answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    let server_cert = s.conn.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned());
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) =
        text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other(format!("no header end: {text:?}")))?;
    let status =
        head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other("bad status"))?;
    Ok(Reply { status, head: head.to_owned(), body: body.to_owned(), server_cert })
}

/// The agent started with a web config, killed on drop.
struct Agent {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Agent {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([format!("-{sig}"), self.child.id().to_string()]).status();
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the agent with `web.yml` in `dir` and waits until a TLS `GET /-/healthy` answers 200.
fn start(dir: &TempDir, extra: &[&str], cfg: &Arc<rustls::ClientConfig>, auth: Option<(&str, &str)>) -> Agent {
    let port = free_port();
    let log = dir.join(&format!("agent-{port}.log"));
    let f = std::fs::File::create(&log).expect("log");
    let child = Command::new(agent_bin())
        .arg(format!("--web.config.file={}", dir.join("web.yml").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(["--collector.disable-defaults", "--collector.loadavg"])
        .args(extra)
        .stdout(f.try_clone().expect("dup"))
        .stderr(f)
        .spawn()
        .expect("agent");
    let mut a = Agent { child, port, log };
    let up = eventually(Duration::from_secs(30), || {
        assert!(a.alive(), "agent exited early: {}", a.log_text());
        https_get(port, "/-/healthy", cfg, auth).ok().filter(|r| r.status == 200)
    });
    assert!(up.is_some(), "agent never answered over TLS: {}", a.log_text());
    a
}

fn write(dir: &TempDir, name: &str, text: &str) {
    // Write-then-rename, as certificate tools do, so no reader sees half a file.
    let tmp = dir.join(&format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

fn write_server(dir: &TempDir, leaf: &Leaf) {
    write(dir, "server.key", &leaf.key_pem);
    write(dir, "server.crt", &leaf.cert_pem);
}

/// Cost 4 keeps the tests fast; the agent accepts any bcrypt cost.
fn bcrypt_hash(pass: &str) -> String {
    bcrypt::hash(pass, 4).expect("bcrypt")
}

#[test]
fn https_basic_auth_wrong_password_and_plain_http() {
    let dir = TempDir::new("tls-auth");
    let pki = Pki::new("test CA");
    write_server(&dir, &pki.leaf(&["localhost", "127.0.0.1"], false));
    write(
        &dir,
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  prom: '{}'\n",
            bcrypt_hash("s3cret")
        ),
    );
    let cfg = client(&pki, None);
    let mut agent = start(&dir, &[], &cfg, Some(("prom", "s3cret")));
    let ok = https_get(agent.port, "/metrics", &cfg, Some(("prom", "s3cret"))).expect("scrape");
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("node_load1 "), "no metrics: {}", ok.body);
    assert!(ok.head.to_ascii_lowercase().contains("x-frame-options: deny"), "configured header missing: {}", ok.head);
    for auth in [Some(("prom", "wrong-pass-XYZ")), Some(("nobody", "s3cret")), None] {
        let r = https_get(agent.port, "/metrics", &cfg, auth).expect("request");
        assert_eq!(r.status, 401, "{auth:?}: {}", r.head);
        assert!(r.head.contains("WWW-Authenticate: Basic") || r.head.contains("www-authenticate: Basic"), "{}", r.head);
    }
    let plain = http_get(agent.port, "/metrics").expect("plain request");
    assert_eq!(plain.status, 400);
    assert!(plain.text().contains("HTTPS"), "{}", plain.text());
    assert!(agent.alive());
    let log = agent.log_text();
    assert!(log.contains("basic authentication failed"), "{log}");
    assert!(log.contains("plain HTTP request on the TLS port"), "{log}");
    assert!(!log.contains("wrong-pass-XYZ") && !log.contains("s3cret"), "a password reached the log: {log}");
    // Many failures in a row give one line per interval, not one each.
    for _ in 0..20 {
        let _ = https_get(agent.port, "/metrics", &cfg, Some(("prom", "wrong-pass-XYZ")));
    }
    assert_eq!(agent.log_text().matches("basic authentication failed").count(), 1, "log is not rate-limited");
}

#[test]
fn client_certificates_missing_expired_and_foreign_are_refused() {
    let dir = TempDir::new("tls-mtls");
    let pki = Pki::new("test CA");
    let other = Pki::new("other CA");
    write_server(&dir, &pki.leaf(&["localhost"], false));
    write(&dir, "ca.crt", &pki.ca_pem());
    write(
        &dir,
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n",
    );
    let good = pki.leaf(&["scraper.test"], false);
    let good_cfg = client(&pki, Some(&good));
    let mut agent = start(&dir, &[], &good_cfg, None);
    assert_eq!(https_get(agent.port, "/metrics", &good_cfg, None).expect("scrape").status, 200);
    let expired = pki.leaf(&["scraper.test"], true);
    let foreign = other.leaf(&["scraper.test"], false);
    for (what, cfg) in [
        ("no client certificate", client(&pki, None)),
        ("expired client certificate", client(&pki, Some(&expired))),
        ("certificate from another CA", client(&pki, Some(&foreign))),
    ] {
        let r = https_get(agent.port, "/metrics", &cfg, None);
        assert!(r.is_err(), "{what}: the handshake should fail, got status {:?}", r.map(|r| r.status));
    }
    assert!(agent.alive());
    assert!(agent.log_text().contains("TLS handshake failed"), "{}", agent.log_text());
    assert_eq!(https_get(agent.port, "/metrics", &good_cfg, None).expect("scrape after refusals").status, 200);
}

#[test]
fn renewed_certificate_is_picked_up_while_scrapes_run_and_bad_reload_keeps_the_old_one() {
    let dir = TempDir::new("tls-reload");
    let pki = Pki::new("test CA");
    let first = pki.leaf(&["localhost"], false);
    write_server(&dir, &first);
    write(&dir, "web.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let cfg = client(&pki, None);
    let agent = start(&dir, &["--web.config.watch-interval=200ms"], &cfg, None);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let scraper = {
        let (stop, ok, failed, cfg, port) = (stop.clone(), ok.clone(), failed.clone(), cfg.clone(), agent.port);
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match https_get(port, "/metrics", &cfg, None) {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        errors.push(format!("{:?}", other.map(|r| r.status)));
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        })
    };
    // Renewal by file change (the watch), then by SIGHUP.
    let second = pki.leaf(&["localhost", "renewed.test"], false);
    write_server(&dir, &second);
    let seen = eventually(Duration::from_secs(20), || {
        https_get(agent.port, "/-/healthy", &cfg, None).ok().filter(|r| r.server_cert.as_ref() == Some(&second.der))
    });
    assert!(seen.is_some(), "renewed certificate never served: {}", agent.log_text());
    let third = pki.leaf(&["localhost", "third.test"], false);
    write(&dir, "web.yml", "tls_server_config:\n  cert_file: server3.crt\n  key_file: server3.key\n");
    write(&dir, "server3.key", &third.key_pem);
    write(&dir, "server3.crt", &third.cert_pem);
    agent.signal("HUP");
    let seen = eventually(Duration::from_secs(20), || {
        https_get(agent.port, "/-/healthy", &cfg, None).ok().filter(|r| r.server_cert.as_ref() == Some(&third.der))
    });
    assert!(seen.is_some(), "certificate named by the reloaded config never served: {}", agent.log_text());
    // A bad new config is refused; the running one stays and the gauge says so.
    write(&dir, "web.yml", "tls_server_config:\n  cert_file: server3.crt\n  key_file: server3.key\n  bogus: 1\n");
    agent.signal("HUP");
    let gauge = |v: &str| {
        https_get(agent.port, "/metrics", &cfg, None)
            .ok()
            .filter(|r| r.body.contains(&format!("osprey_agent_config_last_reload_successful {v}\n")))
    };
    assert!(eventually(Duration::from_secs(20), || gauge("0")).is_some(), "gauge never 0: {}", agent.log_text());
    assert!(agent.log_text().contains("bogus"), "reload error not logged: {}", agent.log_text());
    let still = https_get(agent.port, "/-/healthy", &cfg, None).expect("still serving");
    assert_eq!(still.server_cert.as_ref(), Some(&third.der));
    write(&dir, "web.yml", "tls_server_config:\n  cert_file: server3.crt\n  key_file: server3.key\n");
    assert!(
        eventually(Duration::from_secs(20), || gauge("1")).is_some(),
        "fixed file not picked up: {}",
        agent.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let errors = scraper.join().expect("scraper");
    println!("scrapes during reloads: {} ok, {} failed", ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok.load(Ordering::Relaxed) > 5, "too few scrapes ran to mean anything");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "scrapes failed during reloads: {errors:?}");
}

#[test]
fn bad_web_configs_stop_the_agent_with_file_key_and_reason() {
    let dir = TempDir::new("tls-bad");
    write_server(&dir, &Pki::new("test CA").leaf(&["localhost"], false));
    let cases = [
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_fiel: server.key\n",
            "tls_server_config.key_fiel",
            "unknown field",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
            "tls_server_config.cert_file",
            "missing.crt",
        ),
        ("basic_auth_users:\n  prom: hunter2hunter2\n", "basic_auth_users.prom", "not a bcrypt hash"),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS10\n",
            "tls_server_config.min_version",
            "rustls implements TLS 1.2 and 1.3 only",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_ca_file",
            "needs client_ca_file",
        ),
    ];
    for (text, key, reason) in cases {
        std::fs::write(dir.join("web.yml"), text).expect("write");
        let port = free_port();
        let out = run(
            agent_bin(),
            &[
                &format!("--web.config.file={}", dir.join("web.yml").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains("web.yml") && err.contains(key) && err.contains(reason), "{text}: {err}");
        assert!(!err.contains("hunter2"), "the value of a bad hash must not be echoed: {err}");
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port bound despite the bad config");
    }
}

fn prom_query(port: u16, expr: &str) -> Option<String> {
    let q: String = expr
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    http_get(port, &format!("/api/v1/query?query={q}")).ok().filter(|r| r.status == 200).map(|r| r.text())
}

#[test]
fn stock_prometheus_scrapes_the_agent_over_https_with_basic_auth() {
    let Some(prom) = peer("prometheus") else { return };
    let dir = TempDir::new("tls-prometheus");
    let pki = Pki::new("test CA");
    write_server(&dir, &pki.leaf(&["localhost", "127.0.0.1"], false));
    write(&dir, "ca.crt", &pki.ca_pem());
    write(
        &dir,
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: '{}'\n",
            bcrypt_hash("scrape-pass")
        ),
    );
    let cfg = client(&pki, None);
    let agent = start(&dir, &[], &cfg, Some(("prometheus", "scrape-pass")));
    let yml = dir.join("prometheus.yml");
    std::fs::write(
        &yml,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: osprey-tls\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n      server_name: localhost\n    basic_auth:\n      username: prometheus\n      password: scrape-pass\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            ca = dir.join("ca.crt").display(),
            port = agent.port
        ),
    )
    .expect("prometheus.yml");
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let mut p = Command::new(prom)
        .arg(format!("--config.file={}", yml.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("prometheus");
    let up = eventually(Duration::from_secs(40), || {
        prom_query(port, "up{job=\"osprey-tls\"}").filter(|b| b.contains("\"1\"]"))
    });
    let load = up.as_ref().and_then(|_| {
        eventually(Duration::from_secs(15), || prom_query(port, "node_load1").filter(|b| b.contains("osprey-tls")))
    });
    let targets = http_get(port, "/api/v1/targets").map(|r| r.text()).unwrap_or_default();
    let _ = p.kill();
    let _ = p.wait();
    assert!(
        up.is_some(),
        "up == 1 never seen: {:?}\ntargets: {targets}\nprometheus log: {}\nagent log: {}",
        prom_query(port, "up"),
        std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default(),
        agent.log_text()
    );
    assert!(load.is_some(), "node_load1 not readable through Prometheus");
    assert!(
        !agent.log_text().contains("authentication failed"),
        "Prometheus' scrapes were refused: {}",
        agent.log_text()
    );
}
