//! The HTTP side of a registry endpoint: its two reqwest clients (one for its own
//! origin, one for every other), authorization, redirects, requests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ocisync_oci::{RepoName, StoreError};
use reqwest::header::{HeaderValue, AUTHORIZATION, RANGE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::OwnedSemaphorePermit;
use url::Url;

use crate::auth::{Authorizer, Credentials};
use crate::bandwidth::Bandwidth;
use crate::chunked::ChunkedUpload;
use crate::deadline::Deadline;
use crate::identity::{ClientIdentity, IdentityError};
use crate::limit::{Place, RequestLimit};
use crate::rate_floor::MinTransferRate;
use crate::redirect::{next_hop, MAX_REDIRECTS};
use crate::status::transport_error;

/// How to reach and authenticate to one registry URL.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `https://host[:port]` or `http://host[:port]` (plain HTTP).
    pub url: String,
    pub credentials: Option<Credentials>,
    /// Verify the TLS certificate of this URL's origin (on unless the config turns it
    /// off for this registry). Other origins (redirect targets, a token realm
    /// elsewhere) are always verified.
    pub tls_verify: bool,
    /// An extra CA certificate (PEM) to trust, for registries with a private CA (on
    /// every origin the registry's requests reach).
    pub ca_file: Option<PathBuf>,
    /// A client certificate to present, for registries behind mutual TLS.
    pub client_identity: Option<ClientIdentity>,
    pub connect_timeout: Duration,
    /// Longest wait for any read, so a stalled transfer fails instead of hanging.
    pub read_timeout: Duration,
    /// Longest time for one whole request, answer body included (manifests, list pages,
    /// referrers, tokens, uploads' answers; a blob download's head but not its body).
    pub request_timeout: Duration,
    /// The slowest a blob download may be; `None`: no floor (the read timeout only).
    pub min_transfer_rate: Option<MinTransferRate>,
    /// Page size requested from the catalog and tag list endpoints.
    pub page_size: usize,
    /// Requests in flight at most (shared with the other URLs of the same registry);
    /// `None`: no cap.
    pub request_limit: Option<RequestLimit>,
    /// Pulls of the registry's quota (`ratelimit-remaining`) that no manifest `GET` may
    /// spend; `None`: spend it all (a used-up quota still stops them).
    pub rate_limit_reserve: Option<u64>,
    /// The cap on blob bytes per second, downloads and uploads together (shared with
    /// whoever holds a clone); `None`: no cap.
    pub bandwidth: Option<Bandwidth>,
    /// Which blobs are uploaded in chunks (and which resumably), and in what size; `None`: every
    /// blob in one `PUT`.
    pub chunked_upload: Option<ChunkedUpload>,
}

impl RegistryOptions {
    /// `request_timeout` unless set: generous for a 16 MiB manifest or list page.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

