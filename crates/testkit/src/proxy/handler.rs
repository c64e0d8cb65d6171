//! The per-request handler: asks the fault state what to do, then forwards the request
//! faithfully or carries the fault out.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use super::body::CutBody;
use super::faults::{Fault, RequestKind, RetryAfter};
use super::http_date::http_date;
use super::intercept::Intercept;
use super::quota::QuotaAnswer;
use super::throttle::ThrottledBody;
use super::Shared;

/// Forwarded (`Left`), cut (`Right(Left)`), throttled (`Right(Right(Left))`) or made-up
/// (`Right(Right(Right))`) response bodies.
pub(super) type ProxyBody = Either<Incoming, Either<CutBody, Either<ThrottledBody, Full<Bytes>>>>;
pub(super) type UpstreamClient = Client<HttpConnector, Incoming>;

/// How long a truncated body stays quiet before the connection closes: time for hyper
/// to flush the delivered prefix to the socket.
const TRUNCATE_FLUSH_GRACE: Duration = Duration::from_millis(50);

/// Handler error that makes hyper end the connection without a response; the serving
/// loop turns that close into a reset.
#[derive(Debug)]
pub(super) struct ResetConnection;

impl fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("testkit proxy: connection reset by fault injection")
    }
}

impl std::error::Error for ResetConnection {}

/// Docker Hub's answer to a pull past the quota.
const QUOTA_EXHAUSTED_BODY: &str =
    r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. (testkit proxy)"}]}"#;

