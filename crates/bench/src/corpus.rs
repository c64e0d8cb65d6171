//! The benchmark corpus, generated in code: many small repositories with shared base
//! layers, multi-arch indexes, cosign-style signature tags, and one very large layer.
//!
//! Shape (with [`CorpusShape::standard`]): 30 repositories × 4 tags, each image three
//! layers (a base layer shared by every repository of the platform, a layer shared by the
//! repository's tags, a layer of the tag's own), 30% of the repositories OCI indexes over
//! two platforms, 30% with a `sha256-<hex>.sig` tag per tag, plus `bench-bulk:v1` holding
//! a 256 MiB layer. The signatures are only structurally cosign's (an OCI manifest whose
//! one layer is a simple-signing payload); there is no cryptography.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use ocisync_testkit::corpus::SeedImage;
use ocisync_testkit::image::{image, index, layer, Blob, Format, Image, Manifest, OCI_CONFIG, OCI_MANIFEST};

const MIB: usize = 1024 * 1024;

/// Media type of a cosign simple-signing payload layer.
pub const COSIGN_PAYLOAD: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Annotation cosign puts the (base64) signature in.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Name of the repository holding the large layer.
pub const BULK_REPO: &str = "bench-bulk";

/// How big the corpus is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusShape {
    /// Number of application repositories (`bench-app-NN`).
    pub repositories: usize,
    /// Tags per application repository (signature tags come on top).
    pub tags_per_repository: usize,
    /// Size of the base and repository layers; a tag's own layer is 1/2 to 7/8 of it.
    pub layer_size: usize,
    /// Size of the one layer of `bench-bulk:v1` (0: no bulk repository).
    pub large_layer_size: usize,
}

impl CorpusShape {
    /// The corpus of issue 7: 30 × 4 tags of ~1 MiB layers plus a 256 MiB layer.
    pub fn standard() -> CorpusShape {
        CorpusShape {
            repositories: 30,
            tags_per_repository: 4,
            layer_size: MIB,
            large_layer_size: 256 * MIB,
        }
    }
}

/// What kind of content an application repository holds, by its index: of every ten,
/// three are multi-arch and three are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// OCI index over linux/amd64 and linux/arm64.
    MultiArch,
    /// Single-platform images, each tag with a cosign-style signature tag.
    Signed,
    /// Single-platform images.
    Plain,
}

/// The kind of application repository number `repo_index`.
pub fn repo_kind(repo_index: usize) -> RepoKind {
    match repo_index % 10 {
        0..=2 => RepoKind::MultiArch,
        3..=5 => RepoKind::Signed,
        _ => RepoKind::Plain,
    }
}

/// Name of application repository number `repo_index`. Flat names, so skopeo's
/// unscoped destination naming (the last path component) keeps them unchanged.
pub fn repo_name(repo_index: usize) -> String {
    format!("bench-app-{repo_index:02}")
}

/// Generates the corpus: every tag to push, the bulk repository last.
pub fn generate(shape: &CorpusShape) -> Vec<SeedImage> {
    let mut out = Vec::new();
    for repo_index in 0..shape.repositories {
        let repo = repo_name(repo_index);
        let kind = repo_kind(repo_index);
        // Docker and OCI media types alternate among single-platform repositories.
        let format = if kind == RepoKind::MultiArch || repo_index % 2 == 0 {
            Format::Oci
        } else {
            Format::Docker
        };
        for tag_index in 0..shape.tags_per_repository {
            let tag = format!("1.{tag_index}");
            let image = match kind {
                RepoKind::MultiArch => index(
                    Format::Oci,
                    PLATFORMS
                        .iter()
                        .enumerate()
                        .map(|(platform_index, platform)| {
                            platform_image(shape, format, repo_index, tag_index, platform_index, *platform)
                        })
                        .collect(),
                ),
                RepoKind::Signed | RepoKind::Plain => {
                    platform_image(shape, format, repo_index, tag_index, 0, PLATFORMS[0])
                }
            };
            if kind == RepoKind::Signed {
                out.push(SeedImage {
                    repo: repo.clone(),
                    tag: signature_tag(image.digest()),
                    image: signature(&repo, &tag, image.digest()),
                });
            }
            out.push(SeedImage {
                repo: repo.clone(),
                tag,
                image,
            });
        }
    }
    if shape.large_layer_size > 0 {
        let large = layer(Format::Oci, 0xB0_0000, shape.large_layer_size);
        out.push(SeedImage {
            repo: BULK_REPO.to_owned(),
            tag: "v1".to_owned(),
            image: image(Format::Oci, PLATFORMS[0], vec![large], "bulk"),
        });
    }
    out
}

