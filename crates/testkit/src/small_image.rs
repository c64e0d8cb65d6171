//! The smallest useful image: what a test needs when it is about tags, not content.

use crate::image::{image, layer, Format, Image};

/// The one layer's size: a few hundred bytes, so that seeding costs nothing.
const LAYER_BYTES: usize = 256;

/// A linux/amd64 OCI image of one small layer; distinct `seed`s give distinct layers,
/// distinct `label`s distinct configs (and so distinct digests).
pub fn small_image(label: &str, seed: u64) -> Image {
    let only_layer = layer(Format::Oci, seed, LAYER_BYTES);
    image(Format::Oci, ("linux", "amd64"), vec![only_layer], label)
}
