//! HTTPS targets: a rustls server with a certificate from a test CA, scraped with `ca_file`,
//! with the system roots (refused), with `insecure_skip_verify`, and with `server_name`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

use super::{Rig, target};
use crate::{Health, TlsConfig};

/// A CA (PEM) and a server certificate for 127.0.0.1 signed by it.
fn pki() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    pki_for("127.0.0.1")
}

/// A CA (PEM) and a server certificate for `name` signed by it.
fn pki_for(name: &str) -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "osprey test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (ca_cert.pem(), cert.der().clone(), key)
}

async fn https_server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"tls_metric 1\n"))))
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_targets_verify_against_ca_file_or_skip_verification() {
    let (ca_pem, cert, key) = pki();
    let ca_file = std::env::temp_dir().join(format!("osprey-scrape-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let addr = https_server(cert, key).await;
    let url = format!("https://{addr}/metrics");
    let rig = Rig::new();
    let mk = |case: &str, tls: TlsConfig| {
        let mut t = target(addr, 10_000);
        t.url.clone_from(&url);
        t.labels.push(("case".into(), case.into()));
        t.labels.sort();
        t.tls = tls;
        t
    };
    rig.mgr.sync(vec![
        mk("ca_file", TlsConfig { ca_file: Some(ca_file.clone()), ..TlsConfig::default() }),
        mk("system_roots", TlsConfig::default()),
        mk("insecure", TlsConfig { insecure_skip_verify: true, ..TlsConfig::default() }),
    ]);
    rig.clock.advance(10_000);
    super::eventually("three https scrapes", || rig.mgr.targets().iter().all(|t| t.scrapes >= 1)).await;
    let by_case = |case: &str| {
        rig.mgr.targets().into_iter().find(|t| t.labels.iter().any(|(n, v)| n == "case" && v == case)).unwrap()
    };
    let ok = by_case("ca_file");
    assert_eq!((ok.health, ok.last_error.as_str()), (Health::Up, ""));
    let refused = by_case("system_roots");
    assert_eq!(refused.health, Health::Down);
    assert!(refused.last_error.contains("certificate"), "{}", refused.last_error);
    assert_eq!(by_case("insecure").health, Health::Up, "{}", by_case("insecure").last_error);
    assert_eq!(rig.store.select(&[("__name__", "tls_metric")]).len(), 2);
    rig.mgr.stop().await;
    let _ = std::fs::remove_file(ca_file);
}

/// `server_name`: a certificate for `scrape.test` served on 127.0.0.1 verifies only when the
/// configured name matches it; the CA is still checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_replaces_the_url_host_in_verification() {
    let (ca_pem, cert, key) = pki_for("scrape.test");
    let ca_file = std::env::temp_dir().join(format!("osprey-scrape-sn-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let addr = https_server(cert, key).await;
    let rig = Rig::new();
    let mk = |case: &str, name: Option<&str>, ca: Option<&std::path::Path>| {
        let mut t = target(addr, 10_000);
        t.url = format!("https://{addr}/metrics");
        t.labels.push(("case".into(), case.into()));
        t.labels.sort();
        t.tls = TlsConfig {
            ca_file: ca.map(std::path::Path::to_path_buf),
            server_name: name.map(str::to_owned),
            ..TlsConfig::default()
        };
        t
    };
    rig.mgr.sync(vec![
        mk("matching", Some("scrape.test"), Some(&ca_file)),
        mk("url_host", None, Some(&ca_file)),
        mk("other_name", Some("other.test"), Some(&ca_file)),
        mk("untrusted", Some("scrape.test"), None),
    ]);
    rig.clock.advance(10_000);
    super::eventually("four https scrapes", || rig.mgr.targets().iter().all(|t| t.scrapes >= 1)).await;
    let by_case = |case: &str| {
        rig.mgr.targets().into_iter().find(|t| t.labels.iter().any(|(n, v)| n == "case" && v == case)).unwrap()
    };
    let ok = by_case("matching");
    assert_eq!((ok.health, ok.last_error.as_str()), (Health::Up, ""));
    for case in ["url_host", "other_name", "untrusted"] {
        let t = by_case(case);
        assert_eq!(t.health, Health::Down, "{case}");
        assert!(t.last_error.contains("certificate"), "{case}: {}", t.last_error);
    }
    rig.mgr.stop().await;
    let _ = std::fs::remove_file(ca_file);
}