const PLATFORMS: [(&str, &str); 2] = [("linux", "amd64"), ("linux", "arm64")];

/// One platform's image of a tag: shared base layer, repository layer, tag layer.
fn platform_image(
    shape: &CorpusShape,
    format: Format,
    repo_index: usize,
    tag_index: usize,
    platform_index: usize,
    platform: (&str, &str),
) -> Image {
    let (repo_seed, tag_seed, platform_seed) = (repo_index as u64, tag_index as u64, platform_index as u64);
    let base = layer(format, 0xBA5E_0000 + platform_seed, shape.layer_size);
    let repository = layer(format, 0x1000_0000 + repo_seed * 16 + platform_seed, shape.layer_size);
    let own_size = shape.layer_size / 2 + tag_index % 4 * shape.layer_size / 8;
    let own = layer(
        format,
        0x2000_0000 + repo_seed * 4096 + tag_seed * 16 + platform_seed,
        own_size,
    );
    image(
        format,
        platform,
        vec![base, repository, own],
        &format!("{}:1.{tag_index}", repo_name(repo_index)),
    )
}

/// cosign's tag for the signature of `digest`: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// A cosign-shaped signature manifest for `repo:tag` at `digest`: an OCI image whose
/// one layer is the simple-signing payload, with a placeholder signature annotation.
fn signature(repo: &str, tag: &str, digest: &str) -> Image {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": format!("registry.example/{repo}")},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": {"tag": tag},
    });
    let payload = Blob::new(COSIGN_PAYLOAD, to_json(&payload));
    let config = json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [payload.digest]},
    });
    let config = Blob::new(OCI_CONFIG, to_json(&config));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size()},
        "layers": [{
            "mediaType": COSIGN_PAYLOAD,
            "digest": payload.digest,
            "size": payload.size(),
            "annotations": {COSIGN_SIGNATURE_ANNOTATION: "bm90LWEtcmVhbC1zaWduYXR1cmU="},
        }],
    });
    Image {
        manifest: Manifest::new(OCI_MANIFEST, to_json(&manifest)),
        blobs: vec![config, payload],
        children: Vec::new(),
        platform: None,
    }
}

fn to_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialize")
}

/// Counts describing a corpus, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusStats {
    /// Distinct repositories.
    pub repositories: usize,
    /// Tags (signature tags included).
    pub tags: usize,
    /// Tags whose manifest is an index.
    pub multi_arch_tags: usize,
    /// Signature tags.
    pub signature_tags: usize,
    /// Distinct manifests (indexes, their children, images, signatures).
    pub manifests: usize,
    /// Distinct blobs (configs and layers).
    pub unique_blobs: usize,
    /// Bytes of the distinct blobs.
    pub unique_blob_bytes: u64,
    /// Bytes of the largest blob.
    pub largest_blob_bytes: u64,
}

/// Counts `images`.
pub fn stats(images: &[SeedImage]) -> CorpusStats {
    let mut repositories = HashSet::new();
    let mut manifests = HashSet::new();
    let mut blobs = BTreeMap::new();
    for seed in images {
        repositories.insert(seed.repo.as_str());
        let mut stack = vec![&seed.image];
        while let Some(image) = stack.pop() {
            manifests.insert(image.digest());
            stack.extend(image.children.iter());
            for blob in &image.blobs {
                blobs.insert(blob.digest.as_str(), blob.size());
            }
        }
    }
    CorpusStats {
        repositories: repositories.len(),
        tags: images.len(),
        multi_arch_tags: images.iter().filter(|s| s.image.manifest.is_index()).count(),
        signature_tags: images.iter().filter(|s| s.tag.ends_with(".sig")).count(),
        manifests: manifests.len(),
        unique_blobs: blobs.len(),
        unique_blob_bytes: blobs.values().sum(),
        largest_blob_bytes: blobs.values().max().copied().unwrap_or(0),
    }
}

/// Every distinct blob once, with a repository that holds it: what a copy must move.
pub fn unique_blobs(images: &[SeedImage]) -> Vec<(String, Blob)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for seed in images {
        for blob in seed.image.all_blobs() {
            if seen.insert(blob.digest.clone()) {
                out.push((seed.repo.clone(), blob.clone()));
            }
        }
    }
    out
}

/// Every (repository, blob) pair once: what seeding must upload.
pub fn blobs_per_repository(images: &[SeedImage]) -> Vec<(String, Blob)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for seed in images {
        for blob in seed.image.all_blobs() {
            if seen.insert((seed.repo.as_str(), blob.digest.as_str())) {
                out.push((seed.repo.clone(), blob.clone()));
            }
        }
    }
    out
}
