//! Where a repository's layout, index and blobs live under the store's root directory.

use std::path::{Path, PathBuf};

use ocisync_oci::{Algorithm, Digest, RepoName};

/// The file that marks a directory as an OCI image layout.
pub const LAYOUT_MARKER: &str = "oci-layout";
/// The layout's entry point: an OCI index whose entries are the tags.
pub const INDEX_FILE: &str = "index.json";
/// Content-addressed storage: `blobs/<algorithm>/<hex>`.
pub const BLOBS_DIR: &str = "blobs";
/// Locked (advisory `flock`) around every read-modify-write of `index.json`, by every
/// ocisync process. Never removed: removing a lock file while another process waits
/// on it would let two writers in.
pub const LOCK_FILE: &str = ".ocisync.lock";

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

    pub fn lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    pub fn blobs(&self) -> PathBuf {
        self.dir.join(BLOBS_DIR)
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

/// Entries of a layout directory that a nested repository's directory would collide with.
/// Temporary and lock files start with a dot, which no repository component can.
pub const RESERVED: [&str; 3] = [INDEX_FILE, LAYOUT_MARKER, BLOBS_DIR];

/// The first reserved entry `repo` names below its first component, with the repository
/// whose layout holds that entry: `x/index.json` would be a directory where repository
/// `x` keeps its `index.json` (and `x/blobs/c` one inside `x`'s blobs), whether or not
/// `x` exists yet. A first component sits directly under the root, which is not a
/// layout itself, so it may be anything.
pub fn reserved_component(repo: &RepoName) -> Option<(&str, &'static str)> {
    let name = repo.as_str();
    let mut parent_end = name.find('/')?;
    for component in name[parent_end + 1..].split('/') {
        if let Some(reserved) = RESERVED.into_iter().find(|reserved| *reserved == component) {
            return Some((&name[..parent_end], reserved));
        }
        parent_end += 1 + component.len();
    }
    None
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
    fn reserved_entries_below_the_first_component_are_found() {
        let reserved = |name: &str| {
            let repo: RepoName = name.parse().unwrap();
            reserved_component(&repo).map(|(parent, entry)| (parent.to_owned(), entry))
        };
        assert_eq!(reserved("x/index.json"), Some(("x".to_owned(), "index.json")));
        assert_eq!(reserved("a/oci-layout/b"), Some(("a".to_owned(), "oci-layout")));
        assert_eq!(reserved("a/b/blobs/sha256"), Some(("a/b".to_owned(), "blobs")));
        assert_eq!(
            reserved("a/b/c/index.json/blobs"),
            Some(("a/b/c".to_owned(), "index.json"))
        );
        assert_eq!(reserved("blobs"), None);
        assert_eq!(reserved("blobs/x"), None);
        assert_eq!(reserved("x/index.jsonx"), None);
        assert_eq!(reserved("library/alpine"), None);
    }
}
