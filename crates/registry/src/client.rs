//! The HTTP side of a registry endpoint: one reqwest client, authorization, requests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ocisync_oci::{RepoName, StoreError};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::OwnedSemaphorePermit;
use url::Url;

use crate::auth::{Authorizer, Credentials};
use crate::identity::{ClientIdentity, IdentityError};
use crate::limit::RequestLimit;
use crate::status::transport_error;

/// How to reach and authenticate to one registry URL.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `https://host[:port]` or `http://host[:port]` (plain HTTP).
    pub url: String,
    pub credentials: Option<Credentials>,
    /// Verify TLS certificates (on unless the config turns it off for this registry).
    pub tls_verify: bool,
    /// An extra CA certificate (PEM) to trust, for registries with a private CA.
    pub ca_file: Option<PathBuf>,
    /// A client certificate to present, for registries behind mutual TLS.
    pub client_identity: Option<ClientIdentity>,
    pub connect_timeout: Duration,
    /// Longest wait for any read, so a stalled transfer fails instead of hanging.
    pub read_timeout: Duration,
    /// Page size requested from the catalog and tag list endpoints.
    pub page_size: usize,
    /// Requests in flight at most (shared with the other URLs of the same registry);
    /// `None`: no cap.
    pub request_limit: Option<RequestLimit>,
    /// Pulls of the registry's quota (`ratelimit-remaining`) that no manifest `GET` may
    /// spend; `None`: spend it all (a used-up quota still stops them).
    pub rate_limit_reserve: Option<u64>,
}

impl RegistryOptions {
    pub fn new(url: impl Into<String>) -> Self {
        RegistryOptions {
            url: url.into(),
            credentials: None,
            tls_verify: true,
            ca_file: None,
            client_identity: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            page_size: 1000,
            request_limit: None,
            rate_limit_reserve: None,
        }
    }
}

/// Why a registry endpoint could not be set up from its options.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid registry url \"{url}\": {reason}")]
    Url { url: String, reason: String },
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid CA certificate in {path}: {source}")]
    CaCertificate {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error(transparent)]
    ClientIdentity(#[from] IdentityError),
    #[error("cannot build HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Most redirects followed for one request (reqwest's default).
const MAX_REDIRECTS: usize = 10;

/// Follows redirects like reqwest's default policy, which drops `Authorization` when the
/// host or port changes, but stops at a redirect that changes only the scheme: reqwest
/// would keep `Authorization` there, and `Authorization` goes to the registry's own
/// origin only. The caller then sees the 3xx as an error.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        match attempt.previous().last() {
            Some(previous) if changes_only_scheme(previous, attempt.url()) => attempt.stop(),
            _ => attempt.follow(),
        }
    })
}

/// Same host and port but another scheme: another origin that reqwest treats as the same.
fn changes_only_scheme(previous: &Url, next: &Url) -> bool {
    previous.scheme() != next.scheme()
        && previous.host_str() == next.host_str()
        && previous.port_or_known_default() == next.port_or_known_default()
}

/// The authorization scope a request needs (distribution token scopes).
pub enum Scope<'a> {
    Catalog,
    Pull(&'a RepoName),
    Push(&'a RepoName),
}

impl Scope<'_> {
    fn as_string(&self) -> String {
        match self {
            Scope::Catalog => "registry:catalog:*".to_owned(),
            Scope::Pull(repo) => format!("repository:{repo}:pull"),
            Scope::Push(repo) => format!("repository:{repo}:pull,push"),
        }
    }
}

/// One registry URL with its HTTP client and authorization state.
pub struct Endpoint {
    base: Url,
    label: String,
    http: reqwest::Client,
    authorizer: Authorizer,
    pub(crate) page_size: usize,
    /// HTTP requests sent to the registry (each attempt; token requests not included).
    requests: AtomicU64,
    limit: Option<RequestLimit>,
}

