//! Registry authentication: HTTP Basic and the Docker bearer-token flow.
//!
//! A request first goes out with whatever authorization is known for its scope. On a
//! 401 the `WWW-Authenticate` challenge says what the registry wants: `Basic` means
//! send the credentials, `Bearer realm=… service=…` means fetch a token for the scope
//! from the realm (with the credentials, if any) and send that.
//!
//! Tokens are cached per scope. A token is renewed before it runs out: once three
//! quarters of its `expires_in` (60 s when the token service does not say, as the
//! distribution token spec defines), or all but 30 s of it, have passed since it was
//! requested, the next request fetches a new one first. That matters for streaming
//! uploads, which are sent once and cannot answer a challenge. A token the registry
//! rejects anyway (a 401 mid-pass) is renewed once by the challenge; concurrent requests
//! that were rejected with the same token share one renewal.
//!
//! An identity token ([`Credentials::IdentityToken`]) is an OAuth2 refresh token: the
//! token service is asked with `POST realm` and the form `grant_type=refresh_token`, as
//! docker does (distribution's "OAuth2 Token Authentication" spec), never as Basic.
//! [`Authorizer::replace_credentials`] swaps the credentials (a credential helper's
//! fresh answer) and forgets every token obtained with the old ones.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ocisync_oci::StoreError;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use serde::Deserialize;

use crate::body::{read_capped, TOKEN_BODY_LIMIT};
use crate::client::Clients;
use crate::deadline::Deadline;
use crate::status::error_from_response;

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

/// What a client proves its identity to one registry with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A username and password, sent as HTTP Basic to the registry or its token service.
    Password { username: String, password: Secret },
    /// An identity token (docker's `identitytoken`, a credential helper's `<token>`
    /// user): an OAuth2 refresh token that the token service exchanges for access
    /// tokens. A registry that wants Basic gets nothing from it.
    IdentityToken(Secret),
}

/// `client_id` sent with a refresh-token grant (required by the OAuth2 spec of distribution).
const OAUTH_CLIENT_ID: &str = "ocisync";

impl Credentials {
    /// A username and password.
    pub fn password(username: impl Into<String>, password: Secret) -> Self {
        Credentials::Password {
            username: username.into(),
            password,
        }
    }

    /// The username, when there is one (an identity token has none).
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Password { username, .. } => Some(username),
            Credentials::IdentityToken(_) => None,
        }
    }

    /// The HTTP Basic `Authorization` value; `None` for an identity token.
    fn basic_header(&self) -> Option<HeaderValue> {
        let Credentials::Password { username, password } = self else {
            return None;
        };
        let pair = format!("{username}:{}", password.expose());
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        Some(sensitive(&format!("Basic {encoded}")))
    }
}

