//! Deterministic test images: layers, image manifests, indexes and artifacts, OCI or Docker.
//!
//! Everything here is a pure function of its inputs: the same seed and size give the same
//! layer bytes (and digest), the same arguments give byte-identical manifests. JSON is
//! produced from structs, so field order is fixed. Layer bytes are pseudo-random noise
//! (not a real tarball); registries do not look inside layers.

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer media type.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Media type of the single payload layer of [`artifact`] images.
pub const ARTIFACT_PAYLOAD: &str = "application/vnd.ocisync.test.payload.v1";

/// Label key in image configs that carries the `label` argument of [`image`].
pub const LABEL_KEY: &str = "org.ocisync.test.label";

/// All manifest media types, in the order sent as an `Accept` header.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Which family of media types to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/vnd.oci.image.*`
    Oci,
    /// `application/vnd.docker.*` (schema 2)
    Docker,
}

impl Format {
    /// Single-image manifest media type.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }

    /// Index / manifest list media type.
    pub fn index_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_LIST,
        }
    }

    /// Image config media type.
    pub fn config_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }

    /// Gzip layer media type.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_LAYER,
            Format::Docker => DOCKER_LAYER,
        }
    }
}

/// A blob (config or layer) with its descriptor media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Media type used in descriptors that reference this blob.
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// The content.
    pub bytes: Bytes,
}

