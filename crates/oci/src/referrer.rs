//! Referrers: manifests that point at another manifest through `subject` (signatures,
//! SBOMs, attestations), and the tags that stand for them where a registry lacks the
//! referrers API.
//!
//! distribution-spec "Listing Referrers" and "Referrers Tag Schema"; cosign
//! `specs/SIGNATURE_SPEC.md` for the `sha256-<hex>.sig` tags.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::name::Tag;

/// What a manifest says about itself as a referrer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerFields {
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    config: Option<ConfigField>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigField {
    media_type: String,
}

/// The subject a manifest refers to, and the descriptor a referrers list gives it
/// (media type, digest, size, `artifactType`, annotations). `None` when the manifest
/// has no `subject` or is not JSON.
///
/// The spec: "If the artifactType is empty or missing in the image manifest, the value
/// of artifactType MUST be set to the config descriptor mediaType value."
pub fn referrer_descriptor(manifest: &Manifest) -> Option<(Digest, Descriptor)> {
    let fields: ReferrerFields = serde_json::from_slice(&manifest.bytes).ok()?;
    let subject = fields.subject?;
    let mut descriptor = manifest.descriptor();
    descriptor.artifact_type = fields
        .artifact_type
        .filter(|artifact_type| !artifact_type.is_empty())
        .or(fields.config.map(|config| config.media_type));
    descriptor.annotations = fields.annotations.filter(|annotations| !annotations.is_empty());
    Some((subject.digest, descriptor))
}

/// The referrers tag schema tag of `digest`: `<alg>-<encoded>`, the algorithm cut to 32
/// characters and the encoded part to 64 (`sha256-<64 hex>`).
pub fn referrers_tag(digest: &Digest) -> Tag {
    let text = digest.to_string();
    let (algorithm, encoded) = text.split_once(':').unwrap_or((text.as_str(), ""));
    let algorithm: String = algorithm.chars().take(32).collect();
    let encoded: String = encoded.chars().take(64).collect();
    format!("{algorithm}-{encoded}")
        .parse()
        .unwrap_or_else(|_| unreachable!("digest characters are valid tag characters"))
}

/// The kinds of tag cosign attaches to an image (`sha256-<hex>.sig`, `.att`, `.sbom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CosignTagKind {
    Signature,
    Attestation,
    Sbom,
}

impl CosignTagKind {
    pub const ALL: [CosignTagKind; 3] = [
        CosignTagKind::Signature,
        CosignTagKind::Attestation,
        CosignTagKind::Sbom,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            CosignTagKind::Signature => "sig",
            CosignTagKind::Attestation => "att",
            CosignTagKind::Sbom => "sbom",
        }
    }
}

/// The cosign tag of `kind` for `digest`: cosign replaces `:` with `-` and appends the suffix.
pub fn cosign_tag(digest: &Digest, kind: CosignTagKind) -> Option<Tag> {
    format!("{}.{}", digest.to_string().replacen(':', "-", 1), kind.suffix())
        .parse()
        .ok()
}

/// What a tag name says about the manifest it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferrerTag {
    /// `sha256-<hex>.sig|.att|.sbom`: cosign's signature, attestation or SBOM of `subject`.
    Cosign { subject: Digest, kind: CosignTagKind },
    /// `sha256-<hex>`: the referrers tag schema index of `subject`.
    Schema { subject: Digest },
}

impl ReferrerTag {
    /// The tag's role, or `None` for an ordinary tag.
    pub fn parse(tag: &Tag) -> Option<ReferrerTag> {
        let text = tag.as_str();
        let (name, suffix) = match text.rsplit_once('.') {
            Some((name, suffix)) => (name, Some(suffix)),
            None => (text, None),
        };
        let subject: Digest = name.replacen('-', ":", 1).parse().ok()?;
        if subject.to_string().len() != name.len() {
            return None;
        }
        match suffix {
            None => Some(ReferrerTag::Schema { subject }),
            Some(suffix) => CosignTagKind::ALL
                .into_iter()
                .find(|kind| kind.suffix() == suffix)
                .map(|kind| ReferrerTag::Cosign { subject, kind }),
        }
    }

    pub fn subject(&self) -> &Digest {
        match self {
            ReferrerTag::Cosign { subject, .. } | ReferrerTag::Schema { subject } => subject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::OCI_MANIFEST;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn digest() -> Digest {
        format!("sha256:{HEX}").parse().unwrap()
    }

    fn tag(text: &str) -> Tag {
        text.parse().unwrap()
    }

    #[test]
    fn tag_names_of_a_digest() {
        assert_eq!(referrers_tag(&digest()).as_str(), format!("sha256-{HEX}"));
        assert_eq!(
            cosign_tag(&digest(), CosignTagKind::Signature).unwrap().as_str(),
            format!("sha256-{HEX}.sig")
        );
        let sha512: Digest = format!("sha512:{}", "ab".repeat(64)).parse().unwrap();
        assert_eq!(referrers_tag(&sha512).as_str(), format!("sha512-{}", "ab".repeat(32)));
    }

    #[test]
    fn tags_are_recognised_by_shape() {
        let cases: &[(String, Option<ReferrerTag>)] = &[
            (
                format!("sha256-{HEX}.sig"),
                Some(ReferrerTag::Cosign {
                    subject: digest(),
                    kind: CosignTagKind::Signature,
                }),
            ),
            (
                format!("sha256-{HEX}.att"),
                Some(ReferrerTag::Cosign {
                    subject: digest(),
                    kind: CosignTagKind::Attestation,
                }),
            ),
            (
                format!("sha256-{HEX}.sbom"),
                Some(ReferrerTag::Cosign {
                    subject: digest(),
                    kind: CosignTagKind::Sbom,
                }),
            ),
            (format!("sha256-{HEX}"), Some(ReferrerTag::Schema { subject: digest() })),
            (format!("sha256-{HEX}.txt"), None),
            (format!("sha256-{}", &HEX[1..]), None),
            ("latest".to_owned(), None),
            ("v1.2.3".to_owned(), None),
            ("sha256-abc.sig".to_owned(), None),
        ];
        for (text, expected) in cases {
            assert_eq!(&ReferrerTag::parse(&tag(text)), expected, "{text}");
        }
    }

    #[test]
    fn referrer_descriptor_takes_artifact_type_or_config_type() {
        let subject = format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{HEX}","size":7}}"#);
        let config = r#"{"mediaType":"application/vnd.cncf.notary.signature","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}"#;
        let with_type = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/example","config":{config},"layers":[],"subject":{subject},"annotations":{{"a":"b"}}}}"#
        );
        let (of, descriptor) = referrer_descriptor(&Manifest::from_bytes(with_type, OCI_MANIFEST)).unwrap();
        assert_eq!(of, digest());
        assert_eq!(descriptor.artifact_type.as_deref(), Some("application/example"));
        assert_eq!(descriptor.annotations.unwrap()["a"], "b");
        let without_type = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[],"subject":{subject}}}"#
        );
        let (_, descriptor) = referrer_descriptor(&Manifest::from_bytes(without_type, OCI_MANIFEST)).unwrap();
        assert_eq!(
            descriptor.artifact_type.as_deref(),
            Some("application/vnd.cncf.notary.signature")
        );
        let no_subject = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[]}}"#);
        assert!(referrer_descriptor(&Manifest::from_bytes(no_subject, OCI_MANIFEST)).is_none());
    }
}