fn sensitive(value: &str) -> HeaderValue {
    // Marked sensitive so that HTTP-level debug output never prints it.
    let mut header = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

/// Lifetime of a token whose response has no `expires_in` (distribution token spec).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Longest time before a token's end at which it is renewed.
const MAX_RENEWAL_MARGIN: Duration = Duration::from_secs(30);
/// Longest `expires_in` believed: a day. Keeps the arithmetic in range whatever a token
/// service sends.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Authorization state of one registry endpoint.
pub struct Authorizer {
    plain_http_registry: bool,
    state: Mutex<State>,
    /// Held while a token is fetched, so concurrent requests renew a token once.
    renewal: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    credentials: Option<Credentials>,
    /// The registry answered with a Basic challenge: send credentials on every request.
    basic: bool,
    /// Bearer tokens by the scope the request needs.
    tokens: HashMap<String, CachedToken>,
}

struct CachedToken {
    header: HeaderValue,
    /// Where the token came from, to renew it without waiting for a challenge.
    source: TokenSource,
    /// After this, fetch a new token before sending.
    renew_after: Instant,
}

/// The token service and scope named by a Bearer challenge.
#[derive(Clone)]
struct TokenSource {
    realm: String,
    service: Option<String>,
    scope: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// When to renew a token with `lifetime`, requested at `requested_at`.
fn renewal_time(requested_at: Instant, lifetime: Duration) -> Instant {
    let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
    requested_at + lifetime - (lifetime / 4).min(MAX_RENEWAL_MARGIN)
}

impl Authorizer {
    pub fn new(credentials: Option<Credentials>, plain_http_registry: bool) -> Self {
        Authorizer {
            plain_http_registry,
            state: Mutex::new(State {
                credentials,
                ..State::default()
            }),
            renewal: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Uses `credentials` from now on and forgets the tokens obtained with the old ones.
    /// Waits for a token request in flight, so none is cached after the swap.
    pub async fn replace_credentials(&self, credentials: Option<Credentials>) {
        let _renewal = self.renewal.lock().await;
        let mut state = self.state();
        state.credentials = credentials;
        state.tokens.clear();
    }

    fn basic_header(state: &State) -> Option<HeaderValue> {
        state.credentials.as_ref().and_then(Credentials::basic_header)
    }

    /// The `Authorization` value to send for `scope`, if one is known. A token near its
    /// end is renewed first; `what` names the request in errors.
    pub async fn header(&self, clients: &Clients, scope: &str, what: &str) -> Result<Option<HeaderValue>, StoreError> {
        let source = {
            let state = self.state();
            match state.tokens.get(scope) {
                Some(token) if Instant::now() < token.renew_after => return Ok(Some(token.header.clone())),
                Some(token) => token.source.clone(),
                None if state.basic => return Ok(Self::basic_header(&state)),
                None => return Ok(None),
            }
        };
        let _renewal = self.renewal.lock().await;
        if let Some(token) = self.state().tokens.get(scope) {
            if Instant::now() < token.renew_after {
                // Renewed by another request while this one waited.
                return Ok(Some(token.header.clone()));
            }
        }
        let header = self.fetch_token(clients, source, scope, what).await?;
        Ok(Some(header))
    }

    /// Answers a 401 to a request sent with `sent` (its `Authorization`, if any):
    /// returns `true` when new authorization was obtained and the request is worth
    /// sending again, `false` when there is nothing more to try.
    pub async fn handle_challenge(
        &self,
        clients: &Clients,
        response_headers: &HeaderMap,
        scope: &str,
        sent: Option<&HeaderValue>,
        what: &str,
    ) -> Result<bool, StoreError> {
        let Some(challenge) = response_headers
            .get(WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .and_then(Challenge::parse)
        else {
            return Ok(false);
        };
        match challenge {
            Challenge::Basic => {
                // Credentials already sent and refused are wrong; a request that went
                // out before a concurrent one switched Basic on just goes again.
                let mut state = self.state();
                if sent.is_some() || Self::basic_header(&state).is_none() {
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
                let _renewal = self.renewal.lock().await;
                let renewed_meanwhile = self
                    .state()
                    .tokens
                    .get(scope)
                    .is_some_and(|token| Some(&token.header) != sent);
                if renewed_meanwhile {
                    return Ok(true);
                }
                let source = TokenSource {
                    realm,
                    service,
                    scope: challenged_scope.unwrap_or_else(|| scope.to_owned()),
                };
                self.fetch_token(clients, source, scope, what).await?;
                Ok(true)
            }
        }
    }

    /// Fetches a token from `source` and caches it for `scope`. Call with `renewal` held.
    async fn fetch_token(
        &self,
        clients: &Clients,
        source: TokenSource,
        scope: &str,
        what: &str,
    ) -> Result<HeaderValue, StoreError> {
        let realm = &source.realm;
        let what = format!("{what}: token from {realm}");
        let credentials = self.state().credentials.clone();
        let realm = realm_url(realm, credentials.is_some(), self.plain_http_registry).map_err(|reason| {
            StoreError::Invalid {
                what: what.clone(),
                reason,
            }
        })?;
        // The registry's own client if the realm is on its origin; else one that always
        // verifies certificates, whatever `tls_verify` says. No redirects either way.
        let http = clients.for_url(&realm);
        let mut query = vec![("scope", source.scope.as_str())];
        if let Some(service) = &source.service {
            query.push(("service", service));
        }
        let request = match &credentials {
            None => http.get(realm.clone()).query(&query),
            Some(password @ Credentials::Password { .. }) => {
                let mut request = http.get(realm.clone()).query(&query);
                if let Some(header) = password.basic_header() {
                    request = request.header(reqwest::header::AUTHORIZATION, header);
                }
                request
            }
            // The OAuth2 refresh-token grant, as docker sends it for an identity token.
            Some(Credentials::IdentityToken(token)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.expose()),
                    ("client_id", OAUTH_CLIENT_ID),
                ];
                form.extend(query);
                http.post(realm.clone()).form(&form)
            }
        };
        let requested_at = Instant::now();
        let deadline = Deadline::start(clients.request_timeout);
        let response = deadline.bound_body(deadline.send(&what, request).await?);
        if !response.status().is_success() {
            return Err(error_from_response(what, response).await);
        }
        let bytes = read_capped(&what, response, TOKEN_BODY_LIMIT).await?;
        let body: TokenResponse = serde_json::from_slice(&bytes).map_err(|error| StoreError::Invalid {
            what: what.clone(),
            reason: format!("token response is not JSON: {error}"),
        })?;
        let lifetime = body.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        let token = body.token.or(body.access_token).ok_or_else(|| StoreError::Invalid {
            what,
            reason: "token response has no token".to_owned(),
        })?;
        let header = sensitive(&format!("Bearer {token}"));
        self.state().tokens.insert(
            scope.to_owned(),
            CachedToken {
                header: header.clone(),
                source,
                renew_after: renewal_time(requested_at, lifetime),
            },
        );
        Ok(header)
    }
}

/// The token realm a challenge named, parsed as a URL. Credentials go to it over TLS
/// only (`https`), or over plain HTTP when the registry itself is configured plain HTTP
/// (a lab on loopback); anything else that would carry them is refused. A string
/// compare is not enough: `HTTP://host/` and `http:host/token` are plain HTTP too.
fn realm_url(realm: &str, with_credentials: bool, plain_http_registry: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(realm).map_err(|error| format!("token realm is not a URL ({error})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if !with_credentials || plain_http_registry => Ok(url),
        "http" => Err("token realm is plain HTTP; refusing to send credentials".to_owned()),
        other => Err(format!("token realm has scheme \"{other}\"; only https is used")),
    }
}

#[cfg(feature = "fuzzing")]
pub(crate) fn fuzzing_challenge_realm(header: &str) -> Option<Option<String>> {
    Challenge::parse(header).map(|challenge| match challenge {
        Challenge::Basic => None,
        Challenge::Bearer { realm, .. } => Some(realm),
    })
}

#[cfg(feature = "fuzzing")]
pub(crate) fn fuzzing_realm_scheme(realm: &str) -> Option<String> {
    realm_url(realm, true, false).ok().map(|url| url.scheme().to_owned())
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
    fn credentials_reach_a_token_realm_over_tls_only() {
        // (realm, with credentials, registry is plain HTTP, accepted)
        let cases = [
            ("https://auth.example/token", true, false, true),
            ("HTTPS://auth.example/token", true, false, true),
            ("http://auth.example/token", true, false, false),
            ("HTTP://auth.example/token", true, false, false),
            ("http:127.0.0.1:18082/token", true, false, false),
            ("http:auth.example/token", true, false, false),
            ("http://127.0.0.1:5000/token", true, true, true),
            ("http://auth.example/token", false, false, true),
            ("ftp://auth.example/token", false, false, false),
            ("file:///etc/passwd", true, true, false),
            ("/token", true, false, false),
        ];
        for (realm, with_credentials, plain_http_registry, accepted) in cases {
            let result = realm_url(realm, with_credentials, plain_http_registry);
            assert_eq!(
                result.is_ok(),
                accepted,
                "{realm} {with_credentials} {plain_http_registry}: {result:?}"
            );
        }
    }

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
    fn tokens_are_renewed_before_they_run_out() {
        let start = Instant::now();
        let renew_after = |seconds| renewal_time(start, Duration::from_secs(seconds)) - start;
        assert_eq!(renew_after(2), Duration::from_millis(1500), "a quarter early");
        assert_eq!(renew_after(60), Duration::from_secs(45));
        assert_eq!(renew_after(300), Duration::from_secs(270), "at most 30 s early");
        assert_eq!(
            renew_after(0),
            Duration::ZERO,
            "a token without lifetime is renewed every time"
        );
        let longest = MAX_TOKEN_LIFETIME - MAX_RENEWAL_MARGIN;
        assert_eq!(renew_after(u64::MAX), longest, "no overflow");
    }

    #[test]
    fn secrets_never_print() {
        let credentials = Credentials::password("user", Secret::new("hunter2"));
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert_eq!(Secret::new("hunter2").to_string(), "***");
        assert!(!format!("{:?}", credentials.basic_header()).contains("aHVudGVy"));
        let identity = Credentials::IdentityToken(Secret::new("refresh-me"));
        assert!(!format!("{identity:?}").contains("refresh-me"));
        assert_eq!(identity.basic_header(), None, "an identity token is never Basic");
    }
}
