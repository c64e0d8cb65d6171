//! Each fault kind, seen by a real HTTP client through the proxy in front of a real
//! `docker-registry`.

use std::error::Error as _;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::{StatusCode, Url};

use super::http_date::http_date;
use super::{CountingProxy, Fault, Faults, ProxyOptions, RequestKind, RequestMatch, RetryAfter};
use crate::image::{layer, Blob, Format};
use crate::inspect::blob_exists;
use crate::registry::TestRegistry;
use crate::seed::push_blob;

const REPO: &str = "faults/repo";
const BLOB_SIZE: usize = 4096;

/// A registry holding one blob in [`REPO`], and a proxy with `faults` in front of it.
async fn setup(faults: Faults) -> (TestRegistry, CountingProxy, Blob) {
    let registry = TestRegistry::start();
    let blob = layer(Format::Oci, 0xFA, BLOB_SIZE);
    push_blob(&registry.url(), REPO, &blob).await;
    let proxy = CountingProxy::start_with(&registry.url(), ProxyOptions { faults });
    (registry, proxy, blob)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn blob_url(proxy: &CountingProxy, blob: &Blob) -> String {
    format!("{}/v2/{REPO}/blobs/{}", proxy.url(), blob.digest)
}

/// The whole body of `blob` read through the proxy.
async fn fetch_blob(proxy: &CountingProxy, blob: &Blob) -> bytes::Bytes {
    http()
        .get(blob_url(proxy, blob))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

fn blob_gets() -> RequestMatch {
    RequestMatch::kind(RequestKind::Blob).method("GET")
}

/// Reads a response body until it ends or fails: (bytes received, error).
async fn read_body(mut response: reqwest::Response) -> (usize, Option<reqwest::Error>) {
    let mut received = 0;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => return (received, None),
            Err(error) => return (received, Some(error)),
        }
    }
}

