//! Verifying cosign simple-signing signatures (cosign `specs/SIGNATURE_SPEC.md`).
//!
//! A signature manifest has one layer per signature: the layer is the payload (JSON
//! naming the signed manifest digest under `critical.image.docker-manifest-digest`), and
//! its annotation `dev.cosignproject.cosign/signature` is the base64 ASN.1 ECDSA
//! signature over the payload bytes (SHA-256).

use base64::Engine as _;
use futures_util::StreamExt;
use ocisync_oci::{verify_blob_stream, Descriptor, Digest, ManifestContent, Reference, RepoName, Store, StoreError};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::Signature;
use serde::Deserialize;

use super::keys::CosignPublicKey;

const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Payloads are a few hundred bytes; anything much larger is not a simple-signing payload.
const PAYLOAD_LIMIT: u64 = 1024 * 1024;

/// Why a signature manifest did not vouch for an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Problem {
    #[error("signature manifest is not an image manifest")]
    NotAnImageManifest,
    #[error("no layer carries a {SIGNATURE_ANNOTATION} annotation")]
    NoSignatureLayer,
    #[error("signature is not base64 ASN.1 ECDSA")]
    UnreadableSignature,
    #[error("payload of {size} bytes is larger than {PAYLOAD_LIMIT}")]
    PayloadTooLarge { size: u64 },
    #[error("signature does not verify with any of the {keys} configured keys")]
    NoKeyVerifies { keys: usize },
    #[error("payload is not a cosign simple-signing document")]
    UnreadablePayload,
    #[error("payload signs {named}, not this image")]
    OtherDigest { named: String },
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: SignedImage,
}

#[derive(Deserialize)]
struct SignedImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Checks the signature manifest at `reference` (the `.sig` tag or a cosign referrer):
/// `Ok(Ok(key name))` when one of its signatures verifies with one of `keys` and signs
/// `digest`; `Ok(Err(problem))` when none does; `Err` when the source could not be read.
pub(super) async fn verify_signature_manifest(
    source: &impl Store,
    repo: &RepoName,
    reference: &Reference,
    digest: &Digest,
    keys: &[CosignPublicKey],
) -> Result<Result<String, Problem>, StoreError> {
    let manifest = source.manifest(repo, reference).await?;
    let Ok(ManifestContent::Image { layers, .. }) = manifest.content() else {
        return Ok(Err(Problem::NotAnImageManifest));
    };
    let mut problem = Problem::NoSignatureLayer;
    for layer in &layers {
        let Some(signature) = layer
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        if layer.size > PAYLOAD_LIMIT {
            problem = Problem::PayloadTooLarge { size: layer.size };
            continue;
        }
        let payload = read_payload(source, repo, layer).await?;
        match check(signature, &payload, digest, keys) {
            Ok(key) => return Ok(Ok(key)),
            Err(found) => problem = found,
        }
    }
    Ok(Err(problem))
}

/// One signature over one payload: the key that verifies it, else what is wrong.
pub(crate) fn check(
    signature_base64: &str,
    payload: &[u8],
    digest: &Digest,
    keys: &[CosignPublicKey],
) -> Result<String, Problem> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_base64.trim())
        .map_err(|_| Problem::UnreadableSignature)?;
    let signature = Signature::from_der(&der).map_err(|_| Problem::UnreadableSignature)?;
    let key = keys
        .iter()
        .find(|key| key.verifying_key().verify(payload, &signature).is_ok())
        .ok_or(Problem::NoKeyVerifies { keys: keys.len() })?;
    // Only a verified payload is worth reading: its claims are the signer's.
    let payload: Payload = serde_json::from_slice(payload).map_err(|_| Problem::UnreadablePayload)?;
    let named = payload.critical.image.docker_manifest_digest;
    if named != digest.to_string() {
        return Err(Problem::OtherDigest { named });
    }
    Ok(key.name().to_owned())
}

async fn read_payload(source: &impl Store, repo: &RepoName, layer: &Descriptor) -> Result<Vec<u8>, StoreError> {
    let stream = source.blob(repo, layer).await?;
    let what = format!("{} payload {repo}@{}", source.label(), layer.digest);
    let mut stream = verify_blob_stream(stream, layer, what);
    let mut payload = Vec::new();
    while let Some(chunk) = stream.next().await {
        payload.extend_from_slice(&chunk?);
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    use super::*;

    fn key_pair(seed: u8) -> (SigningKey, CosignPublicKey) {
        let signing = SigningKey::from_slice(&[seed; 32]).unwrap();
        let pem = signing.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        (signing, CosignPublicKey::from_pem(format!("key{seed}"), &pem).unwrap())
    }

    fn sign(signing: &SigningKey, payload: &[u8]) -> String {
        let signature: Signature = signing.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    fn payload_for(digest: &Digest) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_signature_is_accepted_only_with_the_right_key_payload_and_digest() {
        let (signing, key) = key_pair(1);
        let (_, other_key) = key_pair(2);
        let image = Digest::sha256_of(b"image");
        let other_image = Digest::sha256_of(b"other");
        let payload = payload_for(&image);
        let signature = sign(&signing, &payload);

        assert_eq!(
            check(&signature, &payload, &image, &[other_key.clone(), key.clone()]),
            Ok("key1".to_owned())
        );
        assert_eq!(
            check(&signature, &payload, &image, std::slice::from_ref(&other_key)),
            Err(Problem::NoKeyVerifies { keys: 1 })
        );
        let mut tampered = payload.clone();
        tampered[3] ^= 1;
        assert_eq!(
            check(&signature, &tampered, &image, std::slice::from_ref(&key)),
            Err(Problem::NoKeyVerifies { keys: 1 })
        );
        let elsewhere = payload_for(&other_image);
        assert_eq!(
            check(
                &sign(&signing, &elsewhere),
                &elsewhere,
                &image,
                std::slice::from_ref(&key)
            ),
            Err(Problem::OtherDigest {
                named: other_image.to_string()
            })
        );
        assert_eq!(
            check("not base64!", &payload, &image, std::slice::from_ref(&key)),
            Err(Problem::UnreadableSignature)
        );
        let not_json = b"hello".to_vec();
        assert_eq!(
            check(&sign(&signing, &not_json), &not_json, &image, &[key]),
            Err(Problem::UnreadablePayload)
        );
    }
}
