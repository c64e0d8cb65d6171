//! The copier: images from source to destination within one pass ([`Pass`]), and the
//! knobs of a pass ([`CopyOptions`]).
//!
//! `image.rs` copies one image (children before parents), `blob.rs` one blob (skip,
//! mount, or a verified stream), `size_limit.rs` looks an image over before any byte
//! moves, `queue.rs` orders the pass's streams, `memory.rs` is what the pass knows.

mod blob;
mod context;
mod image;
mod memory;
mod options;
mod queue;
mod read_ahead;
mod size_limit;

pub(crate) use context::Pass;
pub use options::CopyOptions;