/// An error and all its sources, for assertion messages.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn first_n_status_rules_fail_in_order_then_pass() {
    let tags = || RequestMatch::kind(RequestKind::Tags);
    let faults = Faults::none()
        .first(1, tags(), Fault::Status(500))
        .first(1, tags(), Fault::Status(502))
        .first(2, tags(), Fault::Status(503));
    let (_registry, proxy, _) = setup(faults).await;
    let url = format!("{}/v2/{REPO}/tags/list", proxy.url());
    let http = http();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(http.get(&url).send().await.unwrap().status().as_u16());
    }
    // The registry has no tags in REPO: its own answer is 404 NAME_UNKNOWN.
    assert_eq!(statuses, [500, 502, 503, 503, 404, 404]);
    assert_eq!(proxy.injected(), 4);
    let recorded = proxy.requests();
    assert_eq!(recorded[0].fault, Some(Fault::Status(500)));
    assert_eq!(recorded[4].fault, None);
    // Other kinds are not matched.
    let ping = http.get(format!("{}/v2/", proxy.url())).send().await.unwrap();
    assert_eq!(ping.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_rule_keeps_failing_one_repository_only() {
    let faults = Faults::none().every(
        RequestMatch::path_contains("/v2/team/app/tags/list"),
        Fault::Status(500),
    );
    let (_registry, proxy, _) = setup(faults).await;
    let http = http();
    for _ in 0..5 {
        let response = http
            .get(format!("{}/v2/team/app/tags/list", proxy.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    let other = http
        .get(format!("{}/v2/{REPO}/tags/list", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(proxy.injected(), 5);
}

#[tokio::test]
async fn upload_fault_reads_the_body_answers_503_and_forwards_nothing() {
    let uploads = RequestMatch::kind(RequestKind::Upload).method("PUT");
    let (registry, proxy, _) = setup(Faults::none().first(1, uploads, Fault::Status(503))).await;
    let big = layer(Format::Oci, 0xB0D7, 1024 * 1024);
    let http = http();
    let start = http
        .post(format!("{}/v2/{REPO}/blobs/uploads/", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let mut put_url = Url::parse(&proxy.url()).unwrap().join(&location).unwrap();
    put_url.query_pairs_mut().append_pair("digest", &big.digest);

    let put = || http.put(put_url.clone()).body(big.bytes.clone()).send();
    // A status, not a broken pipe: the whole 1 MiB body was read first.
    assert_eq!(put().await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !blob_exists(&registry.url(), REPO, &big.digest).await,
        "faulted upload reached the registry"
    );
    // Nothing reached the registry, so the upload session is still open for a retry.
    assert_eq!(put().await.unwrap().status(), StatusCode::CREATED);
    assert!(blob_exists(&registry.url(), REPO, &big.digest).await);
}

#[tokio::test]
async fn too_many_requests_carries_retry_after_seconds_or_date() {
    let catalog = || RequestMatch::kind(RequestKind::Catalog);
    let faults = Faults::none()
        .first(1, catalog(), Fault::TooManyRequests(RetryAfter::Seconds(7)))
        .first(1, catalog(), Fault::TooManyRequests(RetryAfter::Date(120)));
    let (_registry, proxy, _) = setup(faults).await;
    let url = format!("{}/v2/_catalog", proxy.url());
    let http = http();

    let seconds = http.get(&url).send().await.unwrap();
    assert_eq!(seconds.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(seconds.headers()[RETRY_AFTER], "7");

    let before = SystemTime::now();
    let dated = http.get(&url).send().await.unwrap();
    let after = SystemTime::now();
    assert_eq!(dated.status(), StatusCode::TOO_MANY_REQUESTS);
    let value = dated.headers()[RETRY_AFTER].to_str().unwrap().to_owned();
    let in_two_minutes = Duration::from_secs(120);
    let candidates = [before + in_two_minutes, after + in_two_minutes].map(http_date);
    assert!(
        candidates.contains(&value),
        "Retry-After {value:?}, expected one of {candidates:?}"
    );

    assert_eq!(http.get(&url).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn reset_fails_the_request_with_a_connection_error() {
    let (_registry, proxy, blob) = setup(Faults::none().first(1, blob_gets(), Fault::Reset)).await;
    let http = http();
    let error = http
        .get(blob_url(&proxy, &blob))
        .send()
        .await
        .expect_err("reset must fail");
    assert!(error.status().is_none(), "{error:?}");
    let text = chain(&error);
    assert!(text.contains("reset"), "not a connection reset: {text}");

    let again = http.get(blob_url(&proxy, &blob)).send().await.unwrap();
    assert_eq!(again.bytes().await.unwrap(), blob.bytes);
    let recorded = proxy.requests();
    assert_eq!((recorded[0].status, recorded[0].fault.clone()), (0, Some(Fault::Reset)));
    assert_eq!((recorded[1].status, recorded[1].fault.clone()), (200, None));
}

#[tokio::test]
async fn truncated_body_is_shorter_than_its_content_length() {
    let faults = Faults::none()
        .first(1, blob_gets(), Fault::Truncate { after_bytes: 1000 })
        .first(1, blob_gets(), Fault::Truncate { after_bytes: 1 << 20 })
        .first(
            1,
            RequestMatch::kind(RequestKind::Blob).method("HEAD"),
            Fault::Truncate { after_bytes: 0 },
        );
    let (_registry, proxy, blob) = setup(faults).await;
    let http = http();

    let response = http.get(blob_url(&proxy, &blob)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(BLOB_SIZE as u64));
    let (received, error) = read_body(response).await;
    assert_eq!(received, 1000);
    assert!(error.is_some(), "a cut body must end in an error");

    // A cut point past the end still keeps the last byte back.
    let (received, error) = read_body(http.get(blob_url(&proxy, &blob)).send().await.unwrap()).await;
    assert_eq!(received, BLOB_SIZE - 1);
    assert!(error.is_some());

    // HEAD has no body to cut: the connection is reset before the response instead.
    let head = http.head(blob_url(&proxy, &blob)).send().await;
    assert!(head.is_err(), "{head:?}");

    let (received, error) = read_body(http.get(blob_url(&proxy, &blob)).send().await.unwrap()).await;
    assert_eq!((received, error.is_none()), (BLOB_SIZE, true));
    assert_eq!(proxy.injected(), 3);
}

#[tokio::test]
async fn stall_trips_the_client_read_timeout() {
    // The test does not wait for the pause to end, so it can be long next to the read
    // timeout, which leaves room for a slow machine.
    let stall = Fault::Stall {
        after_bytes: 100,
        pause: Duration::from_secs(2),
    };
    let (_registry, proxy, blob) = setup(Faults::none().first(1, blob_gets(), stall.clone())).await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .read_timeout(Duration::from_millis(200))
        .build()
        .unwrap();

    let response = impatient.get(blob_url(&proxy, &blob)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (received, error) = read_body(response).await;
    assert_eq!(received, 100);
    let error = error.expect("a stalled body must fail");
    assert!(error.is_timeout(), "not a timeout: {}", chain(&error));
    assert_eq!(proxy.requests()[0].fault, Some(stall));

    // The same client reads the blob in full once the rule is used up.
    let (received, error) = read_body(impatient.get(blob_url(&proxy, &blob)).send().await.unwrap()).await;
    assert_eq!((received, error.is_none()), (BLOB_SIZE, true));
}

#[tokio::test]
async fn latency_delays_then_forwards() {
    let delay = Duration::from_millis(150);
    let (_registry, proxy, blob) = setup(Faults::none().first(1, blob_gets(), Fault::Latency(delay))).await;
    let started = Instant::now();
    let body = fetch_blob(&proxy, &blob).await;
    assert!(started.elapsed() >= delay, "answered after {:?}", started.elapsed());
    assert_eq!(body, blob.bytes);
    assert_eq!(proxy.requests()[0].fault, Some(Fault::Latency(delay)));
}

#[tokio::test]
async fn throttle_delivers_the_whole_body_no_faster_than_its_rate() {
    // The body takes at least a quarter of a second at this rate.
    let rate = BLOB_SIZE as u64 * 4;
    let throttle = Fault::Throttle { bytes_per_second: rate };
    let (_registry, proxy, blob) = setup(Faults::none().every(blob_gets(), throttle.clone())).await;
    let started = Instant::now();
    let body = fetch_blob(&proxy, &blob).await;
    let elapsed = started.elapsed();
    assert_eq!(body, blob.bytes, "byte-exact, only slower");
    assert!(elapsed >= Duration::from_millis(250), "delivered in {elapsed:?}");
    assert_eq!(proxy.requests()[0].fault, Some(throttle));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_link_carries_all_connections_together_at_its_rate() {
    let registry = TestRegistry::start();
    let blob = layer(Format::Oci, 0x11, 256 * 1024);
    push_blob(&registry.url(), REPO, &blob).await;
    let proxy = CountingProxy::start(&registry.url());
    // 1 MiB in four downloads at once over one 512 KiB/s link: about 2 s. Four links of
    // that rate (one per connection) would take half a second.
    proxy.set_link_rate(Some(512 * 1024));
    assert_eq!(proxy.link_rate(), Some(512 * 1024));
    let started = Instant::now();
    let downloads: Vec<_> = (0..4)
        .map(|_| {
            let url = blob_url(&proxy, &blob);
            tokio::spawn(async move { http().get(url).send().await.unwrap().bytes().await.unwrap() })
        })
        .collect();
    for download in downloads {
        assert_eq!(download.await.unwrap(), blob.bytes, "byte-exact, only slower");
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "delivered in {elapsed:?}");
    // The proxy counts a write just after the socket took it, so on a loaded machine the
    // client may hold the last bytes a moment before they are counted.
    let bodies = 4 * blob.bytes.len() as u64;
    let mut served = proxy.bytes_to_clients();
    for _ in 0..250 {
        if served >= bodies {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        served = proxy.bytes_to_clients();
    }
    assert!(
        (bodies..bodies + 8 * 1024).contains(&served),
        "{served} bytes to clients: the bodies and their heads"
    );
    assert!(proxy.bytes_from_clients() > 0);
    proxy.reset();
    assert_eq!((proxy.bytes_to_clients(), proxy.bytes_from_clients()), (0, 0));
}

/// The statuses of `count` sequential `GET /v2/` through the proxy.
async fn ping_statuses(proxy: &CountingProxy, count: usize) -> Vec<u16> {
    let http = http();
    let mut statuses = Vec::with_capacity(count);
    for _ in 0..count {
        let response = http.get(format!("{}/v2/", proxy.url())).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn seeded_rate_is_plausible_and_reproducible() {
    let mix = vec![
        (Fault::Status(500), 1),
        (Fault::Status(502), 1),
        (Fault::Status(503), 1),
        (Fault::TooManyRequests(RetryAfter::Seconds(0)), 1),
    ];
    let faults = Faults::random(42, 0.3).with_mix(mix).with_max_consecutive(None);
    let (_registry, proxy, _) = setup(faults.clone()).await;

    let first = ping_statuses(&proxy, 200).await;
    let failed = first.iter().filter(|s| **s != 200).count();
    assert!((30..=90).contains(&failed), "{failed} of 200 failed at rate 0.3");
    assert_eq!(proxy.injected(), failed);
    for status in [500, 502, 503, 429] {
        assert!(first.contains(&status), "no {status} in {first:?}");
    }

    proxy.reset();
    proxy.set_faults(faults);
    assert_eq!(ping_statuses(&proxy, 200).await, first, "same seed, other sequence");

    // A clean pass after the faulty ones.
    proxy.reset();
    proxy.set_faults(Faults::none());
    assert!(ping_statuses(&proxy, 20).await.iter().all(|s| *s == 200));
    assert_eq!(proxy.injected(), 0);
}

#[tokio::test]
async fn default_mix_faults_are_all_visible_to_the_client() {
    let faults = Faults::random(9, 0.5).with_max_consecutive(None);
    let (_registry, proxy, blob) = setup(faults).await;
    let http = http();
    let mut failed = Vec::new();
    for _ in 0..60 {
        let ok = match http.get(blob_url(&proxy, &blob)).send().await {
            Ok(response) if response.status() == StatusCode::OK => {
                let (received, error) = read_body(response).await;
                received == BLOB_SIZE && error.is_none()
            }
            _ => false,
        };
        failed.push(!ok);
    }
    let faulted: Vec<bool> = proxy.requests().iter().map(|r| r.fault.is_some()).collect();
    assert_eq!(failed, faulted);
    assert!(
        proxy.injected() >= 15,
        "only {} faults in 60 requests at rate 0.5",
        proxy.injected()
    );
}

#[tokio::test]
async fn down_resets_connections_until_brought_back() {
    let (_registry, proxy, _) = setup(Faults::none()).await;
    let ping = format!("{}/v2/", proxy.url());
    let kept_alive = http();
    let fresh = || {
        reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    assert_eq!(kept_alive.get(&ping).send().await.unwrap().status(), StatusCode::OK);

    proxy.set_down(true);
    assert!(proxy.is_down());
    let error = fresh().get(&ping).send().await.expect_err("down proxy answered");
    assert!(error.status().is_none(), "{error:?}");
    assert!(proxy.refused_connections() >= 1);
    // A connection opened before going down fails too.
    assert!(kept_alive.get(&ping).send().await.is_err());

    proxy.set_down(false);
    assert_eq!(fresh().get(&ping).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(kept_alive.get(&ping).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_pull_quota_counts_manifest_gets_announces_what_is_left_and_refuses_past_it() {
    let (_registry, proxy, blob) = setup(Faults::none()).await;
    proxy.set_pull_quota(Some(super::PullQuota {
        limit: 2,
        window_seconds: 21600,
    }));
    let manifest = format!("{}/v2/{REPO}/manifests/missing", proxy.url());
    let announced = |response: &reqwest::Response| {
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        (header("ratelimit-limit"), header("ratelimit-remaining"))
    };
    let some = |text: &str| Some(text.to_owned());
    // A HEAD is free; GETs count whatever the upstream answers (here 404).
    let head = http().head(&manifest).send().await.unwrap();
    assert_eq!(announced(&head), (some("2;w=21600"), some("2;w=21600")));
    for left in ["1;w=21600", "0;w=21600"] {
        let get = http().get(&manifest).send().await.unwrap();
        assert_eq!(get.status(), StatusCode::NOT_FOUND, "forwarded");
        assert_eq!(announced(&get), (some("2;w=21600"), some(left)));
    }
    let refused = http().get(&manifest).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().get(RETRY_AFTER).is_none());
    assert_eq!(announced(&refused).1, some("0;w=21600"));
    assert!(refused.text().await.unwrap().contains("TOOMANYREQUESTS"));
    // Blobs are not counted, and carry no quota headers.
    let blob_response = http().get(blob_url(&proxy, &blob)).send().await.unwrap();
    assert_eq!(blob_response.status(), StatusCode::OK);
    assert_eq!(announced(&blob_response), (None, None));
    assert_eq!(proxy.pull_quota_used(), 2);
    let recorded: Vec<_> = proxy.requests().into_iter().filter(|r| r.status == 429).collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].fault, Some(Fault::PullQuotaExhausted));

    proxy.refill_pull_quota();
    let get = http().get(&manifest).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::NOT_FOUND, "refilled: forwarded again");
    assert_eq!(announced(&get).1, some("1;w=21600"));
    proxy.set_pull_quota(None);
    assert_eq!(announced(&http().get(&manifest).send().await.unwrap()), (None, None));
}
