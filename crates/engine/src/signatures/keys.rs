//! Cosign public keys: ECDSA P-256 keys in PEM (`-----BEGIN PUBLIC KEY-----`, SPKI).

use std::fmt;

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;

/// A public key that cosign signatures are checked against, with the name it was
/// configured under (the key file), for reports and logs.
#[derive(Clone)]
pub struct CosignPublicKey {
    name: String,
    key: VerifyingKey,
}

/// Why key text is not a usable cosign public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a PEM ECDSA P-256 public key: {reason}")]
pub struct KeyError {
    reason: String,
}

impl CosignPublicKey {
    /// Parses a PEM public key (what `cosign generate-key-pair` writes to `cosign.pub`).
    pub fn from_pem(name: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|error| KeyError {
            reason: error.to_string(),
        })?;
        Ok(CosignPublicKey { name: name.into(), key })
    }

    /// The name it was configured under (its file).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl fmt::Debug for CosignPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignPublicKey").field("name", &self.name).finish()
    }
}

impl fmt::Display for CosignPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    use super::*;

    #[test]
    fn parses_pem_public_keys_and_refuses_anything_else() {
        let signing = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pem = signing.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let key = CosignPublicKey::from_pem("cosign.pub", &pem).unwrap();
        assert_eq!(key.verifying_key(), signing.verifying_key());
        assert_eq!(key.to_string(), "cosign.pub");
        for bad in [
            "",
            "hello",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(CosignPublicKey::from_pem("bad", bad).is_err(), "{bad:?}");
        }
    }
}
