//! Test certificates: [`TestCa`], a private certificate authority that signs loopback
//! server certificates, so tests can run a registry over HTTPS and hand the CA to the
//! client as a `ca_file`.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, ServerName};

/// A private CA (ECDSA P-256), created fresh for each use.
pub struct TestCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct ServerCertificate {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA whose certificate's common name is `name`.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("testkit: generate CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let certificate = params.self_signed(&key).expect("testkit: self-sign CA");
        TestCa { certificate, key }
    }

    /// The CA certificate, PEM (what a client's `ca_file` holds).
    pub fn certificate_pem(&self) -> String {
        self.certificate.pem()
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    /// Writes the CA certificate (PEM) to `path` and returns the path.
    pub fn write_pem(&self, path: &Path) -> PathBuf {
        fs::write(path, self.certificate_pem()).expect("testkit: write CA certificate");
        path.to_path_buf()
    }

    /// A server certificate for the loopback host: `127.0.0.1`, `::1` and `localhost`.
    pub fn loopback_server_certificate(&self) -> ServerCertificate {
        let key = KeyPair::generate().expect("testkit: generate server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("testkit: server certificate params");
        params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        params.subject_alt_names.extend([
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]);
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .expect("testkit: sign server certificate");
        ServerCertificate {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// `GET /v2/` over TLS on `127.0.0.1:port`, trusting only `root`: returns the status code
/// and the response head, or `None` if the server cannot be reached or the handshake fails.
pub(crate) fn probe_v2_tls(port: u16, root: &CertificateDer<'static>) -> Option<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).ok()?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let connection = rustls::ClientConnection::new(Arc::new(config), server_name).ok()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_millis(250)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    // A server may close without close_notify; what was read before that is enough.
    let _ = stream.read_to_end(&mut buf);
    crate::registry::parse_head(&buf)
}
