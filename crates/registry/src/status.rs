//! Turning HTTP outcomes into [`StoreError`]s, keeping the status and `Retry-After`,
//! and telling a used-up pull quota (429 `TOOMANYREQUESTS`, no `Retry-After`) from a
//! request to slow down.

use std::time::{Duration, SystemTime};

use ocisync_oci::StoreError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use crate::deadline::RequestTimedOut;

/// Longest error body text quoted in a message.
const DETAIL_LIMIT: usize = 300;
/// Most bytes of an error body read: enough for any registry's error JSON, and an
/// upstream that sends a huge error page is not read whole.
const ERROR_BODY_LIMIT: usize = 4096;
/// The distribution error code of a used-up pull quota (Docker Hub; older answers
/// spell it `toomanyrequests:` in a `message`).
const QUOTA_EXHAUSTED_CODE: &str = "toomanyrequests";

/// The error for a response whose status is not the one the operation expects.
pub async fn error_from_response(what: String, response: Response) -> StoreError {
    let status = response.status();
    let retry_after = parse_retry_after(response.headers(), SystemTime::now());
    let detail = read_error_body(response).await;
    error_from_status(what, status, retry_after, &detail)
}

/// The first [`ERROR_BODY_LIMIT`] bytes of a body, as text; what cannot be read is left out.
async fn read_error_body(mut response: Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(ERROR_BODY_LIMIT - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

pub fn error_from_status(what: String, status: StatusCode, retry_after: Option<Duration>, detail: &str) -> StoreError {
    match status {
        StatusCode::UNAUTHORIZED => StoreError::Unauthorized { what },
        StatusCode::FORBIDDEN => StoreError::Denied { what },
        StatusCode::NOT_FOUND => StoreError::NotFound { what },
        // A 429 that names no delay but says the pull quota is used up will not pass
        // within any retry's patience: the window refills in hours.
        StatusCode::TOO_MANY_REQUESTS
            if retry_after.is_none() && detail.to_ascii_lowercase().contains(QUOTA_EXHAUSTED_CODE) =>
        {
            StoreError::QuotaExhausted { what }
        }
        StatusCode::TOO_MANY_REQUESTS => StoreError::RateLimited { what, retry_after },
        status if status.is_server_error() => StoreError::Server {
            what,
            status: status.as_u16(),
        },
        status => StoreError::Rejected {
            what,
            status: status.as_u16(),
            detail: shorten(detail),
        },
    }
}

/// A transport failure (connect, timeout, body cut short).
pub fn transport_error(what: String, error: reqwest::Error) -> StoreError {
    // Drop the URL reqwest attaches (`what` already names the request) and spell out
    // the causes: "error sending request" alone does not tell a refused connection
    // from an untrusted certificate.
    let error = error.without_url();
    // A body cut off at `request_timeout` says so, without reqwest's wrapping.
    if let Some(timed_out) = find_cause::<RequestTimedOut>(&error) {
        return StoreError::Transport {
            what,
            source: Box::new(timed_out.clone()),
        };
    }
    let reason = with_causes(&error);
    if reason.to_ascii_lowercase().contains("certificate") {
        return StoreError::Tls { what, reason };
    }
    StoreError::Transport {
        what,
        source: reason.into(),
    }
}

/// `error` and its causes, joined by `: `, each said once (a cause whose text an
/// earlier one already contains adds nothing).
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.iter().any(|known| known.contains(&text)) {
            causes.push(text);
        }
        source = cause.source();
    }
    causes.join(": ")
}

/// The first error of type `T` in `error`'s chain of causes.
fn find_cause<'a, T: std::error::Error + 'static>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        current = cause.source();
    }
    None
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

fn shorten(detail: &str) -> String {
    let single_line = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    match single_line.char_indices().nth(DETAIL_LIMIT) {
        Some((cut, _)) => format!("{}…", &single_line[..cut]),
        None => single_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after(&headers("7"), now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(&headers("Wed, 21 Oct 2015 07:27:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(&headers("soon"), now), None);
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        let kind = |status: u16| error_from_status("x".into(), StatusCode::from_u16(status).unwrap(), None, "body");
        assert!(matches!(kind(401), StoreError::Unauthorized { .. }));
        assert!(matches!(kind(403), StoreError::Denied { .. }));
        assert!(matches!(kind(404), StoreError::NotFound { .. }));
        assert!(matches!(kind(429), StoreError::RateLimited { .. }));
        assert!(matches!(kind(502), StoreError::Server { status: 502, .. }));
        assert!(matches!(kind(400), StoreError::Rejected { status: 400, .. }));
    }

    #[test]
    fn a_429_is_an_exhausted_quota_only_without_retry_after_and_with_toomanyrequests() {
        let hub_body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#;
        let old_hub_body = r#"{"message":"toomanyrequests: You have reached your pull rate limit."}"#;
        let seven = Some(Duration::from_secs(7));
        // (Retry-After, body, exhausted quota?)
        let cases: &[(Option<Duration>, &str, bool)] = &[
            (None, hub_body, true),
            (None, old_hub_body, true),
            (seven, hub_body, false),
            (None, "slow down", false),
            (seven, "slow down", false),
            (None, "", false),
        ];
        for (retry_after, body, exhausted) in cases {
            let error = error_from_status("x".into(), StatusCode::TOO_MANY_REQUESTS, *retry_after, body);
            if *exhausted {
                assert!(matches!(error, StoreError::QuotaExhausted { .. }), "{body}: {error:?}");
                assert!(!error.is_transient());
            } else {
                assert!(
                    matches!(error, StoreError::RateLimited { retry_after: r, .. } if r == *retry_after),
                    "{retry_after:?} {body}: {error:?}"
                );
                assert!(error.is_transient());
            }
        }
        // Other statuses with that word are not quota answers.
        assert!(matches!(
            error_from_status("x".into(), StatusCode::SERVICE_UNAVAILABLE, None, hub_body),
            StoreError::Server { status: 503, .. }
        ));
    }

    #[tokio::test]
    async fn a_huge_error_body_is_not_read_whole() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        // 64 MiB of error page, 1 KiB at a time, counting the chunks pulled.
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let chunks = futures_util::stream::iter(0..64 * 1024).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1024]))
        });
        let response = http::Response::builder()
            .status(500)
            .body(reqwest::Body::wrap_stream(chunks))
            .unwrap();
        let error = error_from_response("x".into(), Response::from(response)).await;
        assert!(matches!(error, StoreError::Server { status: 500, .. }), "{error:?}");
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(pulled <= ERROR_BODY_LIMIT / 1024 + 1, "{pulled} KiB read");
    }

    #[test]
    fn long_details_are_cut() {
        let detail = "x".repeat(1000);
        let StoreError::Rejected { detail, .. } = error_from_status("x".into(), StatusCode::BAD_REQUEST, None, &detail)
        else {
            panic!()
        };
        assert!(detail.chars().count() <= DETAIL_LIMIT + 1);
    }
}
