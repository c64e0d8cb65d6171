//! One sync's work at a time: its scheduled passes and its event-driven syncs take
//! turns, never overlap.
//!
//! The engine's `PassMemory` holds what one pass knows of the destination, and its
//! per-digest lock is what keeps two copies from pushing the same manifest at once
//! (distribution 2.8 rewrites a link file in place, and a concurrent reader sees the
//! content as unknown). Two passes with two memories would not see each other, and a
//! pass that read a tag's upstream digest before a push could put the old digest back
//! after the event's copy put the new one. Taking turns rules both out; the price is
//! that an event arriving during a pass waits for the pass to end, and a pass for the
//! event-driven sync under way (the lock is fair: neither starves the other).

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// The turn of one sync: cloned into its schedule loop and its event worker.
#[derive(Clone, Default)]
pub struct SyncGate(Arc<Mutex<()>>);

impl SyncGate {
    /// Waits for the sync's other work to end; the sync is ours while the guard lives.
    pub async fn enter(&self) -> OwnedMutexGuard<()> {
        Arc::clone(&self.0).lock_owned().await
    }
}
