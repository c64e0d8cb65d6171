//! Following `Link: <…>; rel="next"` headers of paginated list endpoints.

use reqwest::header::{HeaderMap, LINK};
use url::Url;

/// The `rel="next"` target of a `Link` header, resolved against the request URL.
/// Registries send it relative (`</v2/_catalog?last=x&n=100>`) or absolute. A malformed
/// value ends the paging (the pages so far are the list).
pub fn next_link(headers: &HeaderMap, request_url: &Url) -> Option<Url> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        for link in link_values(text) {
            let (target, params) = link?;
            let is_next = params.split(';').any(|param| {
                let param = param.trim().replace(' ', "");
                param == "rel=\"next\"" || param == "rel=next"
            });
            if is_next {
                return request_url.join(target).ok();
            }
        }
    }
    None
}

/// The `<target>; params` of a header value, in order; `None` for a malformed one.
/// The target ends at its first `>` (RFC 8288: no `<` or `>` inside) and may hold
/// commas; a link's parameters end where the next `<` follows a comma.
fn link_values(text: &str) -> impl Iterator<Item = Option<(&str, &str)>> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?.trim_start_matches([' ', '\t', ',']);
        if text.is_empty() {
            return None;
        }
        let Some((target, after)) = text.strip_prefix('<').and_then(|text| text.split_once('>')) else {
            rest = None;
            return Some(None);
        };
        if target.contains('<') {
            rest = None;
            return Some(None);
        }
        let next_value = after
            .match_indices(',')
            .map(|(at, _)| at)
            .find(|&at| after[at + 1..].trim_start().starts_with('<'));
        let (params, remaining) = match next_value {
            Some(at) => (&after[..at], Some(&after[at..])),
            None => (after, None),
        };
        // Only parameters may follow the target.
        let params = params.trim();
        if !(params.is_empty() || params.starts_with(';')) {
            rest = None;
            return Some(None);
        }
        rest = remaining;
        Some(Some((target, params)))
    })
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

    #[test]
    fn a_target_ends_at_its_first_bracket_and_may_hold_commas() {
        // Found by the link fuzz target: `</prev>x?last=1>` was followed to
        // `/prev%3Ex?last=1`, a target assembled across the closing bracket.
        let base = Url::parse("http://127.0.0.1:5000/v2/_catalog?n=2").unwrap();
        assert!(next_link(&link("</prev>othkr.st?last=1>; rel=next"), &base).is_none());
        assert!(next_link(&link("</a<b>; rel=next"), &base).is_none());
        // A comma inside the target once split the value and ended the paging early.
        assert_eq!(
            next_link(&link(r#"</v2/_catalog?last=a,b&n=2>; rel="next""#), &base)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/v2/_catalog?last=a,b&n=2"
        );
        assert_eq!(
            next_link(
                &link(r#"</p?x=1,2>; rel="prev", </v2/_catalog?last=z>; rel="next""#),
                &base
            )
            .unwrap()
            .as_str(),
            "http://127.0.0.1:5000/v2/_catalog?last=z"
        );
    }
}
