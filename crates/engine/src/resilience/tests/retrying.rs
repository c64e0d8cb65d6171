//! `Retrying` over `Flaky`: what is retried, how often, and how long it waits.

use std::time::Duration;

use ocisync_oci::{Store, StoreError};
use tokio::time::Instant;

use super::flaky::{
    layer, not_found, rate_limited, read_all, repo, server_error, tag_reference, transport_error, Flaky,
};
use super::flaky::{MakeError, LAYER_CONTENT};
use crate::resilience::{RetryPolicy, Retrying};

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        max_elapsed: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn transient_errors_are_retried_up_to_max_attempts_then_returned() {
    let store = Retrying::new(Flaky::failing_first("a", u32::MAX, server_error(503)), fast_policy(4));
    let result = store.manifest(&repo(), &tag_reference()).await;
    assert!(
        matches!(result, Err(StoreError::Server { status: 503, .. })),
        "{result:?}"
    );
    assert_eq!(store.inner().calls(), 4);
    assert_eq!(store.retries(), 3);
}

#[tokio::test]
async fn a_transient_failure_that_clears_is_invisible_to_the_caller() {
    let store = Retrying::new(Flaky::failing_first("a", 2, transport_error), fast_policy(4));
    let manifest = store.manifest(&repo(), &tag_reference()).await.unwrap();
    assert_eq!(&manifest.bytes[..], br#"{"schemaVersion":2}"#);
    assert_eq!(store.inner().calls(), 3);
    assert_eq!(store.retries(), 2);
}

#[tokio::test]
async fn errors_that_are_not_transient_are_returned_after_one_call() {
    let digest = layer().digest;
    let makers: Vec<MakeError> = vec![
        Box::new(not_found),
        Box::new(|what: &str| StoreError::Denied { what: what.into() }),
        Box::new(|what: &str| StoreError::Unauthorized { what: what.into() }),
        Box::new(|what: &str| StoreError::Rejected {
            what: what.into(),
            status: 400,
            detail: String::new(),
        }),
        Box::new(|what: &str| StoreError::Invalid {
            what: what.into(),
            reason: "not JSON".into(),
        }),
        Box::new(move |what: &str| StoreError::DigestMismatch {
            what: what.into(),
            expected: digest.clone(),
            actual: digest.clone(),
        }),
        // A used-up pull quota refills in hours; a retry would only spend pulls.
        Box::new(|what: &str| StoreError::QuotaExhausted { what: what.into() }),
        Box::new(|what: &str| StoreError::QuotaReserve {
            what: what.into(),
            remaining: 5,
            reserve: 5,
        }),
    ];
    for make_error in makers {
        let store = Retrying::new(Flaky::failing_first("a", u32::MAX, make_error), fast_policy(5));
        let error = store.tags(&repo()).await.unwrap_err();
        assert!(!error.is_transient());
        assert_eq!(store.inner().calls(), 1, "{error}");
        assert_eq!(store.retries(), 0);
    }
}

#[tokio::test]
async fn rate_limit_waits_at_least_retry_after() {
    let retry_after = Duration::from_millis(150);
    // max_delay 50 ms: Retry-After is honoured up to 500 ms, far above the 1 ms backoff.
    let policy = RetryPolicy {
        max_delay: Duration::from_millis(50),
        ..fast_policy(3)
    };
    let store = Retrying::new(Flaky::failing_first("a", 1, rate_limited(Some(retry_after))), policy);
    let started = Instant::now();
    store.catalog().await.unwrap();
    assert!(started.elapsed() >= retry_after, "waited only {:?}", started.elapsed());
    assert_eq!(store.inner().calls(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_cap_waits_the_cap() {
    // max_delay 5 ms caps Retry-After at 50 ms; the registry asked for an hour.
    let policy = RetryPolicy {
        max_delay: Duration::from_millis(5),
        ..fast_policy(3)
    };
    let store = Retrying::new(
        Flaky::failing_first("a", 1, rate_limited(Some(Duration::from_secs(3600)))),
        policy,
    );
    let started = Instant::now();
    store.catalog().await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(50), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
}

#[tokio::test]
async fn max_elapsed_stops_retrying_before_attempts_run_out() {
    // Every wait is 20 ms, and no wait may end past 100 ms: at most 5 waits, 6 calls.
    let policy = RetryPolicy {
        max_attempts: 1000,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_millis(100),
    };
    let store = Retrying::new(Flaky::failing_first("a", u32::MAX, server_error(502)), policy);
    let started = Instant::now();
    let result = store.has_blob(&repo(), &layer().digest).await;
    assert!(matches!(result, Err(StoreError::Server { status: 502, .. })));
    let calls = store.inner().calls();
    assert!((2..=6).contains(&calls), "{calls} calls");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn opening_a_blob_is_retried() {
    let store = Retrying::new(Flaky::failing_first("a", 2, server_error(500)), fast_policy(5));
    let stream = store.blob(&repo(), &layer()).await.unwrap();
    assert_eq!(read_all(stream).await.unwrap(), LAYER_CONTENT);
    assert_eq!(store.inner().calls(), 3);
}

#[tokio::test]
async fn an_error_mid_stream_passes_through_without_a_new_request() {
    let store = Retrying::new(Flaky::healthy("a").cutting_streams(), fast_policy(5));
    let stream = store.blob(&repo(), &layer()).await.unwrap();
    let error = read_all(stream).await.unwrap_err();
    assert!(matches!(error, StoreError::Transport { .. }));
    assert_eq!(store.inner().calls(), 1);
    assert_eq!(store.retries(), 0);
}

#[tokio::test]
async fn put_blob_is_sent_once_because_its_body_is_consumed() {
    let store = Retrying::new(Flaky::failing_first("a", 1, server_error(503)), fast_policy(5));
    let body = Flaky::healthy("source").blob(&repo(), &layer()).await.unwrap();
    let result = store.put_blob(&repo(), &layer(), body).await;
    assert!(matches!(result, Err(StoreError::Server { status: 503, .. })));
    assert_eq!(store.inner().calls(), 1);
}
