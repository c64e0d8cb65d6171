//! The round-trip delay (`set_round_trip`), seen by a real HTTP client: applied to every
//! request, per connection (never queueing one connection behind another), bytes whole
//! and in order both ways, on top of a throttle, and a reset still a reset.
//!
//! Times are only ever bounded from below: a delay is a mechanism, speed is the bench's.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;

use super::{CountingProxy, Fault, Faults, ProxyOptions, RequestKind, RequestMatch};
use crate::image::{layer, sha256_digest, Format};
use crate::inspect::blob_exists;
use crate::registry::TestRegistry;
use crate::seed::push_blob;

const REPO: &str = "delay/repo";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A proxy with `faults` and a round trip of `round_trip` in front of `upstream`.
fn delayed_proxy(upstream: &str, faults: Faults, round_trip: Duration) -> CountingProxy {
    let proxy = CountingProxy::start_with(upstream, ProxyOptions { faults });
    proxy.set_round_trip(round_trip);
    proxy
}

#[tokio::test]
async fn every_request_on_a_delayed_connection_takes_at_least_the_round_trip() {
    let registry = TestRegistry::start();
    let round_trip = Duration::from_millis(200);
    let proxy = delayed_proxy(&registry.url(), Faults::none(), round_trip);
    assert_eq!(proxy.round_trip(), round_trip);
    let http = http();
    // Twice on one kept-alive connection: the delay is the connection's, not its first
    // request's.
    for _ in 0..2 {
        let started = Instant::now();
        let response = http.get(format!("{}/v2/", proxy.url())).send().await.unwrap();
        response.bytes().await.unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed >= round_trip, "answered in {elapsed:?}");
    }
    assert_eq!(proxy.requests().len(), 2);
}

/// Spans (arrival, answer) of every request a server that holds each request for `hold`
/// has answered.
type Spans = Arc<Mutex<Vec<(Instant, Instant)>>>;

/// Starts, on the test's runtime, a server that holds each request for `hold` before
/// answering, and records when each arrived and was answered.
async fn start_holding_server(hold: Duration) -> (String, Spans) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let spans: Spans = Arc::default();
    let recorded = Arc::clone(&spans);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let spans = Arc::clone(&recorded);
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let spans = Arc::clone(&spans);
                    async move {
                        let arrived = Instant::now();
                        tokio::time::sleep(hold).await;
                        spans.lock().unwrap().push((arrived, Instant::now()));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"held"))))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_delayed_connections_overlap_instead_of_queueing() {
    // The server holds each request for half the one-way delay: two requests sent at
    // once overlap there unless one connection's bytes waited for the other's (then the
    // second would arrive a whole delay, or a whole exchange, after the first).
    let round_trip = Duration::from_millis(600);
    let (upstream, spans) = start_holding_server(round_trip / 4).await;
    let proxy = delayed_proxy(&upstream, Faults::none(), round_trip);
    // Two clients: two connections.
    let (first, second) = (http(), http());
    let url = format!("{}/held", proxy.url());
    let started = Instant::now();
    let (a, b) = tokio::join!(first.get(&url).send(), second.get(&url).send());
    assert_eq!(a.unwrap().bytes().await.unwrap(), "held");
    assert_eq!(b.unwrap().bytes().await.unwrap(), "held");

    let mut spans = spans.lock().unwrap().clone();
    spans.sort();
    let [(first_arrived, first_answered), (second_arrived, _)] = spans[..] else {
        panic!("the server saw {} requests, not 2", spans.len());
    };
    assert!(
        first_arrived >= started + round_trip / 2,
        "the first request arrived {:?} after it was sent, before the one-way delay",
        first_arrived - started
    );
    assert!(
        second_arrived < first_answered,
        "the second request arrived {:?} after the first, after the first was answered ({:?})",
        second_arrived - first_arrived,
        first_answered - first_arrived
    );
}

#[tokio::test]
async fn delayed_bytes_arrive_whole_and_in_order_both_ways_on_top_of_a_throttle() {
    let registry = TestRegistry::start();
    let size = 1 << 20;
    // The body takes at least a quarter of a second at this rate, plus the round trip.
    let bytes_per_second = size as u64 * 4;
    let throttle = Fault::Throttle { bytes_per_second };
    let blob_gets = RequestMatch::kind(RequestKind::Blob).method("GET");
    let round_trip = Duration::from_millis(100);
    let proxy = delayed_proxy(&registry.url(), Faults::none().every(blob_gets, throttle), round_trip);

    // Up: the registry checks the digest of what the upload delivered.
    let uploaded = layer(Format::Oci, 0xDE1A, size);
    push_blob(&proxy.url(), REPO, &uploaded).await;
    assert!(blob_exists(&registry.url(), REPO, &uploaded.digest).await);

    // Down: the body read through both the throttle and the delay has the digest.
    let started = Instant::now();
    let body = http()
        .get(format!("{}/v2/{REPO}/blobs/{}", proxy.url(), uploaded.digest))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(body.len(), size);
    assert_eq!(sha256_digest(&body), uploaded.digest);
    assert!(
        elapsed >= round_trip + Duration::from_millis(250),
        "delivered in {elapsed:?}: the throttle and the delay must add up"
    );
}

#[tokio::test]
async fn a_reset_still_reaches_the_client_through_the_delay() {
    let registry = TestRegistry::start();
    let pings = RequestMatch::path_contains("/v2/");
    let proxy = delayed_proxy(
        &registry.url(),
        Faults::none().first(1, pings, Fault::Reset),
        Duration::from_millis(100),
    );
    let http = http();
    let error = http
        .get(format!("{}/v2/", proxy.url()))
        .send()
        .await
        .expect_err("a reset must fail the request");
    assert!(error.status().is_none(), "{error:?}");
    let again = http.get(format!("{}/v2/", proxy.url())).send().await.unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::OK);
}
