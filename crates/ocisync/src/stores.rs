//! Builds the stores a config names: for each registry, every URL as a retrying
//! client, behind one failover group; for each layout directory, one store; for each
//! registry with a `bandwidth`, one cap that all its stores share; and hands credential
//! helpers' answers to the registries. [`AnyStore`] is either kind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use ocisync_engine::{Failover, Retrying};
use ocisync_layout::{check_root, Access, LayoutStore};
use ocisync_oci::Result as StoreResult;
use ocisync_oci::{BlobPlacement, BlobStream, Deletion, Descriptor, Digest, Manifest, Reference, RepoName, Store, Tag};
use ocisync_registry::{Bandwidth, RegistryOptions, RegistryStore, RequestLimit};

use crate::config::RegistryConfig;
use crate::credential_helper::CredentialHelper;

/// One store type for both kinds of store a config can name: a registry (its URLs
/// with retries and failover) or an OCI image-layout directory. The `Store` trait has
/// async methods without `dyn` support, so the choice is an enum that forwards each call.
pub enum AnyStore {
    Registry(FailoverUrls),
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

    async fn catalog(&self) -> StoreResult<Vec<RepoName>> {
        forward!(self, store => store.catalog())
    }

    async fn tags(&self, repo: &RepoName) -> StoreResult<Vec<Tag>> {
        forward!(self, store => store.tags(repo))
    }

    async fn head_manifest(&self, repo: &RepoName, reference: &Reference) -> StoreResult<Option<Descriptor>> {
        forward!(self, store => store.head_manifest(repo, reference))
    }

    async fn manifest(&self, repo: &RepoName, reference: &Reference) -> StoreResult<Manifest> {
        forward!(self, store => store.manifest(repo, reference))
    }

