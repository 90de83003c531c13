//! Builds a rustls server configuration from a web config's `tls_server_config`, mapping
//! exporter-toolkit's Go `crypto/tls` settings to rustls (ring provider) and refusing, with
//! the key and a reason, what rustls cannot honour (TLS 1.0/1.1, CBC and RSA key-exchange
//! suites, P-521).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The rustls crate this module builds on, for [`rustls_signature_methods!`] in other crates.
pub use rustls;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::{CipherSuite, DistinguishedName, NamedGroup, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::web_config::RawTls;

/// An error: (dotted key, reason).
type KeyError = (String, String);

/// True when any TLS field is set (exporter-toolkit's `IsEnabled`).
pub fn enabled(t: &RawTls) -> bool {
    [&t.cert, &t.key, &t.client_ca, &t.cert_file, &t.key_file, &t.client_ca_file, &t.client_auth_type]
        .iter()
        .any(|f| f.as_deref().is_some_and(|s| !s.is_empty()))
}

fn key(k: &str) -> String {
    format!("tls_server_config.{k}")
}

/// Reads PEM either from `inline` or from `file` (relative to `dir`), noting the file in `files`.
fn pem_source(
    inline: Option<&String>,
    file: Option<&String>,
    file_key: &str,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Vec<u8>>, KeyError> {
    match (file.filter(|f| !f.is_empty()), inline.filter(|s| !s.is_empty())) {
        (Some(f), _) => {
            let p = dir.join(f);
            files.push(p.clone());
            std::fs::read(&p).map(Some).map_err(|e| (key(file_key), format!("reading {}: {e}", p.display())))
        }
        (None, Some(s)) => Ok(Some(s.as_bytes().to_vec())),
        (None, None) => Ok(None),
    }
}

fn certs(pem: &[u8], k: &str) -> Result<Vec<CertificateDer<'static>>, KeyError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| (key(k), format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err((key(k), "no PEM CERTIFICATE block found".into()));
    }
    Ok(certs)
}

/// Go's TLS version names.
fn version(name: &str, k: &str) -> Result<u8, KeyError> {
    match name {
        "TLS13" => Ok(13),
        "TLS12" => Ok(12),
        "TLS11" | "TLS10" => Err((key(k), format!("{name} is not supported: rustls implements TLS 1.2 and 1.3 only"))),
        _ => Err((key(k), format!("unknown TLS version {name:?} (expected TLS12 or TLS13)"))),
    }
}

/// Maps a Go cipher suite name to rustls; TLS 1.3 names map to `None` (Go ignores them too:
/// TLS 1.3 suites are not configurable there).
fn cipher(name: &str) -> Result<Option<CipherSuite>, String> {
    Ok(Some(match name {
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => return Ok(None),
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        n if n.contains("_CBC_") || n.contains("_RC4_") || n.contains("3DES") => {
            return Err(format!(
                "{n}: rustls does not implement CBC, RC4 or 3DES cipher suites (use an AES-GCM or CHACHA20 suite)"
            ));
        }
        n if n.starts_with("TLS_RSA_WITH_") => {
            return Err(format!("{n}: rustls does not implement RSA key exchange (use a TLS_ECDHE_* suite)"));
        }
        n => return Err(format!("unknown cipher suite {n:?}")),
    }))
}

fn curve(name: &str) -> Result<NamedGroup, String> {
    match name {
        "X25519" => Ok(NamedGroup::X25519),
        "CurveP256" => Ok(NamedGroup::secp256r1),
        "CurveP384" => Ok(NamedGroup::secp384r1),
        "CurveP521" => {
            Err("CurveP521 is not supported by rustls' ring provider (use CurveP384, CurveP256 or X25519)".into())
        }
        n => Err(format!("unknown curve {n:?} (expected CurveP256, CurveP384, CurveP521 or X25519)")),
    }
}

/// The crypto provider restricted by `cipher_suites` and `curve_preferences`.
fn provider(t: &RawTls) -> Result<CryptoProvider, KeyError> {
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(names) = t.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        let mut wanted = Vec::new();
        for n in names {
            if let Some(s) = cipher(n).map_err(|r| (key("cipher_suites"), r))? {
                wanted.push(s);
            }
        }
        // Keep TLS 1.3 suites (not configurable, as in Go) and the listed TLS 1.2 ones, in the
        // listed order so that `prefer_server_cipher_suites` follows the file.
        let (v13, v12): (Vec<rustls::SupportedCipherSuite>, Vec<_>) =
            p.cipher_suites.iter().partition(|s| s.tls13().is_some());
        let mut suites = v13;
        suites.extend(wanted.iter().filter_map(|w| v12.iter().find(|s| s.suite() == *w).copied()));
        p.cipher_suites = suites;
    }
    if let Some(names) = t.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        let mut groups = Vec::new();
        for n in names {
            let g = curve(n).map_err(|r| (key("curve_preferences"), r))?;
            groups.extend(p.kx_groups.iter().find(|k| k.name() == g).copied());
        }
        p.kx_groups = groups;
    }
    Ok(p)
}

