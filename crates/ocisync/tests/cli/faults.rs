//! Resilience end to end: real registries behind a fault-injecting proxy.

use std::time::{Duration, Instant};

use ocisync_testkit::{
    assert_closure, assert_mirror_complete, corpus, layer, small_corpus, CountingProxy, Fault, Faults, Format,
    ProxyOptions, RequestKind, RequestMatch, RetryAfter,
};

use crate::support::{config_with_defaults, same_names, two_tag_repos, Mirror};

/// Fast retries, so that tests spend their time on faults, not on waiting.
const QUICK_RETRIES: &str = "  retry: {max_attempts: 6, initial_delay: 20ms, max_delay: 200ms, max_elapsed: 30s}\n  read_timeout: 2s\n  connect_timeout: 2s";

/// What `{upstream}` stands for to reach the upstream at each of `urls` in turn (its
/// failover list): they go between the quotes of `urls: ["{upstream}"]`.
fn upstream_urls(urls: &[String]) -> String {
    urls.join("\", \"")
}

/// 24 repositories × 2 tags of small images sharing a base layer; returns their names.
async fn seed_wide_corpus(url: &str) -> Vec<String> {
    let base = layer(Format::Oci, 1000, 4096);
    two_tag_repos(url, "wide", 24, Some(&base), 2000, 2048).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complete_mirror_through_random_faults_on_both_sides() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let repos = seed_wide_corpus(&upstream.url()).await;
    // 12% of requests fail on each side: 500, 502, 503, 429, connection resets and cut bodies.
    let source = CountingProxy::start_with(
        &upstream.url(),
        ProxyOptions {
            faults: Faults::random(7, 0.12),
        },
    );
    let destination = CountingProxy::start_with(
        &mirror.url(),
        ProxyOptions {
            faults: Faults::random(11, 0.12),
        },
    );
    world.write_config_via(
        &config_with_defaults(QUICK_RETRIES),
        &[("{upstream}", &source.url()), ("{mirror}", &destination.url())],
    );
    world.once().expect_code(0);

    let requests = source.requests().len() + destination.requests().len();
    let injected = source.injected() + destination.injected();
    assert!(
        injected * 100 >= requests * 8,
        "at least ~10% of {requests} requests faulted, got {injected}"
    );
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
    let report = world.report();
    let retries = report.endpoint_retries();
    assert!(retries > 0, "retries are reported: {}", report["syncs"][0]["endpoints"]);
    assert_eq!(report["totals"]["tags_copied"], 48);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_url_that_dies_mid_pass_hands_over_and_the_pass_completes() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let repos = seed_wide_corpus(&upstream.url()).await;
    let slow = || ProxyOptions {
        faults: Faults::none().every(RequestMatch::any(), Fault::Latency(Duration::from_millis(30))),
    };
    let first = CountingProxy::start_with(&upstream.url(), slow());
    let second = CountingProxy::start_with(&upstream.url(), slow());
    world.write_config_via(
        &config_with_defaults(&format!("{QUICK_RETRIES}\n  cool_down: 60s")),
        &[("{upstream}", &upstream_urls(&[first.url(), second.url()]))],
    );
    let served_before_death = std::thread::scope(|scope| {
        let pass = scope.spawn(|| world.once());
        std::thread::sleep(Duration::from_millis(800));
        let served_before_death = first.requests().len();
        first.set_down(true);
        pass.join().unwrap().expect_code(0);
        served_before_death
    });
    assert!(served_before_death > 0, "the first url served until it died");
    assert!(!second.requests().is_empty(), "the second url took over");
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
    let report = world.report();
    let endpoints = report["syncs"][0]["endpoints"].as_array().unwrap().clone();
    let first_use = endpoints.iter().find(|e| e["url"] == first.url()).unwrap();
    assert!(first_use["failovers"].as_u64().unwrap() >= 1, "{endpoints:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_first_url_fails_over_to_the_next() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let dead = CountingProxy::start(&upstream.url());
    dead.set_down(true);
    let alive = CountingProxy::start(&upstream.url());
    world.write_config_via(
        &config_with_defaults(&format!("{QUICK_RETRIES}\n  cool_down: 60s")),
        &[("{upstream}", &upstream_urls(&[dead.url(), alive.url()]))],
    );
    let run = world.once();
    run.expect_code(0);
    let repos = corpus::repos(&images);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;

    let report = world.report();
    let endpoints = report["syncs"][0]["endpoints"].as_array().unwrap().clone();
    let of = |url: &str| endpoints.iter().find(|e| e["url"] == url).cloned();
    let dead_use = of(&dead.url()).expect("the dead url is in the report");
    assert_eq!(dead_use["served"], 0);
    assert!(dead_use["failovers"].as_u64().unwrap() >= 1, "{endpoints:?}");
    assert!(of(&alive.url()).unwrap()["served"].as_u64().unwrap() > 0);
    // While the dead url cools down, calls go straight to the live one: only the
    // first call (and its retries) touched it.
    assert!(
        dead.refused_connections() <= 12,
        "cool-down keeps calls away from the dead url: {} connections",
        dead.refused_connections()
    );
    assert!(
        run.stderr.contains("failing over"),
        "failover is logged:\n{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_waited_out_as_retry_after_says() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let faults = Faults::none().first(
        2,
        RequestMatch::kind(RequestKind::Manifest),
        Fault::TooManyRequests(RetryAfter::Seconds(1)),
    );
    let source = CountingProxy::start_with(&upstream.url(), ProxyOptions { faults });
    world.write_config_via(&config_with_defaults(QUICK_RETRIES), &[("{upstream}", &source.url())]);
    let started = Instant::now();
    world.once().expect_code(0);
    // The backoff alone would retry within 200 ms; Retry-After asked for a second.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    let limited: Vec<_> = source.requests().into_iter().filter(|r| r.status == 429).collect();
    assert_eq!(limited.len(), 2);
    let repos = corpus::repos(&images);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_and_cut_transfers_are_detected_and_retried() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let faults = Faults::none()
        .first(
            1,
            RequestMatch::kind(RequestKind::Blob).method("GET"),
            Fault::Stall {
                after_bytes: 100,
                pause: Duration::from_secs(30),
            },
        )
        .first(
            2,
            RequestMatch::kind(RequestKind::Blob).method("GET"),
            Fault::Truncate { after_bytes: 50 },
        );
    let source = CountingProxy::start_with(&upstream.url(), ProxyOptions { faults });
    world.write_config_via(&config_with_defaults(QUICK_RETRIES), &[("{upstream}", &source.url())]);
    let started = Instant::now();
    world.once().expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "a stall is cut off by the read timeout, not waited out: {:?}",
        started.elapsed()
    );
    assert_eq!(source.injected(), 3);
    let repos = corpus::repos(&images);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_session_gone_by_the_blobs_turn_is_opened_again() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    // As a registry that expired the session before the blob's bytes came.
    let faults = Faults::none().first(
        1,
        RequestMatch::kind(RequestKind::Upload).method("PUT"),
        Fault::Status(404),
    );
    let destination = CountingProxy::start_with(&mirror.url(), ProxyOptions { faults });
    world.write_config_via(
        &config_with_defaults(QUICK_RETRIES),
        &[("{mirror}", &destination.url())],
    );
    world.once().expect_code(0);
    assert_eq!(destination.injected(), 1);
    let repos = corpus::repos(&images);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_that_keeps_failing_fails_alone() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let faults = Faults::none().every(
        RequestMatch::path_contains("/library/busybox/tags/list"),
        Fault::Status(503),
    );
    let source = CountingProxy::start_with(&upstream.url(), ProxyOptions { faults });
    world.write_config_via(&config_with_defaults(QUICK_RETRIES), &[("{upstream}", &source.url())]);
    let run = world.once();
    run.expect_code(1);
    assert!(world.report().has_failures(), "the report says so too");
    assert!(run.stdout.contains("FAILED library/busybox"), "{}", run.stdout);
    let tag_list_requests = source
        .requests()
        .iter()
        .filter(|r| r.path.contains("/library/busybox/tags/list"))
        .count();
    assert!(
        (2..=6).contains(&tag_list_requests),
        "retried a bounded number of times: {tag_list_requests}"
    );
    let repos: Vec<String> = corpus::repos(&images)
        .into_iter()
        .filter(|repo| repo != "library/busybox")
        .collect();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
    assert!(ocisync_testkit::tags(&mirror.url(), "library/busybox").await.is_empty());
    for repo in &repos {
        assert_closure(&mirror.url(), repo).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_url_takes_over_again_after_its_cool_down() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    // Both URLs are slow, so the pass outlasts the first URL's outage and cool-down.
    let slow = || ProxyOptions {
        faults: Faults::none().every(RequestMatch::any(), Fault::Latency(Duration::from_millis(60))),
    };
    let first = CountingProxy::start_with(&upstream.url(), slow());
    let second = CountingProxy::start_with(&upstream.url(), slow());
    first.set_down(true);
    world.write_config_via(
        &config_with_defaults(
            "  retry: {max_attempts: 2, initial_delay: 20ms, max_delay: 50ms}\n  cool_down: 1s\n  concurrency: {repositories: 1, blobs: 1}",
        ),
        &[("{upstream}", &upstream_urls(&[first.url(), second.url()]))],
    );
    let run = std::thread::scope(|scope| {
        let pass = scope.spawn(|| world.once());
        std::thread::sleep(Duration::from_millis(700));
        first.set_down(false);
        pass.join().unwrap()
    });
    run.expect_code(0);

    let report = world.report();
    let endpoints = report["syncs"][0]["endpoints"].as_array().unwrap().clone();
    let of = |url: &str| endpoints.iter().find(|e| e["url"] == url).cloned().unwrap();
    assert!(of(&first.url())["failovers"].as_u64().unwrap() >= 1, "{endpoints:?}");
    assert!(of(&second.url())["served"].as_u64().unwrap() > 0, "{endpoints:?}");
    assert!(
        of(&first.url())["served"].as_u64().unwrap() > 0,
        "after its cool-down the first url serves again: {endpoints:?}"
    );
    let repos = corpus::repos(&images);
    assert_mirror_complete(&upstream.url(), &mirror.url(), &same_names(&repos)).await;
}
