//! Raw manifests: the exact bytes, their media type and digest, and what they reference.
//!
//! Manifests are never re-serialized: the bytes read from the source are the bytes
//! written to the destination, so digests never change.

use bytes::Bytes;
use serde::Deserialize;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::media_type::{self, ManifestClass};

/// A manifest as stored: exact bytes, media type and the digest of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// What a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(clippy::large_enum_variant, reason = "one short-lived value per manifest read")]
pub enum ManifestContent {
    /// An OCI index or Docker manifest list.
    Index { manifests: Vec<Descriptor> },
    /// An image manifest or OCI artifact.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
        subject: Option<Descriptor>,
    },
    /// Docker schema1: recognised so it can be skipped with a reason.
    Schema1,
}

/// Why manifest bytes could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed manifest: {0}")]
pub struct MalformedManifest(String);

impl MalformedManifest {
    pub fn new(reason: impl Into<String>) -> Self {
        MalformedManifest(reason.into())
    }
}

/// The fields of every manifest shape that copying needs; the rest is ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestFields {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
}

impl Manifest {
    /// A manifest from bytes, digest computed with sha256.
    pub fn from_bytes(bytes: impl Into<Bytes>, media_type: impl Into<String>) -> Self {
        let bytes = bytes.into();
        Manifest {
            digest: Digest::sha256_of(&bytes),
            bytes,
            media_type: media_type.into(),
        }
    }

    /// The descriptor a parent (index or tag) uses to point at this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest.clone(), self.bytes.len() as u64)
    }

    /// Parses what the manifest references.
    pub fn content(&self) -> Result<ManifestContent, MalformedManifest> {
        parse_content(&self.bytes, &self.media_type)
    }
}

/// Picks the media type of manifest bytes: the registry's `Content-Type` when it names
/// a manifest type, else the body's `mediaType`, else the shape of the body.
pub fn detect_media_type(bytes: &[u8], content_type: Option<&str>) -> Option<String> {
    if let Some(content_type) = content_type {
        let bare = content_type.split(';').next().unwrap_or("").trim();
        if media_type::classify(bare).is_some() {
            return Some(bare.to_owned());
        }
    }
    let fields: ManifestFields = serde_json::from_slice(bytes).ok()?;
    if let Some(declared) = fields.media_type {
        return Some(declared);
    }
    if fields.schema_version == Some(1) {
        return Some(media_type::DOCKER_SCHEMA1_SIGNED.to_owned());
    }
    if fields.manifests.is_some() {
        return Some(media_type::OCI_INDEX.to_owned());
    }
    if fields.config.is_some() {
        return Some(media_type::OCI_MANIFEST.to_owned());
    }
    None
}

fn parse_content(bytes: &[u8], declared_media_type: &str) -> Result<ManifestContent, MalformedManifest> {
    let class = media_type::classify(declared_media_type)
        .ok_or_else(|| MalformedManifest(format!("unsupported media type \"{declared_media_type}\"")))?;
    if class == ManifestClass::Schema1 {
        return Ok(ManifestContent::Schema1);
    }
    let fields: ManifestFields = serde_json::from_slice(bytes).map_err(|error| MalformedManifest(error.to_string()))?;
    if fields.schema_version == Some(1) {
        return Ok(ManifestContent::Schema1);
    }
    if fields.schema_version != Some(2) {
        return Err(MalformedManifest("schemaVersion must be 2".to_owned()));
    }
    if let Some(body_type) = &fields.media_type {
        if body_type != declared_media_type {
            return Err(MalformedManifest(format!(
                "body mediaType \"{body_type}\" differs from \"{declared_media_type}\""
            )));
        }
    }
    match class {
        ManifestClass::Index => {
            let manifests = fields
                .manifests
                .ok_or_else(|| MalformedManifest("index without \"manifests\"".to_owned()))?;
            Ok(ManifestContent::Index { manifests })
        }
        ManifestClass::Image => {
            let config = fields
                .config
                .ok_or_else(|| MalformedManifest("image manifest without \"config\"".to_owned()))?;
            Ok(ManifestContent::Image {
                config,
                layers: fields.layers.unwrap_or_default(),
                subject: fields.subject,
            })
        }
        ManifestClass::Schema1 => Ok(ManifestContent::Schema1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::*;

    const CONFIG_DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image_json(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CONFIG_DIGEST}","size":0}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{CONFIG_DIGEST}","size":0}}]}}"#
        )
    }

    #[test]
    fn image_manifest_lists_config_and_layers() {
        let manifest = Manifest::from_bytes(image_json(OCI_MANIFEST), OCI_MANIFEST);
        match manifest.content().unwrap() {
            ManifestContent::Image {
                config,
                layers,
                subject,
            } => {
                assert_eq!(config.digest.to_string(), CONFIG_DIGEST);
                assert_eq!(layers.len(), 1);
                assert!(subject.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn index_lists_children() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{CONFIG_DIGEST}","size":3,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let manifest = Manifest::from_bytes(body, OCI_INDEX);
        let ManifestContent::Index { manifests } = manifest.content().unwrap() else {
            panic!("not an index");
        };
        assert_eq!(manifests[0].platform.as_ref().unwrap().architecture, "amd64");
    }

    #[test]
    fn detects_media_type_from_header_then_body_then_shape() {
        let body = image_json(DOCKER_MANIFEST);
        assert_eq!(
            detect_media_type(
                body.as_bytes(),
                Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8")
            )
            .as_deref(),
            Some(DOCKER_MANIFEST)
        );
        assert_eq!(
            detect_media_type(body.as_bytes(), Some("application/json")).as_deref(),
            Some(DOCKER_MANIFEST)
        );
        assert_eq!(
            detect_media_type(br#"{"schemaVersion":2,"manifests":[]}"#, None).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            detect_media_type(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).as_deref(),
            Some(DOCKER_SCHEMA1_SIGNED)
        );
        assert_eq!(detect_media_type(b"not json", None), None);
    }

    #[test]
    fn schema1_is_recognised_not_parsed() {
        let manifest = Manifest::from_bytes(r#"{"schemaVersion":1}"#, DOCKER_SCHEMA1_SIGNED);
        assert_eq!(manifest.content().unwrap(), ManifestContent::Schema1);
    }

    #[test]
    fn malformed_manifests_are_errors() {
        for (body, media_type) in [
            ("{", OCI_MANIFEST),
            (r#"{"schemaVersion":2}"#, OCI_MANIFEST),
            (r#"{"schemaVersion":2}"#, OCI_INDEX),
            (r#"{"schemaVersion":3,"manifests":[]}"#, OCI_INDEX),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
                OCI_MANIFEST,
            ),
            (r#"{"schemaVersion":2,"manifests":[]}"#, "text/plain"),
        ] {
            let manifest = Manifest::from_bytes(body, media_type);
            assert!(
                manifest.content().is_err(),
                "{body} as {media_type} should be malformed"
            );
        }
    }
}
