//! Manifest media types and how to tell them apart.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest type ocisync asks a registry for, as an `Accept` header value.
/// Schema1 is listed last so that a registry holding only schema1 says so instead of 404.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, \
application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// What role a manifest media type plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestClass {
    /// An OCI index or Docker manifest list: points at other manifests.
    Index,
    /// An OCI or Docker schema2 image manifest (or an OCI artifact): points at blobs.
    Image,
    /// Docker schema1, deprecated and not copied.
    Schema1,
}

/// The class of a known manifest media type; `None` for anything else.
pub fn classify(media_type: &str) -> Option<ManifestClass> {
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestClass::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestClass::Image),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Some(ManifestClass::Schema1),
        _ => None,
    }
}

/// Layers that the image says live elsewhere (Windows base layers): registries do
/// not require them to be present, and redistributing them may not be allowed.
pub fn is_non_distributable(media_type: &str) -> bool {
    media_type.contains(".foreign.") || media_type.contains(".nondistributable.")
}
