//! A [`Store`] decorator that retries transient failures of another store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ocisync_oci::{BlobPlacement, BlobStream, Descriptor, Digest, Manifest, Reference, RepoName, Result, Store, Tag};

use super::policy::{retry_counting, RetryPolicy};

/// Retries every call of `inner` per a [`RetryPolicy`], except where a retry is impossible.
///
/// - `blob` retries until the response starts; an error in the middle of the stream
///   passes through, because only the caller can start the transfer again.
/// - `put_blob` runs once: its body stream is consumed by the first attempt.
pub struct Retrying<S> {
    inner: S,
    policy: RetryPolicy,
    retries: Arc<AtomicU64>,
}

impl<S: Store> Retrying<S> {
    /// `inner`, its transient failures retried as `policy` allows.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Retrying {
            inner,
            policy,
            retries: Arc::default(),
        }
    }

    /// Retries made so far, over all calls.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The retry counter itself, to read after the store has moved into another decorator.
    pub fn retry_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.retries)
    }

    /// How it retries.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The store it retries.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn what(&self, operation: std::fmt::Arguments<'_>) -> String {
        format!("{} {operation}", self.inner.label())
    }
}

impl<S: Store> Store for Retrying<S> {
    fn label(&self) -> &str {
        self.inner.label()
    }

    async fn catalog(&self) -> Result<Vec<RepoName>> {
        let what = self.what(format_args!("catalog"));
        retry_counting(&self.policy, &what, &self.retries, || self.inner.catalog()).await
    }

    async fn tags(&self, repo: &RepoName) -> Result<Vec<Tag>> {
        let what = self.what(format_args!("tags {repo}"));
        retry_counting(&self.policy, &what, &self.retries, || self.inner.tags(repo)).await
    }

    async fn head_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Option<Descriptor>> {
        let what = self.what(format_args!("head manifest {repo}:{reference}"));
        retry_counting(&self.policy, &what, &self.retries, || {
            self.inner.head_manifest(repo, reference)
        })
        .await
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        let what = self.what(format_args!("manifest {repo}:{reference}"));
        retry_counting(&self.policy, &what, &self.retries, || {
            self.inner.manifest(repo, reference)
        })
        .await
    }

    async fn put_manifest(&self, repo: &RepoName, reference: &Reference, manifest: &Manifest) -> Result<()> {
        // Putting the same bytes under the same reference twice is harmless.
        let what = self.what(format_args!("put manifest {repo}:{reference}"));
        retry_counting(&self.policy, &what, &self.retries, || {
            self.inner.put_manifest(repo, reference, manifest)
        })
        .await
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        let what = self.what(format_args!("has blob {repo}@{digest}"));
        retry_counting(&self.policy, &what, &self.retries, || self.inner.has_blob(repo, digest)).await
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<BlobStream> {
        let what = self.what(format_args!("blob {repo}@{}", descriptor.digest));
        retry_counting(&self.policy, &what, &self.retries, || self.inner.blob(repo, descriptor)).await
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, body: BlobStream) -> Result<()> {
        self.inner.put_blob(repo, descriptor, body).await
    }

    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool> {
        let what = self.what(format_args!("mount blob {repo}@{digest} from {from}"));
        retry_counting(&self.policy, &what, &self.retries, || {
            self.inner.mount_blob(repo, from, digest)
        })
        .await
    }

    async fn prepare_blob(&self, repo: &RepoName, digest: &Digest, from: &RepoName) -> Result<BlobPlacement> {
        // A repeated request may open a second upload session; the registry discards unused ones.
        let what = self.what(format_args!("prepare blob {repo}@{digest}"));
        retry_counting(&self.policy, &what, &self.retries, || {
            self.inner.prepare_blob(repo, digest, from)
        })
        .await
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        let what = self.what(format_args!("referrers {repo}@{digest}"));
        retry_counting(&self.policy, &what, &self.retries, || {
            self.inner.referrers(repo, digest)
        })
        .await
    }
}
