//! The delay decision as a table, and the `retry_counting` loop on its own.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use ocisync_oci::StoreError;

use crate::resilience::policy::retry_counting;
use crate::resilience::RetryPolicy;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_delay: ms(100),
        max_delay: ms(1_000),
        max_elapsed: ms(60_000),
    }
}

fn server() -> StoreError {
    StoreError::Server {
        what: "r".into(),
        status: 503,
    }
}

fn rate_limited(retry_after: Option<Duration>) -> StoreError {
    StoreError::RateLimited {
        what: "r".into(),
        retry_after,
    }
}

#[test]
fn delay_before_next_attempt_follows_backoff_retry_after_and_limits() {
    // (error, backoff proposal, elapsed, expected wait)
    let cases: Vec<(StoreError, Option<Duration>, Duration, Option<Duration>)> = vec![
        // The schedule's proposal, as is.
        (server(), Some(ms(150)), ms(0), Some(ms(150))),
        // Attempts used up: give up, whatever Retry-After says.
        (server(), None, ms(0), None),
        (rate_limited(Some(ms(500))), None, ms(0), None),
        // Jitter never pushes a wait past max_delay.
        (server(), Some(ms(1_900)), ms(0), Some(ms(1_000))),
        // Retry-After longer than the proposal wins.
        (rate_limited(Some(ms(700))), Some(ms(100)), ms(0), Some(ms(700))),
        // Retry-After shorter than the proposal does not shorten it.
        (rate_limited(Some(ms(50))), Some(ms(400)), ms(0), Some(ms(400))),
        (rate_limited(None), Some(ms(400)), ms(0), Some(ms(400))),
        // Retry-After is capped at ten times max_delay.
        (
            rate_limited(Some(ms(3_600_000))),
            Some(ms(100)),
            ms(0),
            Some(ms(10_000)),
        ),
        // A wait that would end past max_elapsed is not started.
        (server(), Some(ms(200)), ms(59_900), None),
        (server(), Some(ms(100)), ms(59_900), Some(ms(100))),
        (rate_limited(Some(ms(5_000))), Some(ms(100)), ms(56_000), None),
    ];
    let policy = policy();
    for (error, backoff, elapsed, expected) in cases {
        assert_eq!(
            policy.delay_before_next_attempt(&error, backoff, elapsed),
            expected,
            "{error}, backoff {backoff:?}, elapsed {elapsed:?}"
        );
    }
}

#[test]
fn defaults_cap_retry_after_at_five_minutes() {
    assert_eq!(RetryPolicy::default().retry_after_cap(), Duration::from_secs(300));
}

#[tokio::test]
async fn retry_repeats_a_transient_failure_until_it_succeeds_and_counts() {
    let policy = RetryPolicy {
        initial_delay: ms(1),
        max_delay: ms(2),
        ..RetryPolicy::default()
    };
    let calls = AtomicU32::new(0);
    let retries = AtomicU64::new(0);
    let result = retry_counting(&policy, "blob transfer", &retries, || async {
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Err(server()),
            _ => Ok("done"),
        }
    })
    .await;
    assert_eq!(result.unwrap(), "done");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(retries.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn zero_attempts_still_makes_one() {
    let policy = RetryPolicy {
        max_attempts: 0,
        initial_delay: ms(1),
        ..RetryPolicy::default()
    };
    let calls = AtomicU32::new(0);
    let result: Result<(), _> = retry_counting(&policy, "x", &AtomicU64::new(0), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(server())
    })
    .await;
    assert!(matches!(result, Err(StoreError::Server { status: 503, .. })));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
