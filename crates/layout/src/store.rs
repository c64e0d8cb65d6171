//! [`LayoutStore`]: the [`Store`] trait over a directory of OCI image layouts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ocisync_oci::media_type::is_non_distributable;
use ocisync_oci::{
    detect_media_type, BlobStream, Deletion, Descriptor, Digest, Manifest, ManifestContent, Reference, RepoName,
    Result, Store, StoreError, Tag,
};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::blobs::{is_file, link_or_copy, read_chunks, read_small, write_atomically, write_bytes_atomically};
use crate::catalog::find_repositories;
use crate::error::{invalid, io_error};
use crate::index::IndexFile;
use crate::lock::lock_index;
use crate::paths::{reserved_component, RepoPaths};
use crate::sweep::sweep_stale_temp_files;

/// Largest manifest or `index.json` read into memory, as for registries.
const SMALL_FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// The content of `oci-layout` (image-layout spec 1.0/1.1).
const LAYOUT_MARKER_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A directory holding one OCI image layout per repository, at `<root>/<repository>/`.
///
/// Like a registry it is strict: a manifest is refused while content it references is
/// missing from the repository, and a blob whose content does not match its descriptor
/// is refused and never appears under its final name. A repository whose name would
/// put its directory on a reserved entry of another repository's layout (`x/index.json`,
/// `x/oci-layout`, `x/blobs/…`) is refused.
///
/// Other processes may write the same directory: `index.json` changes under a file lock.
/// Within a process, keep one store per directory (see the `lock` module on NFS).
pub struct LayoutStore {
    root: PathBuf,
    label: String,
    /// One lock per repository, held while its `index.json` is read, changed and
    /// replaced (together with the file lock), so concurrent tag writes never lose each
    /// other's entries. Its value says whether this store has opened the repository for
    /// writing: created its layout and swept its stale temporary files.
    repositories: Mutex<HashMap<RepoName, Arc<AsyncMutex<bool>>>>,
}

impl LayoutStore {
    /// A store over `root`. Does no I/O: a missing `root` is created by the first write,
    /// and reported as `NotFound` by [`Store::catalog`]. [`check_root`](crate::check_root)
    /// checks a root once, before any work.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        LayoutStore {
            label: format!("layout:{}", root.display()),
            root,
            repositories: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `repo` lives; an error for a name that collides with a layout entry.
    fn paths(&self, repo: &RepoName) -> Result<RepoPaths> {
        if let Some((parent, reserved)) = reserved_component(repo) {
            return Err(invalid(
                self.what(format!("repository {repo}")),
                format!(
                    "the name `{reserved}` is reserved in an OCI image layout: its directory would \
                     collide with the {reserved} of repository {parent}"
                ),
            ));
        }
        Ok(RepoPaths::new(&self.root, repo))
    }

    fn what(&self, object: impl std::fmt::Display) -> String {
        format!("{} {object}", self.label)
    }

