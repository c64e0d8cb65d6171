//! Following `Link: <…>; rel="next"` headers of paginated list endpoints.

use reqwest::header::{HeaderMap, LINK};
use url::Url;

/// The `rel="next"` target of a `Link` header, resolved against the request URL.
/// Registries send it relative (`</v2/_catalog?last=x&n=100>`) or absolute.
pub fn next_link(headers: &HeaderMap, request_url: &Url) -> Option<Url> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        for link in text.split(',') {
            let mut parts = link.split(';');
            let target = parts.next()?.trim();
            let is_next = parts.any(|param| {
                let param = param.trim().replace(' ', "");
                param == "rel=\"next\"" || param == "rel=next"
            });
            if is_next {
                let target = target.strip_prefix('<')?.strip_suffix('>')?;
                return request_url.join(target).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn link(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LINK, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn resolves_relative_and_absolute_links() {
        let base = Url::parse("http://127.0.0.1:5000/v2/_catalog?n=2").unwrap();
        assert_eq!(
            next_link(&link(r#"</v2/_catalog?last=b&n=2>; rel="next""#), &base)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/v2/_catalog?last=b&n=2"
        );
        assert_eq!(
            next_link(
                &link(r#"<https://mirror.example/v2/x/tags/list?last=1>; rel=next"#),
                &base
            )
            .unwrap()
            .as_str(),
            "https://mirror.example/v2/x/tags/list?last=1"
        );
        assert_eq!(
            next_link(
                &link(r#"</prev>; rel="prev", </v2/_catalog?last=z>; rel="next""#),
                &base
            )
            .unwrap()
            .path(),
            "/v2/_catalog"
        );
        assert!(next_link(&link(r#"</prev>; rel="prev""#), &base).is_none());
        assert!(next_link(&HeaderMap::new(), &base).is_none());
    }
}
