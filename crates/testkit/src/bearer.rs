//! The client side of the Docker bearer-token flow for [`RegistryClient`](crate::RegistryClient):
//! read a `WWW-Authenticate: Bearer …` challenge and fetch the token it points to.

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

use crate::client::describe;

/// The parameters of a `Bearer` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerChallenge {
    pub(crate) realm: String,
    pub(crate) service: Option<String>,
    pub(crate) scope: Option<String>,
}

/// The first `Bearer` challenge among the `WWW-Authenticate` headers, if any.
pub(crate) fn bearer_challenge(headers: &HeaderMap) -> Option<BearerChallenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(parse_bearer_challenge)
}

/// Parses `Bearer realm="…",service="…",scope="…"`. Quoted values may hold commas
/// (`scope="repository:a:pull,push"`).
pub(crate) fn parse_bearer_challenge(value: &str) -> Option<BearerChallenge> {
    let (scheme, params) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after_key) = rest.split_once('=')?;
        let (value, after_value) = match after_key.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after_key.split_once(',').unwrap_or((after_key, "")),
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            "scope" => scope = Some(value.to_owned()),
            _ => {}
        }
        rest = after_value.trim_start_matches([',', ' ']);
    }
    Some(BearerChallenge {
        realm: realm?,
        service,
        scope,
    })
}

/// Fetches a token for `challenge` (with Basic `credentials` if given). Panics naming
/// `what` if the token service refuses.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    challenge: &BearerChallenge,
    credentials: Option<&(String, String)>,
    what: &str,
) -> String {
    let mut query = Vec::new();
    if let Some(service) = &challenge.service {
        query.push(("service", service.as_str()));
    }
    if let Some(scope) = &challenge.scope {
        query.push(("scope", scope.as_str()));
    }
    let mut request = http.get(&challenge.realm).query(&query);
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("testkit: {what}: token request failed: {e}"));
    if !response.status().is_success() {
        panic!("testkit: {what}: token service answered {}", describe(response).await);
    }
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("testkit: {what}: reading the token answer failed: {e}"));
    let body: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("testkit: {what}: token answer is not JSON: {e}"));
    body.get("token")
        .or_else(|| body.get("access_token"))
        .and_then(|token| token.as_str())
        .unwrap_or_else(|| panic!("testkit: {what}: token answer has no token"))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let challenge = parse_bearer_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="hub",scope="repository:a/b:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(challenge.realm, "http://127.0.0.1:1/token");
        assert_eq!(challenge.service.as_deref(), Some("hub"));
        assert_eq!(challenge.scope.as_deref(), Some("repository:a/b:pull,push"));
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer service="no-realm""#), None);
    }
}
