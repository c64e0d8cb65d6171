//! [`HubLikeRegistry`]: a stand-in for Docker Hub (and, in parts, GHCR and
//! registry.k8s.io) in front of a real [`TestRegistry`], for tests that cannot reach the
//! real ones.
//!
//! Four servers on four loopback ports, all stopped on drop:
//!
//! - the registry origin ([`url`](HubLikeRegistry::url)): a [`CountingProxy`] in front of
//!   the backing registry, recording every request, with Docker Hub's habits added
//!   (`front.rs`):
//!   - `GET /v2/_catalog` is answered `401 UNAUTHORIZED`, even with a valid token;
//!   - a blob `GET` the backing registry would answer `200` is answered `307` to the CDN;
//!   - manifest `GET`s (not `HEAD`s) spend a pull quota; once it is spent they get `429`
//!     with `TOOMANYREQUESTS` and no `Retry-After`. A `GET` not answered 2xx (a 401 before
//!     the token, a 404) gives its pull back;
//!   - every answer carries `ratelimit-limit: L;w=W` and `ratelimit-remaining: R;w=W`.
//!     With an unlimited quota both are left out, as Docker Hub does for unlimited
//!     accounts. The quota never refills by itself; [`refill`](HubLikeRegistry::refill)
//!     restores it.
//! - the backing registry ([`backing`](HubLikeRegistry::backing)): `docker-registry` with
//!   token auth, which checks every token.
//! - the token service ([`realm`](HubLikeRegistry::realm)), another origin as
//!   auth.docker.io is: anonymous requests get `pull` on each repository they name and
//!   nothing else; the writer ([`writer`](HubLikeRegistry::writer)) and any users added
//!   with the builder get what their [`TokenUser`] says. There is one quota for all.
//! - the CDN ([`cdn_url`](HubLikeRegistry::cdn_url)): serves blob files from the backing
//!   registry's storage to any holder of a signed URL, and records the requests it gets,
//!   so a test can check that no `Authorization` header followed the redirect. It reads
//!   each blob whole into memory: keep blobs test-sized.
//!
//! Repositories are named like Docker Hub's (`library/alpine`): seed them with
//! [`push_image`](HubLikeRegistry::push_image), which pushes to the backing registry as
//! the writer, so nothing is counted or spent.
//!
//! ```no_run
//! # async fn demo() {
//! use ocisync_testkit::{image, layer, Format, HubLikeRegistry};
//! let hub = HubLikeRegistry::builder().pull_quota(Some(10)).start();
//! let alpine = image(Format::Oci, ("linux", "amd64"), vec![layer(Format::Oci, 1, 1024)], "alpine");
//! hub.push_image("library/alpine", "3.20", &alpine).await;
//! // ... run ocisync against hub.url() ...
//! assert_eq!(hub.catalog_requests(), 1);
//! assert!(hub.cdn_requests().iter().all(|request| request.authorization.is_none()));
//! # }
//! ```

mod cdn;
mod front;
mod quota;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use cdn::Cdn;
use front::HubFront;
use quota::PullQuota;

use crate::client::RegistryClient;
use crate::image::Image;
use crate::proxy::{CountingProxy, RecordedRequest, RequestKind};
use crate::redirect::SeenRequest;
use crate::registry::TestRegistry;
use crate::token::{AnonymousAccess, TokenServer, TokenServerOptions, TokenUser};

/// The user [`HubLikeRegistry::push_image`] pushes as (pull and push on every repository).
pub const HUB_WRITER: (&str, &str) = ("hub-writer", "hub-writer-password");

/// Docker Hub's anonymous figures: 100 pulls per 6 hours.
const DEFAULT_PULL_QUOTA: u64 = 100;
const DEFAULT_WINDOW_SECONDS: u64 = 21_600;

/// Settings for [`HubLikeRegistry`]; [`HubLikeRegistry::builder`] starts with 100 pulls
/// in a window of 21600 seconds, and only the writer.
#[derive(Debug, Clone)]
pub struct HubLikeRegistryBuilder {
    pull_quota: Option<u64>,
    window_seconds: u64,
    users: Vec<TokenUser>,
}

impl Default for HubLikeRegistryBuilder {
    fn default() -> Self {
        HubLikeRegistryBuilder {
            pull_quota: Some(DEFAULT_PULL_QUOTA),
            window_seconds: DEFAULT_WINDOW_SECONDS,
            users: Vec::new(),
        }
    }
}

impl HubLikeRegistryBuilder {
    /// How many manifest `GET`s are served before `429`s; `None`: unlimited, and no
    /// rate-limit headers.
    pub fn pull_quota(mut self, pulls: Option<u64>) -> Self {
        self.pull_quota = pulls;
        self
    }

    /// The window the rate-limit headers name (`w=`). Only reported: the quota does not
    /// refill with time.
    pub fn window_seconds(mut self, seconds: u64) -> Self {
        self.window_seconds = seconds;
        self
    }

    /// Adds a named user of the token service (e.g. [`TokenUser::reader`]).
    pub fn user(mut self, user: TokenUser) -> Self {
        self.users.push(user);
        self
    }

