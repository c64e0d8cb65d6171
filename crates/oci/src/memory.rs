//! An in-memory [`Store`] that enforces what a strict registry enforces, for engine tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt};

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::manifest::{Manifest, ManifestContent};
use crate::media_type::is_non_distributable;
use crate::name::{Reference, RepoName, Tag};
use crate::referrer::referrer_descriptor;
use crate::store::{BlobStream, Deletion, Store};

/// Repositories, manifests and blobs held in memory.
///
/// Like a registry, it refuses a manifest whose blobs or child manifests are missing
/// from the repository, and a blob whose content does not match its descriptor; so an
/// engine test against it fails if the engine pushes parents before children.
#[derive(Default)]
pub struct MemoryStore {
    label: String,
    state: Mutex<State>,
    writes: AtomicUsize,
    /// Answers `referrers` with `None`, like a registry without the referrers API.
    without_referrers_api: bool,
    /// How it answers deletes: like a registry of the distribution spec 1.1 by default.
    deletes: MemoryDeletes,
    referrer_lookups: AtomicUsize,
}

/// Which deletes a [`MemoryStore`] performs, to model the registries ocisync meets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MemoryDeletes {
    /// Tags and manifests (distribution spec 1.1).
    #[default]
    TagsAndManifests,
    /// Manifests by digest only, as distribution 2.8.
    ManifestsOnly,
    /// None, as a registry with deletes disabled (405 `UNSUPPORTED`).
    Disabled,
}

#[derive(Default)]
struct State {
    repos: BTreeMap<RepoName, Repo>,
    blobs: HashMap<Digest, Bytes>,
}

impl State {
    fn add_blob_to(&mut self, repo: &RepoName, digest: &Digest) {
        self.repos.entry(repo.clone()).or_default().blobs.insert(digest.clone());
    }
}

#[derive(Default)]
struct Repo {
    tags: BTreeMap<Tag, Digest>,
    manifests: HashMap<Digest, Manifest>,
    blobs: HashSet<Digest>,
}

impl MemoryStore {
    pub fn new(label: &str) -> Self {
        MemoryStore {
            label: label.to_owned(),
            ..Default::default()
        }
    }

    /// A store that answers [`Store::referrers`] with `None`, like distribution 2.8.
    pub fn without_referrers_api(label: &str) -> Self {
        MemoryStore {
            without_referrers_api: true,
            ..MemoryStore::new(label)
        }
    }

    /// A store that deletes as `deletes` says.
    pub fn with_deletes(label: &str, deletes: MemoryDeletes) -> Self {
        MemoryStore {
            deletes,
            ..MemoryStore::new(label)
        }
    }

    /// Number of [`Store::referrers`] calls received so far.
    pub fn referrer_lookups(&self) -> usize {
        self.referrer_lookups.load(Ordering::SeqCst)
    }

    /// Number of write operations (manifest puts, blob puts, mounts, deletes) received so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Adds blob bytes under `digest` without checking them, to model a corrupt source.
    pub fn insert_blob_unchecked(&self, repo: &RepoName, digest: &Digest, bytes: Bytes) {
        let mut state = self.state.lock().unwrap();
        state.blobs.insert(digest.clone(), bytes);
        state.add_blob_to(repo, digest);
    }

    /// Adds a manifest without checking its references, to seed sources in tests.
    pub fn insert_manifest_unchecked(&self, repo: &RepoName, tag: Option<&Tag>, manifest: Manifest) {
        let mut state = self.state.lock().unwrap();
        let entry = state.repos.entry(repo.clone()).or_default();
        if let Some(tag) = tag {
            entry.tags.insert(tag.clone(), manifest.digest.clone());
        }
        entry.manifests.insert(manifest.digest.clone(), manifest);
    }

    fn not_found(&self, what: impl std::fmt::Display) -> StoreError {
        StoreError::NotFound {
            what: format!("{} {what}", self.label),
        }
    }
}

fn missing_references(repo: &Repo, manifest: &Manifest) -> Result<Vec<Digest>> {
    let content = manifest.content().map_err(|error| StoreError::Invalid {
        what: format!("manifest {}", manifest.digest),
        reason: error.to_string(),
    })?;
    let missing = match content {
        ManifestContent::Index { manifests } => manifests
            .into_iter()
            .filter(|child| !repo.manifests.contains_key(&child.digest))
            .map(|child| child.digest)
            .collect(),
        ManifestContent::Image { config, layers, .. } => std::iter::once(config)
            .chain(layers)
            .filter(|blob| !is_non_distributable(&blob.media_type) && !repo.blobs.contains(&blob.digest))
            .map(|blob| blob.digest)
            .collect(),
        ManifestContent::Schema1 => Vec::new(),
    };
    Ok(missing)
}

impl Store for MemoryStore {
    fn label(&self) -> &str {
        &self.label
    }

    async fn catalog(&self) -> Result<Vec<RepoName>> {
        Ok(self.state.lock().unwrap().repos.keys().cloned().collect())
    }

