//! Pull quotas across passes: each pass finds out every URL's quota afresh (its window
//! may have refilled), and its report says what each URL announced.

use ocisync_engine::RateLimitUse;
use ocisync_oci::Store as _;
use ocisync_registry::RegistryStore;

use crate::stores::AnyStore;

/// The registry stores (one per URL) behind a configured store; none for a layout.
fn registry_stores(store: &AnyStore) -> Vec<&RegistryStore> {
    match store {
        AnyStore::Registry(urls) => urls.stores().map(|store| store.inner()).collect(),
        AnyStore::Layout(_) => Vec::new(),
    }
}

/// Starts a pass: `run` keeps its stores from pass to pass.
pub fn reset_pull_quotas(store: &AnyStore) {
    for registry in registry_stores(store) {
        registry.reset_pull_quota();
    }
}

/// What each URL of `store` announced of its pull quota this pass.
pub fn rate_limit_uses(role: &str, store: &AnyStore) -> Vec<RateLimitUse> {
    registry_stores(store)
        .into_iter()
        .filter_map(|registry| rate_limit_use(role, registry))
        .collect()
}

/// What one URL announced of its pull quota this pass; `None` when it said nothing.
pub fn rate_limit_use(role: &str, registry: &RegistryStore) -> Option<RateLimitUse> {
    let status = registry.pull_quota();
    if status.last.is_none() && !status.exhausted {
        return None;
    }
    let last = status.last;
    Some(RateLimitUse {
        role: role.to_owned(),
        url: registry.label().to_owned(),
        limit: last.and_then(|last| last.limit),
        // A 429 TOOMANYREQUESTS says nothing is left, whatever was announced before.
        remaining: if status.exhausted {
            0
        } else {
            last.map_or(0, |last| last.remaining)
        },
        window_seconds: last.and_then(|last| last.window_seconds),
        reserve: status.reserve,
        exhausted: status.exhausted,
    })
}
