//! How long to wait between attempts, and the one retry loop that decorators and the copier share.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable, TokioSleeper};
use ocisync_oci::StoreError;
use tokio::time::Instant;

/// `Retry-After` is honoured up to this many times [`RetryPolicy::max_delay`] (5 minutes
/// with the defaults). A registry asking for longer is not waited for in full: the
/// retry comes at the cap, and [`RetryPolicy::max_elapsed`] still ends the whole loop.
const RETRY_AFTER_CAP_FACTOR: u32 = 10;

/// Exponential backoff with jitter, bounded by attempts and by wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. `1` means no retries; `0` counts as `1`.
    pub max_attempts: u32,
    /// Wait before the first retry; each later wait doubles, plus up to 100% jitter.
    pub initial_delay: Duration,
    /// No single backoff wait is longer than this (jitter included).
    pub max_delay: Duration,
    /// No retry starts a wait that would end later than this after the first attempt began.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(5 * 60),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes one attempt and never waits.
    pub fn no_retries() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The longest `Retry-After` that is waited for in full.
    pub fn retry_after_cap(&self) -> Duration {
        self.max_delay.saturating_mul(RETRY_AFTER_CAP_FACTOR)
    }

    /// The wait before the next attempt, or `None` to give up and return `error`.
    ///
    /// `backoff` is the exponential schedule's proposal, `None` once the attempts are
    /// used up; `elapsed` is the time since the first attempt began. The wait is the
    /// proposal capped at `max_delay`, raised to the registry's `Retry-After` (itself
    /// capped at [`RetryPolicy::retry_after_cap`]), and refused if it would end past
    /// `max_elapsed`.
    pub fn delay_before_next_attempt(
        &self,
        error: &StoreError,
        backoff: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        // Map over `backoff`, never replace a `None`: that would retry without end.
        let proposed = backoff?.min(self.max_delay);
        let delay = match error.retry_after() {
            Some(asked) => proposed.max(asked.min(self.retry_after_cap())),
            None => proposed,
        };
        (elapsed.saturating_add(delay) <= self.max_elapsed).then_some(delay)
    }

    fn backoff(&self) -> ExponentialBuilder {
        let retries = self.max_attempts.saturating_sub(1);
        ExponentialBuilder::new()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(usize::try_from(retries).unwrap_or(usize::MAX))
    }
}

/// Runs `op` until it succeeds, fails with an error that is not
/// [transient](StoreError::is_transient), or `policy` says to stop; returns the last
/// result, and adds one to `retries` for every retry made, for reports and metrics.
///
/// Each retry is logged at warn with `what`, `attempt` (the one that failed), `delay`
/// and `error`.
pub(super) async fn retry_counting<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    retries: &AtomicU64,
    op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let started = Instant::now();
    let mut failed_attempt: u32 = 0;
    op.retry(policy.backoff())
        .sleep(TokioSleeper)
        .when(StoreError::is_transient)
        .adjust(|error, backoff| {
            failed_attempt += 1;
            let delay = policy.delay_before_next_attempt(error, backoff, started.elapsed())?;
            retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                what,
                attempt = failed_attempt,
                max_attempts = policy.max_attempts,
                delay = ?delay,
                error = %error,
                "retrying"
            );
            Some(delay)
        })
        .await
}
