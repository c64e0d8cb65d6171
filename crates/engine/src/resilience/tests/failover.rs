//! `Failover` over `Flaky` mirrors: where each call goes, and when it comes back.

use std::time::Duration;

use ocisync_oci::{Store, StoreError};

use super::flaky::{layer, not_found, read_all, repo, server_error, tag_reference, Flaky, LAYER_CONTENT};
use crate::resilience::{Failover, RetryPolicy, Retrying, ServedCount};

fn calls(failover: &Failover<Flaky>) -> Vec<u32> {
    failover.stores().map(Flaky::calls).collect()
}

fn served(failover: &Failover<Flaky>) -> Vec<u64> {
    failover.served().into_iter().map(|count| count.calls).collect()
}

#[tokio::test]
async fn a_transient_failure_moves_the_call_to_the_next_store() {
    let failover = Failover::new(
        Flaky::failing_first("a", u32::MAX, server_error(503)),
        [Flaky::healthy("b")],
    );
    let tags = failover.tags(&repo()).await.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(calls(&failover), [1, 1]);
    assert_eq!(failover.failovers(), 1);
    assert_eq!(failover.last_served(), Some("b"));
    assert_eq!(
        failover.served(),
        [
            ServedCount {
                label: "a".into(),
                calls: 0
            },
            ServedCount {
                label: "b".into(),
                calls: 1
            }
        ]
    );
}

#[tokio::test]
async fn not_found_is_returned_without_failover() {
    let failover = Failover::new(Flaky::failing_first("a", u32::MAX, not_found), [Flaky::healthy("b")]);
    let error = failover.manifest(&repo(), &tag_reference()).await.unwrap_err();
    assert!(error.is_not_found());
    assert_eq!(calls(&failover), [1, 0]);
    assert_eq!(failover.failovers(), 0);
    assert_eq!(failover.last_served(), None);
}

#[tokio::test]
async fn a_used_up_pull_quota_is_returned_without_failover_or_cool_down() {
    // The next URL may share the quota (another name of the same service): moving the
    // call would spend its reserve or collect another 429.
    let exhausted = |label: &str| StoreError::QuotaExhausted {
        what: format!("{label} test"),
    };
    let failover = Failover::new(Flaky::failing_first("a", 2, exhausted), [Flaky::healthy("b")]);
    for _ in 0..2 {
        let error = failover.manifest(&repo(), &tag_reference()).await.unwrap_err();
        assert!(matches!(error, StoreError::QuotaExhausted { .. }), "{error}");
    }
    assert_eq!(calls(&failover), [2, 0]);
    assert_eq!(failover.failovers(), 0);
    // Not cooling down: once the store answers again, it serves.
    failover.manifest(&repo(), &tag_reference()).await.unwrap();
    assert_eq!(failover.last_served(), Some("a"));
}

#[tokio::test]
async fn the_first_store_takes_over_again_after_its_cool_down() {
    let cool_down = Duration::from_millis(200);
    let failover =
        Failover::new(Flaky::failing_first("a", 1, server_error(502)), [Flaky::healthy("b")]).with_cool_down(cool_down);

    failover.catalog().await.unwrap();
    assert_eq!(failover.last_served(), Some("b"));
    // Cooling down: `a` is not asked again.
    failover.catalog().await.unwrap();
    assert_eq!(calls(&failover), [1, 2]);

    tokio::time::sleep(cool_down + Duration::from_millis(50)).await;
    failover.catalog().await.unwrap();
    assert_eq!(failover.last_served(), Some("a"));
    assert_eq!(calls(&failover), [2, 2]);
    assert_eq!(served(&failover), [1, 2]);
    assert_eq!(failover.failovers(), 1);
}

#[tokio::test]
async fn when_every_store_fails_each_is_tried_once_and_the_last_error_returns() {
    let failover = Failover::new(
        Flaky::failing_first("a", u32::MAX, server_error(503)),
        [
            Flaky::failing_first("b", u32::MAX, server_error(502)),
            Flaky::failing_first("c", u32::MAX, server_error(504)),
        ],
    );
    let error = failover.catalog().await.unwrap_err();
    assert!(matches!(error, StoreError::Server { status: 504, .. }), "{error}");
    assert_eq!(calls(&failover), [1, 1, 1]);
    assert_eq!(failover.failovers(), 2);
}

