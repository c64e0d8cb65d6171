//! A streaming HTTP/1.1 reverse proxy in front of a registry that records every request
//! and injects faults on demand.
//!
//! [`CountingProxy`] listens on a free loopback port and forwards each request to the
//! upstream registry, streaming bodies both ways (nothing is buffered whole). The `Host`
//! header is passed through as the client sent it, so the registry builds `Location`
//! headers that point back at the proxy. It runs on its own thread with its own tokio
//! runtime, so sync and async tests can use it alike; dropping it shuts it down.
//!
//! # Faults
//!
//! [`Faults`] (given at start in [`ProxyOptions`], or swapped at any time with
//! [`CountingProxy::set_faults`]) says which requests get which [`Fault`]:
//!
//! - deterministic [`Rule`]s: the first N requests matching a [`RequestMatch`] (method,
//!   [`RequestKind`] — manifest, blob, tags, catalog, upload — and/or a path substring),
//!   or every matching request;
//! - random faults: a seeded `rate` per request, with the kind drawn from a weighted mix.
//!   The same seed gives the same sequence of decisions.
//!
//! The kinds: an injected status (500, 502, 503, ...) or a 429 with `Retry-After`
//! (seconds or HTTP-date), both without forwarding and after reading any upload body; a
//! connection reset before any response; a response body truncated after K bytes with
//! the original `Content-Length`; a stall (headers and K bytes, then silence, then
//! close); added latency before forwarding.
//!
//! [`CountingProxy::set_pull_quota`] keeps a pull quota as Docker Hub does: manifest
//! `GET`s count, manifest responses carry `ratelimit-limit` / `ratelimit-remaining`, and
//! a `GET` past the limit gets a 429 `TOOMANYREQUESTS` without `Retry-After`.
//!
//! [`CountingProxy::set_round_trip`] puts the upstream at a distance: every byte of each
//! connection accepted afterwards arrives half the round trip later, in each direction,
//! in order, with each connection on its own delay lines (`delay.rs`), so connections
//! never wait for one another. It adds to any fault, e.g. [`Fault::Throttle`]: a far,
//! slow upstream.
//!
//! [`CountingProxy::set_link_rate`] puts one link of a set rate between the proxy and all
//! its clients: every byte written to any connection accepted afterwards takes its turn
//! on it, so all downloads together get the rate ([`Fault::Throttle`] caps each response
//! alone). [`CountingProxy::bytes_to_clients`] and [`CountingProxy::bytes_from_clients`]
//! count what went over the client connections, headers included.
//!
//! [`CountingProxy::set_down`] simulates a dead mirror: while down, every new connection
//! is reset as soon as it is accepted, and requests on kept-alive connections are reset.
//!
//! Every request is recorded with the fault it got ([`RecordedRequest::fault`]);
//! [`CountingProxy::injected`] counts them, so a test can check that faults happened.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use ocisync_testkit::proxy::{CountingProxy, Fault, Faults, ProxyOptions, RequestKind, RequestMatch};
//! # let registry_url = String::new();
//! let faults = Faults::random(7, 0.2)
//!     .first(3, RequestMatch::kind(RequestKind::Blob).method("GET"), Fault::Reset)
//!     .every(RequestMatch::path_contains("/v2/team/app/tags/list"), Fault::Status(500));
//! let proxy = CountingProxy::start_with(&registry_url, ProxyOptions { faults });
//! // ... sync through proxy.url() ...
//! assert!(proxy.injected() >= 3);
//! proxy.set_faults(Faults::none()); // a clean pass next
//! ```

mod body;
mod conn;
mod delay;
#[cfg(test)]
mod delay_tests;
mod faults;
mod handler;
mod http_date;
pub(crate) mod intercept;
mod link;
mod quota;
mod throttle;

#[cfg(test)]
mod tests;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

pub use faults::{Fault, Faults, RequestKind, RequestMatch, RetryAfter, Rule};
pub use link::{LinkGap, LinkUsage};
pub use quota::PullQuota;

use conn::{AbortableStream, Traffic};
use faults::FaultState;
use handler::UpstreamClient;
use intercept::Intercept;
use link::SharedLink;
use quota::{QuotaAnswer, QuotaCounter};

use crate::serve::ServerThread;

