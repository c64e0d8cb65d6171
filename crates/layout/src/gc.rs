//! Garbage collection of a layout directory: blobs that no manifest reachable from a
//! repository's `index.json` references are removed (`ocisync gc --layout PATH`).
//!
//! Reachable: every `index.json` entry (tagged or not), and from each manifest, its
//! child manifests (indexes, recursively), config, layers and `subject`. Everything
//! else under `blobs/<algorithm>/` goes; temporary files (`.tmp-…`) are the sweep's.
//! Each repository is collected under its `index.json` file lock, so no ocisync
//! process moves a tag meanwhile. A writer between its blobs and its manifest is not
//! held off: run gc while no pass writes the directory (a blob it removes from under
//! such a writer fails that image, whose manifest is then refused, and the next pass
//! copies it again). A reachable manifest that cannot be read stops that repository's
//! collection before anything is removed.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use ocisync_oci::{detect_media_type, Algorithm, Digest, Manifest, ManifestContent, RepoName, StoreError};

use crate::catalog::find_repositories;
use crate::error::{invalid, io_error};
use crate::index::IndexFile;
use crate::lock::open_for_locking;
use crate::paths::{algorithm_dir, RepoPaths};

/// Largest manifest or `index.json` read, as for the store.
const SMALL_FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// What a collection did (or, with `dry_run`, would do).
#[derive(Debug, Default)]
pub struct GcReport {
    pub repositories: Vec<RepoGc>,
}

/// One repository's collection.
#[derive(Debug)]
pub struct RepoGc {
    pub repo: RepoName,
    /// Blobs removed (or to be removed), with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// Blobs kept: reachable from `index.json`.
    pub kept: usize,
    /// Set when the repository was left alone; then `removed` is empty.
    pub error: Option<StoreError>,
}

impl GcReport {
    pub fn blobs_removed(&self) -> usize {
        self.repositories.iter().map(|repo| repo.removed.len()).sum()
    }

    pub fn bytes_removed(&self) -> u64 {
        let sizes = self.repositories.iter().flat_map(|repo| &repo.removed);
        sizes.fold(0u64, |total, (_, size)| total.saturating_add(*size))
    }

    pub fn has_failures(&self) -> bool {
        self.repositories.iter().any(|repo| repo.error.is_some())
    }
}

/// Collects every repository under `root`; `dry_run` removes nothing. Fails only when
/// the root cannot be walked; a repository that cannot be collected is in the report.
pub fn collect_garbage(root: &Path, dry_run: bool) -> Result<GcReport, StoreError> {
    let what = format!("layout:{}", root.display());
    let repositories = find_repositories(root).map_err(|error| io_error(what, error))?;
    let mut report = GcReport::default();
    for repo in repositories {
        let paths = RepoPaths::new(root, &repo);
        let mut collected = RepoGc {
            repo: repo.clone(),
            removed: Vec::new(),
            kept: 0,
            error: None,
        };
        match collect_repository(&paths, &repo, dry_run) {
            Ok((removed, kept)) => {
                collected.removed = removed;
                collected.kept = kept;
            }
            Err(error) => collected.error = Some(error),
        }
        report.repositories.push(collected);
    }
    Ok(report)
}

fn collect_repository(
    paths: &RepoPaths,
    repo: &RepoName,
    dry_run: bool,
) -> Result<(Vec<(Digest, u64)>, usize), StoreError> {
    let what = format!("{} ({repo})", paths.dir.display());
    // Held until the end: no ocisync process changes index.json meanwhile.
    let lock = open_for_locking(&paths.lock(), true).map_err(|error| io_error(format!("{what}: lock"), error))?;
    fs4::FileExt::lock(&lock).map_err(|error| io_error(format!("{what}: lock"), error))?;
    let reachable = reachable_digests(paths, &what)?;
    let mut removed = Vec::new();
    let mut kept = 0;
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let directory = paths.blob_dir(algorithm);
        let entries = match fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(io_error(format!("{what}: {}", directory.display()), error)),
        };
        for entry in entries {
            let entry = entry.map_err(|error| io_error(format!("{what}: {}", directory.display()), error))?;
            let name = entry.file_name();
            // Temporary files start with a dot; anything that is not a digest is not ours.
            let Some(digest) = name
                .to_str()
                .and_then(|hex| format!("{}:{hex}", algorithm_dir(algorithm)).parse::<Digest>().ok())
            else {
                continue;
            };
            if reachable.contains(&digest) {
                kept += 1;
                continue;
            }
            let path = entry.path();
            let size = entry.metadata().map(|metadata| metadata.len()).unwrap_or(0);
            if !dry_run {
                fs::remove_file(&path)
                    .map_err(|error| io_error(format!("{what}: remove {}", path.display()), error))?;
            }
            removed.push((digest, size));
        }
    }
    removed.sort();
    drop(lock);
    Ok((removed, kept))
}

/// Every digest reachable from `index.json`: its entries, and what their manifests
/// reference, recursively. Each manifest is read once, so a loop ends.
fn reachable_digests(paths: &RepoPaths, what: &str) -> Result<HashSet<Digest>, StoreError> {
    let index_what = format!("{what}: index.json");
    let index_bytes = read_limited(&paths.index(), &index_what)?;
    let index = IndexFile::parse(&index_bytes).map_err(|reason| invalid(index_what.clone(), reason))?;
    let mut pending = index.root_digests().map_err(|reason| invalid(index_what, reason))?;
    let mut reachable: HashSet<Digest> = HashSet::new();
    while let Some(digest) = pending.pop() {
        if !reachable.insert(digest.clone()) {
            continue;
        }
        let manifest_what = format!("{what}: manifest {digest}");
        let bytes = match read_limited(&paths.blob(&digest), &manifest_what) {
            Ok(bytes) => bytes,
            // Dangling already: nothing below it to keep.
            Err(error) if error.is_not_found() => continue,
            Err(error) => return Err(error),
        };
        let media_type =
            detect_media_type(&bytes, None).ok_or_else(|| invalid(manifest_what.clone(), "not a manifest"))?;
        let manifest = Manifest {
            bytes: bytes.into(),
            media_type,
            digest,
        };
        let content = manifest
            .content()
            .map_err(|error| invalid(manifest_what.clone(), error.to_string()))?;
        match content {
            ManifestContent::Index { manifests } => pending.extend(manifests.into_iter().map(|child| child.digest)),
            ManifestContent::Image {
                config,
                layers,
                subject,
            } => {
                reachable.insert(config.digest);
                reachable.extend(layers.into_iter().map(|layer| layer.digest));
                pending.extend(subject.map(|subject| subject.digest));
            }
            // Its layers are named differently; keeping what it references is not
            // worth the guess, so the repository is left alone.
            ManifestContent::Schema1 => {
                return Err(invalid(manifest_what, "a Docker schema1 manifest: not collected"));
            }
        }
    }
    Ok(reachable)
}

fn read_limited(path: &Path, what: &str) -> Result<Vec<u8>, StoreError> {
    let size = fs::metadata(path)
        .map_err(|error| io_error(what.to_owned(), error))?
        .len();
    if size > SMALL_FILE_LIMIT {
        return Err(invalid(
            what.to_owned(),
            format!("{size} bytes, more than {SMALL_FILE_LIMIT}"),
        ));
    }
    fs::read(path).map_err(|error| io_error(what.to_owned(), error))
}
