//! An OCI distribution registry as an ocisync [`Store`](ocisync_oci::Store).
//!
//! [`RegistryStore`] speaks the distribution API over reqwest: catalog and tag lists
//! paged by `Link` header, manifests read and written as exact bytes, blobs streamed
//! both ways (downloads resumed with `Range` where they break; uploads in one streaming
//! `PUT`, or in chunks above [`ChunkedUpload::above`], resumable above its `resumable_above`), cross-repository mounts,
//! HTTP Basic and bearer-token authentication ([`auth`]). Failures come back as
//! [`StoreError`](ocisync_oci::StoreError) with the HTTP status and `Retry-After`
//! kept; this crate never retries or sleeps.
//!
//! Pull quotas (Docker Hub's `ratelimit-*` headers, [`RateLimit`]) are kept per store:
//! manifest `GET`s, which such a quota counts, stop once a 429 `TOOMANYREQUESTS` says it
//! is used up, and, with [`RegistryOptions::rate_limit_reserve`], before the reserve would
//! be spent ([`QuotaStatus`] tells what a pass saw).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use ocisync_oci::Store;
//! use ocisync_registry::{RegistryOptions, RegistryStore};
//! let registry = RegistryStore::new(RegistryOptions::new("http://127.0.0.1:5000"))?;
//! for repo in registry.catalog().await? {
//!     println!("{repo}: {:?}", registry.tags(&repo).await?);
//! }
//! # Ok(()) }
//! ```

pub mod auth;
mod bandwidth;
mod body;
mod chunked;
mod client;
mod deadline;
mod download;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod identity;
mod limit;
mod lists;
mod paging;
mod quota;
mod rate_floor;
mod ratelimit;
mod redirect;
mod resume;
mod small_file;
mod status;
mod store;

pub use auth::{Credentials, Secret};
pub use bandwidth::Bandwidth;
pub use chunked::ChunkedUpload;
pub use client::{RegistryOptions, SetupError};
pub use identity::{ClientIdentity, IdentityError};
pub use limit::RequestLimit;
pub use quota::QuotaStatus;
pub use rate_floor::MinTransferRate;
pub use ratelimit::{parse_quota_value, RateLimit};
pub use small_file::{read_small_file, read_small_text, SmallFileError, SMALL_FILE_LIMIT};
pub use status::with_causes;
pub use store::RegistryStore;
