//! Builds the stores a config names.

use anyhow::Context as _;
use ocisync_registry::{RegistryOptions, RegistryStore};

use crate::config::RegistryConfig;

/// The store for a configured registry.
///
/// Only the first URL is used; failing over to the others is not implemented yet.
pub fn registry_store(registry: &RegistryConfig) -> anyhow::Result<RegistryStore> {
    let url = registry
        .urls
        .first()
        .with_context(|| format!("registry {} has no url", registry.name))?;
    if registry.urls.len() > 1 {
        tracing::warn!(registry = %registry.name, "only the first url is used; failover is not implemented yet");
    }
    let mut options = RegistryOptions::new(url.as_str());
    options.credentials = registry.credentials.clone();
    options.tls_verify = registry.tls_verify;
    options.ca_file = registry.ca_file.clone();
    RegistryStore::new(options).with_context(|| format!("registry {}", registry.name))
}