    async fn tags(&self, repo: &RepoName) -> Result<Vec<Tag>> {
        let state = self.state.lock().unwrap();
        let entry = state
            .repos
            .get(repo)
            .ok_or_else(|| self.not_found(format!("repository {repo}")))?;
        Ok(entry.tags.keys().cloned().collect())
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        let state = self.state.lock().unwrap();
        let entry = state.repos.get(repo);
        let digest = match reference {
            Reference::Digest(digest) => Some(digest.clone()),
            Reference::Tag(tag) => entry.and_then(|e| e.tags.get(tag).cloned()),
        };
        digest
            .and_then(|digest| entry.and_then(|e| e.manifests.get(&digest).cloned()))
            .ok_or_else(|| self.not_found(format!("manifest {repo}:{reference}")))
    }

    async fn put_manifest(&self, repo: &RepoName, reference: &Reference, manifest: &Manifest) -> Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        let entry = state.repos.entry(repo.clone()).or_default();
        let missing = missing_references(entry, manifest)?;
        if let Some(first) = missing.first() {
            return Err(StoreError::Rejected {
                what: format!("{} manifest {repo}:{reference}", self.label),
                status: 400,
                detail: format!("{} referenced content missing, first {first}", missing.len()),
            });
        }
        if let Reference::Digest(digest) = reference {
            if *digest != manifest.digest {
                return Err(StoreError::DigestMismatch {
                    what: format!("{} manifest {repo}", self.label),
                    expected: digest.clone(),
                    actual: manifest.digest.clone(),
                });
            }
        }
        if let Reference::Tag(tag) = reference {
            entry.tags.insert(tag.clone(), manifest.digest.clone());
        }
        entry.manifests.insert(manifest.digest.clone(), manifest.clone());
        Ok(())
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        let state = self.state.lock().unwrap();
        Ok(state.repos.get(repo).is_some_and(|entry| entry.blobs.contains(digest)))
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<BlobStream> {
        let bytes = {
            let state = self.state.lock().unwrap();
            let present = state
                .repos
                .get(repo)
                .is_some_and(|e| e.blobs.contains(&descriptor.digest));
            present.then(|| state.blobs.get(&descriptor.digest).cloned()).flatten()
        };
        let bytes = bytes.ok_or_else(|| self.not_found(format!("blob {repo}@{}", descriptor.digest)))?;
        // Small chunks, so streaming consumers see more than one.
        let chunks: Vec<Result<Bytes>> = bytes.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Ok(Box::pin(stream::iter(chunks)))
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, mut body: BlobStream) -> Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut content = BytesMut::new();
        while let Some(chunk) = body.next().await {
            content.extend_from_slice(&chunk?);
        }
        if content.len() as u64 != descriptor.size {
            return Err(StoreError::SizeMismatch {
                what: format!("{} blob {repo}", self.label),
                expected: descriptor.size,
                actual: content.len() as u64,
            });
        }
        let actual = descriptor.digest.recompute(&content);
        if actual != descriptor.digest {
            return Err(StoreError::DigestMismatch {
                what: format!("{} blob {repo}", self.label),
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        let mut state = self.state.lock().unwrap();
        state.blobs.insert(descriptor.digest.clone(), content.freeze());
        state.add_blob_to(repo, &descriptor.digest);
        Ok(())
    }

    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        let available = state.repos.get(from).is_some_and(|e| e.blobs.contains(digest));
        if available {
            state.add_blob_to(repo, digest);
        }
        Ok(available)
    }

    /// Every manifest of the repository whose `subject` is `digest`, as a registry
    /// with the referrers API indexes them when they are pushed; sorted by digest.
    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        self.referrer_lookups.fetch_add(1, Ordering::SeqCst);
        if self.without_referrers_api {
            return Ok(None);
        }
        let state = self.state.lock().unwrap();
        let mut found: Vec<Descriptor> = state
            .repos
            .get(repo)
            .map(|entry| {
                entry
                    .manifests
                    .values()
                    .filter_map(referrer_descriptor)
                    .filter(|(subject, _)| subject == digest)
                    .map(|(_, descriptor)| descriptor)
                    .collect()
            })
            .unwrap_or_default();
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(Some(found))
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Deletion> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        match self.deletes {
            MemoryDeletes::TagsAndManifests => {}
            MemoryDeletes::ManifestsOnly => return Ok(unsupported("deletes manifests by digest only")),
            MemoryDeletes::Disabled => return Ok(unsupported("deletes are disabled")),
        }
        let mut state = self.state.lock().unwrap();
        let removed = state.repos.get_mut(repo).and_then(|entry| entry.tags.remove(tag));
        Ok(if removed.is_some() {
            Deletion::Deleted
        } else {
            Deletion::Absent
        })
    }

    /// Removes the manifest and every tag naming it, as distribution does.
    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Deletion> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.deletes == MemoryDeletes::Disabled {
            return Ok(unsupported("deletes are disabled"));
        }
        let mut state = self.state.lock().unwrap();
        let Some(entry) = state.repos.get_mut(repo) else {
            return Ok(Deletion::Absent);
        };
        entry.tags.retain(|_, tagged| tagged != digest);
        Ok(match entry.manifests.remove(digest) {
            Some(_) => Deletion::Deleted,
            None => Deletion::Absent,
        })
    }
}

fn unsupported(reason: &str) -> Deletion {
    Deletion::Unsupported {
        reason: reason.to_owned(),
    }
}
