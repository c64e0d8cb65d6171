//! Signed-only mirroring: whether an image has a signature, and whether a cosign
//! signature verifies against the configured public keys.
//!
//! A signature is found as cosign's `sha256-<hex>.sig` tag or as a referrer whose
//! `artifactType` is a signature type (cosign's OCI 1.1 signatures, sigstore bundles
//! with the sign predicate, notation). Which of them exist is handed in by the referrers
//! code, so the lookups that decide whether an image is signed are the same ones that
//! later copy its referrers.

mod cosign;
mod keys;

use ocisync_oci::{Descriptor, Digest, Reference, RepoName, Store, StoreError, Tag};

pub use keys::{CosignPublicKey, KeyError};

/// `artifactType` of cosign signatures stored as OCI 1.1 referrers.
pub const COSIGN_SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// `artifactType` of sigstore bundles (cosign v3 signatures and attestations alike).
pub const SIGSTORE_BUNDLE_ARTIFACT: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// `artifactType` of notation signatures (the config media type the spec requires).
pub const NOTATION_SIGNATURE_ARTIFACT: &str = "application/vnd.cncf.notary.signature";
/// The annotation that tells a sigstore bundle signature from an attestation.
const BUNDLE_PREDICATE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// What a content rule demands of an image's signatures.
#[derive(Debug, Clone, Default)]
pub struct SignaturePolicy {
    /// Copy only images with a signature of any kind.
    pub signed_only: bool,
    /// When not empty, copy only images whose cosign signature verifies with one of these.
    pub cosign_keys: Vec<CosignPublicKey>,
}

impl SignaturePolicy {
    /// Whether the policy looks at signatures at all.
    pub fn is_active(&self) -> bool {
        self.signed_only || !self.cosign_keys.is_empty()
    }
}

/// Whether an image passes its rule's [`SignaturePolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    /// No signature of a kind the policy accepts; the detail says what was found.
    Unsigned(String),
    /// A cosign signature exists but none verifies; the detail says why.
    Invalid(String),
}

/// Whether a referrer descriptor is a signature (as opposed to an SBOM or attestation).
pub(crate) fn is_signature(descriptor: &Descriptor) -> bool {
    match descriptor.artifact_type.as_deref() {
        Some(COSIGN_SIGNATURE_ARTIFACT | NOTATION_SIGNATURE_ARTIFACT) => true,
        Some(SIGSTORE_BUNDLE_ARTIFACT) => descriptor
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(BUNDLE_PREDICATE_ANNOTATION))
            .is_some_and(|predicate| predicate == COSIGN_SIGN_PREDICATE),
        _ => false,
    }
}

/// What is attached to an image that may sign it: its cosign `.sig` tag, if the tag list
/// has one, and its OCI referrers.
pub(crate) struct Attachments<'a> {
    pub signature_tag: Option<&'a Tag>,
    pub referrers: &'a [Descriptor],
}

/// Judges the image `digest` of `repo` at `source` by `policy` and what is attached to
/// it; `Err` when the source could not be read.
pub(crate) async fn judge(
    source: &impl Store,
    repo: &RepoName,
    digest: &Digest,
    policy: &SignaturePolicy,
    attached: Attachments<'_>,
) -> Result<Verdict, StoreError> {
    let signature_tag = attached.signature_tag;
    let signature_referrers: Vec<&Descriptor> = attached.referrers.iter().filter(|d| is_signature(d)).collect();
    if policy.cosign_keys.is_empty() {
        return Ok(if signature_tag.is_some() || !signature_referrers.is_empty() {
            Verdict::Accepted
        } else {
            Verdict::Unsigned("no cosign .sig tag and no signature referrer".to_owned())
        });
    }
    // Cosign simple signing lives in the `.sig` tag, or in an OCI 1.1 cosign referrer.
    let mut candidates: Vec<Reference> = signature_tag.cloned().map(Reference::Tag).into_iter().collect();
    candidates.extend(
        signature_referrers
            .iter()
            .filter(|d| d.artifact_type.as_deref() == Some(COSIGN_SIGNATURE_ARTIFACT))
            .map(|d| Reference::Digest(d.digest.clone())),
    );
    if candidates.is_empty() {
        let other = if signature_referrers.is_empty() {
            ""
        } else {
            " (only signatures of other kinds)"
        };
        return Ok(Verdict::Unsigned(format!("no cosign signature to verify{other}")));
    }
    let mut first_problem = None;
    for reference in candidates {
        match cosign::verify_signature_manifest(source, repo, &reference, digest, &policy.cosign_keys).await? {
            Ok(key) => {
                tracing::debug!(repo = %repo, %digest, key = %key, "cosign signature verified");
                return Ok(Verdict::Accepted);
            }
            Err(problem) => {
                first_problem.get_or_insert(format!("{reference}: {problem}"));
            }
        }
    }
    Ok(Verdict::Invalid(
        first_problem.unwrap_or_else(|| "no signature verifies".to_owned()),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn referrer(artifact_type: &str, annotations: &[(&str, &str)]) -> Descriptor {
        let mut descriptor = Descriptor::new("application/vnd.oci.image.manifest.v1+json", Digest::sha256_of(b"x"), 1);
        descriptor.artifact_type = Some(artifact_type.to_owned());
        if !annotations.is_empty() {
            descriptor.annotations = Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            );
        }
        descriptor
    }

    #[test]
    fn signature_artifact_types() {
        let sign = [(BUNDLE_PREDICATE_ANNOTATION, COSIGN_SIGN_PREDICATE)];
        let attest = [(BUNDLE_PREDICATE_ANNOTATION, "https://slsa.dev/provenance/v1")];
        let cases: &[(Descriptor, bool)] = &[
            (referrer(COSIGN_SIGNATURE_ARTIFACT, &[]), true),
            (referrer(NOTATION_SIGNATURE_ARTIFACT, &[]), true),
            (referrer(SIGSTORE_BUNDLE_ARTIFACT, &sign), true),
            (referrer(SIGSTORE_BUNDLE_ARTIFACT, &attest), false),
            (referrer(SIGSTORE_BUNDLE_ARTIFACT, &[]), false),
            (referrer("application/spdx+json", &[]), false),
            (referrer("application/vnd.in-toto+json", &[]), false),
        ];
        for (descriptor, expected) in cases {
            assert_eq!(is_signature(descriptor), *expected, "{descriptor:?}");
        }
    }
}
