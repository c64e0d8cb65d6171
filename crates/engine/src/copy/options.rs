//! The knobs of a pass: how much runs at once, retries, dry run, stop and limits.

use crate::concurrency::Concurrency;
use crate::progress::ProgressObserver;
use crate::resilience::RetryPolicy;
use crate::shard::Shard;
use crate::stop::StopSignal;

/// Knobs of the copy engine.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// How much runs at the same time.
    pub concurrency: Concurrency,
    /// Read and compare only: count what would be copied, write nothing.
    pub dry_run: bool,
    /// Retries of a whole blob transfer (the stores retry single requests).
    pub blob_retry: RetryPolicy,
    /// Raised to stop starting new images (a daemon shutting down, a pass past its
    /// deadline); copies under way finish, unless it is abandoned too.
    pub stop: StopSignal,
    /// Told what the pass planned and finished (progress displays); `None`: nobody listens.
    pub progress: Option<ProgressObserver>,
    /// Take only the repositories of this shard of the catalog (scale-out workers).
    pub shard: Option<Shard>,
    /// Skip an image that references a blob larger than this (by its descriptor),
    /// before any of its bytes are transferred; `None`: no limit.
    pub max_blob_size: Option<u64>,
}
