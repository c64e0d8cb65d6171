//! Where a repository's layout, index and blobs live under the store's root directory.

use std::path::{Path, PathBuf};

use ocisync_oci::{Algorithm, Digest, RepoName};

/// The file that marks a directory as an OCI image layout.
pub const LAYOUT_MARKER: &str = "oci-layout";
/// The layout's entry point: an OCI index whose entries are the tags.
pub const INDEX_FILE: &str = "index.json";
/// Content-addressed storage: `blobs/<algorithm>/<hex>`.
pub const BLOBS_DIR: &str = "blobs";

/// The paths of one repository's layout: `<root>/<repository>/`.
#[derive(Debug, Clone)]
pub struct RepoPaths {
    pub dir: PathBuf,
}

impl RepoPaths {
    /// A repository's layout directory. Repository names are validated (components of
    /// lowercase alphanumerics and separators), so they cannot hold `..` or a root.
    pub fn new(root: &Path, repo: &RepoName) -> Self {
        let mut dir = root.to_path_buf();
        dir.extend(repo.as_str().split('/'));
        RepoPaths { dir }
    }

    pub fn marker(&self) -> PathBuf {
        self.dir.join(LAYOUT_MARKER)
    }

    pub fn index(&self) -> PathBuf {
        self.dir.join(INDEX_FILE)
    }

    pub fn blob_dir(&self, algorithm: Algorithm) -> PathBuf {
        self.dir.join(BLOBS_DIR).join(algorithm_dir(algorithm))
    }

    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest.algorithm()).join(digest.hex())
    }
}

/// The directory name of an algorithm under `blobs/`, as the image-layout spec names it.
pub fn algorithm_dir(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha512 => "sha512",
    }
}

/// The layout directories above `repo` (for `a/b/c`: `a` and `a/b`), so a writer can
/// refuse a repository that would land inside another layout's `blobs/` directory.
pub fn ancestors(root: &Path, repo: &RepoName) -> Vec<(PathBuf, String)> {
    let components: Vec<&str> = repo.as_str().split('/').collect();
    (1..components.len())
        .map(|count| {
            let mut dir = root.to_path_buf();
            dir.extend(&components[..count]);
            (dir, components[count].to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_repository_maps_to_nested_directories() {
        let repo: RepoName = "library/alpine".parse().unwrap();
        let digest = Digest::sha256_of(b"");
        let paths = RepoPaths::new(Path::new("/data"), &repo);
        assert_eq!(paths.dir, Path::new("/data/library/alpine"));
        assert_eq!(
            paths.blob(&digest),
            Path::new("/data/library/alpine/blobs/sha256").join(digest.hex())
        );
    }

    #[test]
    fn ancestors_pair_each_parent_with_the_next_component() {
        let repo: RepoName = "a/blobs/c".parse().unwrap();
        let found = ancestors(Path::new("/r"), &repo);
        assert_eq!(
            found,
            vec![
                (PathBuf::from("/r/a"), "blobs".to_owned()),
                (PathBuf::from("/r/a/blobs"), "c".to_owned())
            ]
        );
    }
}
