//! [`FaultyStore`]: the one test store that forwards every call to a memory store, but
//! for the calls where its [`Fault`] steps in (a quota that runs out, a refused put, a
//! blob read that never answers).

use std::future::Future;

use ocisync_oci::{
    BlobStream, Deletion, Descriptor, Digest, Manifest, MemoryStore, Reference, RepoName, Result, Store, Tag,
};

/// Where a [`FaultyStore`] departs from the memory store it wraps. Each hook runs before
/// the call it is named after; an error answers that call in the memory store's place.
/// A hook left out lets its call through.
pub trait Fault: Send + Sync {
    fn manifest(&self, _repo: &RepoName, _reference: &Reference) -> Result<()> {
        Ok(())
    }

    fn put_manifest(&self, _repo: &RepoName, _reference: &Reference) -> Result<()> {
        Ok(())
    }

    /// Async, so that a blob read can be kept waiting.
    fn blob(&self, _repo: &RepoName, _descriptor: &Descriptor) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// A memory store seen through a [`Fault`].
pub struct FaultyStore<'a, F> {
    pub inner: &'a MemoryStore,
    pub fault: F,
}

impl<F: Fault> Store for FaultyStore<'_, F> {
    fn label(&self) -> &str {
        self.inner.label()
    }

    async fn catalog(&self) -> Result<Vec<RepoName>> {
        self.inner.catalog().await
    }

    async fn tags(&self, repo: &RepoName) -> Result<Vec<Tag>> {
        self.inner.tags(repo).await
    }

    async fn head_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Option<Descriptor>> {
        self.inner.head_manifest(repo, reference).await
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        self.fault.manifest(repo, reference)?;
        self.inner.manifest(repo, reference).await
    }

    async fn put_manifest(&self, repo: &RepoName, reference: &Reference, manifest: &Manifest) -> Result<()> {
        self.fault.put_manifest(repo, reference)?;
        self.inner.put_manifest(repo, reference, manifest).await
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        self.inner.has_blob(repo, digest).await
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<BlobStream> {
        self.fault.blob(repo, descriptor).await?;
        self.inner.blob(repo, descriptor).await
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, body: BlobStream) -> Result<()> {
        self.inner.put_blob(repo, descriptor, body).await
    }

    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool> {
        self.inner.mount_blob(repo, from, digest).await
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        self.inner.referrers(repo, digest).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Deletion> {
        self.inner.delete_tag(repo, tag).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Deletion> {
        self.inner.delete_manifest(repo, digest).await
    }
}