    /// Starts the four servers.
    pub fn start(self) -> HubLikeRegistry {
        let mut users = vec![TokenUser::writer(HUB_WRITER.0, HUB_WRITER.1)];
        users.extend(self.users);
        let token = TokenServer::start_with_anonymous(
            TokenServerOptions {
                users,
                lifetime: Duration::from_secs(300),
                advertised_lifetime: None,
            },
            AnonymousAccess::PullEachRepository,
        );
        let backing = TestRegistry::builder().token_auth(&token).start();
        let cdn = Cdn::start(backing.storage_dir());
        let quota = Arc::new(PullQuota::new(self.pull_quota, self.window_seconds));
        let front = HubFront {
            quota: Arc::clone(&quota),
            cdn: cdn.signer(),
            realm: token.realm(),
        };
        let origin = CountingProxy::start_intercepted(&backing.url(), Arc::new(front));
        HubLikeRegistry {
            origin,
            cdn,
            backing,
            token,
            quota,
        }
    }
}

/// A Docker-Hub-like registry: see the [module documentation](self).
pub struct HubLikeRegistry {
    // Dropped in this order: the origin first, the token service (whose certificate the
    // backing registry reads) last.
    origin: CountingProxy,
    cdn: Cdn,
    backing: TestRegistry,
    token: TokenServer,
    quota: Arc<PullQuota>,
}

impl std::fmt::Debug for HubLikeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubLikeRegistry")
            .field("url", &self.url())
            .field("realm", &self.realm())
            .field("cdn_url", &self.cdn_url())
            .field("backing", &self.backing.url())
            .field("remaining", &self.remaining())
            .finish()
    }
}

impl HubLikeRegistry {
    /// Starts one with the defaults (100 pulls, `w=21600`).
    pub fn start() -> HubLikeRegistry {
        HubLikeRegistry::builder().start()
    }

    /// Settings to change before [`start`](HubLikeRegistryBuilder::start).
    pub fn builder() -> HubLikeRegistryBuilder {
        HubLikeRegistryBuilder::default()
    }

    /// The registry origin, `http://127.0.0.1:PORT`: what a client is configured with.
    pub fn url(&self) -> String {
        self.origin.url()
    }

    /// The registry origin's host and port, `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.origin.host()
    }

    /// The token service, `http://127.0.0.1:OTHER_PORT/token`.
    pub fn realm(&self) -> String {
        self.token.realm()
    }

    /// The CDN blob downloads are redirected to, `http://127.0.0.1:THIRD_PORT`.
    pub fn cdn_url(&self) -> String {
        self.cdn.url()
    }

    /// The backing registry (token auth; the writer may push).
    pub fn backing(&self) -> &TestRegistry {
        &self.backing
    }

    /// The token service, with its record of token requests and granted scopes.
    pub fn token_server(&self) -> &TokenServer {
        &self.token
    }

    /// The writer's user name and password ([`HUB_WRITER`]).
    pub fn writer(&self) -> (&'static str, &'static str) {
        HUB_WRITER
    }

    /// A client that authenticates as the writer (Basic, exchanged for tokens).
    pub fn writer_client(&self) -> RegistryClient {
        RegistryClient::new().with_basic_auth(HUB_WRITER.0, HUB_WRITER.1)
    }

    /// Pushes `image` as `repo:tag` to the backing registry, as the writer: seeding
    /// spends no pulls and is not in [`requests`](Self::requests).
    pub async fn push_image(&self, repo: &str, tag: &str, image: &Image) {
        self.writer_client()
            .push_image(&self.backing.url(), repo, tag, image)
            .await;
    }

    /// Gives the quota back its full number of pulls.
    pub fn refill(&self) {
        self.quota.refill();
    }

    /// Pulls left; `None` when unlimited.
    pub fn remaining(&self) -> Option<u64> {
        self.quota.remaining()
    }

    /// Every request the registry origin got (method, path with query, status, in the
    /// order their answers started).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.origin.requests()
    }

    /// Manifest `GET`s answered 2xx: the pulls spent since start (refills aside).
    pub fn manifest_gets_served(&self) -> usize {
        self.count(|request| {
            request.method == "GET"
                && RequestKind::of_path(&request.path) == Some(RequestKind::Manifest)
                && (200..300).contains(&request.status)
        })
    }

    /// `429 TOOMANYREQUESTS` answers sent.
    pub fn too_many_requests_sent(&self) -> usize {
        self.count(|request| request.status == 429)
    }

    /// Requests for `/v2/_catalog` (all of them answered 401).
    pub fn catalog_requests(&self) -> usize {
        self.count(|request| RequestKind::of_path(&request.path) == Some(RequestKind::Catalog))
    }

    /// Requests for `/v2/<name>/tags/list`.
    pub fn tag_list_requests(&self) -> usize {
        self.count(|request| RequestKind::of_path(&request.path) == Some(RequestKind::Tags))
    }

    /// Every request the CDN got, with its `Authorization` header if one arrived.
    pub fn cdn_requests(&self) -> Vec<SeenRequest> {
        self.cdn.requests()
    }

    /// Whether any request reached the CDN with an `Authorization` header (it never
    /// should: credentials must not follow a redirect to another origin).
    pub fn cdn_saw_authorization(&self) -> bool {
        self.cdn_requests()
            .iter()
            .any(|request| request.authorization.is_some())
    }

    fn count(&self, predicate: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.origin
            .requests()
            .iter()
            .filter(|request| predicate(request))
            .count()
    }
}
