//! A streaming HTTP/1.1 reverse proxy in front of a registry that records every request.
//!
//! [`CountingProxy`] listens on a free loopback port and forwards each request to the
//! upstream registry, streaming bodies both ways (nothing is buffered whole). The `Host`
//! header is passed through as the client sent it, so the registry builds `Location`
//! headers that point back at the proxy. It runs on its own thread with its own tokio
//! runtime, so sync and async tests can use it alike; dropping it shuts it down.
//!
//! Fault injection is not implemented yet; [`Faults`] (passed via [`ProxyOptions`]) and
//! the `decide` call in the request handler are the seam where it goes.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

type ProxyBody = Either<Incoming, Full<Bytes>>;
type UpstreamClient = Client<HttpConnector, Incoming>;

/// One request that went through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `"GET"`.
    pub method: String,
    /// Path and query as the client sent them, e.g. `"/v2/_catalog?n=100"`.
    pub path: String,
    /// Status of the response the client got (502 if the upstream could not be reached).
    pub status: u16,
}

impl RecordedRequest {
    /// Whether this request may change the registry (POST, PUT, PATCH, DELETE).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// Fault-injection configuration.
///
/// Empty for now: the proxy forwards everything faithfully. This is the seam for later
/// knobs (fail the Nth matching request, delay, cut a body short, ...): add fields here
/// and variants to the private `Fault` enum, and handle them where the request handler
/// matches on `Faults::decide`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Faults {}

/// What to do to one request instead of forwarding it faithfully. No faults exist yet.
enum Fault {}

impl Faults {
    /// Picks the fault (if any) for a request. Always `None` today.
    fn decide(&self, _method: &Method, _path: &str) -> Option<Fault> {
        None
    }
}

/// Options for [`CountingProxy::start_with`].
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Faults to inject (none are implemented yet).
    pub faults: Faults,
}

/// State shared between the handle and the proxy's runtime.
struct Shared {
    /// `scheme://authority` of the upstream registry.
    upstream: String,
    faults: Faults,
    log: Mutex<Vec<RecordedRequest>>,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, method: &Method, path: &str, status: StatusCode) {
        self.log().push(RecordedRequest {
            method: method.as_str().to_owned(),
            path: path.to_owned(),
            status: status.as_u16(),
        });
    }
}

/// A recording reverse proxy on `127.0.0.1:PORT` in front of one upstream registry.
pub struct CountingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CountingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingProxy")
            .field("url", &self.url())
            .field("upstream", &self.shared.upstream)
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
            faults: options.faults,
            log: Mutex::new(Vec::new()),
        });

        // Bound before the thread starts: connections queue in the backlog right away.
        let listener = TcpListener::bind("127.0.0.1:0").expect("testkit: proxy bind");
        listener.set_nonblocking(true).expect("testkit: proxy set_nonblocking");
        let addr = listener.local_addr().expect("testkit: proxy local_addr");

        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("testkit-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("testkit-proxy-worker")
                    .enable_all()
                    .build()
                    .expect("testkit: proxy runtime");
                runtime.block_on(serve(listener, thread_shared, shutdown_rx));
                // Drops in-flight connection tasks without waiting for them.
                runtime.shutdown_background();
            })
            .expect("testkit: spawn proxy thread");

        CountingProxy {
            addr,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
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

    /// Every request forwarded so far (since start or the last [`reset`](Self::reset)),
    /// in the order their responses started.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log().clone()
    }

    /// The requests that may change the registry: POST, PUT, PATCH, DELETE.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.shared.log().iter().filter(|r| r.is_write()).cloned().collect()
    }

    /// Forgets all recorded requests.
    pub fn reset(&self) {
        self.shared.log().clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let client = client.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(Arc::clone(&shared), client.clone(), req));
            // Connection errors (client hung up mid-body, ...) only end this connection.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Forwards one request upstream and streams the response back.
async fn forward(
    shared: Arc<Shared>,
    client: UpstreamClient,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned();

    // Fault-injection seam: `decide` will pick a fault for this request and the arms of
    // this match will carry it out instead of (or around) the faithful forwarding below.
    if let Some(fault) = shared.faults.decide(&method, &path) {
        match fault {}
    }

    let (mut parts, body) = req.into_parts();
    parts.uri = match format!("{}{}", shared.upstream, path).parse() {
        Ok(uri) => uri,
        Err(e) => return Ok(error_response(&shared, &method, &path, &e.to_string())),
    };
    parts.version = Version::HTTP_11;
    // The Host header stays as the client sent it: hyper-util only adds one if missing.
    strip_hop_by_hop(&mut parts.headers);

    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            shared.record(&method, &path, response.status());
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
        Err(e) => Ok(error_response(&shared, &method, &path, &e.to_string())),
    }
}

fn error_response(shared: &Shared, method: &Method, path: &str, message: &str) -> Response<ProxyBody> {
    shared.record(method, path, StatusCode::BAD_GATEWAY);
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(format!(
        "testkit proxy: upstream error: {message}\n"
    )))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Removes connection-level headers (RFC 9110 §7.6.1); hyper re-frames bodies itself.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}
