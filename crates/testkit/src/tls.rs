//! Test certificates: [`TestCa`], a private certificate authority that signs loopback
//! server certificates, so tests can run a registry over HTTPS and hand the CA to the
//! client as a `ca_file`, and client certificates for registries behind mutual TLS.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

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

/// A client certificate (for TLS client authentication) and its private key.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub certificate_pem: String,
    /// PKCS#8.
    pub key_pem: String,
    certificate_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl ClientCertificate {
    /// Writes `client.crt` and `client.key` into `dir`; returns their paths.
    pub fn write_pem(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let certificate = dir.join("client.crt");
        let key = dir.join("client.key");
        fs::write(&certificate, &self.certificate_pem).expect("testkit: write client certificate");
        fs::write(&key, &self.key_pem).expect("testkit: write client key");
        (certificate, key)
    }
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

    /// A client certificate (extended key usage `clientAuth`) for `common_name`.
    pub fn client_certificate(&self, common_name: &str) -> ClientCertificate {
        let key = KeyPair::generate().expect("testkit: generate client key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .expect("testkit: sign client certificate");
        ClientCertificate {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            certificate_der: certificate.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

/// `GET /v2/` over TLS on `127.0.0.1:port`, trusting only `root` and presenting
/// `client` if given: returns the status code and the response head, or `None` if the
/// server cannot be reached or the handshake fails.
pub(crate) fn probe_v2_tls(
    port: u16,
    root: &CertificateDer<'static>,
    client: Option<&ClientCertificate>,
) -> Option<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).ok()?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots);
    let config = match client {
        Some(client) => {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client.key_der.clone()));
            config
                .with_client_auth_cert(vec![client.certificate_der.clone()], key)
                .ok()?
        }
        None => config.with_no_client_auth(),
    };
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
