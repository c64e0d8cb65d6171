//! The vocabulary of ocisync and its one seam.
//!
//! - [`Digest`], [`RepoName`], [`Tag`], [`Reference`] and [`Descriptor`] are validated
//!   values; [`Manifest`] is a manifest's exact bytes with media type and digest.
//! - [`Store`] is where images are read from and written to. The registry client
//!   (crate `ocisync-registry`), the layout store and, for tests only (feature
//!   `test-util`), `MemoryStore` implement it; the copy engine is written against it
//!   alone.
//! - [`verify_blob_stream`] checks digest and size of a blob while it streams.
//!
//! This crate does no network I/O.

pub mod descriptor;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod media_type;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod name;
pub mod referrer;
pub mod store;
pub mod verify;

pub use descriptor::{Descriptor, Platform};
pub use digest::{Algorithm, Digest, DigestHasher};
pub use error::{ParseError, Result, StoreError};
pub use manifest::{detect_media_type, MalformedManifest, Manifest, ManifestContent};
#[cfg(any(test, feature = "test-util"))]
pub use memory::{MemoryDeletes, MemoryStore};
pub use name::{Reference, RepoName, Tag};
pub use referrer::{cosign_tag, referrer_descriptor, referrers_tag, CosignTagKind, ReferrerTag};
pub use store::{BlobPlacement, BlobStream, Deletion, Store};
pub use verify::verify_blob_stream;
