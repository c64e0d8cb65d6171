//! Plain reqwest plumbing shared by seeding and inspection: [`RegistryClient`] (optional
//! basic auth, the bearer-token flow) and URL / `Link` header helpers. Independent of the
//! ocisync crates.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LINK};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use crate::bearer::{bearer_challenge, fetch_token};

/// A minimal registry client for tests: anonymous or HTTP basic auth. A `401` with a
/// `Bearer` challenge is answered once: a token is fetched from the challenge's realm
/// (with the basic credentials, if any) and the request is sent again with it. Tokens
/// are not cached: every request of a token-auth registry costs three.
///
/// The free functions in [`crate::seed`] and [`crate::inspect`] use a fresh anonymous
/// client per call; build one of these to talk to an htpasswd-protected registry. A
/// client (its connection pool) belongs to the tokio runtime it was first used on, so do
/// not keep one in a static shared across `#[tokio::test]`s.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    auth: Option<(String, String)>,
}

impl Default for RegistryClient {
    fn default() -> Self {
        RegistryClient::new()
    }
}

impl RegistryClient {
    /// An anonymous client (ignores `HTTP_PROXY` and friends).
    pub fn new() -> RegistryClient {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(300))
            .build()
            .expect("testkit: build reqwest client");
        RegistryClient { http, auth: None }
    }

    /// The same client, sending HTTP basic auth on every request.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> RegistryClient {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// A request with auth applied. `url` must be absolute.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.auth {
            Some((user, password)) => builder.basic_auth(user, Some(password)),
            None => builder,
        }
    }

    /// Sends a request, answering one `Bearer` challenge; panics with `what` on
    /// transport errors.
    pub async fn send(&self, builder: RequestBuilder, what: &str) -> Response {
        let request = builder
            .build()
            .unwrap_or_else(|e| panic!("testkit: {what}: bad request: {e}"));
        // `None` for a streaming body; every body testkit sends is in memory.
        let again = request.try_clone();
        let response = self.execute(request, what).await;
        if response.status() != StatusCode::UNAUTHORIZED {
            return response;
        }
        let (Some(challenge), Some(mut again)) = (bearer_challenge(response.headers()), again) else {
            return response;
        };
        let token = fetch_token(&self.http, &challenge, self.auth.as_ref(), what).await;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .unwrap_or_else(|_| panic!("testkit: {what}: the token is not a valid header value"));
        again.headers_mut().insert(AUTHORIZATION, bearer);
        self.execute(again, what).await
    }

    async fn execute(&self, request: reqwest::Request, what: &str) -> Response {
        self.http
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("testkit: {what}: request failed: {e}"))
    }
}

/// `base_url` without trailing slashes.
pub fn trim_base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// Resolves a possibly relative URL (a `Location` or `Link` target) against `against`.
pub fn resolve(against: &str, target: &str) -> Url {
    Url::parse(against)
        .and_then(|base| base.join(target))
        .unwrap_or_else(|e| panic!("testkit: cannot resolve {target:?} against {against:?}: {e}"))
}

/// The target of the `rel="next"` entry of a `Link` header, if any.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|entry| {
            let (target, params) = entry.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_owned())
        })
}

/// Status plus the start of the body, for panic messages.
pub async fn describe(response: Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let mut snippet: String = body.chars().take(500).collect();
    if snippet.len() < body.len() {
        snippet.push('…');
    }
    format!("{status}: {}", snippet.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn parses_next_links() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static("</v2/_catalog?last=b&n=2>; rel=\"next\""),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        headers.insert(LINK, HeaderValue::from_static("<http://x/a>; rel=\"prev\""));
        assert_eq!(next_link(&headers), None);
        assert_eq!(
            resolve("http://127.0.0.1:1/v2/_catalog?n=2", "/v2/_catalog?last=b&n=2").as_str(),
            "http://127.0.0.1:1/v2/_catalog?last=b&n=2"
        );
    }
}