    /// This process's lock of `repo`; the file lock of `index.json` is taken under it.
    async fn lock_repository(&self, repo: &RepoName) -> OwnedMutexGuard<bool> {
        let lock = {
            // A poisoned map still holds valid locks: a panic elsewhere leaves no half-done entry.
            let mut locks = self
                .repositories
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            locks.entry(repo.clone()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// The repository's `index.json`, or `None` if the repository has no layout.
    async fn read_index(&self, repo: &RepoName) -> Result<Option<IndexFile>> {
        let what = self.what(format!("{repo} index.json"));
        let bytes = match read_small(&self.paths(repo)?.index(), SMALL_FILE_LIMIT, &what).await {
            Ok(bytes) => bytes,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(error),
        };
        IndexFile::parse(&bytes)
            .map(Some)
            .map_err(|reason| invalid(what, reason))
    }

    /// Opens the repository for writing, once per store: creates its layout
    /// (`oci-layout`, an empty `index.json`) if absent and sweeps the temporary files of
    /// writers that died. Writers of the repository in this store wait for it.
    async fn ensure_layout(&self, repo: &RepoName) -> Result<RepoPaths> {
        let paths = self.paths(repo)?;
        let mut opened = self.lock_repository(repo).await;
        if *opened {
            return Ok(paths);
        }
        let what = self.what(format!("{repo} layout"));
        tokio::fs::create_dir_all(&paths.dir)
            .await
            .map_err(|error| io_error(format!("{what}: create {}", paths.dir.display()), error))?;
        let swept = paths.clone();
        tokio::task::spawn_blocking(move || sweep_stale_temp_files(&swept))
            .await
            .map_err(|error| io_error(what.clone(), std::io::Error::other(error)))?;
        let _file_lock = lock_index(paths.lock(), what.clone()).await?;
        if !is_file(&paths.marker(), &what).await? {
            write_bytes_atomically(&paths.marker(), Bytes::from_static(LAYOUT_MARKER_CONTENT), &what).await?;
        }
        if !is_file(&paths.index(), &what).await? {
            let empty = IndexFile::empty()
                .to_bytes()
                .map_err(|reason| invalid(what.clone(), reason))?;
            let empty = Bytes::from(empty);
            write_bytes_atomically(&paths.index(), empty, &what).await?;
        }
        *opened = true;
        Ok(paths)
    }

    /// A manifest blob's bytes, checked against `digest`.
    async fn read_manifest_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Bytes> {
        let what = self.what(format!("manifest {repo}@{digest}"));
        let bytes = read_small(&self.paths(repo)?.blob(digest), SMALL_FILE_LIMIT, &what).await?;
        let actual = digest.recompute(&bytes);
        if actual != *digest {
            return Err(StoreError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    async fn manifest_by_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        let what = self.what(format!("manifest {repo}:{tag}"));
        let index = self
            .read_index(repo)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: what.clone() })?;
        let entry = index
            .find_tag(tag)
            .map_err(|reason| invalid(self.what(format!("{repo} index.json")), reason))?
            .ok_or_else(|| StoreError::NotFound { what: what.clone() })?;
        let bytes = self.read_manifest_blob(repo, &entry.digest).await?;
        if bytes.len() as u64 != entry.size {
            return Err(StoreError::SizeMismatch {
                what,
                expected: entry.size,
                actual: bytes.len() as u64,
            });
        }
        let media_type = match entry.media_type {
            Some(media_type) => media_type,
            None => detect_media_type(&bytes, None).ok_or_else(|| invalid(what, "not a manifest"))?,
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest: entry.digest,
        })
    }

    async fn manifest_by_digest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        let bytes = self.read_manifest_blob(repo, digest).await?;
        // A tagged manifest's entry says its type; a child (no entry) says it in its body.
        let declared = self
            .read_index(repo)
            .await?
            .and_then(|index| index.media_type_of(digest));
        let media_type = declared
            .or_else(|| detect_media_type(&bytes, None))
            .ok_or_else(|| invalid(self.what(format!("manifest {repo}@{digest}")), "not a manifest"))?;
        Ok(Manifest {
            bytes,
            media_type,
            digest: digest.clone(),
        })
    }

    /// Digests `manifest` references that the repository lacks (blobs and child
    /// manifests are both files under `blobs/`); non-distributable layers are not needed.
    async fn missing_references(&self, repo: &RepoName, manifest: &Manifest) -> Result<Vec<Digest>> {
        let what = self.what(format!("manifest {repo}@{}", manifest.digest));
        let content = manifest
            .content()
            .map_err(|error| invalid(what.clone(), error.to_string()))?;
        let referenced: Vec<Digest> = match content {
            ManifestContent::Index { manifests } => manifests.into_iter().map(|child| child.digest).collect(),
            ManifestContent::Image { config, layers, .. } => std::iter::once(config)
                .chain(layers)
                .filter(|blob| !is_non_distributable(&blob.media_type))
                .map(|blob| blob.digest)
                .collect(),
            ManifestContent::Schema1 => Vec::new(),
        };
        let paths = self.paths(repo)?;
        let mut missing = Vec::new();
        for digest in referenced {
            if !is_file(&paths.blob(&digest), &what).await? {
                missing.push(digest);
            }
        }
        Ok(missing)
    }

    /// Changes `index.json` with `change` under this process's lock and the file lock
    /// other processes take; written back only when `change` says it changed something.
    async fn change_index(&self, repo: &RepoName, change: impl FnOnce(&mut IndexFile) -> bool) -> Result<Deletion> {
        let paths = self.paths(repo)?;
        let what = self.what(format!("{repo} index.json"));
        let _guard = self.lock_repository(repo).await;
        let _file_lock = lock_index(paths.lock(), what.clone()).await?;
        let Some(mut index) = self.read_index(repo).await? else {
            return Ok(Deletion::Absent);
        };
        if !change(&mut index) {
            return Ok(Deletion::Absent);
        }
        let bytes = index.to_bytes().map_err(|reason| invalid(what.clone(), reason))?;
        write_bytes_atomically(&paths.index(), Bytes::from(bytes), &what).await?;
        Ok(Deletion::Deleted)
    }

    /// Points `tag` at `descriptor` in `index.json`: read, changed and replaced under this
    /// process's lock and the file lock other processes take.
    async fn set_tag(&self, repo: &RepoName, tag: &Tag, descriptor: &Descriptor) -> Result<()> {
        let paths = self.paths(repo)?;
        let what = self.what(format!("{repo} index.json"));
        let _guard = self.lock_repository(repo).await;
        let _file_lock = lock_index(paths.lock(), what.clone()).await?;
        let mut index = self.read_index(repo).await?.unwrap_or_else(IndexFile::empty);
        index.set_tag(tag, descriptor);
        let bytes = index.to_bytes().map_err(|reason| invalid(what.clone(), reason))?;
        write_bytes_atomically(&paths.index(), Bytes::from(bytes), &what).await?;
        Ok(())
    }
}

impl Store for LayoutStore {
    fn label(&self) -> &str {
        &self.label
    }