#[tokio::test]
async fn when_all_are_cooling_down_the_soonest_to_recover_is_tried() {
    // a fails its calls 1 and 2; b fails its call 2. Steps are far apart compared
    // with scheduling noise: cool-down 400 ms, sleeps of 200 and 250 ms.
    let cool_down = Duration::from_millis(400);
    let failover = Failover::new(
        Flaky::new("a", |call| call <= 2, server_error(503)),
        [Flaky::new("b", |call| call == 2, server_error(503))],
    )
    .with_cool_down(cool_down);

    // t=0: a fails (down until 400), b serves.
    failover.catalog().await.unwrap();
    assert_eq!(failover.last_served(), Some("b"));
    // t=200: b fails (down until 600); a is cooling down, so the call fails.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(failover.catalog().await.is_err());
    assert_eq!(calls(&failover), [1, 2]);
    // t=450: a is back and fails again (down until 850); b is still cooling down.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(failover.catalog().await.is_err());
    assert_eq!(calls(&failover), [2, 2]);
    // Both cooling down: b recovers first (600 < 850), so b is tried, not a.
    failover.catalog().await.unwrap();
    assert_eq!(failover.last_served(), Some("b"));
    assert_eq!(calls(&failover), [2, 3]);
}

#[tokio::test]
async fn a_store_that_cuts_a_blob_stream_cools_down() {
    let failover = Failover::new(Flaky::healthy("a").cutting_streams(), [Flaky::healthy("b")]);
    let first = failover.blob(&repo(), &layer()).await.unwrap();
    assert!(matches!(read_all(first).await, Err(StoreError::Transport { .. })));
    // The caller's next attempt at the whole blob goes to the other mirror.
    let second = failover.blob(&repo(), &layer()).await.unwrap();
    assert_eq!(read_all(second).await.unwrap(), LAYER_CONTENT);
    assert_eq!(calls(&failover), [1, 1]);
    assert_eq!(failover.last_served(), Some("b"));
}

#[tokio::test]
async fn a_failed_upload_cools_its_store_down_without_failover() {
    let failover = Failover::new(Flaky::failing_first("a", 1, server_error(503)), [Flaky::healthy("b")]);
    let body = Flaky::healthy("source").blob(&repo(), &layer()).await.unwrap();
    assert!(failover.put_blob(&repo(), &layer(), body).await.is_err());
    assert_eq!(calls(&failover), [1, 0]);
    let body = Flaky::healthy("source").blob(&repo(), &layer()).await.unwrap();
    failover.put_blob(&repo(), &layer(), body).await.unwrap();
    assert_eq!(calls(&failover), [1, 1]);
    assert_eq!(failover.failovers(), 0);
}

#[tokio::test]
async fn each_store_retries_before_the_call_fails_over() {
    let policy = RetryPolicy {
        max_attempts: 2,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        max_elapsed: Duration::from_secs(10),
    };
    let failover = Failover::new(
        Retrying::new(Flaky::failing_first("a", 3, server_error(503)), policy.clone()),
        [Retrying::new(Flaky::healthy("b"), policy)],
    );
    failover.head_manifest(&repo(), &tag_reference()).await.unwrap();
    let stores: Vec<&Retrying<Flaky>> = failover.stores().collect();
    assert_eq!(stores[0].inner().calls(), 2);
    assert_eq!(stores[0].retries(), 1);
    assert_eq!(stores[1].inner().calls(), 1);
    assert_eq!(failover.failovers(), 1);
}

#[test]
fn the_label_names_every_store_in_order() {
    let failover = Failover::new(Flaky::healthy("http://a"), [Flaky::healthy("http://b")]);
    assert_eq!(failover.label(), "http://a | http://b");
}