    async fn put_manifest(&self, repo: &RepoName, reference: &Reference, manifest: &Manifest) -> StoreResult<()> {
        forward!(self, store => store.put_manifest(repo, reference, manifest))
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> StoreResult<bool> {
        forward!(self, store => store.has_blob(repo, digest))
    }

    async fn blob(&self, repo: &RepoName, descriptor: &Descriptor) -> StoreResult<BlobStream> {
        forward!(self, store => store.blob(repo, descriptor))
    }

    async fn put_blob(&self, repo: &RepoName, descriptor: &Descriptor, body: BlobStream) -> StoreResult<()> {
        forward!(self, store => store.put_blob(repo, descriptor, body))
    }

    async fn prepare_blob(&self, repo: &RepoName, digest: &Digest, from: &RepoName) -> StoreResult<BlobPlacement> {
        forward!(self, store => store.prepare_blob(repo, digest, from))
    }

    async fn mount_blob(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> StoreResult<bool> {
        forward!(self, store => store.mount_blob(repo, from, digest))
    }

    async fn referrers(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Option<Vec<Descriptor>>> {
        forward!(self, store => store.referrers(repo, digest))
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> StoreResult<Deletion> {
        forward!(self, store => store.delete_tag(repo, tag))
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Deletion> {
        forward!(self, store => store.delete_manifest(repo, digest))
    }
}

/// The store for a configured registry or layout directory, read (`Access::Read`, a
/// source) or written. Fails when the registry or directory cannot be used.
pub fn store_for(
    registry: &RegistryConfig,
    access: Access,
    layouts: &mut LayoutStores,
    bandwidths: &mut Bandwidths,
) -> anyhow::Result<AnyStore> {
    match &registry.layout {
        Some(path) => layouts
            .open(path, access)
            .map(AnyStore::Layout)
            .with_context(|| format!("registry {}", registry.name)),
        None => registry_store(registry, bandwidths.of(registry)).map(AnyStore::Registry),
    }
}

/// The bandwidth caps of one process, one per configured registry: every sync that
/// reads or writes a registry (as source or destination, at the same moment under `run`)
/// shares its cap, since the cap stands for the link to that registry.
#[derive(Default)]
pub struct Bandwidths {
    by_registry: HashMap<String, Bandwidth>,
}

impl Bandwidths {
    /// The cap of `registry`, if it has a `bandwidth`.
    pub fn of(&mut self, registry: &RegistryConfig) -> Option<Bandwidth> {
        let bytes_per_second = registry.bandwidth?;
        let cap = self
            .by_registry
            .entry(registry.name.clone())
            .or_insert_with(|| Bandwidth::per_second(bytes_per_second));
        Some(cap.clone())
    }
}

/// The layout stores of one process, one per directory however the config spells its
/// path: syncs writing one directory at once share its in-process locks (file locks
/// alone do not separate writers of one process on NFS).
#[derive(Default)]
pub struct LayoutStores {
    by_directory: HashMap<PathBuf, Arc<LayoutStore>>,
}

impl LayoutStores {
    /// The store of `path`, checked for `access` (once per use, so a directory that is
    /// both a source and a destination is checked for both).
    pub fn open(&mut self, path: &Path, access: Access) -> anyhow::Result<Arc<LayoutStore>> {
        let directory = check_root(path, access)?;
        let store = self
            .by_directory
            .entry(directory)
            .or_insert_with(|| Arc::new(LayoutStore::new(path)));
        Ok(Arc::clone(store))
    }
}

/// A configured registry: its URLs in order, each retrying on its own, failing over
/// to the next when one stays down.
pub type FailoverUrls = Failover<Retrying<RegistryStore>>;

/// The store for a configured registry. Fails when a URL cannot be set up (an
/// unreadable CA file), before any work starts.
pub fn registry_store(registry: &RegistryConfig, bandwidth: Option<Bandwidth>) -> anyhow::Result<FailoverUrls> {
    let mut stores = Vec::with_capacity(registry.urls.len());
    // One cap for the registry, whichever URL serves.
    let limit = RequestLimit::new(registry.max_requests_in_flight);
    for url in &registry.urls {
        let options = RegistryOptions {
            url: url.to_string(),
            request_limit: Some(limit.clone()),
            bandwidth: bandwidth.clone(),
            ..registry.client.clone()
        };
        let store = RegistryStore::new(options).with_context(|| format!("registry {}", registry.name))?;
        stores.push(Retrying::new(store, registry.retry.clone()));
    }
    let mut stores = stores.into_iter();
    let first = stores
        .next()
        .with_context(|| format!("registry {} has no url", registry.name))?;
    Ok(Failover::new(first, stores).with_cool_down(registry.cool_down))
}

/// The credential helpers of a sync's two registries. They are asked at the start of
/// every pass, not once: cloud registries' tokens (ECR, GCR, ACR) last hours, `run`
/// lasts longer.
pub struct HelperCredentials {
    /// (registry name, its helper) for the source, then the destination.
    sides: [Option<(String, CredentialHelper)>; 2],
}

impl HelperCredentials {
    pub fn of(source: &RegistryConfig, destination: &RegistryConfig) -> HelperCredentials {
        let side = |registry: &RegistryConfig| {
            (registry.credential_helper.clone()).map(|helper| (registry.name.clone(), helper))
        };
        HelperCredentials {
            sides: [side(source), side(destination)],
        }
    }

    /// Asks each helper and gives its answer to every URL of its registry, forgetting
    /// the tokens obtained with the previous one. The error is one line naming the
    /// registry and the helper, never anything the helper printed.
    pub async fn refresh(&self, source: &AnyStore, destination: &AnyStore) -> Result<(), String> {
        for (side, store) in self.sides.iter().zip([source, destination]) {
            let (Some((registry, helper)), AnyStore::Registry(urls)) = (side, store) else {
                continue;
            };
            let credentials = helper.get().await.map_err(|error| {
                tracing::warn!(registry = %registry, error = %error, "credential helper failed");
                format!("registry {registry}: {error}")
            })?;
            tracing::debug!(registry = %registry, helper = %helper.program(), "credentials from the helper");
            for url in urls.stores() {
                url.inner().replace_credentials(Some(credentials.clone())).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_spellings_of_one_layout_directory_share_one_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("export")).unwrap();
        let mut layouts = LayoutStores::default();
        let first = layouts.open(&dir.path().join("export"), Access::Write).unwrap();
        let second = layouts.open(&dir.path().join("./export/"), Access::Read).unwrap();
        let other = layouts.open(&dir.path().join("other"), Access::Write).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &other));
    }
}