impl Blob {
    /// A blob with the digest computed from `bytes`.
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Blob {
        let bytes = bytes.into();
        Blob {
            media_type: media_type.into(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// A serialized manifest (image manifest, index or manifest list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The manifest's media type (also its `mediaType` field and upload Content-Type).
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// The exact JSON bytes.
    pub bytes: Bytes,
}

impl Manifest {
    /// A manifest with the digest computed from `bytes`.
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Manifest {
        let bytes = bytes.into();
        Manifest {
            media_type: media_type.into(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether this is an OCI index or a Docker manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

/// `os` / `architecture` of an image, used in index descriptors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Platform {
    /// e.g. `amd64`
    pub architecture: String,
    /// e.g. `linux`
    pub os: String,
}

/// A manifest plus everything it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The top-level manifest.
    pub manifest: Manifest,
    /// Blobs referenced by `manifest` itself: config first, then layers in order. Empty
    /// for an index.
    pub blobs: Vec<Blob>,
    /// Child images of an index / manifest list (empty otherwise).
    pub children: Vec<Image>,
    /// Platform of a single-platform image (`None` for indexes and artifacts).
    pub platform: Option<Platform>,
}

impl Image {
    /// Digest of the top-level manifest.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// Every blob of this image and its children, deduplicated by digest, in push order.
    pub fn all_blobs(&self) -> Vec<&Blob> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        self.collect_blobs(&mut seen, &mut out);
        out
    }

    fn collect_blobs<'a>(&'a self, seen: &mut std::collections::HashSet<&'a str>, out: &mut Vec<&'a Blob>) {
        for child in &self.children {
            child.collect_blobs(seen, out);
        }
        for blob in &self.blobs {
            if seen.insert(blob.digest.as_str()) {
                out.push(blob);
            }
        }
    }

    /// Total bytes of all distinct blobs.
    pub fn blob_bytes(&self) -> u64 {
        self.all_blobs().iter().map(|b| b.size()).sum()
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A layer of `size` deterministic pseudo-random bytes derived from `seed` (splitmix64).
/// Same seed and size give the same digest, whatever the format.
pub fn layer(format: Format, seed: u64, size: usize) -> Blob {
    Blob::new(format.layer_media_type(), pseudo_random_bytes(seed, size))
}

/// Deterministic pseudo-random bytes (splitmix64; hundreds of MiB/s even unoptimized).
pub fn pseudo_random_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed ^ 0x6f63_6973_796e_6321; // "ocisync!"
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out = vec![0u8; size];
    let mut chunks = out.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&next().to_le_bytes());
    }
    let rest = chunks.into_remainder();
    let last = next().to_le_bytes();
    let n = rest.len();
    rest.copy_from_slice(&last[..n]);
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a Platform>,
}

impl<'a> DescriptorJson<'a> {
    fn blob(blob: &'a Blob) -> Self {
        DescriptorJson {
            media_type: &blob.media_type,
            digest: &blob.digest,
            size: blob.size(),
            platform: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<&'a str>,
    config: DescriptorJson<'a>,
    layers: Vec<DescriptorJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<&'a str, &'a str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    manifests: Vec<DescriptorJson<'a>>,
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    /// Left out unless given, so images made without it keep their digests.
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<&'a str>,
    architecture: &'a str,
    os: &'a str,
    config: ConfigConfigJson<'a>,
    rootfs: RootfsJson<'a>,
}

#[derive(Serialize)]
struct ConfigConfigJson<'a> {
    #[serde(rename = "Labels")]
    labels: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct RootfsJson<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: Vec<&'a str>,
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("testkit: serialize JSON")
}

/// A single-platform image: config blob (with `platform` and `label`, so images with
/// different labels differ) plus `layers`.
///
/// `rootfs.diff_ids` lists the layer digests (the layers are not real tarballs, so there
/// is no uncompressed digest to use).
pub fn image(format: Format, platform: (&str, &str), layers: Vec<Blob>, label: &str) -> Image {
    image_with_created(format, platform, layers, label, None)
}

/// [`image`] whose config says it was `created` then (RFC 3339, any text: a test of a
/// bad one passes it as is); see [`created_ago`].
pub fn image_created(format: Format, platform: (&str, &str), layers: Vec<Blob>, label: &str, created: &str) -> Image {
    image_with_created(format, platform, layers, label, Some(created))
}

/// The RFC 3339 time `age` before now (whole seconds, UTC), for [`image_created`].
pub fn created_ago(age: std::time::Duration) -> String {
    let then = std::time::SystemTime::now() - age;
    humantime::format_rfc3339_seconds(then).to_string()
}

fn image_with_created(
    format: Format,
    platform: (&str, &str),
    layers: Vec<Blob>,
    label: &str,
    created: Option<&str>,
) -> Image {
    let (os, architecture) = platform;
    let config = Blob::new(
        format.config_media_type(),
        to_json(&ConfigJson {
            created,
            architecture,
            os,
            config: ConfigConfigJson {
                labels: BTreeMap::from([(LABEL_KEY, label)]),
            },
            rootfs: RootfsJson {
                kind: "layers",
                diff_ids: layers.iter().map(|l| l.digest.as_str()).collect(),
            },
        }),
    );
    let manifest = Manifest::new(
        format.manifest_media_type(),
        to_json(&ManifestJson {
            schema_version: 2,
            media_type: format.manifest_media_type(),
            artifact_type: None,
            config: DescriptorJson::blob(&config),
            layers: layers.iter().map(DescriptorJson::blob).collect(),
            annotations: None,
        }),
    );
    let mut blobs = Vec::with_capacity(layers.len() + 1);
    blobs.push(config);
    blobs.extend(layers);
    Image {
        manifest,
        blobs,
        children: Vec::new(),
        platform: Some(Platform {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
        }),
    }
}

/// An OCI index or Docker manifest list over `children`, with each child's platform on
/// its descriptor.
pub fn index(format: Format, children: Vec<Image>) -> Image {
    let manifests = children
        .iter()
        .map(|child| DescriptorJson {
            media_type: &child.manifest.media_type,
            digest: &child.manifest.digest,
            size: child.manifest.size(),
            platform: child.platform.as_ref(),
        })
        .collect();
    let manifest = Manifest::new(
        format.index_media_type(),
        to_json(&IndexJson {
            schema_version: 2,
            media_type: format.index_media_type(),
            manifests,
        }),
    );
    Image {
        manifest,
        blobs: Vec::new(),
        children,
        platform: None,
    }
}

/// A non-image OCI artifact: an OCI manifest whose config has media type
/// `artifact_type` (a small JSON document), with `artifactType` set, and one layer
/// holding `payload` (media type [`ARTIFACT_PAYLOAD`]).
pub fn artifact(artifact_type: &str, payload: impl Into<Bytes>) -> Image {
    let config = Blob::new(
        artifact_type,
        to_json(&BTreeMap::from([("artifactType", artifact_type)])),
    );
    let payload = Blob::new(ARTIFACT_PAYLOAD, payload);
    let manifest = Manifest::new(
        OCI_MANIFEST,
        to_json(&ManifestJson {
            schema_version: 2,
            media_type: OCI_MANIFEST,
            artifact_type: Some(artifact_type),
            config: DescriptorJson::blob(&config),
            layers: vec![DescriptorJson::blob(&payload)],
            annotations: Some(BTreeMap::from([("org.opencontainers.image.title", "payload.bin")])),
        }),
    );
    Image {
        manifest,
        blobs: vec![config, payload],
        children: Vec::new(),
        platform: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_deterministic_and_seeded() {
        let a = layer(Format::Oci, 7, 1000);
        let b = layer(Format::Docker, 7, 1000);
        let c = layer(Format::Oci, 8, 1000);
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.media_type, b.media_type);
        assert_ne!(a.digest, c.digest);
        assert_eq!(a.bytes.len(), 1000);
        assert_eq!(a.digest, sha256_digest(&a.bytes));
    }

    #[test]
    fn large_layer_is_fast() {
        let start = std::time::Instant::now();
        let big = pseudo_random_bytes(1, 40 * 1024 * 1024);
        assert_eq!(big.len(), 40 * 1024 * 1024);
        // Generous: debug builds on a loaded 2-core machine.
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn manifests_are_well_formed() {
        let amd = image(Format::Oci, ("linux", "amd64"), vec![layer(Format::Oci, 1, 10)], "a");
        let arm = image(Format::Oci, ("linux", "arm64"), vec![layer(Format::Oci, 2, 10)], "a");
        let again = image(Format::Oci, ("linux", "amd64"), vec![layer(Format::Oci, 1, 10)], "a");
        assert_eq!(amd, again);
        let other = image(Format::Oci, ("linux", "amd64"), vec![layer(Format::Oci, 1, 10)], "b");
        assert_ne!(amd.digest(), other.digest());

        let v: serde_json::Value = serde_json::from_slice(&amd.manifest.bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], OCI_MANIFEST);
        assert_eq!(v["config"]["digest"], amd.blobs[0].digest.as_str());
        assert_eq!(v["layers"][0]["size"], 10);

        let idx = index(Format::Oci, vec![amd, arm]);
        let v: serde_json::Value = serde_json::from_slice(&idx.manifest.bytes).unwrap();
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(v["manifests"][1]["platform"]["architecture"], "arm64");
        assert_eq!(v["manifests"][0]["platform"]["os"], "linux");
        assert!(idx.manifest.is_index());
        assert_eq!(idx.all_blobs().len(), 4);

        let art = artifact("application/vnd.example.thing.config.v1+json", "hi");
        let v: serde_json::Value = serde_json::from_slice(&art.manifest.bytes).unwrap();
        assert_eq!(v["artifactType"], "application/vnd.example.thing.config.v1+json");
        assert_eq!(v["config"]["mediaType"], "application/vnd.example.thing.config.v1+json");
    }

    #[test]
    fn a_created_time_goes_into_the_config_only_when_given() {
        let layers = || vec![layer(Format::Oci, 1, 10)];
        let plain = image(Format::Oci, ("linux", "amd64"), layers(), "a");
        let config: serde_json::Value = serde_json::from_slice(&plain.blobs[0].bytes).unwrap();
        assert!(config.get("created").is_none());
        let dated = image_created(Format::Oci, ("linux", "amd64"), layers(), "a", "2024-05-01T12:00:00Z");
        let config: serde_json::Value = serde_json::from_slice(&dated.blobs[0].bytes).unwrap();
        assert_eq!(config["created"], "2024-05-01T12:00:00Z");
        assert_ne!(plain.digest(), dated.digest());
        let ago = created_ago(std::time::Duration::from_secs(3600));
        assert!(ago.ends_with('Z') && ago.len() == 20, "{ago}");
    }
}
