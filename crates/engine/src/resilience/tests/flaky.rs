//! `Flaky`: a `MemoryStore` holding one image that fails the calls its plan names.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use ocisync_oci::{
    BlobStream, Deletion, Descriptor, Digest, Manifest, MemoryStore, Reference, RepoName, Result, Store, StoreError,
    Tag,
};

pub const LAYER_CONTENT: &[u8] = b"layer content";

pub fn repo() -> RepoName {
    "mirror/app".parse().unwrap()
}

fn tag() -> Tag {
    "v1".parse().unwrap()
}

pub fn tag_reference() -> Reference {
    Reference::Tag(tag())
}

pub fn layer() -> Descriptor {
    Descriptor::new(
        "application/vnd.oci.image.layer.v1.tar",
        Digest::sha256_of(LAYER_CONTENT),
        LAYER_CONTENT.len() as u64,
    )
}

pub fn server_error(status: u16) -> impl Fn(&str) -> StoreError + Send + Sync + 'static {
    move |label| StoreError::Server {
        what: format!("{label} test"),
        status,
    }
}

pub fn transport_error(label: &str) -> StoreError {
    StoreError::Transport {
        what: format!("{label} test"),
        source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
    }
}

pub fn rate_limited(retry_after: Option<Duration>) -> impl Fn(&str) -> StoreError + Send + Sync + 'static {
    move |label| StoreError::RateLimited {
        what: format!("{label} test"),
        retry_after,
    }
}

pub fn not_found(label: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("{label} test"),
    }
}

type Plan = Box<dyn Fn(u32) -> bool + Send + Sync>;
pub type MakeError = Box<dyn Fn(&str) -> StoreError + Send + Sync>;

/// Fails call number `n` (from 1, counting every method) when `fails(n)`, with the
/// error `make_error` builds; otherwise answers from a `MemoryStore` holding the image.
pub struct Flaky {
    inner: MemoryStore,
    fails: Plan,
    make_error: MakeError,
    calls: AtomicU32,
    cut_streams: bool,
}

impl Flaky {
    pub fn new(
        label: &str,
        fails: impl Fn(u32) -> bool + Send + Sync + 'static,
        make_error: impl Fn(&str) -> StoreError + Send + Sync + 'static,
    ) -> Self {
        let inner = MemoryStore::new(label);
        let manifest = Manifest::from_bytes(r#"{"schemaVersion":2}"#, "application/vnd.oci.image.manifest.v1+json");
        inner.insert_manifest_unchecked(&repo(), Some(&tag()), manifest);
        inner.insert_blob_unchecked(&repo(), &layer().digest, Bytes::from_static(LAYER_CONTENT));
        Flaky {
            inner,
            fails: Box::new(fails),
            make_error: Box::new(make_error),
            calls: AtomicU32::new(0),
            cut_streams: false,
        }
    }

    pub fn failing_first(
        label: &str,
        failures: u32,
        make_error: impl Fn(&str) -> StoreError + Send + Sync + 'static,
    ) -> Self {
        Flaky::new(label, move |call| call <= failures, make_error)
    }

    pub fn healthy(label: &str) -> Self {
        Flaky::new(label, |_| false, not_found)
    }

    /// Blob streams it opens end with a transport error after the first chunk.
    pub fn cutting_streams(mut self) -> Self {
        self.cut_streams = true;
        self
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self) -> Result<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match (self.fails)(call) {
            true => Err((self.make_error)(self.inner.label())),
            false => Ok(()),
        }
    }
}

impl Store for Flaky {
    fn label(&self) -> &str {
        self.inner.label()
    }

    async fn catalog(&self) -> Result<Vec<RepoName>> {
        self.answer()?;
        self.inner.catalog().await
    }

    async fn tags(&self, repo: &RepoName) -> Result<Vec<Tag>> {
        self.answer()?;
        self.inner.tags(repo).await
    }

    async fn head_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Option<Descriptor>> {
        self.answer()?;
        self.inner.head_manifest(repo, reference).await
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        self.answer()?;
        self.inner.manifest(repo, reference).await
    }

    async fn put_manifest(&self, repo: &RepoName, reference: &Reference, manifest: &Manifest) -> Result<()> {
        self.answer()?;
        self.inner.put_manifest(repo, reference, manifest).await
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        self.answer()?;
        self.inner.has_blob(repo, digest).await
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<BlobStream> {
        self.answer()?;
        let stream = self.inner.blob(repo, descriptor).await?;
        if !self.cut_streams {
            return Ok(stream);
        }
        let cut = transport_error(self.inner.label());
        Ok(Box::pin(stream.take(1).chain(stream::iter([Err(cut)]))))
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, body: BlobStream) -> Result<()> {
        self.answer()?;
        self.inner.put_blob(repo, descriptor, body).await
    }

    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool> {
        self.answer()?;
        self.inner.mount_blob(repo, from, digest).await
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        self.answer()?;
        self.inner.referrers(repo, digest).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Deletion> {
        self.answer()?;
        self.inner.delete_tag(repo, tag).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Deletion> {
        self.answer()?;
        self.inner.delete_manifest(repo, digest).await
    }
}

/// Reads a whole blob stream: its bytes, or the first error.
pub async fn read_all(mut stream: BlobStream) -> Result<Vec<u8>> {
    let mut content = Vec::new();
    while let Some(chunk) = stream.next().await {
        content.extend_from_slice(&chunk?);
    }
    Ok(content)
}
