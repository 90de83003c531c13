//! The `probe` collector against local services started by the test: a TCP listener, an HTTP
//! server answering 200 or 500, one that accepts but never answers, a closed port and a unix
//! socket.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::time::Instant;

use crate::harness::{TempDir, agent_bin, free_port, http_get, peer, run, start_agent};

/// A tiny HTTP server: `/fail` answers 500, anything else 200. Runs until the test exits.
fn http_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let status = if first.starts_with("GET /fail ") { "500 Internal Server Error" } else { "200 OK" };
                let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            });
        }
    });
    port
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[test]
fn probes_report_success_status_and_bounded_duration() {
    let dir = TempDir::new("probe");
    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
    let tcp_port = tcp.local_addr().expect("addr").port();
    // Accepts (kernel backlog) but never answers a request.
    let hang = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hang_port = hang.local_addr().expect("addr").port();
    let http = http_server();
    let closed = free_port();
    let sock = dir.join("svc.sock");
    let _unix = UnixListener::bind(&sock).expect("unix bind");
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[probe]]
name = "tcp-open"
kind = "tcp"
target = "127.0.0.1:{tcp_port}"

[[probe]]
name = "tcp-closed"
kind = "tcp"
target = "127.0.0.1:{closed}"

[[probe]]
name = "http-ok"
kind = "http"
target = "http://127.0.0.1:{http}/healthz"

[[probe]]
name = "http-500"
kind = "http"
target = "http://127.0.0.1:{http}/fail"

[[probe]]
name = "http-500-expected"
kind = "http"
target = "http://127.0.0.1:{http}/fail"
expected_status = 500

[[probe]]
name = "http-closed"
kind = "http"
target = "http://127.0.0.1:{closed}/"

[[probe]]
name = "hang"
kind = "http"
target = "http://127.0.0.1:{hang_port}/"
timeout = "1s"

[[probe]]
name = "unix"
kind = "unix"
target = "{}"

[[probe]]
name = "unix-missing"
kind = "unix"
target = "{}"
"#,
            sock.display(),
            dir.join("nope.sock").display()
        ),
    )
    .expect("config");
    let agent = start_agent(&["--collector.disable-defaults", &format!("--config={}", cfg.display())], &dir);
    let start = Instant::now();
    let text = http_get(agent.port, "/metrics").expect("scrape").text();
    let wall = start.elapsed();
    println!("scrape with a 1s hanging probe took {:.3}s", wall.as_secs_f64());
    assert_eq!(value(&text, "node_scrape_collector_success{collector=\"probe\"}"), 1.0);
    for (name, kind, ok) in [
        ("tcp-open", "tcp", 1.0),
        ("tcp-closed", "tcp", 0.0),
        ("http-ok", "http", 1.0),
        ("http-500", "http", 0.0),
        ("http-500-expected", "http", 1.0),
        ("http-closed", "http", 0.0),
        ("hang", "http", 0.0),
        ("unix", "unix", 1.0),
        ("unix-missing", "unix", 0.0),
    ] {
        let series = format!("osprey_probe_success{{kind=\"{kind}\",name=\"{name}\"}}");
        assert_eq!(value(&text, &series), ok, "{series}");
        let d = value(&text, &format!("osprey_probe_duration_seconds{{kind=\"{kind}\",name=\"{name}\"}}"));
        assert!(d >= 0.0, "{name}: {d}");
    }
    for (name, code) in
        [("http-ok", 200.0), ("http-500", 500.0), ("http-500-expected", 500.0), ("hang", 0.0), ("http-closed", 0.0)]
    {
        assert_eq!(value(&text, &format!("osprey_probe_http_status_code{{name=\"{name}\"}}")), code, "{name}");
    }
    // The hanging service costs its 1 s timeout, not the 10 s collector timeout; probes ran
    // concurrently, so the whole collector took about as long as the slowest one. The upper
    // bounds leave room for a loaded CI machine (regression: 1.5 s failed under a full run).
    let hang_d = value(&text, "osprey_probe_duration_seconds{kind=\"http\",name=\"hang\"}");
    assert!((1.0..3.0).contains(&hang_d), "hang took {hang_d}s");
    let coll = value(&text, "node_scrape_collector_duration_seconds{collector=\"probe\"}");
    assert!(coll < 3.0, "collector took {coll}s");
    drop(tcp);
}

#[test]
fn probe_timeouts_are_capped_by_the_collector_timeout() {
    let dir = TempDir::new("probe-cap");
    let hang = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = hang.local_addr().expect("addr").port();
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[probe]]\nname = \"slow\"\nkind = \"http\"\ntarget = \"http://127.0.0.1:{port}/\"\ntimeout = \"1m\"\n"
        ),
    )
    .expect("config");
    let agent = start_agent(
        &["--collector.disable-defaults", "--collector.timeout=1s", &format!("--config={}", cfg.display())],
        &dir,
    );
    let text = http_get(agent.port, "/metrics").expect("scrape").text();
    // The probe gave up at 90% of the collector's 1s, so the collector itself succeeded.
    assert_eq!(value(&text, "node_scrape_collector_success{collector=\"probe\"}"), 1.0);
    assert_eq!(value(&text, "osprey_probe_success{kind=\"http\",name=\"slow\"}"), 0.0);
    let d = value(&text, "osprey_probe_duration_seconds{kind=\"http\",name=\"slow\"}");
    assert!((0.9..1.0).contains(&d), "probe took {d}s");
}

