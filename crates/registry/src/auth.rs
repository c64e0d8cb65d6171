//! Registry authentication: HTTP Basic and the Docker bearer-token flow.
//!
//! A request first goes out with whatever authorization is known for its scope. On a
//! 401 the `WWW-Authenticate` challenge says what the registry wants: `Basic` means
//! send the credentials, `Bearer realm=… service=…` means fetch a token for the scope
//! from the realm (with the credentials, if any) and send that. Tokens are cached per
//! scope until the registry rejects them again.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use base64::Engine as _;
use ocisync_oci::StoreError;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use serde::Deserialize;

use crate::status::{error_from_response, transport_error};

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A username and password for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    fn basic_header(&self) -> HeaderValue {
        let pair = format!("{}:{}", self.username, self.password.expose());
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        sensitive(&format!("Basic {encoded}"))
    }
}

fn sensitive(value: &str) -> HeaderValue {
    // Marked sensitive so that HTTP-level debug output never prints it.
    let mut header = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

/// Authorization state of one registry endpoint.
pub struct Authorizer {
    credentials: Option<Credentials>,
    plain_http_registry: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The registry answered with a Basic challenge: send credentials on every request.
    basic: bool,
    /// Bearer tokens by scope.
    tokens: HashMap<String, HeaderValue>,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

impl Authorizer {
    pub fn new(credentials: Option<Credentials>, plain_http_registry: bool) -> Self {
        Authorizer {
            credentials,
            plain_http_registry,
            state: Mutex::new(State::default()),
        }
    }

    /// The `Authorization` value to send for `scope`, if one is known.
    pub fn header(&self, scope: &str) -> Option<HeaderValue> {
        let state = self.state.lock().unwrap();
        if let Some(token) = state.tokens.get(scope) {
            return Some(token.clone());
        }
        if state.basic {
            return self.credentials.as_ref().map(Credentials::basic_header);
        }
        None
    }

    /// Answers a 401 to a request that carried `sent` (or no authorization): returns
    /// `true` when new authorization was obtained and the request is worth sending
    /// again, `false` when there is nothing more to try.
    ///
    /// Requests run concurrently: when another request already answered the same
    /// challenge, what it obtained is used instead of asking again.
    pub async fn handle_challenge(
        &self,
        http: &reqwest::Client,
        response_headers: &HeaderMap,
        scope: &str,
        sent: Option<&HeaderValue>,
    ) -> Result<bool, StoreError> {
        if let Some(current) = self.header(scope) {
            if sent != Some(&current) {
                return Ok(true);
            }
        }
        let Some(challenge) = response_headers
            .get(WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .and_then(Challenge::parse)
        else {
            return Ok(false);
        };
        match challenge {
            Challenge::Basic => {
                let mut state = self.state.lock().unwrap();
                // Basic credentials already sent and refused: they are wrong.
                if sent.is_some() || self.credentials.is_none() {
                    return Ok(false);
                }
                state.basic = true;
                Ok(true)
            }
            Challenge::Bearer {
                realm,
                service,
                scope: challenged_scope,
            } => {
                let scope_to_request = challenged_scope.unwrap_or_else(|| scope.to_owned());
                let token = self
                    .fetch_token(http, &realm, service.as_deref(), &scope_to_request)
                    .await?;
                self.state.lock().unwrap().tokens.insert(scope.to_owned(), token);
                Ok(true)
            }
        }
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<HeaderValue, StoreError> {
        let what = format!("token from {realm}");
        // Credentials go to a token service over TLS only, unless the registry itself is plain HTTP.
        if self.credentials.is_some() && realm.starts_with("http://") && !self.plain_http_registry {
            return Err(StoreError::Invalid {
                what,
                reason: "token realm is plain HTTP; refusing to send credentials".to_owned(),
            });
        }
        let mut query = vec![("scope", scope)];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let mut request = http.get(realm).query(&query);
        if let Some(credentials) = &self.credentials {
            request = request.header(reqwest::header::AUTHORIZATION, credentials.basic_header());
        }
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(what.clone(), error))?;
        if !response.status().is_success() {
            return Err(error_from_response(what, response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|error| transport_error(what.clone(), error))?;
        let body: TokenResponse = serde_json::from_slice(&bytes).map_err(|error| StoreError::Invalid {
            what: what.clone(),
            reason: format!("token response is not JSON: {error}"),
        })?;
        let token = body.token.or(body.access_token).ok_or_else(|| StoreError::Invalid {
            what,
            reason: "token response has no token".to_owned(),
        })?;
        Ok(sensitive(&format!("Bearer {token}")))
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    fn parse(header: &str) -> Option<Challenge> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `key="value", key=value` pairs; quoted values may contain commas.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_scope() {
        let challenge = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            challenge,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
    }

    #[test]
    fn parses_basic_and_rejects_unknown() {
        assert_eq!(Challenge::parse(r#"Basic realm="basic-realm""#), Some(Challenge::Basic));
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(
            Challenge::parse("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
    }

    #[test]
    fn secrets_never_print() {
        let credentials = Credentials {
            username: "user".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert_eq!(Secret::new("hunter2").to_string(), "***");
        assert!(!format!("{:?}", credentials.basic_header()).contains("aHVudGVy"));
    }
}
