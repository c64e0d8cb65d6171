//! The private header parsers, reachable by the fuzz targets (`fuzz/`, feature `fuzzing`).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, LINK, RETRY_AFTER};
use url::Url;

/// A `WWW-Authenticate` value as `auth.rs` reads it: `None` when unknown, `Some(None)`
/// for Basic, `Some(Some(realm))` for Bearer.
pub fn challenge_realm(header: &str) -> Option<Option<String>> {
    crate::auth::fuzzing_challenge_realm(header)
}

/// Whether credentials may go to `realm` when the registry is on HTTPS
/// (`Some(scheme)` of the accepted URL).
pub fn realm_scheme_with_credentials(realm: &str) -> Option<String> {
    crate::auth::fuzzing_realm_scheme(realm)
}

/// The `rel="next"` target of `Link` header values (raw bytes, as they arrive).
pub fn next_link(values: &[&[u8]], request_url: &Url) -> Option<Url> {
    let mut headers = HeaderMap::new();
    for value in values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(LINK, value);
        }
    }
    crate::paging::next_link(&headers, request_url)
}

/// `Retry-After` as `status.rs` reads it; `None` when the bytes are no header value.
pub fn retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, HeaderValue::from_bytes(value).ok()?);
    crate::status::parse_retry_after(&headers, now)
}

/// `ratelimit-limit` and `ratelimit-remaining` as `ratelimit.rs` reads them.
pub fn rate_limit(limit: &[u8], remaining: &[u8]) -> Option<crate::RateLimit> {
    let mut headers = HeaderMap::new();
    for (name, value) in [("ratelimit-limit", limit), ("ratelimit-remaining", remaining)] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    crate::RateLimit::from_headers(&headers)
}
