//! Reading a registry's announced pull quota from `ratelimit-limit` / `ratelimit-remaining`.
//!
//! Docker Hub sends `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 76;w=21600`
//! on manifest responses (`w`: the window in seconds). The parser is lenient, as the
//! IETF RateLimit header drafts allow more than Docker Hub sends: a bare number, other
//! `;` parameters, spaces, any case, and a `,` list of policies after the first value.

use reqwest::header::HeaderMap;

const LIMIT_HEADER: &str = "ratelimit-limit";
const REMAINING_HEADER: &str = "ratelimit-remaining";

/// A registry's pull quota as one response announced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Pulls allowed per window, when the registry said.
    pub limit: Option<u64>,
    /// Pulls left in the current window.
    pub remaining: u64,
    /// The window's length in seconds (`w=`), when the registry said.
    pub window_seconds: Option<u64>,
}

impl RateLimit {
    /// The quota the headers announce; `None` when there is no readable
    /// `ratelimit-remaining` (a registry without a quota sends none).
    pub fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let value = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_quota_value)
        };
        let (remaining, remaining_window) = value(REMAINING_HEADER)?;
        let limit = value(LIMIT_HEADER);
        Some(RateLimit {
            limit: limit.map(|(limit, _)| limit),
            remaining,
            window_seconds: remaining_window.or(limit.and_then(|(_, window)| window)),
        })
    }
}

/// `100;w=21600` → `(100, Some(21600))`; `100` → `(100, None)`. The number is the first
/// item of a `,` list; the window is the first `w=` among the items' parameters.
pub fn parse_quota_value(text: &str) -> Option<(u64, Option<u64>)> {
    let mut items = text.split(',');
    let first = items.next()?;
    let mut parts = first.split(';');
    let count = parts.next()?.trim().parse::<u64>().ok()?;
    let window = parts
        .chain(items.flat_map(|item| item.split(';').skip(1)))
        .find_map(|parameter| {
            let (name, value) = parameter.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("w")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        });
    Some((count, window))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn quota_values_docker_hub_and_lenient_forms() {
        type Parsed = Option<(u64, Option<u64>)>;
        let cases: &[(&str, Parsed)] = &[
            ("100;w=21600", Some((100, Some(21600)))),
            ("0;w=21600", Some((0, Some(21600)))),
            ("76", Some((76, None))),
            (" 76 ; w = 60 ", Some((76, Some(60)))),
            ("76;W=60", Some((76, Some(60)))),
            ("76;burst=10;w=60;comment=\"x\"", Some((76, Some(60)))),
            ("76;w=\"60\"", Some((76, Some(60)))),
            ("76;w=soon", Some((76, None))),
            ("76;policy", Some((76, None))),
            ("10, 10;w=1, 50;w=60", Some((10, Some(1)))),
            ("", None),
            ("many", None),
            ("-1;w=60", None),
            (";w=60", None),
            ("1.5;w=60", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_quota_value(text), *expected, "{text:?}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn rate_limit_from_response_headers() {
        let hub = headers(&[(LIMIT_HEADER, "100;w=21600"), (REMAINING_HEADER, "76;w=21600")]);
        assert_eq!(
            RateLimit::from_headers(&hub),
            Some(RateLimit {
                limit: Some(100),
                remaining: 76,
                window_seconds: Some(21600)
            })
        );
        // The window may come from either header; a bare remaining is enough.
        let window_on_limit = headers(&[("RateLimit-Limit", "100;w=60"), ("RateLimit-Remaining", "7")]);
        assert_eq!(
            RateLimit::from_headers(&window_on_limit),
            Some(RateLimit {
                limit: Some(100),
                remaining: 7,
                window_seconds: Some(60)
            })
        );
        let bare = headers(&[(REMAINING_HEADER, "7")]);
        assert_eq!(
            RateLimit::from_headers(&bare),
            Some(RateLimit {
                limit: None,
                remaining: 7,
                window_seconds: None
            })
        );
        // Without a readable remaining count there is nothing to go by.
        assert_eq!(RateLimit::from_headers(&headers(&[(LIMIT_HEADER, "100;w=60")])), None);
        assert_eq!(RateLimit::from_headers(&headers(&[(REMAINING_HEADER, "lots")])), None);
        assert_eq!(RateLimit::from_headers(&HeaderMap::new()), None);
    }
}
