//! Pull quotas against a real docker-registry behind a proxy that keeps one as Docker
//! Hub does (manifest `GET`s count, `ratelimit-*` headers, 429 `TOOMANYREQUESTS`).

use futures_util::future::join_all;
use ocisync_oci::{Reference, RepoName, Store, StoreError};
use ocisync_registry::{RateLimit, RegistryOptions, RegistryStore};
use ocisync_testkit::{image, layer, push_image, CountingProxy, Format, PullQuota, TestRegistry};

const REPO: &str = "quota/app";
const TAGS: usize = 8;

/// A registry with [`TAGS`] single-arch images in [`REPO`], behind a proxy keeping a
/// pull quota of `limit` per 6 hours.
async fn registry_with_quota(limit: u64) -> (TestRegistry, CountingProxy) {
    let registry = TestRegistry::start();
    for index in 0..TAGS as u64 {
        let image = image(
            Format::Oci,
            ("linux", "amd64"),
            vec![layer(Format::Oci, 0x0A_0000 + index, 512)],
            &format!("quota-{index}"),
        );
        push_image(&registry.url(), REPO, &format!("v{index}"), &image).await;
    }
    let proxy = CountingProxy::start(&registry.url());
    proxy.set_pull_quota(Some(PullQuota {
        limit,
        window_seconds: 21600,
    }));
    (registry, proxy)
}

fn store(url: &str, reserve: Option<u64>) -> RegistryStore {
    let mut options = RegistryOptions::new(url);
    options.rate_limit_reserve = reserve;
    RegistryStore::new(options).unwrap()
}

/// Every tag's manifest at once: the kind of error each failed with, `"ok"` for success.
async fn read_all_at_once(store: &RegistryStore) -> Vec<&'static str> {
    let repo: RepoName = REPO.parse().unwrap();
    let references: Vec<Reference> = (0..TAGS)
        .map(|index| Reference::Tag(format!("v{index}").parse().unwrap()))
        .collect();
    let results = join_all(references.iter().map(|reference| store.manifest(&repo, reference))).await;
    results
        .into_iter()
        .map(|result| match result {
            Ok(_) => "ok",
            Err(StoreError::QuotaReserve { .. }) => "reserve",
            Err(StoreError::QuotaExhausted { .. }) => "exhausted",
            Err(other) => panic!("unexpected error: {other}"),
        })
        .collect()
}

fn count(kinds: &[&str], kind: &str) -> usize {
    kinds.iter().filter(|k| **k == kind).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reserve_holds_with_every_get_at_once_and_a_new_pass_starts_afresh() {
    let (_registry, proxy) = registry_with_quota(5).await;
    let store = store(&proxy.url(), Some(2));

    let kinds = read_all_at_once(&store).await;
    assert_eq!(count(&kinds, "ok"), 3, "5 pulls, 2 kept: {kinds:?}");
    assert_eq!(count(&kinds, "reserve"), TAGS - 3, "{kinds:?}");
    assert_eq!(proxy.pull_quota_used(), 3);
    assert!(
        proxy.requests().iter().all(|request| request.status != 429),
        "no 429 with a reserve: {:?}",
        proxy.requests()
    );
    // The remaining was found out with a HEAD (free) before the first GET.
    let first = &proxy.requests()[0];
    assert_eq!((first.method.as_str(), first.status), ("HEAD", 200), "{first:?}");
    let status = store.pull_quota();
    assert_eq!(
        status.last,
        Some(RateLimit {
            limit: Some(5),
            remaining: 2,
            window_seconds: Some(21600)
        })
    );
    assert!(!status.exhausted);
    assert_eq!(status.reserve, Some(2));

    // Without a reset, the store keeps the reserve even after the window refilled.
    proxy.refill_pull_quota();
    assert_eq!(count(&read_all_at_once(&store).await, "ok"), 0);
    // A new pass finds out afresh.
    store.reset_pull_quota();
    assert_eq!(count(&read_all_at_once(&store).await, "ok"), 3);
    assert_eq!(proxy.pull_quota_used(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_reserve_the_first_toomanyrequests_stops_every_later_get() {
    let (_registry, proxy) = registry_with_quota(2).await;
    let store = store(&proxy.url(), None);
    let repo: RepoName = REPO.parse().unwrap();
    let mut kinds = Vec::new();
    for index in 0..TAGS {
        let reference = Reference::Tag(format!("v{index}").parse().unwrap());
        kinds.push(match store.manifest(&repo, &reference).await {
            Ok(_) => "ok".to_owned(),
            Err(error @ StoreError::QuotaExhausted { .. }) => {
                assert!(!error.is_transient(), "not to be retried");
                "exhausted".to_owned()
            }
            Err(other) => panic!("unexpected error: {other}"),
        });
    }
    assert_eq!(kinds[..3], ["ok", "ok", "exhausted"]);
    assert!(kinds[3..].iter().all(|kind| kind == "exhausted"), "{kinds:?}");
    let limited = proxy.requests().into_iter().filter(|r| r.status == 429).count();
    assert_eq!(limited, 1, "one 429, then no more GETs: {:?}", proxy.requests());
    assert_eq!(proxy.requests().len(), 3, "{:?}", proxy.requests());
    let status = store.pull_quota();
    assert!(status.exhausted);
    assert_eq!(status.last.map(|last| last.remaining), Some(0));
    // HEADs still answer (Docker Hub does not count them).
    let head = store
        .head_manifest(&repo, &Reference::Tag("v7".parse().unwrap()))
        .await
        .unwrap();
    assert!(head.is_some());
}