/// Handles one request: a used-up pull quota, else a fault if one is decided, else the
/// intercept's answer or faithful forwarding; manifest responses announce the pull quota
/// when one is set, and the intercept adds its headers.
pub(super) async fn handle(
    shared: Arc<Shared>,
    client: UpstreamClient,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ResetConnection> {
    let method = req.method().clone();
    let path = request_path(&req);
    let mut result = respond(&shared, &client, req).await;
    if let (Ok(response), Some(intercept)) = (&mut result, &shared.intercept) {
        intercept.add_headers(&method, &path, response.headers_mut());
    }
    result
}

async fn respond(
    shared: &Shared,
    client: &UpstreamClient,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ResetConnection> {
    let method = req.method().clone();
    let path = request_path(&req);

    // A connection kept alive from before `set_down(true)` must fail like new ones.
    if shared.is_down() {
        shared.record(&method, &path, None, Some(Fault::Reset));
        return Err(ResetConnection);
    }
    let quota = match RequestKind::of_path(&path) {
        Some(RequestKind::Manifest) => shared.count_pull(method == Method::GET),
        _ => None,
    };
    let response = match quota {
        Some(QuotaAnswer { exhausted: true, .. }) => {
            answer_fault(shared, client, req, method, path, Fault::PullQuotaExhausted).await
        }
        _ => handle_faults(shared, client, req, method, path).await,
    };
    match quota {
        Some(answer) => response.map(|response| answer.announce(response)),
        None => response,
    }
}

/// The request's fault, if one is decided, else faithful forwarding.
async fn handle_faults(
    shared: &Shared,
    client: &UpstreamClient,
    req: Request<Incoming>,
    method: Method,
    path: String,
) -> Result<Response<ProxyBody>, ResetConnection> {
    let Some(fault) = shared.decide(method.as_str(), &path) else {
        return Ok(match &shared.intercept {
            Some(intercept) => intercepted(shared, client, intercept.as_ref(), req).await,
            None => forward(shared, client, req, None).await,
        });
    };
    answer_fault(shared, client, req, method, path, fault).await
}

/// The answer `fault` makes of the request: made up, or the upstream's, altered.
async fn answer_fault(
    shared: &Shared,
    client: &UpstreamClient,
    req: Request<Incoming>,
    method: Method,
    path: String,
    fault: Fault,
) -> Result<Response<ProxyBody>, ResetConnection> {
    match fault {
        Fault::Status(code) => {
            drain(req.into_body()).await;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Ok(injected_response(shared, &method, &path, fault, status, None))
        }
        Fault::TooManyRequests(retry_after) => {
            drain(req.into_body()).await;
            let value = match retry_after {
                RetryAfter::Seconds(seconds) => seconds.to_string(),
                RetryAfter::Date(seconds) => http_date(SystemTime::now() + Duration::from_secs(seconds)),
            };
            let status = StatusCode::TOO_MANY_REQUESTS;
            Ok(injected_response(shared, &method, &path, fault, status, Some(value)))
        }
        Fault::PullQuotaExhausted => {
            drain(req.into_body()).await;
            Ok(injected_response(
                shared,
                &method,
                &path,
                fault,
                StatusCode::TOO_MANY_REQUESTS,
                None,
            ))
        }
        Fault::Reset => {
            shared.record(&method, &path, None, Some(fault));
            Err(ResetConnection)
        }
        Fault::Json(body) => {
            drain(req.into_body()).await;
            shared.record(&method, &path, Some(StatusCode::OK), Some(fault));
            let mut response = text_response(StatusCode::OK, body.to_owned());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        Fault::Latency(delay) => {
            tokio::time::sleep(delay).await;
            Ok(forward(shared, client, req, Some(fault)).await)
        }
        Fault::Truncate { after_bytes } => {
            forward_cut(shared, client, req, fault, after_bytes, TRUNCATE_FLUSH_GRACE).await
        }
        Fault::Stall { after_bytes, pause } => forward_cut(shared, client, req, fault, after_bytes, pause).await,
        Fault::Throttle { bytes_per_second } => {
            let response = forward(shared, client, req, Some(fault)).await;
            Ok(response.map(|body| match body {
                Either::Left(upstream) => Either::Right(Either::Right(Either::Left(ThrottledBody::new(
                    upstream,
                    bytes_per_second,
                )))),
                other => other,
            }))
        }
    }
}

/// Answers from `intercept` or forwards, letting `intercept` replace the upstream's answer.
async fn intercepted(
    shared: &Shared,
    client: &UpstreamClient,
    intercept: &dyn Intercept,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let method = req.method().clone();
    let path = request_path(&req);
    if let Some(answer) = intercept.answer(&method, &path, req.headers()) {
        drain(req.into_body()).await;
        shared.record(&method, &path, Some(answer.status()), None);
        return answer.map(own_body);
    }
    let upstream = send_upstream(shared, client, req).await;
    let status = upstream.as_ref().map_or(StatusCode::BAD_GATEWAY, Response::status);
    if let Some(answer) = intercept.upstream_answered(&method, &path, status) {
        shared.record(&method, &path, Some(answer.status()), None);
        return answer.map(own_body);
    }
    match upstream {
        Ok(response) => {
            shared.record(&method, &path, Some(response.status()), None);
            response.map(Either::Left)
        }
        Err(message) => error_response(shared, &method, &path, None, &message),
    }
}

/// A body the proxy made up.
fn own_body(body: Full<Bytes>) -> ProxyBody {
    Either::Right(Either::Right(Either::Right(body)))
}

/// Forwards the request and streams the response back unchanged.
async fn forward(
    shared: &Shared,
    client: &UpstreamClient,
    req: Request<Incoming>,
    fault: Option<Fault>,
) -> Response<ProxyBody> {
    let method = req.method().clone();
    let path = request_path(&req);
    match send_upstream(shared, client, req).await {
        Ok(response) => {
            shared.record(&method, &path, Some(response.status()), fault);
            response.map(Either::Left)
        }
        Err(message) => error_response(shared, &method, &path, fault, &message),
    }
}

/// Forwards the request, then delivers `after_bytes` of the response body (at most all
/// but one byte), sends nothing for `pause` and closes the connection.
async fn forward_cut(
    shared: &Shared,
    client: &UpstreamClient,
    req: Request<Incoming>,
    fault: Fault,
    after_bytes: u64,
    pause: Duration,
) -> Result<Response<ProxyBody>, ResetConnection> {
    let method = req.method().clone();
    let path = request_path(&req);
    let response = match send_upstream(shared, client, req).await {
        Ok(response) => response,
        Err(message) => return Ok(error_response(shared, &method, &path, Some(fault), &message)),
    };
    let status = response.status();
    let has_no_body = method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational();
    let body_len = if has_no_body {
        Some(0)
    } else {
        response.body().size_hint().exact()
    };
    match cut_point(after_bytes, body_len) {
        Some(cut_at) => {
            shared.record(&method, &path, Some(status), Some(fault));
            Ok(response.map(|body| Either::Right(Either::Left(CutBody::new(body, cut_at, pause)))))
        }
        // Nothing to cut: fail before the response instead, so the fault still bites.
        None => {
            tokio::time::sleep(pause).await;
            shared.record(&method, &path, None, Some(fault));
            Err(ResetConnection)
        }
    }
}

/// Where to cut a body of `body_len` bytes (`None`: unknown) so that at most
/// `after_bytes` arrive and the body is always incomplete; `None` if there is no body.
fn cut_point(after_bytes: u64, body_len: Option<u64>) -> Option<u64> {
    match body_len {
        Some(0) => None,
        Some(len) => Some(after_bytes.min(len - 1)),
        None => Some(after_bytes),
    }
}

/// Sends the request to the upstream registry; the error is a message for a 502.
async fn send_upstream(
    shared: &Shared,
    client: &UpstreamClient,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, String> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = format!("{}{}", shared.upstream, path)
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
    parts.version = Version::HTTP_11;
    // The Host header stays as the client sent it: hyper-util only adds one if missing.
    strip_hop_by_hop(&mut parts.headers);
    let mut response = client
        .request(Request::from_parts(parts, body))
        .await
        .map_err(|e| e.to_string())?;
    strip_hop_by_hop(response.headers_mut());
    Ok(response)
}

/// Path and query as the client sent them.
fn request_path(req: &Request<Incoming>) -> String {
    req.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned()
}

/// Reads a request body to its end (or first error), discarding it.
async fn drain(mut body: Incoming) {
    while let Some(Ok(_)) = body.frame().await {}
}

fn injected_response(
    shared: &Shared,
    method: &Method,
    path: &str,
    fault: Fault,
    status: StatusCode,
    retry_after: Option<String>,
) -> Response<ProxyBody> {
    let quota_exhausted = fault == Fault::PullQuotaExhausted;
    let message = format!("testkit proxy: injected {fault:?}\n");
    shared.record(method, path, Some(status), Some(fault));
    if quota_exhausted {
        let mut response = text_response(status, QUOTA_EXHAUSTED_BODY.to_owned());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return response;
    }
    let mut response = text_response(status, message);
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

fn error_response(
    shared: &Shared,
    method: &Method,
    path: &str,
    fault: Option<Fault>,
    message: &str,
) -> Response<ProxyBody> {
    shared.record(method, path, Some(StatusCode::BAD_GATEWAY), fault);
    text_response(
        StatusCode::BAD_GATEWAY,
        format!("testkit proxy: upstream error: {message}\n"),
    )
}

fn text_response(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut response = Response::new(own_body(Full::new(Bytes::from(text))));
    *response.status_mut() = status;
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

#[cfg(test)]
mod tests {
    use super::cut_point;

    #[test]
    fn cut_always_leaves_the_body_incomplete() {
        assert_eq!(cut_point(10, Some(100)), Some(10));
        assert_eq!(cut_point(100, Some(100)), Some(99));
        assert_eq!(cut_point(1000, Some(1)), Some(0));
        assert_eq!(cut_point(10, Some(0)), None);
        assert_eq!(cut_point(10, None), Some(10));
    }
}
