//! The one seam between the copy engine and the places images live.

use std::future::Future;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::manifest::Manifest;
use crate::name::{Reference, RepoName, Tag};

/// What [`Store::prepare_blob`] found out about a blob in a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPlacement {
    /// The repository has the blob already.
    Present,
    /// The store linked the blob from the other repository; nothing was transferred.
    Mounted,
    /// Neither: the blob must be uploaded with [`Store::put_blob`].
    Missing,
}

/// What a store did with a delete request ([`Store::delete_tag`], [`Store::delete_manifest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Removed.
    Deleted,
    /// There was nothing to remove.
    Absent,
    /// The store does not delete this way; `reason` says why, for the report. A
    /// registry with deletes disabled (405 `UNSUPPORTED`) answers this for both kinds;
    /// distribution 2.x for a tag alone (it deletes manifests by digest only).
    Unsupported { reason: String },
}

/// Blob content as it streams: chunks in order, or the error that cut it short.
pub type BlobStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// A place images are read from or written to: a registry, a layout directory, memory.
///
/// Implementations report failures as [`StoreError`] and never retry or sleep: what to
/// do about a failure is the engine's decision.
pub trait Store: Send + Sync {
    /// A short label for logs and reports, e.g. `http://127.0.0.1:5000`. Never holds credentials.
    fn label(&self) -> &str;

    /// Every repository name, all pages read.
    fn catalog(&self) -> impl Future<Output = Result<Vec<RepoName>>> + Send;

    /// Every tag of a repository, all pages read.
    fn tags(&self, repo: &RepoName) -> impl Future<Output = Result<Vec<Tag>>> + Send;

    /// The descriptor of a manifest (digest, media type, size), or `None` if it is absent.
    /// This default reads the whole manifest: manifests are small, and reading one
    /// verifies that a tag's target is really there. A registry answers a `HEAD` instead.
    fn head_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> impl Future<Output = Result<Option<Descriptor>>> + Send {
        async move {
            match self.manifest(repo, reference).await {
                Ok(manifest) => Ok(Some(manifest.descriptor())),
                Err(error) if error.is_not_found() => Ok(None),
                Err(error) => Err(error),
            }
        }
    }

    /// A manifest's exact bytes. When `reference` is a digest, the bytes match it.
    fn manifest(&self, repo: &RepoName, reference: &Reference) -> impl Future<Output = Result<Manifest>> + Send;

    /// Stores manifest bytes unchanged under `reference` (a tag, or the manifest's digest).
    fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        manifest: &Manifest,
    ) -> impl Future<Output = Result<()>> + Send;

    fn has_blob(&self, repo: &RepoName, digest: &Digest) -> impl Future<Output = Result<bool>> + Send;

    /// Streams a blob's content. Callers verify it against `descriptor` as it passes.
    fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> impl Future<Output = Result<BlobStream>> + Send;

    /// Stores a blob from a stream; the store rejects content that does not match `descriptor`.
    fn put_blob(
        &self,
        repo: &RepoName,
        descriptor: &Descriptor,
        body: BlobStream,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Makes a blob of repository `from` available in `repo` without transferring it.
    /// `Ok(false)` means the store declined and the caller should upload instead.
    fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Readies `repo` for a blob before any content moves: finds it present, links it
    /// from `from` (a repository of this store that may hold it, possibly `repo`
    /// itself), or reports it missing. This default asks `has_blob`, then
    /// `mount_blob`; a registry answers all three with one
    /// `POST /blobs/uploads/?mount=&from=`, and keeps the upload session that a 202
    /// opens for the `put_blob` of the same blob that follows.
    fn prepare_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> impl Future<Output = Result<BlobPlacement>> + Send {
        async move {
            if self.has_blob(repo, digest).await? {
                return Ok(BlobPlacement::Present);
            }
            if from != repo && self.mount_blob(repo, from, digest).await? {
                return Ok(BlobPlacement::Mounted);
            }
            Ok(BlobPlacement::Missing)
        }
    }

    /// The referrers of manifest `digest` (distribution-spec "Listing Referrers": the
    /// `manifests` of the index `GET /v2/<name>/referrers/<digest>` answers, all pages).
    /// `Ok(None)` means the store has no referrers API; the caller then falls back to
    /// the referrers tag schema (the index tagged `sha256-<hex>`).
    fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<Vec<Descriptor>>>> + Send;

    /// Removes `tag` alone: the manifest it names and every other tag stay
    /// (distribution-spec 1.1 "Deleting tags").
    fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> impl Future<Output = Result<Deletion>> + Send;

    /// Removes the manifest `digest` and, with it, every tag that names it
    /// (distribution-spec "Deleting Manifests").
    fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> impl Future<Output = Result<Deletion>> + Send;
}
