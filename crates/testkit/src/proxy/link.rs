//! [`SharedLink`]: one link of a set rate that every connection of a proxy shares, as a
//! far-away upstream's one path does (`CountingProxy::set_link_rate`). It also keeps
//! when it stood idle ([`LinkUsage`]), which is where a pass leaves time on the table.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How far ahead of its slot on the link a write may go: bursts stay this small.
const BURST: Duration = Duration::from_millis(20);

/// Idle gaps at least this long are listed one by one; shorter ones (a writer's
/// scheduling jitter) only add to the sum.
const LISTED_GAP: Duration = Duration::from_millis(1);

/// A link of `bytes_per_second` toward the clients. Each write takes its slot on the
/// link after every slot taken before it, whichever connection wrote: so all the
/// connections together, not each one, get the rate.
#[derive(Debug)]
pub(super) struct SharedLink {
    bytes_per_second: u64,
    state: Mutex<LinkState>,
}

#[derive(Debug)]
struct LinkState {
    /// When the link is free again (`None`: not used since `since`).
    free_at: Option<Instant>,
    /// Where the usage record starts (the link's start, or the proxy's last reset).
    since: Instant,
    first_byte: Option<Instant>,
    idle: Duration,
    gaps: Vec<LinkGap>,
}

/// A time the link carried nothing, between two writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkGap {
    /// When it began, from the start of the record.
    pub at: Duration,
    pub length: Duration,
}

/// How a shared link was used since the proxy started or was last reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkUsage {
    /// When the first byte took the link, from the start of the record (`None`: none did).
    pub first_byte: Option<Duration>,
    /// When the link was last busy until, from the start of the record.
    pub busy_until: Option<Duration>,
    /// Every idle time between the first byte and `busy_until`, summed.
    pub idle: Duration,
    /// The idle times of at least 1 ms, in order.
    pub gaps: Vec<LinkGap>,
}

impl SharedLink {
    pub(super) fn new(bytes_per_second: u64) -> SharedLink {
        SharedLink {
            bytes_per_second: bytes_per_second.max(1),
            state: Mutex::new(LinkState {
                free_at: None,
                since: Instant::now(),
                first_byte: None,
                idle: Duration::ZERO,
                gaps: Vec::new(),
            }),
        }
    }

    pub(super) fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Takes the slot of `bytes` just sent; returns when the next write may go.
    pub(super) fn sent(&self, bytes: usize) -> Instant {
        let now = Instant::now();
        let duration = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.free_at {
            None => state.first_byte = Some(now),
            Some(free_at) if free_at < now => {
                let length = now - free_at;
                state.idle += length;
                if length >= LISTED_GAP {
                    let at = free_at.saturating_duration_since(state.since);
                    state.gaps.push(LinkGap { at, length });
                }
            }
            Some(_) => {}
        }
        // An idle link saves nothing up.
        let end = state.free_at.map_or(now, |free_at| free_at.max(now)) + duration;
        state.free_at = Some(end);
        end.checked_sub(BURST).unwrap_or(now)
    }

    /// Starts the usage record afresh, from now.
    pub(super) fn restart_usage(&self) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.since = Instant::now();
        state.free_at = None;
        state.first_byte = None;
        state.idle = Duration::ZERO;
        state.gaps.clear();
    }

    pub(super) fn usage(&self) -> LinkUsage {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        LinkUsage {
            first_byte: state.first_byte.map(|at| at.saturating_duration_since(state.since)),
            busy_until: state.free_at.map(|at| at.saturating_duration_since(state.since)),
            idle: state.idle,
            gaps: state.gaps.clone(),
        }
    }
}
