//! [`Intercept`]: behaviour a stand-in adds on top of faithful forwarding (the Docker-Hub-like
//! registry is one): answering some requests itself, replacing some upstream answers,
//! and adding headers to every answer.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};

/// Called by the proxy for each request that gets no injected fault. `path` is the path
/// and query as the client sent them.
pub(crate) trait Intercept: Send + Sync + 'static {
    /// An answer given instead of forwarding the request (with these headers), if any.
    fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Response<Full<Bytes>>>;

    /// Told the status of the upstream's answer (502 if the upstream could not be
    /// reached), returns an answer to give instead, if any; the upstream body is then
    /// dropped unread.
    fn upstream_answered(&self, method: &Method, path: &str, status: StatusCode) -> Option<Response<Full<Bytes>>>;

    /// Adds headers to every answer the client gets, faults included.
    fn add_headers(&self, method: &Method, path: &str, headers: &mut HeaderMap);
}