#[test]
fn bad_probe_config_fails_at_start_with_file_and_line() {
    let dir = TempDir::new("probe-bad");
    let cfg = dir.join("agent.toml");
    let path = cfg.display().to_string();
    for (text, want) in [
        (
            "[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"x:1\"\n\n[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"x:2\"\n",
            format!("{path}:6: [[probe]] \"a\": duplicate probe name"),
        ),
        (
            "[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"x:1\"\nretries = 3\n",
            format!("{path}:5: [[probe]]: unknown field `retries`"),
        ),
        (
            "[[probe]]\nname = \"a\"\nkind = \"http\"\ntarget = \"gopher://x/\"\n",
            format!("{path}:1: [[probe]] \"a\": `target`: expected an http:// or https:// URL"),
        ),
    ] {
        std::fs::write(&cfg, text).expect("config");
        let out = run(agent_bin(), &[&format!("--config={path}"), "--web.listen-address=127.0.0.1:0"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&want), "want {want:?} in:\n{err}");
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the `openssl` tool.
fn make_certs(dir: &TempDir, openssl: &std::path::Path) {
    let d = |f: &str| dir.join(f).display().to_string();
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    for args in [
        [
            &["req", "-x509"][..],
            &ec,
            &["-keyout", &d("ca.key"), "-out", &d("ca.pem"), "-days", "2", "-subj", "/CN=osprey test CA"],
        ]
        .concat(),
        [&["req"][..], &ec, &["-keyout", &d("srv.key"), "-out", &d("srv.csr"), "-subj", "/CN=127.0.0.1"]].concat(),
        [
            "x509",
            "-req",
            "-in",
            &d("srv.csr"),
            "-CA",
            &d("ca.pem"),
            "-CAkey",
            &d("ca.key"),
            "-CAcreateserial",
            "-out",
            &d("srv.pem"),
            "-days",
            "2",
            "-extfile",
            &d("ext.cnf"),
        ]
        .to_vec(),
    ] {
        let args: Vec<&str> = args.iter().map(|s| &**s).collect();
        let out = run(openssl, &args);
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// An HTTPS server (rustls) answering every request with 204.
fn https_server(dir: &TempDir) -> u16 {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("srv.pem")).expect("cert").map(|c| c.expect("cert")).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("srv.key")).expect("key");
    let cfg =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
    let cfg = std::sync::Arc::new(cfg);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for tcp in l.incoming() {
            let Ok(tcp) = tcp else { continue };
            let cfg = std::sync::Arc::clone(&cfg);
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(cfg).expect("tls conn");
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut reader = BufReader::new(&mut tls);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

#[test]
fn https_probe_trusts_its_ca_file_and_nothing_else() {
    let Some(openssl) = peer("openssl") else { return };
    let dir = TempDir::new("probe-https");
    make_certs(&dir, &openssl);
    let port = https_server(&dir);
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[probe]]\nname = \"tls-ok\"\nkind = \"http\"\ntarget = \"https://127.0.0.1:{port}/\"\nexpected_status = 204\nca_file = \"{ca}\"\n\n\
             [[probe]]\nname = \"tls-untrusted\"\nkind = \"http\"\ntarget = \"https://127.0.0.1:{port}/\"\n\n\
             [[probe]]\nname = \"tls-wrong-ca\"\nkind = \"http\"\ntarget = \"https://127.0.0.1:{port}/\"\nca_file = \"{wrong}\"\n",
            ca = dir.join("ca.pem").display(),
            wrong = dir.join("srv.pem").display(),
        ),
    )
    .expect("config");
    let agent = start_agent(&["--collector.disable-defaults", &format!("--config={}", cfg.display())], &dir);
    let text = http_get(agent.port, "/metrics").expect("scrape").text();
    assert_eq!(value(&text, "osprey_probe_success{kind=\"http\",name=\"tls-ok\"}"), 1.0, "{}", agent.log_text());
    assert_eq!(value(&text, "osprey_probe_http_status_code{name=\"tls-ok\"}"), 204.0);
    // Not signed by a system root, nor by the leaf given as CA: the handshake fails.
    for name in ["tls-untrusted", "tls-wrong-ca"] {
        assert_eq!(value(&text, &format!("osprey_probe_success{{kind=\"http\",name=\"{name}\"}}")), 0.0, "{name}");
        assert_eq!(value(&text, &format!("osprey_probe_http_status_code{{name=\"{name}\"}}")), 0.0, "{name}");
    }
}
