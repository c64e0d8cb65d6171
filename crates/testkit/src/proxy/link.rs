//! [`SharedLink`]: one link of a set rate that every connection of a proxy shares, as a
//! far-away upstream's one path does (`CountingProxy::set_link_rate`).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How far ahead of its slot on the link a write may go: bursts stay this small.
const BURST: Duration = Duration::from_millis(20);

/// A link of `bytes_per_second` toward the clients. Each write takes its slot on the
/// link after every slot taken before it, whichever connection wrote: so all the
/// connections together, not each one, get the rate.
#[derive(Debug)]
pub(super) struct SharedLink {
    bytes_per_second: u64,
    /// When the link is free again (`None`: not used yet).
    free_at: Mutex<Option<Instant>>,
}

impl SharedLink {
    pub(super) fn new(bytes_per_second: u64) -> SharedLink {
        SharedLink {
            bytes_per_second: bytes_per_second.max(1),
            free_at: Mutex::new(None),
        }
    }

    pub(super) fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Takes the slot of `bytes` just sent; returns when the next write may go.
    pub(super) fn sent(&self, bytes: usize) -> Instant {
        let now = Instant::now();
        let duration = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let mut free_at = self.free_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // An idle link saves nothing up.
        let end = free_at.map_or(now, |free_at| free_at.max(now)) + duration;
        *free_at = Some(end);
        end.checked_sub(BURST).unwrap_or(now)
    }
}