/// Builds the server config; every file read is appended to `files` (for change watching).
pub fn server_config(t: &RawTls, dir: &Path, files: &mut Vec<PathBuf>) -> Result<ServerConfig, KeyError> {
    let cert_pem = pem_source(t.cert.as_ref(), t.cert_file.as_ref(), "cert_file", dir, files)?
        .ok_or_else(|| (key("cert_file"), "missing one of cert or cert_file".to_owned()))?;
    let key_pem = pem_source(t.key.as_ref(), t.key_file.as_ref(), "key_file", dir, files)?
        .ok_or_else(|| (key("key_file"), "missing one of key or key_file".to_owned()))?;
    let cert_key = if t.cert_file.as_deref().is_some_and(|f| !f.is_empty()) { "cert_file" } else { "cert" };
    let key_key = if t.key_file.as_deref().is_some_and(|f| !f.is_empty()) { "key_file" } else { "key" };
    let chain = certs(&cert_pem, cert_key)?;
    // The key's parse error text never includes key material.
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| (key(key_key), format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")))?;
    let ca_pem = pem_source(t.client_ca.as_ref(), t.client_ca_file.as_ref(), "client_ca_file", dir, files)?;

    let min = version(t.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
    let max = version(t.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
    if min > max {
        return Err((key("min_version"), "min_version is above max_version".into()));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    let provider = Arc::new(provider(t)?);
    if max == 12 && !provider.cipher_suites.iter().any(|s| s.tls13().is_none()) {
        return Err((key("cipher_suites"), "no TLS 1.2 cipher suite left and TLS 1.3 is off".into()));
    }
    let auth_type = t.client_auth_type.as_deref().unwrap_or("");
    let roots = match &ca_pem {
        Some(pem) => {
            let k = if t.client_ca_file.is_some() { "client_ca_file" } else { "client_ca" };
            let mut store = rustls::RootCertStore::empty();
            for c in certs(pem, k)? {
                store.add(c).map_err(|e| (key(k), format!("unusable CA certificate: {e}")))?;
            }
            Some(Arc::new(store))
        }
        None => None,
    };
    let verifier = client_verifier(auth_type, roots.as_ref(), &provider)?;
    let verifier = match t.client_allowed_sans.as_ref() {
        Some(sans) => {
            if !matches!(auth_type, "RequireAnyClientCert" | "RequireClientCert" | "RequireAndVerifyClientCert") {
                return Err((
                    key("client_allowed_sans"),
                    "client_allowed_sans requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert"
                        .into(),
                ));
            }
            let names = sans
                .iter()
                .map(|s| {
                    ServerName::try_from(s.clone()).map_err(|_| {
                        (key("client_allowed_sans"), format!("{s:?}: only DNS names and IP addresses can be matched"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(SanVerifier { inner: verifier, names }) as Arc<dyn ClientCertVerifier>
        }
        None => verifier,
    };
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| (key("min_version"), format!("inconsistent TLS settings: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private)
        .map_err(|e| (key(key_key), format!("certificate and key do not form a usable pair: {e}")))?;
    cfg.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn client_verifier(
    auth_type: &str,
    roots: Option<&Arc<rustls::RootCertStore>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, KeyError> {
    let need_roots = || {
        roots.cloned().ok_or_else(|| {
            (key("client_ca_file"), format!("client_auth_type {auth_type} needs client_ca_file or client_ca"))
        })
    };
    let webpki = |r, optional: bool| {
        let b = WebPkiClientVerifier::builder_with_provider(r, Arc::clone(provider));
        let b = if optional { b.allow_unauthenticated() } else { b };
        b.build().map_err(|e| (key("client_ca_file"), format!("client certificate verifier: {e}")))
    };
    let algs = provider.signature_verification_algorithms;
    Ok(match auth_type {
        "" | "NoClientCert" => {
            if roots.is_some() {
                return Err((key("client_auth_type"), "client CAs are configured without a client auth type".into()));
            }
            Arc::new(NoClientAuth)
        }
        "RequestClientCert" => Arc::new(AnyCert { mandatory: false, algs }),
        "RequireAnyClientCert" | "RequireClientCert" => Arc::new(AnyCert { mandatory: true, algs }),
        "VerifyClientCertIfGiven" => webpki(need_roots()?, true)?,
        "RequireAndVerifyClientCert" => webpki(need_roots()?, false)?,
        other => {
            return Err((
                key("client_auth_type"),
                format!(
                    "invalid client_auth_type {other:?} (expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
                ),
            ));
        }
    })
}

/// Go's `RequestClientCert` / `RequireAnyClientCert`: asks for a certificate and checks only
/// that the client holds its key (the handshake signature), not who issued it.
#[derive(Debug)]
struct AnyCert {
    mandatory: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    crate::rustls_signature_methods!(algorithms algs);
}

/// `client_allowed_sans`: the inner verifier's checks, then one of the names must be a
/// subject alternative name of the client certificate.
#[derive(Debug)]
struct SanVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<ServerName<'static>>,
}

impl ClientCertVerifier for SanVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let ee = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| rustls::Error::General(format!("unparsable client certificate: {e}")))?;
        if self.names.iter().any(|n| ee.verify_is_valid_for_subject_name(n).is_ok()) {
            Ok(ok)
        } else {
            Err(rustls::Error::General("client certificate has none of the allowed SANs".into()))
        }
    }

    crate::rustls_signature_methods!(delegate inner);
}

/// Writes the three handshake-signature methods every rustls certificate verifier
/// (`ServerCertVerifier`, `ClientCertVerifier`) implements alike: `delegate inner` forwards
/// them to the verifier in field `inner`; `algorithms algs` checks signatures with the
/// `WebPkiSupportedAlgorithms` in field `algs`.
#[macro_export]
macro_rules! rustls_signature_methods {
    (delegate $inner:ident) => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &$crate::tls::rustls::pki_types::CertificateDer<'_>,
            dss: &$crate::tls::rustls::DigitallySignedStruct,
        ) -> Result<$crate::tls::rustls::client::danger::HandshakeSignatureValid, $crate::tls::rustls::Error> {
            self.$inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &$crate::tls::rustls::pki_types::CertificateDer<'_>,
            dss: &$crate::tls::rustls::DigitallySignedStruct,
        ) -> Result<$crate::tls::rustls::client::danger::HandshakeSignatureValid, $crate::tls::rustls::Error> {
            self.$inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<$crate::tls::rustls::SignatureScheme> {
            self.$inner.supported_verify_schemes()
        }
    };
    (algorithms $algs:ident) => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &$crate::tls::rustls::pki_types::CertificateDer<'_>,
            dss: &$crate::tls::rustls::DigitallySignedStruct,
        ) -> Result<$crate::tls::rustls::client::danger::HandshakeSignatureValid, $crate::tls::rustls::Error> {
            $crate::tls::rustls::crypto::verify_tls12_signature(message, cert, dss, &self.$algs)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &$crate::tls::rustls::pki_types::CertificateDer<'_>,
            dss: &$crate::tls::rustls::DigitallySignedStruct,
        ) -> Result<$crate::tls::rustls::client::danger::HandshakeSignatureValid, $crate::tls::rustls::Error> {
            $crate::tls::rustls::crypto::verify_tls13_signature(message, cert, dss, &self.$algs)
        }

        fn supported_verify_schemes(&self) -> Vec<$crate::tls::rustls::SignatureScheme> {
            self.$algs.supported_schemes()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("c.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.join("k.pem"), ck.signing_key.serialize_pem()).unwrap();
    }

    fn tls(extra: impl FnOnce(&mut RawTls)) -> RawTls {
        let mut t = RawTls { cert_file: Some("c.pem".into()), key_file: Some("k.pem".into()), ..RawTls::default() };
        extra(&mut t);
        t
    }

    #[test]
    fn go_settings_map_or_fail_with_the_key() {
        let dir = std::env::temp_dir().join(format!("osprey-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_pair(&dir);
        let mut files = Vec::new();
        let ok = server_config(
            &tls(|t| {
                t.cipher_suites =
                    Some(vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(), "TLS_AES_128_GCM_SHA256".into()]);
                t.curve_preferences = Some(vec!["X25519".into()]);
                t.min_version = Some("TLS13".into());
            }),
            &dir,
            &mut files,
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
        assert_eq!(files.len(), 2);
        type Case = (fn(&mut RawTls), &'static str, &'static str);
        let cases: [Case; 7] = [
            (|t| t.min_version = Some("TLS10".into()), "tls_server_config.min_version", "rustls implements"),
            (
                |t| t.cipher_suites = Some(vec!["TLS_RSA_WITH_AES_128_GCM_SHA256".into()]),
                "tls_server_config.cipher_suites",
                "RSA key exchange",
            ),
            (
                |t| t.cipher_suites = Some(vec!["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into()]),
                "tls_server_config.cipher_suites",
                "CBC",
            ),
            (|t| t.curve_preferences = Some(vec!["CurveP521".into()]), "tls_server_config.curve_preferences", "P521"),
            (
                |t| t.client_auth_type = Some("RequireAndVerifyClientCert".into()),
                "tls_server_config.client_ca_file",
                "needs client_ca_file",
            ),
            (|t| t.client_auth_type = Some("Sometimes".into()), "tls_server_config.client_auth_type", "invalid"),
            (|t| t.cert_file = Some("missing.pem".into()), "tls_server_config.cert_file", "No such file"),
        ];
        for (f, k, reason) in cases {
            let e = server_config(&tls(f), &dir, &mut Vec::new()).unwrap_err();
            assert_eq!(e.0, k, "{e:?}");
            assert!(e.1.contains(reason), "{e:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
