//! Signed test images: cosign key pairs, simple-signing signatures, attestations and
//! SBOMs under cosign's tags, OCI 1.1 referrers (notation, sigstore bundle, SBOM) with
//! `subject`, and the referrers tag schema index that lists them.
//!
//! Formats: cosign `specs/SIGNATURE_SPEC.md` (payload, `dev.cosignproject.cosign/signature`
//! annotation, `sha256-<hex>.sig` tags), notation `signature-specification.md` (config
//! media type `application/vnd.cncf.notary.signature`), distribution-spec "Referrers Tag
//! Schema". Signatures are real ECDSA P-256 / SHA-256, so a verifier can judge them.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::image::{Blob, Image, Manifest, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};

/// Media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding a cosign signature (base64 ASN.1 DER).
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `artifactType` of notation signatures.
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// `artifactType` of sigstore bundles.
pub const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// `artifactType` of an SPDX SBOM referrer.
pub const SPDX_SBOM: &str = "application/spdx+json";
/// The OCI empty descriptor's media type (config of artifacts without one).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A cosign key pair (ECDSA P-256), generated fresh for a test.
pub struct CosignKey {
    signing: SigningKey,
}

impl CosignKey {
    /// A new random key pair (randomness from the standard library's hasher seeds).
    pub fn generate() -> CosignKey {
        for attempt in 0u64..64 {
            let mut seed = Sha256::new();
            for round in 0..4u64 {
                let mut hasher = RandomState::new().build_hasher();
                hasher.write_u64(attempt ^ round);
                seed.update(hasher.finish().to_le_bytes());
            }
            // Almost every 32-byte string is a valid scalar; retry the rare one that is not.
            if let Ok(signing) = SigningKey::from_slice(&seed.finalize()) {
                return CosignKey { signing };
            }
        }
        panic!("testkit: could not generate a P-256 key")
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`), as in cosign's `cosign.pub`.
    pub fn public_key_pem(&self) -> String {
        self.signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("testkit: encode public key")
    }

    /// The base64 ASN.1 DER ECDSA signature of `payload` (SHA-256), as cosign writes it.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.signing.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// cosign's tag for `digest` (`sha256:<hex>`) with `suffix` (`sig`, `att`, `sbom`).
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

/// The referrers tag schema tag of `digest`: `sha256-<hex>`.
pub fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The cosign simple-signing payload naming `signed_digest`.
pub fn simple_signing_payload(signed_digest: &str, docker_reference: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": signed_digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .expect("testkit: payload JSON")
}

/// A cosign signature manifest (what `cosign sign --key` pushes as `sha256-<hex>.sig`):
/// one payload layer naming `payload_digest`, signed with `key`. Pass the image's own
/// digest for a good signature, another to model a signature copied from elsewhere.
pub fn cosign_signature(key: &CosignKey, payload_digest: &str) -> Image {
    let payload = simple_signing_payload(payload_digest, "registry.test/app");
    let signature = key.sign(&payload);
    cosign_style_manifest(
        SIMPLE_SIGNING,
        payload,
        &[(COSIGN_SIGNATURE_ANNOTATION, signature.as_str())],
    )
}

/// A cosign attestation manifest (`sha256-<hex>.att`): one DSSE envelope layer.
pub fn cosign_attestation(subject_digest: &str) -> Image {
    let envelope = serde_json::to_vec(&json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64::engine::general_purpose::STANDARD.encode(format!("{{\"subject\":\"{subject_digest}\"}}")),
        "signatures": []
    }))
    .expect("testkit: envelope JSON");
    cosign_style_manifest("application/vnd.dsse.envelope.v1+json", envelope, &[])
}

/// A cosign SBOM manifest (`sha256-<hex>.sbom`): one SPDX layer.
pub fn cosign_sbom(subject_digest: &str) -> Image {
    let sbom = format!("{{\"spdxVersion\":\"SPDX-2.3\",\"name\":\"{subject_digest}\"}}");
    cosign_style_manifest("text/spdx+json", sbom.into_bytes(), &[])
}

fn cosign_style_manifest(layer_type: &str, content: Vec<u8>, annotations: &[(&str, &str)]) -> Image {
    let layer = Blob::new(layer_type, content);
    let config = Blob::new(
        OCI_CONFIG,
        serde_json::to_vec(&json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]}
        }))
        .expect("testkit: config JSON"),
    );
    let mut layer_descriptor = descriptor(&layer.media_type, &layer.digest, layer.size());
    if !annotations.is_empty() {
        layer_descriptor["annotations"] = annotations_json(annotations);
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(&config.media_type, &config.digest, config.size()),
        "layers": [layer_descriptor],
    });
    artifact_image(body, vec![config, layer])
}

/// An OCI 1.1 referrer of `subject`: `artifactType`, the empty config (or a config of
/// media type `config_type`), one layer of `layer_type` holding `content`, annotations.
pub fn referrer(
    subject: &Manifest,
    artifact_type: Option<&str>,
    config_type: Option<&str>,
    layer_type: &str,
    content: impl Into<Vec<u8>>,
    annotations: &[(&str, &str)],
) -> Image {
    let config = Blob::new(config_type.unwrap_or(OCI_EMPTY), b"{}".to_vec());
    let layer = Blob::new(layer_type, content.into());
    let mut body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(&config.media_type, &config.digest, config.size()),
        "layers": [descriptor(&layer.media_type, &layer.digest, layer.size())],
        "subject": descriptor(&subject.media_type, &subject.digest, subject.size()),
    });
    if let Some(artifact_type) = artifact_type {
        body["artifactType"] = Value::from(artifact_type);
    }
    if !annotations.is_empty() {
        body["annotations"] = annotations_json(annotations);
    }
    artifact_image(body, vec![config, layer])
}

/// A notation signature of `subject`: config media type `application/vnd.cncf.notary.signature`
/// (no `artifactType`, so the registry takes it from the config), one JWS layer.
pub fn notation_signature(subject: &Manifest) -> Image {
    referrer(
        subject,
        None,
        Some(NOTATION_SIGNATURE),
        "application/jose+json",
        format!("{{\"payload\":\"{}\"}}", subject.digest),
        &[("io.cncf.notary.x509chain.thumbprint#S256", "[]")],
    )
}

/// A cosign v3 (sigstore bundle) signature of `subject`.
pub fn sigstore_bundle_signature(subject: &Manifest) -> Image {
    referrer(
        subject,
        Some(SIGSTORE_BUNDLE),
        None,
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        format!(
            "{{\"mediaType\":\"{SIGSTORE_BUNDLE}\",\"subject\":\"{}\"}}",
            subject.digest
        ),
        &[(
            "dev.sigstore.bundle.predicateType",
            "https://sigstore.dev/cosign/sign/v1",
        )],
    )
}

/// A cosign v3 (sigstore bundle) attestation of `subject`: a bundle, but not a signature.
pub fn sigstore_bundle_attestation(subject: &Manifest) -> Image {
    referrer(
        subject,
        Some(SIGSTORE_BUNDLE),
        None,
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        format!("{{\"attests\":\"{}\"}}", subject.digest),
        &[("dev.sigstore.bundle.predicateType", "https://slsa.dev/provenance/v1")],
    )
}

/// An SPDX SBOM referrer of `subject`.
pub fn sbom_referrer(subject: &Manifest) -> Image {
    referrer(
        subject,
        Some(SPDX_SBOM),
        None,
        SPDX_SBOM,
        format!("{{\"spdxVersion\":\"SPDX-2.3\",\"of\":\"{}\"}}", subject.digest),
        &[],
    )
}

/// The referrers tag schema index listing `referrers` (each with `artifactType` and
/// annotations, as the spec asks), to push under [`referrers_tag`] of their subject.
pub fn referrers_index(referrers: &[&Image]) -> Manifest {
    let manifests: Vec<Value> = referrers
        .iter()
        .map(|referrer| {
            let body: Value = serde_json::from_slice(&referrer.manifest.bytes).expect("testkit: referrer JSON");
            let mut entry = descriptor(
                &referrer.manifest.media_type,
                &referrer.manifest.digest,
                referrer.manifest.size(),
            );
            let artifact_type = body
                .get("artifactType")
                .cloned()
                .unwrap_or_else(|| body["config"]["mediaType"].clone());
            entry["artifactType"] = artifact_type;
            if let Some(annotations) = body.get("annotations") {
                entry["annotations"] = annotations.clone();
            }
            entry
        })
        .collect();
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    Manifest::new(OCI_INDEX, serde_json::to_vec(&body).expect("testkit: index JSON"))
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

fn annotations_json(annotations: &[(&str, &str)]) -> Value {
    Value::Object(
        annotations
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Value::from(*value)))
            .collect(),
    )
}

fn artifact_image(body: Value, blobs: Vec<Blob>) -> Image {
    Image {
        manifest: Manifest::new(OCI_MANIFEST, serde_json::to_vec(&body).expect("testkit: manifest JSON")),
        blobs,
        children: Vec::new(),
        platform: None,
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::VerifyingKey;
    use p256::pkcs8::DecodePublicKey;

    use super::*;
    use crate::image::{image, layer, Format};

    #[test]
    fn cosign_signatures_verify_with_their_public_key_only() {
        let key = CosignKey::generate();
        let other = CosignKey::generate();
        assert_ne!(key.public_key_pem(), other.public_key_pem());
        let subject = image(Format::Oci, ("linux", "amd64"), vec![layer(Format::Oci, 1, 10)], "x");
        let signed = cosign_signature(&key, subject.digest());
        let body: Value = serde_json::from_slice(&signed.manifest.bytes).unwrap();
        let signature = body["layers"][0]["annotations"][COSIGN_SIGNATURE_ANNOTATION]
            .as_str()
            .unwrap();
        let der = base64::engine::general_purpose::STANDARD.decode(signature).unwrap();
        let signature = Signature::from_der(&der).unwrap();
        let payload = &signed.blobs[1].bytes;
        let payload_json: Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(
            payload_json["critical"]["image"]["docker-manifest-digest"],
            subject.digest()
        );
        let public = VerifyingKey::from_public_key_pem(&key.public_key_pem()).unwrap();
        assert!(public.verify(payload, &signature).is_ok());
        let other_public = VerifyingKey::from_public_key_pem(&other.public_key_pem()).unwrap();
        assert!(other_public.verify(payload, &signature).is_err());
        assert_eq!(
            cosign_tag(subject.digest(), "sig"),
            format!("sha256-{}.sig", &subject.digest()[7..])
        );
    }

    #[test]
    fn referrers_name_their_subject_and_the_index_lists_their_types() {
        let subject = image(Format::Oci, ("linux", "amd64"), vec![layer(Format::Oci, 1, 10)], "x");
        let notation = notation_signature(&subject.manifest);
        let sbom = sbom_referrer(&subject.manifest);
        let body: Value = serde_json::from_slice(&notation.manifest.bytes).unwrap();
        assert_eq!(body["subject"]["digest"], subject.digest());
        assert!(body.get("artifactType").is_none());
        let index = referrers_index(&[&notation, &sbom]);
        let index: Value = serde_json::from_slice(&index.bytes).unwrap();
        assert_eq!(index["manifests"][0]["artifactType"], NOTATION_SIGNATURE);
        assert_eq!(index["manifests"][1]["artifactType"], SPDX_SBOM);
        assert_eq!(index["manifests"][1]["digest"], sbom.digest());
    }
}
