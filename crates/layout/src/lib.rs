//! OCI image-layout directories as an ocisync [`Store`](ocisync_oci::Store), so an
//! air-gapped pipeline can go registry → directory → registry.
//!
//! [`LayoutStore`] keeps one image layout (image-spec `image-layout.md`) per repository
//! under its root: repository `library/alpine` is `<root>/library/alpine/`, holding
//! `oci-layout`, `index.json` and `blobs/<algorithm>/<hex>`. Tags are the `index.json`
//! entries annotated `org.opencontainers.image.ref.name`; every manifest, including
//! index children and manifests pushed by digest, is a blob. This is the layout skopeo's
//! `oci:` transport reads and writes.
//!
//! - `store.rs`: the [`Store`](ocisync_oci::Store) implementation.
//! - `index.rs`: the `index.json` model: tag lookup, tag moves.
//! - `blobs.rs`: all-or-nothing writes (temporary file, sync, rename) and chunked reads.
//! - `catalog.rs`: finding repositories; `paths.rs`: where things live.
//!
//! ```no_run
//! # async fn demo() -> ocisync_oci::Result<()> {
//! use ocisync_layout::LayoutStore;
//! use ocisync_oci::Store;
//! let store = LayoutStore::new("/srv/export");
//! for repo in store.catalog().await? {
//!     println!("{repo}: {:?}", store.tags(&repo).await?);
//! }
//! # Ok(())
//! # }
//! ```

mod blobs;
mod catalog;
mod errors;
mod index;
mod paths;
mod store;

pub use catalog::MAX_DEPTH;
pub use index::REF_NAME;
pub use store::LayoutStore;
