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
//! Several writers may share a directory: `index.json` changes under an advisory file
//! lock, temporary files are locked while their writer lives and swept when a killed
//! writer left them, and names that would collide with a layout's own entries
//! (`x/index.json`, `x/oci-layout`, `x/blobs`) are refused. [`check_root`] checks a
//! directory once, before any work.
//!
//! - `store.rs`: the [`Store`](ocisync_oci::Store) implementation.
//! - `index.rs`: the `index.json` model: tag lookup, tag moves.
//! - `blobs.rs`: all-or-nothing writes (temporary file, sync, rename) and chunked reads.
//! - `lock.rs`: file locks; `sweep.rs`: removing temporary files of dead writers.
//! - `gc.rs`: [`collect_garbage`], removing blobs nothing reachable references.
//! - `open.rs`: [`check_root`]; `catalog.rs`: finding repositories; `paths.rs`: where
//!   things live and the reserved names.
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
mod error;
mod gc;
mod index;
mod lock;
mod open;
mod paths;
mod store;
mod sweep;

pub use catalog::MAX_DEPTH;
pub use gc::{collect_garbage, GcReport, RepoGc};
pub use index::REF_NAME;
pub use open::{check_root, Access, OpenError};
pub use store::LayoutStore;
pub use sweep::STALE_AFTER;