impl Endpoint {
    pub fn new(options: RegistryOptions) -> Result<Self, SetupError> {
        let url_error = |reason: &str| SetupError::Url {
            url: options.url.clone(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(&options.url).map_err(|error| url_error(&error.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(url_error("scheme must be http or https"));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(url_error(
                "credentials do not belong in the url; use the registry's auth settings",
            ));
        }
        if base.host_str().is_none() {
            return Err(url_error("no host"));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .danger_accept_invalid_certs(!options.tls_verify)
            .redirect(redirect_policy())
            .user_agent(concat!("ocisync/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|source| SetupError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|source| SetupError::CaCertificate {
                path: path.clone(),
                source,
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        if let Some(identity) = &options.client_identity {
            builder = builder.identity(identity.load()?);
        }
        let http = builder.build().map_err(SetupError::Client)?;
        let label = base.as_str().trim_end_matches('/').to_owned();
        let plain_http = base.scheme() == "http";
        Ok(Endpoint {
            base,
            label,
            http,
            authorizer: Authorizer::new(options.credentials, plain_http),
            page_size: options.page_size.max(1),
            requests: AtomicU64::new(0),
            limit: options.request_limit,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// `<base>/v2/<path>`.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}/v2/{path}"));
        url
    }

    /// Whether a URL (an upload location, a pagination link) is on this endpoint's
    /// origin. Authorization is only ever sent there.
    pub fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    /// The `Authorization` to send to `url` for `scope`: none to another origin.
    async fn authorization(&self, scope: &str, what: &str, url: &Url) -> Result<Option<HeaderValue>, StoreError> {
        if !self.same_origin(url) {
            return Ok(None);
        }
        self.authorizer.header(&self.http, scope, what).await
    }

    /// Sends a request built by `build`, answering one authentication challenge.
    /// `build` runs again for the second attempt, so it must not consume a stream.
    pub async fn send(
        &self,
        scope: Scope<'_>,
        what: &str,
        method: Method,
        url: &Url,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, StoreError> {
        Ok(self.send_held(scope, what, method, url, build).await?.0)
    }

    /// [`Endpoint::send`], keeping the request's place under the registry's request
    /// limit for as long as the caller reads the body (a blob stream).
    pub async fn send_held(
        &self,
        scope: Scope<'_>,
        what: &str,
        method: Method,
        url: &Url,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<(Response, Option<OwnedSemaphorePermit>), StoreError> {
        let place = self.enter().await;
        let scope = scope.as_string();
        let mut answered_challenge = false;
        loop {
            let authorization = self.authorization(&scope, what, url).await?;
            let mut request = build(self.http.request(method.clone(), url.clone()));
            if let Some(authorization) = &authorization {
                request = request.header(AUTHORIZATION, authorization.clone());
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let response = request
                .send()
                .await
                .map_err(|error| transport_error(what.to_owned(), error))?;
            if response.status() == StatusCode::UNAUTHORIZED && !answered_challenge && self.same_origin(url) {
                answered_challenge = true;
                if self
                    .authorizer
                    .handle_challenge(&self.http, response.headers(), &scope, authorization.as_ref(), what)
                    .await?
                {
                    continue;
                }
            }
            return Ok((response, place));
        }
    }

    /// Sends a request once, with the authorization known for `scope` (renewed first if
    /// the token is near its end). For requests with streaming bodies, which cannot be
    /// sent twice.
    pub async fn send_once(
        &self,
        scope: Scope<'_>,
        what: &str,
        request: RequestBuilder,
        url: &Url,
    ) -> Result<Response, StoreError> {
        let _place = self.enter().await;
        let mut request = request;
        if let Some(authorization) = self.authorization(&scope.as_string(), what, url).await? {
            request = request.header(AUTHORIZATION, authorization);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        request
            .send()
            .await
            .map_err(|error| transport_error(what.to_owned(), error))
    }

    /// A place under the registry's request limit, if it has one.
    async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        match &self.limit {
            Some(limit) => Some(limit.enter().await),
            None => None,
        }
    }

    /// See [`Authorizer::replace_credentials`].
    pub async fn replace_credentials(&self, credentials: Option<Credentials>) {
        self.authorizer.replace_credentials(credentials).await;
    }

    /// HTTP requests sent to the registry so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_that_changes_only_the_scheme_is_not_followed() {
        let check = |from: &str, to: &str| changes_only_scheme(&Url::parse(from).unwrap(), &Url::parse(to).unwrap());
        assert!(check("https://r.example:8443/v2/a", "http://r.example:8443/blob"));
        assert!(check("https://r.example/v2/a", "http://r.example:443/blob"));
        assert!(
            !check("https://r.example/v2/a", "https://r.example/blob"),
            "same origin"
        );
        assert!(
            !check("https://r.example/v2/a", "http://r.example/blob"),
            "port 443 to 80: reqwest drops Authorization itself"
        );
        assert!(
            !check("https://r.example/v2/a", "https://cdn.example/blob"),
            "other host"
        );
    }
}
