//! A client certificate and its private key, for registries behind mutual TLS.

use std::path::{Path, PathBuf};

/// The PEM files a registry's TLS handshake presents: a certificate (its chain may
/// follow it in the same file) and the private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// Why a client identity could not be used. Errors name the files, never what they
/// hold: one of them is a private key.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: crate::SmallFileError,
    },
    #[error("{path} holds no PEM {expected}")]
    Missing { path: PathBuf, expected: &'static str },
    #[error("client certificate {certificate} with key {key}: {reason}")]
    Invalid {
        certificate: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl ClientIdentity {
    /// Reads both files into what reqwest presents.
    pub(crate) fn load(&self) -> Result<reqwest::Identity, IdentityError> {
        let certificate = read(&self.certificate, "client certificate")?;
        let key = read(&self.key, "client key")?;
        // Checked apart, so swapped or wrong files get a line that says which.
        if !contains(&certificate, b"-----BEGIN CERTIFICATE-----") {
            return Err(IdentityError::Missing {
                path: self.certificate.clone(),
                expected: "certificate (-----BEGIN CERTIFICATE-----)",
            });
        }
        if !contains(&key, b"PRIVATE KEY-----") {
            return Err(IdentityError::Missing {
                path: self.key.clone(),
                expected: "private key (-----BEGIN PRIVATE KEY-----, RSA or EC PRIVATE KEY)",
            });
        }
        let mut pem = certificate;
        pem.push(b'\n');
        pem.extend_from_slice(&key);
        reqwest::Identity::from_pem(&pem).map_err(|error| IdentityError::Invalid {
            certificate: self.certificate.clone(),
            key: self.key.clone(),
            reason: error.to_string(),
        })
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, IdentityError> {
    crate::read_small_file(path, crate::SMALL_FILE_LIMIT).map_err(|source| IdentityError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(dir: &Path, certificate: &str, key: &str) -> ClientIdentity {
        std::fs::write(dir.join("client.crt"), certificate).unwrap();
        std::fs::write(dir.join("client.key"), key).unwrap();
        ClientIdentity {
            certificate: dir.join("client.crt"),
            key: dir.join("client.key"),
        }
    }

    #[test]
    fn missing_or_swapped_files_are_named_without_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let secret_key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        let certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let absent = ClientIdentity {
            certificate: dir.path().join("nope.crt"),
            key: dir.path().join("nope.key"),
        };
        let error = absent.load().unwrap_err().to_string();
        assert!(
            error.contains("cannot read client certificate") && error.contains("nope.crt"),
            "{error}"
        );
        let swapped = identity(dir.path(), secret_key, certificate);
        let error = swapped.load().unwrap_err().to_string();
        assert!(error.contains("client.crt holds no PEM certificate"), "{error}");
        assert!(!error.contains("c2VjcmV0"), "{error}");
        let no_key = identity(dir.path(), certificate, certificate);
        let error = no_key.load().unwrap_err().to_string();
        assert!(error.contains("client.key holds no PEM private key"), "{error}");
    }
}
