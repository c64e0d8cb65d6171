//! A deterministic, small but varied set of repositories and tags to seed registries with.
//!
//! [`standard_corpus`] has five repositories under different prefixes:
//!
//! | repository         | tags                               | content                                   |
//! |--------------------|------------------------------------|-------------------------------------------|
//! | `library/alpine`   | `3.19`, `3.19.1`, `latest` (same); `3.18` | OCI index (linux/amd64 + linux/arm64); OCI image |
//! | `library/busybox`  | `1.36`, `latest` (same); `1.35`    | Docker manifest list (amd64 + arm64); Docker image |
//! | `team/app`         | `v1.0.0`; `v1.1.0`, `latest`, `stable` (same) | Docker images on alpine's amd64 base layer |
//! | `team/tools/cli`   | `1.0`; `2.0`, `latest` (same)      | OCI images; `2.0` holds the large layer (40 MiB) |
//! | `artifacts/thing`  | `v1`, `latest` (same); `v2`        | non-image OCI artifacts                   |
//!
//! Base layers are shared across repositories (same seed, same digest), so a sync can
//! mount or dedupe them.

use crate::image::{artifact, image, index, layer, Blob, Format, Image};
use crate::seed::push_image;

/// Size of the large layer in [`standard_corpus`] (40 MiB).
pub const LARGE_LAYER_SIZE: usize = 40 * 1024 * 1024;

/// Size the large layer shrinks to in [`small_corpus`].
pub const SMALL_LARGE_LAYER_SIZE: usize = 256 * 1024;

/// Artifact type (and config media type) of the `artifacts/thing` images.
pub const THING_ARTIFACT_TYPE: &str = "application/vnd.example.thing.config.v1+json";

/// One tag to push: `image` as `repo:tag`.
#[derive(Debug, Clone)]
pub struct SeedImage {
    /// Repository name, e.g. `team/tools/cli`.
    pub repo: String,
    /// Tag.
    pub tag: String,
    /// The image (with everything it references).
    pub image: Image,
}

/// The standard corpus with a 40 MiB large layer (in `team/tools/cli:2.0`).
pub fn standard_corpus() -> Vec<SeedImage> {
    standard_corpus_with_large_layer(LARGE_LAYER_SIZE)
}

/// The same repositories and tags as [`standard_corpus`], with the large layer shrunk
/// to [`SMALL_LARGE_LAYER_SIZE`], for quick tests.
pub fn small_corpus() -> Vec<SeedImage> {
    standard_corpus_with_large_layer(SMALL_LARGE_LAYER_SIZE)
}

