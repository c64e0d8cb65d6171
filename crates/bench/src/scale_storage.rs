//! Writes scale repositories straight into a distribution registry's filesystem storage:
//! the link files a registry writes when a blob is mounted into a repository and a
//! manifest is put under a tag. The blobs themselves must already be in the registry
//! (pushed over HTTP to one repository), so only small files are written: seeding 5,000
//! repositories takes seconds instead of the minutes 55,000 requests take.
//!
//! The layout is distribution 2.8's (`registry/storage/paths.go`), under
//! `docker/registry/v2/repositories/NAME/`:
//! `_layers/sha256/HEX/link`, `_manifests/revisions/sha256/HEX/link`,
//! `_manifests/tags/TAG/current/link` and `_manifests/tags/TAG/index/sha256/HEX/link`,
//! each holding the digest as text.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ocisync_testkit::image::Image;

/// Threads writing repositories at once.
const WRITERS: usize = 4;

/// Gives each repository named in `repos` every image of `tagged` under its tag, in the
/// registry whose storage root is `storage`.
pub fn write_repositories(storage: &Path, repos: &[String], tagged: &[(String, Image)]) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..WRITERS {
            scope.spawn(|| {
                while let Some(repo) = repos.get(next.fetch_add(1, Ordering::Relaxed)) {
                    write_repository(storage, repo, tagged);
                }
            });
        }
    });
}

fn write_repository(storage: &Path, repo: &str, tagged: &[(String, Image)]) {
    let root = storage.join("docker/registry/v2/repositories").join(repo);
    for (_, image) in tagged {
        for blob in &image.blobs {
            link(&root.join("_layers").join(digest_path(&blob.digest)), &blob.digest);
        }
    }
    for (tag, image) in tagged {
        let digest = image.digest();
        let manifests = root.join("_manifests");
        link(&manifests.join("revisions").join(digest_path(digest)), digest);
        let tag = manifests.join("tags").join(tag);
        link(&tag.join("current"), digest);
        link(&tag.join("index").join(digest_path(digest)), digest);
    }
}

/// `sha256:HEX` as the directories `sha256/HEX`.
fn digest_path(digest: &str) -> PathBuf {
    let (algorithm, hex) = digest
        .split_once(':')
        .unwrap_or_else(|| panic!("bench: {digest:?} is not a digest"));
    Path::new(algorithm).join(hex)
}

/// Writes `DIR/link` holding `digest`.
fn link(dir: &Path, digest: &str) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("bench: create {}: {e}", dir.display()));
    let file = dir.join("link");
    std::fs::write(&file, digest).unwrap_or_else(|e| panic!("bench: write {}: {e}", file.display()));
}
