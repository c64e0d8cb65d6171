//! [`RedirectingRegistry`]: a stand-in registry whose blob downloads are redirected to
//! another origin, as registries backed by object storage do.
//!
//! The front requires Basic auth and answers every authorized `GET …/blobs/…` with a
//! `307` to a second server on another port (so another origin). That server serves one
//! fixed blob to anyone and records every request it gets, with its `Authorization`
//! header, so tests can check that credentials never follow a redirect.

use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};

use crate::serve::LocalServer;

/// A request one of the servers received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, if the request carried one.
    pub authorization: Option<String>,
}

/// Requests one server received, shared with its handler.
pub(crate) type Log = Arc<Mutex<Vec<SeenRequest>>>;

pub(crate) fn lock(log: &Log) -> MutexGuard<'_, Vec<SeenRequest>> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Appends the request `parts` describe to `log`.
pub(crate) fn record(log: &Log, parts: &Parts) {
    lock(log).push(SeenRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        authorization: parts
            .headers
            .get(AUTHORIZATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    });
}

/// A Basic-auth registry front on one port and the blob storage it redirects to on
/// another; both stop on drop.
pub struct RedirectingRegistry {
    front: LocalServer,
    storage: LocalServer,
    front_log: Log,
    storage_log: Log,
}

impl std::fmt::Debug for RedirectingRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedirectingRegistry")
            .field("url", &self.url())
            .field("storage_url", &self.storage_url())
            .finish()
    }
}

impl RedirectingRegistry {
    /// Starts both servers. The front accepts `username`/`password`; the storage answers
    /// every request with `blob`.
    pub fn start(username: &str, password: &str, blob: Bytes) -> RedirectingRegistry {
        let storage_log: Log = Arc::default();
        let storage = {
            let log = Arc::clone(&storage_log);
            LocalServer::start(
                "blob-storage",
                Arc::new(move |parts: &Parts, _body: &Bytes| {
                    record(&log, parts);
                    Response::new(Full::new(blob.clone()))
                }),
            )
        };
        let front_log: Log = Arc::default();
        let expected = format!("Basic {}", STANDARD.encode(format!("{username}:{password}")));
        let storage_url = storage.url();
        let front = {
            let log = Arc::clone(&front_log);
            LocalServer::start(
                "redirecting-registry",
                Arc::new(move |parts: &Parts, _body: &Bytes| {
                    record(&log, parts);
                    front_answer(parts, &expected, &storage_url)
                }),
            )
        };
        RedirectingRegistry {
            front,
            storage,
            front_log,
            storage_log,
        }
    }

    /// The registry front, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.front.url()
    }

    /// The blob storage the front redirects to, `http://127.0.0.1:OTHER_PORT`.
    pub fn storage_url(&self) -> String {
        self.storage.url()
    }

    /// Requests the front received, in order.
    pub fn front_requests(&self) -> Vec<SeenRequest> {
        lock(&self.front_log).clone()
    }

    /// Requests the storage received, in order.
    pub fn storage_requests(&self) -> Vec<SeenRequest> {
        lock(&self.storage_log).clone()
    }
}

fn front_answer(parts: &Parts, expected_authorization: &str, storage_url: &str) -> Response<Full<Bytes>> {
    let authorized = parts
        .headers
        .get(AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected_authorization.as_bytes());
    let mut response = Response::new(Full::new(Bytes::new()));
    if !authorized {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ocisync-testkit\""),
        );
        return response;
    }
    let path = parts.uri.path();
    if parts.method == Method::GET && path.contains("/blobs/") {
        *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        // Like a pre-signed object-storage URL: the query authorizes, not a header.
        let location = format!("{storage_url}{path}?signature=testkit");
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(LOCATION, value);
        }
        return response;
    }
    if path != "/v2/" {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    response
}