    /// Every directory under the root that holds an `oci-layout`, sorted. A missing root
    /// is `NotFound`: a layout read as a source must exist. (Destinations are never
    /// listed; their root is created by the first write.)
    async fn catalog(&self) -> Result<Vec<RepoName>> {
        let root = self.root.clone();
        let what = self.what("catalog");
        tokio::task::spawn_blocking(move || find_repositories(&root))
            .await
            .map_err(|error| io_error(what.clone(), std::io::Error::other(error)))?
            .map_err(|error| io_error(what, error))
    }

    async fn tags(&self, repo: &RepoName) -> Result<Vec<Tag>> {
        let index = self.read_index(repo).await?.ok_or_else(|| StoreError::NotFound {
            what: self.what(format!("repository {repo}")),
        })?;
        Ok(index.tags())
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        match reference {
            Reference::Tag(tag) => self.manifest_by_tag(repo, tag).await,
            Reference::Digest(digest) => self.manifest_by_digest(repo, digest).await,
        }
    }

    async fn put_manifest(&self, repo: &RepoName, reference: &Reference, manifest: &Manifest) -> Result<()> {
        let what = self.what(format!("manifest {repo}:{reference}"));
        let actual = manifest.digest.recompute(&manifest.bytes);
        let expected = match reference {
            Reference::Digest(digest) => digest,
            Reference::Tag(_) => &manifest.digest,
        };
        if actual != *expected || actual != manifest.digest {
            return Err(StoreError::DigestMismatch {
                what,
                expected: expected.clone(),
                actual,
            });
        }
        let missing = self.missing_references(repo, manifest).await?;
        if let Some(first) = missing.first() {
            return Err(invalid(
                what,
                format!("{} referenced blobs or manifests missing, first {first}", missing.len()),
            ));
        }
        let paths = self.ensure_layout(repo).await?;
        let blob_path = paths.blob(&manifest.digest);
        if !is_file(&blob_path, &what).await? {
            write_bytes_atomically(&blob_path, manifest.bytes.clone(), &what).await?;
        }
        if let Reference::Tag(tag) = reference {
            self.set_tag(repo, tag, &manifest.descriptor()).await?;
        }
        Ok(())
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        is_file(
            &self.paths(repo)?.blob(digest),
            &self.what(format!("blob {repo}@{digest}")),
        )
        .await
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<BlobStream> {
        let what = self.what(format!("blob {repo}@{}", descriptor.digest));
        read_chunks(&self.paths(repo)?.blob(&descriptor.digest), what).await
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, body: BlobStream) -> Result<()> {
        let what = self.what(format!("blob {repo}@{}", descriptor.digest));
        let paths = self.ensure_layout(repo).await?;
        let destination = paths.blob(&descriptor.digest);
        // Content-addressed and only ever written whole: a present file is this blob.
        if is_file(&destination, &what).await? {
            return Ok(());
        }
        write_atomically(&destination, body, Some(descriptor), &what).await?;
        Ok(())
    }

    /// Links the blob from `from`'s layout (a copy where links are impossible).
    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool> {
        let what = self.what(format!("blob {repo}@{digest} from {from}"));
        let source = self.paths(from)?.blob(digest);
        if !is_file(&source, &what).await? {
            return Ok(false);
        }
        let paths = self.ensure_layout(repo).await?;
        match link_or_copy(&source, &paths.blob(digest), &what).await {
            Ok(()) => Ok(true),
            // The source vanished between the check and the link: let the caller upload.
            Err(error) if error.is_not_found() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// A layout has no referrers API: referrers live in the tag schema (`sha256-<hex>`).
    async fn referrers(&self, _repo: &RepoName, _digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        Ok(None)
    }

    /// Removes the tag's entry from `index.json`; blobs stay until `ocisync gc`.
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Deletion> {
        self.change_index(repo, |index| index.remove_tag(tag)).await
    }

    /// Removes every `index.json` entry of the manifest; its blob (which an index
    /// may still reference) stays until `ocisync gc`.
    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Deletion> {
        self.change_index(repo, |index| index.remove_digest(digest)).await
    }
}
