//! Test-only toolkit for ocisync: real registries, a recording proxy, deterministic
//! images, and seeding / verification code that is independent of the code under test.
//!
//! Used by tests, the demo and the benchmark (`crates/bench`) only, never by production code, and it
//! depends on none of the other ocisync crates: it speaks the registry API with its own
//! plain HTTP code so that it can judge them.
//!
//! The parts:
//!
//! - [`registry`]: [`TestRegistry`] runs Debian's `docker-registry` (CNCF distribution
//!   2.8) on a free loopback port with storage in a temp dir, optionally behind htpasswd
//!   basic auth, and kills it on drop.
//!   [`TestRegistry::builder`] adds token auth against a [`TokenServer`] and HTTPS with a
//!   certificate from a fresh [`TestCa`] ([`TestRegistry::ca_file`]), and
//!   [`TestRegistryBuilder::client_certificates`] makes it require client certificates
//!   from a CA of its own ([`TestRegistry::client_certificate_files`]);
//!   [`TestRegistryBuilder::notify`] makes it post its events (`notifications:
//!   endpoints:`) to a URL with the headers given.
//! - [`token`]: [`TokenServer`], a Docker token service (users with pull or pull+push,
//!   ES256 JWTs with an `x5c` header, a configurable lifetime) that records every token
//!   request and the scopes it asked for.
//!   [`AnonymousAccess`] lets anonymous requests pull each repository they name.
//! - [`tls`]: [`TestCa`], a private CA issuing loopback server certificates and
//!   [`ClientCertificate`]s; [`tls_front`]: [`TlsFront`], HTTPS with its own CA in front
//!   of any plain test server.
//! - [`redirect`]: [`RedirectingRegistry`], a Basic-auth registry stand-in that redirects
//!   blob downloads to another origin and records the headers that arrive there.
//! - [`proxy`]: [`CountingProxy`], a streaming HTTP/1.1 reverse proxy in front of a
//!   registry that records every request (method, path, status, injected fault), e.g. to
//!   assert that a no-op sync writes nothing. It injects [`Faults`]: seeded random rates
//!   and deterministic first-N / every-request [`Rule`]s (by method, [`RequestKind`] or
//!   path substring) of 5xx and 429 + `Retry-After` answers, connection resets, bodies
//!   truncated below their `Content-Length`, stalled bodies and added latency; faults can
//!   be swapped at runtime, `set_round_trip` delays every byte of each connection by half
//!   a round trip each way (a far upstream), and `set_down` makes it reset every
//!   connection like a dead mirror.
//! - [`hub`]: [`HubLikeRegistry`], a Docker-Hub-like upstream in front of a real
//!   registry: token service on another origin (anonymous pulls scoped per repository),
//!   catalog refused with 401, blob downloads redirected to a CDN origin, a pull quota
//!   with `ratelimit-*` headers and `429 TOOMANYREQUESTS`, and counters for tests.
//! - [`pushgateway`]: [`TestPushgateway`] runs Debian's `prometheus-pushgateway` on a
//!   free loopback port, for the metrics a CronJob pushes.
//! - [`image`](mod@image): deterministic blobs, image manifests, indexes / manifest lists and OCI
//!   artifacts, in OCI or Docker media types; [`image_created`] with a chosen config
//!   `created` time ([`created_ago`]).
//! - [`signing`](mod@signing): cosign key pairs and signatures, attestations, SBOMs and
//!   OCI 1.1 referrers (notation, sigstore bundle) with `subject`, and the referrers tag
//!   schema index.
//! - [`seed`]: pushes images ([`push_image`], [`push_blob`], [`push_manifest`]).
//! - [`inspect`]: reads registries back ([`catalog`], [`tags`], [`manifest`],
//!   [`blob_exists`]) and asserts mirrors are complete ([`assert_mirror_complete`]) and
//!   never dangling ([`assert_closure`]).
//! - [`client`]: [`RegistryClient`], the small reqwest client behind `seed` and
//!   `inspect`; build one with basic auth for a protected registry (a bearer challenge
//!   is answered with a token fetched with those credentials, or anonymously).
//! - [`corpus`]: [`standard_corpus`] / [`small_corpus`], a fixed set of repositories and
//!   tags covering the interesting cases, and [`seed()`](corpus::seed) to push it.
//!
//! Registries and proxies work from sync and async tests alike (they use their own
//! processes / threads); the seeding and inspection functions are async (tokio).
//!
//! ```no_run
//! # async fn demo() {
//! use ocisync_testkit::{assert_mirror_complete, corpus, TestRegistry};
//! let src = TestRegistry::start();
//! let dst = TestRegistry::start();
//! corpus::seed(&src.url(), &corpus::small_corpus()).await;
//! // ... run the sync from src to dst ...
//! assert_mirror_complete(&src.url(), &dst.url(), &[("team/app", "team/app")]).await;
//! # }
//! ```

mod bearer;
pub mod client;
pub mod corpus;
pub mod hostile;
pub mod hub;
pub mod image;
pub mod inspect;
pub mod proxy;
pub mod pushgateway;
pub mod redirect;
pub mod registry;
pub mod seed;
mod serve;
pub mod signing;
pub mod small_image;
pub mod tls;
pub mod tls_front;
pub mod token;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;

pub use client::RegistryClient;
pub use corpus::{small_corpus, standard_corpus, standard_corpus_with_large_layer, SeedImage};
pub use hostile::{HostileAnswer, HostileBody, HostileRequest, HostileServer};
pub use hub::{HubLikeRegistry, HubLikeRegistryBuilder, HUB_WRITER};
pub use image::{artifact, created_ago, image, image_created, index, layer, Blob, Format, Image, Manifest, Platform};
pub use inspect::{
    assert_closure, assert_mirror_complete, assert_mirror_complete_with, blob, blob_exists, catalog, manifest, tags,
};
pub use proxy::{
    CountingProxy, Fault, Faults, ProxyOptions, PullQuota, RecordedRequest, RequestKind, RequestMatch, RetryAfter, Rule,
};
pub use pushgateway::TestPushgateway;
pub use redirect::{RedirectingRegistry, SeenRequest};
pub use registry::{RegistryOptions, TestRegistry, TestRegistryBuilder};
pub use seed::{delete_manifest, push_blob, push_image, push_manifest};
pub use signing::CosignKey;
pub use small_image::small_image;
pub use tls::{ClientCertificate, ServerCertificate, TestCa};
pub use tls_front::TlsFront;
pub use token::{
    canonical_scope, AnonymousAccess, TokenRequest, TokenServer, TokenServerOptions, TokenUser, TOKEN_ISSUER,
    TOKEN_SERVICE,
};
