//! Turning HTTP outcomes into [`StoreError`]s, keeping the status and `Retry-After`.

use std::time::{Duration, SystemTime};

use ocisync_oci::StoreError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

/// Longest error body text quoted in a message.
const DETAIL_LIMIT: usize = 300;

/// The error for a response whose status is not the one the operation expects.
pub async fn error_from_response(what: String, response: Response) -> StoreError {
    let status = response.status();
    let retry_after = parse_retry_after(response.headers(), SystemTime::now());
    let detail = response.text().await.unwrap_or_default();
    error_from_status(what, status, retry_after, &detail)
}

pub fn error_from_status(what: String, status: StatusCode, retry_after: Option<Duration>, detail: &str) -> StoreError {
    match status {
        StatusCode::UNAUTHORIZED => StoreError::Unauthorized { what },
        StatusCode::FORBIDDEN => StoreError::Denied { what },
        StatusCode::NOT_FOUND => StoreError::NotFound { what },
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
    let mut causes = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.iter().any(|known| known.contains(&text)) {
            causes.push(text);
        }
        source = cause.source();
    }
    let reason = causes.join(": ");
    if reason.to_ascii_lowercase().contains("certificate") {
        return StoreError::Tls { what, reason };
    }
    StoreError::Transport {
        what,
        source: reason.into(),
    }
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
    fn long_details_are_cut() {
        let detail = "x".repeat(1000);
        let StoreError::Rejected { detail, .. } = error_from_status("x".into(), StatusCode::BAD_REQUEST, None, &detail)
        else {
            panic!()
        };
        assert!(detail.chars().count() <= DETAIL_LIMIT + 1);
    }
}