/// One request that went through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `"GET"`.
    pub method: String,
    /// Path and query as the client sent them, e.g. `"/v2/_catalog?n=100"`.
    pub path: String,
    /// Status of the response the client got (502 if the upstream could not be
    /// reached), or 0 if the connection was reset before any response.
    pub status: u16,
    /// The fault injected into this request, if any. Requests reset because the proxy
    /// was down are recorded with [`Fault::Reset`].
    pub fault: Option<Fault>,
    /// When its response started (or its connection was reset), from the proxy's start
    /// or last [`reset`](CountingProxy::reset).
    pub at: Duration,
}

impl RecordedRequest {
    /// Whether this request may change the registry (POST, PUT, PATCH, DELETE).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// Options for [`CountingProxy::start_with`].
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Faults to inject; the default injects none.
    pub faults: Faults,
}

/// State shared between the handle and the proxy's runtime.
struct Shared {
    /// `scheme://authority` of the upstream registry.
    upstream: String,
    faults: Mutex<FaultState>,
    down: AtomicBool,
    /// Connections reset on accept because the proxy was down.
    refused: AtomicUsize,
    log: Mutex<Vec<RecordedRequest>>,
    /// Requests being handled now (until their response head is sent), and the most at once.
    active: AtomicUsize,
    most_active: AtomicUsize,
    /// A stand-in's own behaviour, if the proxy fronts one.
    intercept: Option<Arc<dyn Intercept>>,
    /// The pull quota kept, if one is set.
    quota: Mutex<Option<QuotaCounter>>,
    /// Round trip each new connection is delayed by (zero: none).
    round_trip: Mutex<Duration>,
    /// The link new connections send through, if one is set.
    link: Mutex<Option<Arc<SharedLink>>>,
    /// Bytes over the client connections.
    traffic: Arc<Traffic>,
    /// Where [`RecordedRequest::at`] counts from.
    since: Mutex<Instant>,
}

/// Counts one request as being handled while it lives.
struct Active<'a>(&'a Shared);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn enter(&self) -> Active<'_> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_active.fetch_max(now, Ordering::SeqCst);
        Active(self)
    }

    fn log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fault_state(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn decide(&self, method: &str, path: &str) -> Option<Fault> {
        self.fault_state().decide(method, path)
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn round_trip(&self) -> MutexGuard<'_, Duration> {
        self.round_trip.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn link(&self) -> MutexGuard<'_, Option<Arc<SharedLink>>> {
        self.link.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn since(&self) -> MutexGuard<'_, Instant> {
        self.since.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn quota(&self) -> MutexGuard<'_, Option<QuotaCounter>> {
        self.quota.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a manifest request against the pull quota, if one is set.
    fn count_pull(&self, is_get: bool) -> Option<QuotaAnswer> {
        self.quota().as_mut().map(|counter| counter.answer(is_get))
    }

    /// `status` is `None` when the client got no response.
    fn record(&self, method: &Method, path: &str, status: Option<StatusCode>, fault: Option<Fault>) {
        self.log().push(RecordedRequest {
            method: method.as_str().to_owned(),
            path: path.to_owned(),
            status: status.map_or(0, |s| s.as_u16()),
            fault,
            at: self.since().elapsed(),
        });
    }
}

/// A recording, fault-injecting reverse proxy on `127.0.0.1:PORT` in front of one
/// upstream registry.
pub struct CountingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _thread: ServerThread,
}

impl std::fmt::Debug for CountingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingProxy")
            .field("url", &self.url())
            .field("upstream", &self.shared.upstream)
            .field("down", &self.is_down())
            .finish()
    }
}

impl CountingProxy {
    /// Starts a faithful proxy in front of `upstream_url` (e.g. `http://127.0.0.1:5000`).
    pub fn start(upstream_url: &str) -> CountingProxy {
        CountingProxy::start_with(upstream_url, ProxyOptions::default())
    }

    /// Starts a proxy with options. Only the scheme and authority of `upstream_url` are
    /// used; request paths are forwarded unchanged.
    pub fn start_with(upstream_url: &str, options: ProxyOptions) -> CountingProxy {
        CountingProxy::start_full(upstream_url, options, None)
    }

    /// Starts a proxy whose requests without a fault go through `intercept`.
    pub(crate) fn start_intercepted(upstream_url: &str, intercept: Arc<dyn Intercept>) -> CountingProxy {
        CountingProxy::start_full(upstream_url, ProxyOptions::default(), Some(intercept))
    }

