//! [`TokenServer`]: a Docker registry token service on `127.0.0.1`, for registries started
//! with token auth ([`TestRegistryBuilder::token_auth`](crate::TestRegistryBuilder::token_auth)).
//!
//! It answers `GET /token?service=…&scope=…` the way the distribution token-auth spec
//! describes: Basic credentials are checked against a user table, each requested scope
//! is granted the actions the user may have, and the answer is a signed JWT that
//! distribution 2.8 accepts: ES256, with the signing certificate in the `x5c` header
//! (it is also the registry's `rootcertbundle`), and the claims `iss`, `sub`, `aud` (the
//! service), `exp`, `nbf`, `iat`, `jti` and `access`. Requests without credentials get a
//! token granting nothing, or, from a server started with [`AnonymousAccess::PullEachRepository`],
//! `pull` on each repository they name (as Docker Hub's anonymous tokens for public
//! repositories do); wrong credentials get a 401. Every request is recorded
//! ([`TokenRequest`]) so tests can check which scopes a client asked for.
//!
//! A user with an identity token ([`TokenUser::with_identity_token`]) can also be
//! served the OAuth2 way docker uses for identity tokens (distribution's "OAuth2 Token
//! Authentication"): `POST /token` with the form `grant_type=refresh_token`,
//! `refresh_token`, `client_id`, `service` and `scope` (space-separated), answered with
//! `access_token`. Other grant types are refused with a 400; an unknown refresh token
//! with a 401.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use tempfile::TempDir;

use crate::serve::LocalServer;

/// The `service` the token server and its registries agree on (the JWT audience).
pub const TOKEN_SERVICE: &str = "ocisync-testkit-registry";
/// The JWT issuer the registries trust.
pub const TOKEN_ISSUER: &str = "ocisync-testkit-token-server";
/// distribution accepts a token this long past its `exp` (and before its `nbf`) for clock
/// skew (`Leeway` in `registry/auth/token/token.go`).
const REGISTRY_LEEWAY_SECONDS: u64 = 60;

/// One account of the token server and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    pub username: String,
    pub password: String,
    /// Actions granted on every repository, e.g. `["pull"]` or `["pull", "push"]`.
    pub repository_actions: Vec<String>,
    /// Whether the user may list the catalog (`registry:catalog:*`).
    pub catalog: bool,
    /// An OAuth2 refresh token (docker's identity token) that also authenticates the user.
    pub identity_token: Option<String>,
}

impl TokenUser {
    /// May pull any repository and list the catalog.
    pub fn reader(username: &str, password: &str) -> TokenUser {
        TokenUser::with_actions(username, password, &["pull"])
    }

    /// May pull and push any repository and list the catalog.
    pub fn writer(username: &str, password: &str) -> TokenUser {
        TokenUser::with_actions(username, password, &["pull", "push"])
    }

    fn with_actions(username: &str, password: &str, actions: &[&str]) -> TokenUser {
        TokenUser {
            username: username.to_owned(),
            password: password.to_owned(),
            repository_actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            catalog: true,
            identity_token: None,
        }
    }

    /// The same user, also known by an identity token (an OAuth2 refresh token).
    pub fn with_identity_token(mut self, token: &str) -> TokenUser {
        self.identity_token = Some(token.to_owned());
        self
    }
}

/// Options for [`TokenServer::start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenServerOptions {
    pub users: Vec<TokenUser>,
    /// How long after issue a registry accepts a token (whole seconds). The JWT `exp` is
    /// set `REGISTRY_LEEWAY` (60 s) earlier than that, so that short lifetimes really
    /// end when they say: distribution accepts tokens up to 60 s past `exp`.
    pub lifetime: Duration,
    /// The `expires_in` told to clients; `None` tells them `lifetime`. A longer value
    /// hides the expiry from a client, so only the registry's 401 reveals it.
    pub advertised_lifetime: Option<Duration>,
}

