//! Pull quotas end to end: a real registry behind a proxy that keeps one as Docker Hub
//! does (manifest `GET`s count, `ratelimit-*` headers, 429 `TOOMANYREQUESTS` past it).

use ocisync_testkit::{assert_mirror_complete, CountingProxy, Fault, PullQuota, RecordedRequest, RequestKind};

use crate::support::{config_with_defaults, same_names, two_tag_repos, Mirror};

/// Six repositories of two single-arch tags each: twelve manifest `GET`s on a cold pass.
async fn seed(url: &str) -> Vec<String> {
    two_tag_repos(url, "quota", 6, None, 0x0D_0000, 1024).await
}

const TAGS: usize = 12;

/// A quota of `limit` pulls per 6 hours.
fn quota(limit: u64) -> Option<PullQuota> {
    Some(PullQuota {
        limit,
        window_seconds: 21600,
    })
}

/// One sync from `upstream` (with `upstream_keys` under its registry entry) to `mirror`,
/// with quick retries and `defaults`.
fn quota_config(upstream_keys: &str, defaults: &str) -> String {
    config_with_defaults(&format!(
        "  retry: {{max_attempts: 4, initial_delay: 20ms, max_delay: 200ms}}\n{defaults}"
    ))
    .replace(
        "    urls: [\"{upstream}\"]\n",
        &format!("    urls: [\"{{upstream}}\"]\n{upstream_keys}\n"),
    )
}

fn is_manifest_get(request: &RecordedRequest) -> bool {
    request.method == "GET" && RequestKind::of_path(&request.path) == Some(RequestKind::Manifest)
}

fn too_many(proxy: &CountingProxy) -> usize {
    proxy.requests().iter().filter(|request| request.status == 429).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reserve_leaves_tags_for_a_later_pass_without_ever_receiving_a_429() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let repos = seed(&upstream.url()).await;
    let proxy = CountingProxy::start(&upstream.url());
    proxy.set_pull_quota(quota(10));
    // Default concurrency: many tags ask at once; the in-flight GETs are counted.
    world.write_config_via(
        &quota_config("    rate_limit: {reserve: 2}", ""),
        &[("{upstream}", &proxy.url())],
    );

    let run = world.once();
    run.expect_code(0);
    assert_eq!(too_many(&proxy), 0, "no 429 with a reserve: {:?}", proxy.requests());
    assert_eq!(proxy.pull_quota_used(), 8, "10 pulls, 2 kept in reserve");
    let report = world.report();
    let copied = report.tags_that("copied");
    let held = report.tags_that("rate-limit-reserve");
    assert_eq!((copied.len(), held.len()), (8, TAGS - 8), "{report:#}");
    for tag in &held {
        assert_eq!(tag["outcome"], "skipped");
        let detail = tag["detail"].as_str().unwrap();
        assert!(
            detail.contains(&proxy.url()) && detail.contains("2 left, reserve 2"),
            "the skip names the registry and what remained: {detail}"
        );
    }
    let rate_limits = &report["syncs"][0]["rate_limits"];
    assert_eq!(
        rate_limits,
        &serde_json::json!([{
            "role": "source",
            "url": proxy.url(),
            "limit": 10,
            "remaining": 2,
            "window_seconds": 21600,
            "reserve": 2,
            "exhausted": false,
        }])
    );
    let line = format!(
        "pull quota of source {}: 2 of 10 left (window 6h), reserve 2: 4 tags left for a later pass",
        proxy.url()
    );
    assert!(run.stdout.contains(&line), "expected {line:?} in\n{}", run.stdout);

    // The window refills: the next pass takes the tags left behind.
    proxy.refill_pull_quota();
    proxy.reset();
    world.once().expect_code(0);
    assert_eq!(too_many(&proxy), 0);
    assert_eq!(proxy.pull_quota_used(), 4, "only the tags left behind are pulled");
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
    let report = world.report();
    assert_eq!(report.tags_that("copied").len(), 4);
    assert_eq!(report.tags_that("up-to-date").len(), 8, "confirmed with HEADs");
    assert_eq!(report["syncs"][0]["rate_limits"][0]["remaining"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_used_up_quota_stops_manifest_gets_fails_the_pass_and_a_later_pass_completes() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let repos = seed(&upstream.url()).await;
    let proxy = CountingProxy::start(&upstream.url());
    proxy.set_pull_quota(quota(5));
    // One tag at a time, so "after the 429" is an order the proxy's log can show.
    world.write_config_via(
        &quota_config("", "  concurrency: {repositories: 1, tags: 1}"),
        &[("{upstream}", &proxy.url())],
    );

    let run = world.once();
    run.expect_code(1);
    let requests = proxy.requests();
    let refused: Vec<usize> = (0..requests.len()).filter(|&i| requests[i].status == 429).collect();
    assert_eq!(refused.len(), 1, "one 429, not retried: {requests:?}");
    assert_eq!(requests[refused[0]].fault, Some(Fault::PullQuotaExhausted));
    assert!(
        !requests[refused[0] + 1..].iter().any(is_manifest_get),
        "no manifest GET after the 429: {:?}",
        &requests[refused[0]..]
    );
    assert_eq!(
        requests.iter().filter(|r| is_manifest_get(r)).count(),
        6,
        "5 pulls and the refused one"
    );

    let report = world.report();
    assert!(report.has_failures(), "a used-up quota fails the pass");
    let limited = report.tags_that("rate-limited");
    assert_eq!(
        (report.tags_that("copied").len(), limited.len()),
        (5, TAGS - 5),
        "{report:#}"
    );
    assert!(limited.iter().all(|tag| tag["outcome"] == "skipped"));
    assert!(report.tags_that("failed").is_empty());
    assert_eq!(report["totals"]["tags_rate_limited"], TAGS - 5);
    let source = &report["syncs"][0]["rate_limits"][0];
    assert_eq!(source["url"], proxy.url());
    assert_eq!((&source["exhausted"], &source["remaining"]), (&true.into(), &0.into()));
    assert_eq!(report.endpoint_retries(), 0, "a used-up quota is not retried");
    let line = format!(
        "pull quota of source {}: used up (429 TOOMANYREQUESTS) (window 6h): 7 tags left for a later pass (the pass fails)",
        proxy.url()
    );
    assert!(run.stdout.contains(&line), "expected {line:?} in\n{}", run.stdout);

    // A new window with room for the rest: the next pass completes the mirror.
    proxy.set_pull_quota(quota(10));
    world.once().expect_code(0);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
    assert_eq!(world.report().tags_that("copied").len(), TAGS - 5);
}
