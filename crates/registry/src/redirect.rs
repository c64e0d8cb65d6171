//! Redirects, followed by [`Endpoint`](crate::client::Endpoint) itself rather than by
//! reqwest, so that each hop is sent with the client and the authorization its own
//! origin deserves: the registry's origin gets its credentials and its `tls_verify`,
//! any other origin neither.

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use url::Url;

/// Most redirects followed for one request (reqwest's default).
pub const MAX_REDIRECTS: usize = 10;

/// Where a `status` answer to `method url` leads, if it is a redirect worth following:
/// the next URL and the method to use there. A 307 or 308 repeats the request; a
/// 301, 302 or 303 is followed by a `GET` or `HEAD` only (the request is read again
/// there, as reqwest would), and a write they answer is not followed: its caller sees
/// the 3xx.
pub fn next_hop(status: StatusCode, headers: &HeaderMap, method: &Method, url: &Url) -> Option<(Url, Method)> {
    let repeats_request = match status {
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => true,
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER => false,
        _ => return None,
    };
    let location = headers.get(LOCATION)?.to_str().ok()?;
    let next = url.join(location).ok()?;
    if !matches!(next.scheme(), "http" | "https") {
        return None;
    }
    let reads = *method == Method::GET || *method == Method::HEAD;
    (repeats_request || reads).then(|| (next, method.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn hop(status: u16, location: Option<&str>, method: Method) -> Option<(String, Method)> {
        let mut headers = HeaderMap::new();
        if let Some(location) = location {
            headers.insert(LOCATION, HeaderValue::from_str(location).unwrap());
        }
        let url = Url::parse("https://registry.example/v2/a/blobs/sha256:1").unwrap();
        next_hop(StatusCode::from_u16(status).unwrap(), &headers, &method, &url)
            .map(|(url, method)| (url.to_string(), method))
    }

    #[test]
    fn which_redirects_are_followed_and_how() {
        let cdn = "https://cdn.example/blob?sig=1";
        assert_eq!(hop(307, Some(cdn), Method::GET), Some((cdn.into(), Method::GET)));
        assert_eq!(hop(308, Some(cdn), Method::PUT), Some((cdn.into(), Method::PUT)));
        assert_eq!(hop(302, Some(cdn), Method::HEAD), Some((cdn.into(), Method::HEAD)));
        assert_eq!(
            hop(301, Some("/v2/b"), Method::GET),
            Some(("https://registry.example/v2/b".into(), Method::GET)),
            "relative to the request"
        );
        assert_eq!(
            hop(301, Some("http://registry.example/v2/a"), Method::GET),
            Some(("http://registry.example/v2/a".into(), Method::GET)),
            "another scheme is another origin: followed, without credentials"
        );
        assert_eq!(
            hop(303, Some(cdn), Method::POST),
            None,
            "a write is not turned into a GET"
        );
        assert_eq!(hop(302, Some(cdn), Method::PUT), None);
        assert_eq!(hop(307, None, Method::GET), None, "no Location");
        assert_eq!(hop(307, Some("file:///etc/passwd"), Method::GET), None);
        assert_eq!(hop(304, Some(cdn), Method::GET), None, "not a redirect");
        assert_eq!(hop(200, Some(cdn), Method::GET), None);
    }
}