impl Default for TokenServerOptions {
    fn default() -> Self {
        TokenServerOptions {
            users: Vec::new(),
            lifetime: Duration::from_secs(300),
            advertised_lifetime: None,
        }
    }
}

/// What a token request without credentials is granted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AnonymousAccess {
    /// Nothing: the token is valid but grants no access.
    #[default]
    Nothing,
    /// `pull` on each repository the request names in a `scope`, and only those: a token
    /// asked for `repository:library/alpine:pull` cannot read `library/busybox`. Never
    /// `push`, never the catalog.
    PullEachRepository,
}

/// One request to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The authenticated user; `None` for anonymous requests and wrong credentials.
    pub user: Option<String>,
    /// The `scope` parameters as sent, e.g. `repository:team/app:pull,push`.
    pub scopes: Vec<String>,
    /// What the token grants, in [canonical](canonical_scope) scope syntax
    /// (`repository:team/app:pull`); only resources with at least one granted action
    /// are listed.
    pub granted: Vec<String>,
    /// 200 for a token, 401 for wrong credentials, 400 for a bad request.
    pub status: u16,
    /// Whether it was an OAuth2 refresh-token grant (`POST`) rather than a `GET`.
    pub refresh_grant: bool,
    /// The token issued, if any (so tests can check it never leaks into errors).
    pub token: Option<String>,
}

struct Signer {
    key: EcdsaKeyPair,
    /// The signing certificate, DER, base64 (standard, padded, as `x5c` requires).
    certificate_x5c: String,
    random: SystemRandom,
}

struct State {
    options: TokenServerOptions,
    anonymous: AnonymousAccess,
    signer: Signer,
    next_jti: AtomicU64,
    log: Mutex<Vec<TokenRequest>>,
}

impl State {
    fn log(&self) -> MutexGuard<'_, Vec<TokenRequest>> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running token service on `http://127.0.0.1:PORT/token`; stopped on drop.
pub struct TokenServer {
    server: LocalServer,
    state: Arc<State>,
    root_certificate_bundle: PathBuf,
    // Dropped last: removes the certificate bundle.
    _dir: TempDir,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer").field("realm", &self.realm()).finish()
    }
}

impl TokenServer {
    /// Starts a token server with a fresh signing key and certificate; anonymous requests
    /// get tokens that grant nothing.
    pub fn start(options: TokenServerOptions) -> TokenServer {
        TokenServer::start_with_anonymous(options, AnonymousAccess::Nothing)
    }

    /// Starts a token server that grants anonymous requests `anonymous`.
    // Not a field of `TokenServerOptions`: other crates build that struct literally.
    pub fn start_with_anonymous(options: TokenServerOptions, anonymous: AnonymousAccess) -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("ocisync-token-")
            .tempdir()
            .expect("testkit: create token server temp dir");
        let key_pair = KeyPair::generate().expect("testkit: generate token signing key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, TOKEN_ISSUER);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
        let certificate = params
            .self_signed(&key_pair)
            .expect("testkit: self-sign token certificate");
        let root_certificate_bundle = dir.path().join("token-signer.pem");
        std::fs::write(&root_certificate_bundle, certificate.pem()).expect("testkit: write token certificate");
        let random = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key_pair.serialize_der(), &random)
            .expect("testkit: load token signing key");
        let state = Arc::new(State {
            options,
            anonymous,
            signer: Signer {
                key,
                certificate_x5c: STANDARD.encode(certificate.der()),
                random,
            },
            next_jti: AtomicU64::new(1),
            log: Mutex::new(Vec::new()),
        });
        let handler_state = Arc::clone(&state);
        let server = LocalServer::start(
            "token",
            Arc::new(move |parts: &Parts, body: &Bytes| handle(&handler_state, parts, body)),
        );
        TokenServer {
            server,
            state,
            root_certificate_bundle,
            _dir: dir,
        }
    }

    /// The token endpoint, `http://127.0.0.1:PORT/token` (the registry's `realm`).
    pub fn realm(&self) -> String {
        format!("{}/token", self.server.url())
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The PEM file with the signing certificate (the registry's `rootcertbundle`).
    pub fn root_certificate_bundle(&self) -> &Path {
        &self.root_certificate_bundle
    }

    /// Every token request so far (since start or [`reset`](Self::reset)), in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.log().clone()
    }

    /// How many token requests asked for `scope` (one of their `scope` values), in any
    /// order of actions: distribution's challenges name them in random order.
    pub fn requests_for(&self, scope: &str) -> usize {
        let wanted = canonical_scope(scope);
        self.state
            .log()
            .iter()
            .filter(|request| request.scopes.iter().any(|s| canonical_scope(s) == wanted))
            .count()
    }

    /// Forgets the recorded requests.
    pub fn reset(&self) {
        self.state.log().clear();
    }
}

