//! [`HubFront`]: what the Docker-Hub-like registry does on top of forwarding to its
//! backing registry: refuse the catalog, spend and enforce the pull quota, redirect blob
//! downloads to the CDN and put the rate-limit headers on every answer.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use super::cdn::UrlSigner;
use super::quota::PullQuota;
use crate::proxy::intercept::Intercept;
use crate::proxy::RequestKind;
use crate::token::TOKEN_SERVICE;

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");

/// Docker Hub's message, word for word up to its link.
const RATE_LIMIT_MESSAGE: &str = "You have reached your pull rate limit. You may increase the limit by \
     authenticating and upgrading: https://www.docker.com/increase-rate-limit";

pub(crate) struct HubFront {
    pub(crate) quota: Arc<PullQuota>,
    pub(crate) cdn: UrlSigner,
    /// The token service's realm, named in the catalog's challenge.
    pub(crate) realm: String,
}

impl Intercept for HubFront {
    fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Response<Full<Bytes>>> {
        match RequestKind::of_path(path)? {
            RequestKind::Catalog => Some(self.catalog_refused(headers.contains_key(AUTHORIZATION))),
            RequestKind::Manifest if method == Method::GET && !self.quota.take() => Some(rate_limited()),
            _ => None,
        }
    }

    fn upstream_answered(&self, method: &Method, path: &str, status: StatusCode) -> Option<Response<Full<Bytes>>> {
        if method != Method::GET {
            return None;
        }
        match RequestKind::of_path(path)? {
            RequestKind::Manifest if !status.is_success() => {
                self.quota.give_back();
                None
            }
            // The backing registry has checked the token and found the blob.
            RequestKind::Blob if status == StatusCode::OK => self.redirect_to_cdn(path),
            _ => None,
        }
    }

    fn add_headers(&self, _method: &Method, _path: &str, headers: &mut HeaderMap) {
        let Some((limit, remaining)) = self.quota.header_values() else {
            return;
        };
        for (name, value) in [(RATELIMIT_LIMIT, limit), (RATELIMIT_REMAINING, remaining)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

impl HubFront {
    /// Docker Hub's answer to `/v2/_catalog`: 401 whatever the request carries; a token
    /// (which the realm grants nothing for this scope) only adds `insufficient_scope`.
    fn catalog_refused(&self, carried_authorization: bool) -> Response<Full<Bytes>> {
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
            json!([{"Type": "registry", "Class": "", "Name": "catalog", "Action": "*"}]),
        );
        let mut challenge = format!(
            "Bearer realm=\"{}\",service=\"{TOKEN_SERVICE}\",scope=\"registry:catalog:*\"",
            self.realm
        );
        if carried_authorization {
            challenge.push_str(",error=\"insufficient_scope\"");
        }
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }

    /// `307` to the CDN for `/v2/<name>/blobs/<digest>`.
    fn redirect_to_cdn(&self, path: &str) -> Option<Response<Full<Bytes>>> {
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        let digest = path.rsplit_once("/blobs/")?.1;
        let location = HeaderValue::from_str(&self.cdn.blob_url(digest)?).ok()?;
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        response.headers_mut().insert(LOCATION, location);
        Some(response)
    }
}

/// Docker Hub's 429: no `Retry-After`, only the rate-limit headers say anything.
fn rate_limited() -> Response<Full<Bytes>> {
    error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
        RATE_LIMIT_MESSAGE,
        serde_json::Value::Null,
    )
}

/// A distribution-style error answer (`{"errors":[{"code","message","detail"}]}`).
fn error_response(status: StatusCode, code: &str, message: &str, detail: serde_json::Value) -> Response<Full<Bytes>> {
    let mut error = json!({"code": code, "message": message});
    if !detail.is_null() {
        error["detail"] = detail;
    }
    let body = json!({ "errors": [error] });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    );
    response
}
