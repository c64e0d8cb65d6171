//! One store type for both kinds of endpoint a config can name: a registry (its
//! URLs with retries and failover) or an OCI image-layout directory.
//!
//! The `Store` trait has async methods without `dyn` support, so the choice is an
//! enum that forwards each call.

use std::sync::Arc;

use ocisync_layout::LayoutStore;
use ocisync_oci::{
    BlobPlacement, BlobStream, Deletion, Descriptor, Digest, Manifest, Reference, RepoName, Result, Store, Tag,
};

use crate::stores::RegistryEndpoint;

pub enum AnyStore {
    Registry(RegistryEndpoint),
    /// Shared by every sync of the process that uses the directory.
    Layout(Arc<LayoutStore>),
}

macro_rules! forward {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Registry($store) => $call.await,
            AnyStore::Layout($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    fn label(&self) -> &str {
        match self {
            AnyStore::Registry(store) => store.label(),
            AnyStore::Layout(store) => store.label(),
        }
    }

    async fn catalog(&self) -> Result<Vec<RepoName>> {
        forward!(self, store => store.catalog())
    }

    async fn tags(&self, repo: &RepoName) -> Result<Vec<Tag>> {
        forward!(self, store => store.tags(repo))
    }

    async fn head_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Option<Descriptor>> {
        forward!(self, store => store.head_manifest(repo, reference))
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        forward!(self, store => store.manifest(repo, reference))
    }

    async fn put_manifest(&self, repo: &RepoName, reference: &Reference, manifest: &Manifest) -> Result<()> {
        forward!(self, store => store.put_manifest(repo, reference, manifest))
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        forward!(self, store => store.has_blob(repo, digest))
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<BlobStream> {
        forward!(self, store => store.blob(repo, descriptor))
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, body: BlobStream) -> Result<()> {
        forward!(self, store => store.put_blob(repo, descriptor, body))
    }

    async fn prepare_blob(&self, repo: &RepoName, digest: &Digest, from: &RepoName) -> Result<BlobPlacement> {
        forward!(self, store => store.prepare_blob(repo, digest, from))
    }

    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool> {
        forward!(self, store => store.mount_blob(repo, from, digest))
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        forward!(self, store => store.referrers(repo, digest))
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Deletion> {
        forward!(self, store => store.delete_tag(repo, tag))
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Deletion> {
        forward!(self, store => store.delete_manifest(repo, digest))
    }
}
