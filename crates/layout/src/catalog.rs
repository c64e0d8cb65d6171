//! Finding the repositories under the root: every directory that holds an `oci-layout`.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ocisync_oci::RepoName;

use crate::paths::{BLOBS_DIR, LAYOUT_MARKER};

/// Deepest repository name followed, in components (`a/b/c` is 3).
pub const MAX_DEPTH: usize = 8;

/// The repositories under `root`, sorted. Walks at most [`MAX_DEPTH`] levels, follows
/// symbolic links to directories but never into a directory it has already walked (so
/// a link loop ends), skips hidden directories, the `blobs/` of each layout and names
/// that are not valid repository components. `root` itself is not a repository: it
/// holds them. A missing `root` is an error of kind `NotFound`.
pub fn find_repositories(root: &Path) -> io::Result<Vec<RepoName>> {
    let mut found = Vec::new();
    let mut walked: HashSet<PathBuf> = HashSet::new();
    walked.insert(fs::canonicalize(root)?);
    // (directory, its repository name components)
    let mut pending: Vec<(PathBuf, Vec<String>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, components)) = pending.pop() {
        let is_layout = dir.join(LAYOUT_MARKER).is_file();
        if is_layout && !components.is_empty() {
            match components.join("/").parse::<RepoName>() {
                Ok(repo) => found.push(repo),
                Err(error) => tracing::warn!(dir = %dir.display(), error = %error, "layout skipped"),
            }
        }
        if components.len() == MAX_DEPTH {
            continue;
        }
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if (is_layout && name == BLOBS_DIR) || !is_repo_component(&name) {
                continue;
            }
            let path = entry.path();
            // `metadata` follows links; a broken link or a file is not walked.
            if !fs::metadata(&path).is_ok_and(|metadata| metadata.is_dir()) {
                continue;
            }
            if !walked.insert(fs::canonicalize(&path)?) {
                continue;
            }
            let mut child = components.clone();
            child.push(name);
            pending.push((path, child));
        }
    }
    found.sort();
    Ok(found)
}

/// Whether `name` can be one component of a repository name (this also excludes
/// hidden directories such as temporary ones).
fn is_repo_component(name: &str) -> bool {
    !name.contains('/') && name.parse::<RepoName>().is_ok()
}