    pub fn new(url: impl Into<String>) -> Self {
        RegistryOptions {
            url: url.into(),
            credentials: None,
            tls_verify: true,
            ca_file: None,
            client_identity: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            request_timeout: RegistryOptions::DEFAULT_REQUEST_TIMEOUT,
            min_transfer_rate: Some(MinTransferRate::DEFAULT),
            page_size: 1000,
            request_limit: None,
            rate_limit_reserve: None,
            bandwidth: None,
            chunked_upload: Some(ChunkedUpload::DEFAULT),
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
        source: crate::SmallFileError,
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

/// The authorization scope a request needs (distribution token scopes).
pub enum Scope<'a> {
    Catalog,
    Pull(&'a RepoName),
    Push(&'a RepoName),
    /// Distribution's token auth asks for the `delete` action on `DELETE`.
    Delete(&'a RepoName),
}

impl Scope<'_> {
    fn as_string(&self) -> String {
        match self {
            Scope::Catalog => "registry:catalog:*".to_owned(),
            Scope::Pull(repo) => format!("repository:{repo}:pull"),
            Scope::Push(repo) => format!("repository:{repo}:pull,push"),
            Scope::Delete(repo) => format!("repository:{repo}:delete"),
        }
    }
}

/// The two HTTP clients of one registry URL. Neither follows redirects: [`Endpoint`]
/// does, hop by hop, picking the client for each hop's origin.
pub struct Clients {
    origin: url::Origin,
    /// For the registry's own origin: `tls_verify` and `ca_file` as configured.
    own: reqwest::Client,
    /// For every other origin (redirect targets, a token realm elsewhere): certificates
    /// always verified (against the built-in roots and `ca_file`), whatever
    /// `tls_verify` says.
    elsewhere: reqwest::Client,
    /// `request_timeout`.
    pub request_timeout: Duration,
}

impl Clients {
    fn new(base: &Url, options: &RegistryOptions) -> Result<Clients, SetupError> {
        let ca_certificate = match &options.ca_file {
            Some(path) => {
                let pem =
                    crate::read_small_file(path, crate::SMALL_FILE_LIMIT).map_err(|source| SetupError::CaFile {
                        path: path.clone(),
                        source,
                    })?;
                let certificate = reqwest::Certificate::from_pem(&pem).map_err(|source| SetupError::CaCertificate {
                    path: path.clone(),
                    source,
                })?;
                Some(certificate)
            }
            None => None,
        };
        // A client certificate is presented to the registry's own origin only.
        let identity = match &options.client_identity {
            Some(identity) => Some(identity.load()?),
            None => None,
        };
        let build = |verify: bool, identity: Option<&reqwest::Identity>| {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.read_timeout)
                .danger_accept_invalid_certs(!verify)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("ocisync/", env!("CARGO_PKG_VERSION")));
            if let Some(certificate) = &ca_certificate {
                builder = builder.add_root_certificate(certificate.clone());
            }
            if let Some(identity) = identity {
                builder = builder.identity(identity.clone());
            }
            builder.build().map_err(SetupError::Client)
        };
        let own = build(options.tls_verify, identity.as_ref())?;
        let elsewhere = if options.tls_verify && identity.is_none() {
            own.clone()
        } else {
            build(true, None)?
        };
        Ok(Clients {
            origin: base.origin(),
            own,
            elsewhere,
            request_timeout: options.request_timeout,
        })
    }

    /// Whether `url` is on the registry's own origin (scheme, host and port).
    pub fn is_own(&self, url: &Url) -> bool {
        url.origin() == self.origin
    }

    /// The client for a request to `url`.
    pub fn for_url(&self, url: &Url) -> &reqwest::Client {
        if self.is_own(url) {
            &self.own
        } else {
            &self.elsewhere
        }
    }
}

/// How much of a request `request_timeout` bounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The whole answer, body included (manifests, lists, uploads' answers).
    Whole,
    /// Up to the answer's head: the body is a blob stream, bounded by the rate floor.
    Streamed,
}

/// One registry URL with its HTTP clients and authorization state.
pub struct Endpoint {
    base: Url,
    label: String,
    clients: Clients,
    authorizer: Authorizer,
    pub(crate) page_size: usize,
    /// The rate floor of blob downloads, if any.
    pub(crate) min_transfer_rate: Option<MinTransferRate>,
    /// The cap on blob bytes per second, if any.
    pub(crate) bandwidth: Option<Bandwidth>,
    /// Which blobs go up in chunks, if any.
    pub(crate) chunked_upload: Option<ChunkedUpload>,
    /// HTTP requests sent to the registry (each attempt; token requests and hops to
    /// other origins not included).
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
        let clients = Clients::new(&base, &options)?;
        let label = base.as_str().trim_end_matches('/').to_owned();
        let plain_http = base.scheme() == "http";
        Ok(Endpoint {
            base,
            label,
            clients,
            authorizer: Authorizer::new(options.credentials, plain_http),
            page_size: options.page_size.max(1),
            min_transfer_rate: options.min_transfer_rate,
            bandwidth: options.bandwidth,
            chunked_upload: options.chunked_upload,
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
        self.clients.is_own(url)
    }

    /// The `Authorization` to send to `url` for `scope`: none to another origin.
    async fn authorization(&self, scope: &str, what: &str, url: &Url) -> Result<Option<HeaderValue>, StoreError> {
        if !self.same_origin(url) {
            return Ok(None);
        }
        self.authorizer.header(&self.clients, scope, what).await
    }

    /// Sends a request built by `build`, following redirects and answering one
    /// authentication challenge of the registry's own; the whole answer, body included,
    /// must arrive within `request_timeout`. `build` runs again for each hop and for the
    /// second attempt, so it must not consume a stream.
    pub async fn send(
        &self,
        scope: Scope<'_>,
        what: &str,
        method: Method,
        url: &Url,
        build: impl Fn(RequestBuilder) -> RequestBuilder + Sync,
    ) -> Result<Response, StoreError> {
        let _place = self.enter().await;
        self.exchange(&scope.as_string(), what, method, url, &build, Answer::Whole)
            .await
    }

    /// A blob download's `GET`, with `range` as its `Range` header when resuming: as
    /// [`Endpoint::send`], but `request_timeout` bounds the answer's head only, and the
    /// request keeps its place under the registry's request limit for as long as the
    /// caller reads the body.
    pub async fn get_blob(
        &self,
        repo: &RepoName,
        what: &str,
        url: &Url,
        range: Option<&str>,
    ) -> Result<(Response, Option<OwnedSemaphorePermit>), StoreError> {
        let place = self.enter_stream().await;
        let build = |request: RequestBuilder| match range {
            Some(range) => request.header(RANGE, range),
            None => request,
        };
        let scope = Scope::Pull(repo).as_string();
        let response = self
            .exchange(&scope, what, Method::GET, url, &build, Answer::Streamed)
            .await?;
        Ok((response, place))
    }

    /// The hops and attempts of one request. Each hop goes out with the client of its
    /// origin; only the registry's own origin gets `Authorization`, and only its
    /// challenge is answered. A login asked for anywhere else fails the request: the
    /// credentials are the registry's, and so is the choice of token realm.
    async fn exchange(
        &self,
        scope: &str,
        what: &str,
        method: Method,
        url: &Url,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
        answer: Answer,
    ) -> Result<Response, StoreError> {
        let mut answered_challenge = false;
        'attempt: loop {
            let mut hop_url = url.clone();
            let mut hop_method = method.clone();
            for _ in 0..=MAX_REDIRECTS {
                let own_origin = self.same_origin(&hop_url);
                let authorization = self.authorization(scope, what, &hop_url).await?;
                let mut request = build(
                    self.clients
                        .for_url(&hop_url)
                        .request(hop_method.clone(), hop_url.clone()),
                );
                if let Some(authorization) = &authorization {
                    request = request.header(AUTHORIZATION, authorization.clone());
                }
                if own_origin {
                    self.requests.fetch_add(1, Ordering::Relaxed);
                }
                let deadline = Deadline::start(self.clients.request_timeout);
                let response = deadline.send(what, request).await?;
                if response.status() == StatusCode::UNAUTHORIZED {
                    if !own_origin {
                        return Err(login_elsewhere(what, &hop_url));
                    }
                    if !answered_challenge {
                        answered_challenge = true;
                        if self
                            .authorizer
                            .handle_challenge(&self.clients, response.headers(), scope, authorization.as_ref(), what)
                            .await?
                        {
                            continue 'attempt;
                        }
                    }
                }
                match next_hop(response.status(), response.headers(), &hop_method, &hop_url) {
                    Some((next_url, next_method)) => {
                        hop_url = next_url;
                        hop_method = next_method;
                    }
                    // An error's body is read whole, blob or not.
                    None if answer == Answer::Whole || !response.status().is_success() => {
                        return Ok(deadline.bound_body(response))
                    }
                    None => return Ok(response),
                }
            }
            return Err(StoreError::Transport {
                what: what.to_owned(),
                source: format!("more than {MAX_REDIRECTS} redirects").into(),
            });
        }
    }

