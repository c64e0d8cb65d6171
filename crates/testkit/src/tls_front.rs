//! [`TlsFront`]: HTTPS in front of a plain loopback server (a [`TokenServer`](crate::TokenServer),
//! a [`HostileServer`](crate::HostileServer)), with a certificate from its own fresh
//! [`TestCa`]. A client trusts it only if it is handed that CA ([`TlsFront::ca_file`]),
//! so a test can stand up "another HTTPS origin whose certificate nobody trusts".
//!
//! Each accepted connection is decrypted and its bytes copied to and from a new
//! connection to the backend, both ways, until either side closes.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;
use tokio_rustls::TlsAcceptor;

use crate::serve::{accept_until_shutdown, LocalServer};
use crate::tls::TestCa;

/// A running TLS terminator on `127.0.0.1`; stopped on drop.
pub struct TlsFront {
    server: LocalServer,
    ca_file: std::path::PathBuf,
    // Dropped last: removes the CA file.
    _dir: TempDir,
}

impl std::fmt::Debug for TlsFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFront").field("url", &self.url()).finish()
    }
}

impl TlsFront {
    /// Serves HTTPS on a free loopback port for the plain HTTP server at `backend`
    /// (`http://127.0.0.1:PORT`, as testkit's servers give their URLs).
    pub fn start(backend: &str) -> TlsFront {
        let backend: SocketAddr = backend
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("testkit: TlsFront backend is http://IP:PORT");
        let dir = tempfile::Builder::new()
            .prefix("ocisync-tls-front-")
            .tempdir()
            .expect("testkit: create TLS front temp dir");
        let ca = TestCa::new("ocisync testkit TLS front CA");
        let ca_file = ca.write_pem(&dir.path().join("ca.pem"));
        let server = ca.loopback_server_certificate();
        let chain = vec![CertificateDer::from_pem_slice(server.certificate_pem.as_bytes())
            .expect("testkit: parse TLS front certificate")];
        let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).expect("testkit: parse TLS front key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("testkit: TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("testkit: TLS front certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let server = LocalServer::serve("tls-front", move |listener, shutdown| {
            serve(listener, acceptor, backend, shutdown)
        });
        TlsFront {
            server,
            ca_file,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.server.addr())
    }

    /// The PEM file of the CA that signed this front's certificate (a client's `ca_file`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    backend: SocketAddr,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    accept_until_shutdown(listener, shutdown, |stream| {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // A client that refuses the certificate ends the handshake: nothing to forward.
            let Ok(mut client) = acceptor.accept(stream).await else {
                return;
            };
            let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HostileAnswer, HostileServer};

    #[tokio::test]
    async fn serves_the_backend_over_https_to_clients_given_its_ca_only() {
        let backend = HostileServer::start(|_| HostileAnswer::new(200).text("behind tls"));
        let front = TlsFront::start(&backend.url());
        assert!(front.url().starts_with("https://127.0.0.1:"));
        let ca = reqwest::Certificate::from_pem(&std::fs::read(front.ca_file()).unwrap()).unwrap();
        let trusting = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let answer = trusting.get(format!("{}/v2/", front.url())).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "behind tls");
        let error = reqwest::get(format!("{}/v2/", front.url())).await.unwrap_err();
        assert!(format!("{error:?}").contains("UnknownIssuer"), "{error:?}");
        assert_eq!(backend.requests().len(), 1, "the refused handshake reached nothing");
    }
}