/// The standard corpus with a large layer of `large_layer_size` bytes.
pub fn standard_corpus_with_large_layer(large_layer_size: usize) -> Vec<SeedImage> {
    use Format::{Docker, Oci};
    const AMD64: (&str, &str) = ("linux", "amd64");
    const ARM64: (&str, &str) = ("linux", "arm64");
    const KIB: usize = 1024;

    // Shared base layers: same seed → same bytes → same digest in every repository.
    let base_amd64 = |f: Format| layer(f, 0xA1_0001, 96 * KIB);
    let base_arm64 = |f: Format| layer(f, 0xA1_0002, 96 * KIB);

    let mut out = Vec::new();
    let mut add = |repo: &str, tags: &[&str], image: Image| {
        for tag in tags {
            out.push(SeedImage {
                repo: repo.to_owned(),
                tag: (*tag).to_owned(),
                image: image.clone(),
            });
        }
    };

    // library/alpine: OCI index over two platforms, plus an older single-arch image.
    let alpine = index(
        Oci,
        vec![
            image(Oci, AMD64, vec![base_amd64(Oci)], "alpine-3.19-amd64"),
            image(Oci, ARM64, vec![base_arm64(Oci)], "alpine-3.19-arm64"),
        ],
    );
    add("library/alpine", &["3.19", "3.19.1", "latest"], alpine);
    add(
        "library/alpine",
        &["3.18"],
        image(Oci, AMD64, vec![layer(Oci, 0xA1_0318, 80 * KIB)], "alpine-3.18"),
    );

    // library/busybox: Docker manifest list, plus an older single-arch Docker image.
    let busybox = index(
        Docker,
        vec![
            image(
                Docker,
                AMD64,
                vec![layer(Docker, 0xB0_0001, 48 * KIB)],
                "busybox-1.36-amd64",
            ),
            image(
                Docker,
                ARM64,
                vec![layer(Docker, 0xB0_0002, 48 * KIB)],
                "busybox-1.36-arm64",
            ),
        ],
    );
    add("library/busybox", &["1.36", "latest"], busybox);
    add(
        "library/busybox",
        &["1.35"],
        image(Docker, AMD64, vec![layer(Docker, 0xB0_0135, 40 * KIB)], "busybox-1.35"),
    );

    // team/app: Docker images on top of alpine's amd64 base layer.
    let app_layer = |seed: u64, size: usize| layer(Docker, seed, size);
    let app_v1 = image(
        Docker,
        AMD64,
        vec![base_amd64(Docker), app_layer(0xAB_0001, 32 * KIB)],
        "app-v1.0.0",
    );
    let app_v2 = image(
        Docker,
        AMD64,
        vec![
            base_amd64(Docker),
            app_layer(0xAB_0001, 32 * KIB),
            app_layer(0xAB_0002, 16 * KIB),
        ],
        "app-v1.1.0",
    );
    add("team/app", &["v1.0.0"], app_v1);
    add("team/app", &["v1.1.0", "latest", "stable"], app_v2);

    // team/tools/cli: OCI images; 2.0 carries the large layer.
    let large: Blob = layer(Oci, 0xC1_0002, large_layer_size);
    add(
        "team/tools/cli",
        &["1.0"],
        image(
            Oci,
            AMD64,
            vec![base_amd64(Oci), layer(Oci, 0xC1_0001, 24 * KIB)],
            "cli-1.0",
        ),
    );
    add(
        "team/tools/cli",
        &["2.0", "latest"],
        image(Oci, AMD64, vec![base_amd64(Oci), large], "cli-2.0"),
    );

    // artifacts/thing: non-image OCI artifacts.
    add(
        "artifacts/thing",
        &["v1", "latest"],
        artifact(THING_ARTIFACT_TYPE, &b"thing payload v1\n"[..]),
    );
    add(
        "artifacts/thing",
        &["v2"],
        artifact(THING_ARTIFACT_TYPE, &b"thing payload v2\n"[..]),
    );

    out
}

/// The distinct repositories of `images`, sorted.
pub fn repos(images: &[SeedImage]) -> Vec<String> {
    let mut repos: Vec<String> = images.iter().map(|s| s.repo.clone()).collect();
    repos.sort();
    repos.dedup();
    repos
}

/// Pushes every seed image into the registry at `base_url` (anonymous client).
pub async fn seed(base_url: &str, images: &[SeedImage]) {
    for s in images {
        push_image(base_url, &s.repo, &s.tag, &s.image).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_shape() {
        let corpus = small_corpus();
        assert_eq!(repos(&corpus).len(), 5);
        assert!(corpus.len() >= 15);
        let digest = |repo: &str, tag: &str| {
            corpus
                .iter()
                .find(|s| s.repo == repo && s.tag == tag)
                .map(|s| s.image.digest().to_owned())
                .unwrap()
        };
        assert_eq!(digest("library/alpine", "3.19"), digest("library/alpine", "latest"));
        assert_ne!(digest("library/alpine", "3.19"), digest("library/alpine", "3.18"));
        // Deterministic.
        let again = small_corpus();
        for (a, b) in corpus.iter().zip(&again) {
            assert_eq!(a.image.digest(), b.image.digest());
        }
        // Shared base layer between alpine (OCI) and team/app (Docker).
        let find = |repo: &str, tag: &str| &corpus.iter().find(|s| s.repo == repo && s.tag == tag).unwrap().image;
        let alpine_base = &find("library/alpine", "latest").children[0].blobs[1];
        let app_base = &find("team/app", "latest").blobs[1];
        assert_eq!(alpine_base.digest, app_base.digest);
    }
}