fn handle(state: &State, parts: &Parts, body: &Bytes) -> Response<Full<Bytes>> {
    if parts.uri.path() != "/token" {
        return json_response(StatusCode::NOT_FOUND, &json!({"details": "not found"}));
    }
    if parts.method == hyper::Method::POST {
        return handle_refresh_grant(state, body);
    }
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let scopes: Vec<String> = query
        .iter()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| value.split(' ').filter(|s| !s.is_empty()).map(str::to_owned))
        .collect();
    let service = query.iter().find(|(key, _)| key == "service").map(|(_, v)| v.as_str());
    let mut record = TokenRequest {
        user: None,
        scopes,
        granted: Vec::new(),
        status: 200,
        refresh_grant: false,
        token: None,
    };
    if service.is_some_and(|service| service != TOKEN_SERVICE) {
        record.status = 400;
        state.log().push(record);
        return json_response(StatusCode::BAD_REQUEST, &json!({"details": "unknown service"}));
    }
    let user = match authenticate(&state.options.users, parts) {
        Ok(user) => user,
        Err(()) => {
            record.status = 401;
            state.log().push(record);
            let mut response = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"details": "incorrect username or password"}),
            );
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic realm=\"ocisync-testkit-token\""),
            );
            return response;
        }
    };
    let access: Vec<Access> = record
        .scopes
        .iter()
        .filter_map(|scope| grant(user, state.anonymous, scope))
        .collect();
    record.user = user.map(|u| u.username.clone());
    record.granted = access.iter().map(Access::as_scope).collect();
    let token = issue(state, user, &access);
    record.token = Some(token.clone());
    state.log().push(record);
    let advertised = state.options.advertised_lifetime.unwrap_or(state.options.lifetime);
    json_response(
        StatusCode::OK,
        &json!({"token": token, "access_token": token, "expires_in": advertised.as_secs()}),
    )
}

/// `POST /token` with an OAuth2 form: only `grant_type=refresh_token` is served.
fn handle_refresh_grant(state: &State, body: &Bytes) -> Response<Full<Bytes>> {
    let form = parse_query(&String::from_utf8_lossy(body));
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut record = TokenRequest {
        user: None,
        scopes: field("scope")
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        granted: Vec::new(),
        status: 400,
        refresh_grant: true,
        token: None,
    };
    let bad_request = |record: TokenRequest, details: &str| {
        state.log().push(record);
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "details": details}),
        )
    };
    if field("grant_type") != Some("refresh_token") {
        return bad_request(record, "only grant_type=refresh_token is served");
    }
    if field("service") != Some(TOKEN_SERVICE) {
        return bad_request(record, "unknown or missing service");
    }
    if field("client_id").is_none_or(str::is_empty) {
        return bad_request(record, "client_id is required");
    }
    let user = field("refresh_token").and_then(|token| {
        state
            .options
            .users
            .iter()
            .find(|user| user.identity_token.as_deref() == Some(token))
    });
    let Some(user) = user else {
        record.status = 401;
        state.log().push(record);
        return json_response(StatusCode::UNAUTHORIZED, &json!({"error": "invalid_grant"}));
    };
    let access: Vec<Access> = record
        .scopes
        .iter()
        .filter_map(|scope| grant(Some(user), state.anonymous, scope))
        .collect();
    record.user = Some(user.username.clone());
    record.granted = access.iter().map(Access::as_scope).collect();
    record.status = 200;
    let token = issue(state, Some(user), &access);
    record.token = Some(token.clone());
    let scope = record.scopes.join(" ");
    state.log().push(record);
    let advertised = state.options.advertised_lifetime.unwrap_or(state.options.lifetime);
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "scope": scope, "expires_in": advertised.as_secs()}),
    )
}