    /// Sends a request once, with the authorization known for `scope` (renewed first if
    /// the token is near its end), with the client for `url`'s origin. For requests
    /// with streaming bodies, which cannot be sent twice or followed elsewhere; no
    /// `request_timeout` either (an upload takes as long as its source).
    pub async fn send_once(
        &self,
        scope: Scope<'_>,
        what: &str,
        method: Method,
        url: &Url,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, StoreError> {
        let _place = self.enter_stream().await;
        let mut request = build(self.clients.for_url(url).request(method, url.clone()));
        if let Some(authorization) = self.authorization(&scope.as_string(), what, url).await? {
            request = request.header(AUTHORIZATION, authorization);
        }
        if self.same_origin(url) {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
        request
            .send()
            .await
            .map_err(|error| transport_error(what.to_owned(), error))
    }

    /// A place under the registry's request limit, if it has one.
    async fn enter(&self) -> Option<Place> {
        match &self.limit {
            Some(limit) => Some(limit.enter().await),
            None => None,
        }
    }

    /// A place for a blob stream under the registry's request limit, if it has one.
    async fn enter_stream(&self) -> Option<OwnedSemaphorePermit> {
        match &self.limit {
            Some(limit) => Some(limit.enter_stream().await),
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
}

/// The error for a 401 from another origin that a redirect led to.
fn login_elsewhere(what: &str, url: &Url) -> StoreError {
    StoreError::Invalid {
        what: what.to_owned(),
        reason: format!(
            "redirected to {}, which asks for a login; credentials and tokens go only to the registry's own origin",
            url.origin().ascii_serialization()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_origin_is_scheme_host_and_port() {
        let clients = Clients::new(
            &Url::parse("https://r.example/").unwrap(),
            &RegistryOptions::new("https://r.example"),
        )
        .unwrap();
        let own = |url: &str| clients.is_own(&Url::parse(url).unwrap());
        assert!(own("https://r.example/v2/a"));
        assert!(own("https://r.example:443/v2/a"), "the default port spelled out");
        assert!(!own("http://r.example/v2/a"), "another scheme");
        assert!(!own("http://r.example:443/v2/a"), "another scheme on the same port");
        assert!(!own("https://r.example:8443/v2/a"), "another port");
        assert!(!own("https://cdn.r.example/v2/a"), "another host, even a subdomain");
    }
}