    fn start_full(upstream_url: &str, options: ProxyOptions, intercept: Option<Arc<dyn Intercept>>) -> CountingProxy {
        let uri: Uri = upstream_url
            .parse()
            .unwrap_or_else(|e| panic!("testkit: bad upstream URL {upstream_url:?}: {e}"));
        let scheme = uri.scheme_str().unwrap_or("http");
        assert_eq!(scheme, "http", "testkit: proxy upstream must be plain http");
        let authority = uri
            .authority()
            .unwrap_or_else(|| panic!("testkit: upstream URL {upstream_url:?} has no host"));
        let shared = Arc::new(Shared {
            upstream: format!("{scheme}://{authority}"),
            faults: Mutex::new(FaultState::new(options.faults)),
            down: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
            most_active: AtomicUsize::new(0),
            intercept,
            quota: Mutex::new(None),
            round_trip: Mutex::new(Duration::ZERO),
            link: Mutex::new(None),
            traffic: Arc::default(),
            since: Mutex::new(Instant::now()),
        });

        // Bound before the thread starts: connections queue in the backlog right away.
        let listener = TcpListener::bind("127.0.0.1:0").expect("testkit: proxy bind");
        listener.set_nonblocking(true).expect("testkit: proxy set_nonblocking");
        let addr = listener.local_addr().expect("testkit: proxy local_addr");

        let thread_shared = Arc::clone(&shared);
        let runtime = || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("testkit-proxy-worker")
                .enable_all()
                .build()
                .expect("testkit: proxy runtime")
        };
        // Dropping the proxy drops in-flight connection tasks (and stalled bodies) without waiting.
        let thread = ServerThread::spawn(format!("testkit-proxy-{}", addr.port()), runtime, move |shutdown| {
            serve(listener, thread_shared, shutdown)
        });
        CountingProxy {
            addr,
            shared,
            _thread: thread,
        }
    }

    /// Base URL of the proxy, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Host and port of the proxy, `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The proxy's TCP port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request seen so far (since start or the last [`reset`](Self::reset)), in
    /// the order their responses started (or their connections were reset).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log().clone()
    }

    /// The most requests this proxy handled at the same moment (each from its arrival to
    /// its response head) since it started or was reset.
    pub fn most_in_flight(&self) -> usize {
        self.shared.most_active.load(Ordering::SeqCst)
    }

    /// The requests that may change the registry: POST, PUT, PATCH, DELETE.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.shared.log().iter().filter(|r| r.is_write()).cloned().collect()
    }

    /// How many recorded requests got a fault (since start or the last `reset`).
    pub fn injected(&self) -> usize {
        self.shared.log().iter().filter(|r| r.fault.is_some()).count()
    }

    /// Forgets all recorded requests, the refused-connection count and the byte counts. The faults and
    /// their progress (rule counts, PRNG position) are kept; see [`set_faults`](Self::set_faults).
    pub fn reset(&self) {
        self.shared.most_active.store(0, Ordering::SeqCst);
        self.shared.log().clear();
        self.shared.refused.store(0, Ordering::SeqCst);
        self.shared.traffic.reset();
        *self.shared.since() = Instant::now();
        if let Some(link) = self.shared.link().as_ref() {
            link.restart_usage();
        }
    }

    /// Replaces the faults from the next request on, starting afresh: the PRNG is
    /// reseeded and rule counts start at zero (even if `faults` equals the current ones).
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.fault_state() = FaultState::new(faults);
    }

    /// The faults in effect.
    pub fn faults(&self) -> Faults {
        self.shared.fault_state().faults().clone()
    }

    /// Takes the proxy down (`true`): every new connection is reset right after it is
    /// accepted and every request on an open connection is reset, like a dead mirror.
    /// `false` brings it back. Requests already being served are not interrupted.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Delays every connection accepted from now on by `round_trip`: each byte, client
    /// to proxy and proxy to client, is delivered `round_trip / 2` after it was sent, in
    /// order, on delay lines of the connection's own, so concurrent connections are not
    /// serialised. Every request thus takes at least `round_trip` longer. Connections
    /// already open keep the delay they were accepted with; zero (the default) delays
    /// nothing. Combines with any fault, e.g. [`Fault::Throttle`].
    pub fn set_round_trip(&self, round_trip: Duration) {
        *self.shared.round_trip() = round_trip;
    }

    /// The round trip new connections are delayed by (see [`set_round_trip`](Self::set_round_trip)).
    pub fn round_trip(&self) -> Duration {
        *self.shared.round_trip()
    }

    /// Sends every connection accepted from now on through one link of `bytes_per_second`
    /// toward the clients, shared by all of them (`None`: none, the default): the bytes
    /// of all responses together, headers included, go at that rate, as over one far
    /// upstream's path. Connections already open keep the link they were accepted with.
    /// Combines with [`set_round_trip`](Self::set_round_trip).
    pub fn set_link_rate(&self, bytes_per_second: Option<u64>) {
        *self.shared.link() = bytes_per_second.map(|rate| Arc::new(SharedLink::new(rate)));
    }

    /// The rate of the shared link new connections get (see [`set_link_rate`](Self::set_link_rate)).
    pub fn link_rate(&self) -> Option<u64> {
        self.shared.link().as_ref().map(|link| link.bytes_per_second())
    }

    /// How the shared link was used since the proxy started or was last reset: when its
    /// first byte went, until when it was busy, and when it stood idle in between
    /// (`None`: no link is set).
    pub fn link_usage(&self) -> Option<LinkUsage> {
        self.shared.link().as_ref().map(|link| link.usage())
    }

    /// Bytes written to clients over all connections (responses, headers included) since
    /// start or the last [`reset`](Self::reset).
    pub fn bytes_to_clients(&self) -> u64 {
        self.shared.traffic.to_clients.load(Ordering::SeqCst)
    }

    /// Bytes read from clients over all connections (requests and upload bodies, headers
    /// included) since start or the last [`reset`](Self::reset).
    pub fn bytes_from_clients(&self) -> u64 {
        self.shared.traffic.from_clients.load(Ordering::SeqCst)
    }

    /// Whether the proxy is down (see [`set_down`](Self::set_down)).
    pub fn is_down(&self) -> bool {
        self.shared.is_down()
    }

    /// Keeps a pull quota from the next request on, as Docker Hub does (`None`: none).
    /// Every manifest `GET` counts; `HEAD`s are free. Every manifest response carries
    /// `ratelimit-limit: LIMIT;w=WINDOW` and `ratelimit-remaining: LEFT;w=WINDOW`, and a
    /// `GET` past the limit is answered [`Fault::PullQuotaExhausted`] (429
    /// `TOOMANYREQUESTS`, no `Retry-After`), not forwarded, and recorded with that fault.
    /// Nothing refills by itself: see [`refill_pull_quota`](Self::refill_pull_quota).
    pub fn set_pull_quota(&self, quota: Option<PullQuota>) {
        *self.shared.quota() = quota.map(|quota| QuotaCounter { quota, used: 0 });
    }

    /// Starts a new window of the pull quota: nothing is used.
    pub fn refill_pull_quota(&self) {
        if let Some(counter) = self.shared.quota().as_mut() {
            counter.used = 0;
        }
    }

    /// Manifest `GET`s counted in the quota's current window (0 without a quota).
    pub fn pull_quota_used(&self) -> u64 {
        self.shared.quota().as_ref().map_or(0, |counter| counter.used)
    }

    /// How many connections were reset on accept while down (since start or `reset`).
    /// Requests reset on already open connections are in [`requests`](Self::requests).
    pub fn refused_connections(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("testkit: proxy tokio listener");
    let client: UpstreamClient = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        if shared.is_down() {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            conn::reset(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let one_way = *shared.round_trip() / 2;
        let abort = Arc::new(AtomicBool::new(false));
        let link = shared.link().clone();
        let stream = AbortableStream::new(stream, Arc::clone(&abort), Arc::clone(&shared.traffic), link);
        let shared = Arc::clone(&shared);
        let client = client.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handled = handler::handle(Arc::clone(&shared), client.clone(), req);
                let abort = Arc::clone(&abort);
                let shared = Arc::clone(&shared);
                async move {
                    let result = {
                        let _active = shared.enter();
                        handled.await
                    };
                    if result.is_err() {
                        // hyper drops the connection on a handler error; make that a RST.
                        abort.store(true, Ordering::SeqCst);
                    }
                    result
                }
            });
            // Connection errors (client hung up mid-body, a cut body, ...) only end this
            // connection.
            let http = http1::Builder::new();
            if one_way.is_zero() {
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
            } else {
                let (served, relay) = delay::delayed(stream, one_way);
                let _ = tokio::join!(http.serve_connection(TokioIo::new(served), service), relay);
            }
        });
    }
}