/// `Ok(None)` for an anonymous request, `Ok(Some(user))` for good credentials, `Err` for
/// credentials that match no user.
fn authenticate<'a>(users: &'a [TokenUser], parts: &Parts) -> Result<Option<&'a TokenUser>, ()> {
    let Some(header) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let encoded = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Basic "))
        .ok_or(())?;
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| ())?;
    let pair = String::from_utf8(decoded).map_err(|_| ())?;
    let (username, password) = pair.split_once(':').ok_or(())?;
    users
        .iter()
        .find(|user| user.username == username && user.password == password)
        .map(Some)
        .ok_or(())
}

/// One `access` entry of the JWT.
struct Access {
    kind: String,
    name: String,
    actions: Vec<String>,
}

impl Access {
    fn as_scope(&self) -> String {
        canonical_scope(&format!("{}:{}:{}", self.kind, self.name, self.actions.join(",")))
    }
}

/// A `type:name:actions` scope with its actions sorted, so that `repository:a:push,pull`
/// and `repository:a:pull,push` compare equal. Anything else is returned unchanged.
pub fn canonical_scope(scope: &str) -> String {
    let Some((resource, actions)) = scope.rsplit_once(':') else {
        return scope.to_owned();
    };
    let mut actions: Vec<&str> = actions.split(',').collect();
    actions.sort_unstable();
    format!("{resource}:{}", actions.join(","))
}

/// What `user` (`None`: anonymous, granted `anonymous`) gets of one requested
/// `type:name:actions` scope, if anything.
fn grant(user: Option<&TokenUser>, anonymous: AnonymousAccess, scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let allowed = |action: &str| match (user, kind) {
        (Some(user), "registry") => name == "catalog" && action == "*" && user.catalog,
        (Some(user), "repository") => user.repository_actions.iter().any(|a| a == action),
        (None, "repository") => anonymous == AnonymousAccess::PullEachRepository && action == "pull",
        _ => false,
    };
    let granted: Vec<String> = actions
        .split(',')
        .filter(|action| allowed(action))
        .map(str::to_owned)
        .collect();
    if granted.is_empty() {
        return None;
    }
    Some(Access {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions: granted,
    })
}

/// A signed JWT (ES256, `x5c` header) granting `access`.
fn issue(state: &State, user: Option<&TokenUser>, access: &[Access]) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    // Rounded up, so the registry never rejects the token before `lifetime` has passed.
    let issued_ceiling = now.as_secs() + u64::from(now.subsec_nanos() > 0);
    let valid_until = issued_ceiling + state.options.lifetime.as_secs();
    let expiration = valid_until as i64 - REGISTRY_LEEWAY_SECONDS as i64;
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [state.signer.certificate_x5c]});
    let claims = json!({
        "iss": TOKEN_ISSUER,
        "sub": user.map(|u| u.username.as_str()).unwrap_or(""),
        "aud": TOKEN_SERVICE,
        "exp": expiration,
        "nbf": now.as_secs(),
        "iat": now.as_secs(),
        "jti": state.next_jti.fetch_add(1, Ordering::Relaxed).to_string(),
        "access": access
            .iter()
            .map(|a| json!({"type": a.kind, "name": a.name, "actions": a.actions}))
            .collect::<Vec<_>>(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = state
        .signer
        .key
        .sign(&state.signer.random, signing_input.as_bytes())
        .expect("testkit: sign token");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// `key=value` pairs of a query string, percent-decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://query.invalid/?{query}"))
        .map(|url| {
            url.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
