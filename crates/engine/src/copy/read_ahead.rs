//! Child manifests read while looking an image over, handed to the copy that follows
//! so that each is read once (registries such as Docker Hub count manifest reads).

use std::collections::HashMap;

use ocisync_oci::{Digest, Manifest};

/// Manifests read ahead, by digest.
#[derive(Default)]
pub(super) struct ReadAhead(HashMap<Digest, Manifest>);

impl ReadAhead {
    /// The manifest, if it was read ahead (and only once: it is handed over).
    pub(super) fn take(&mut self, digest: &Digest) -> Option<Manifest> {
        self.0.remove(digest)
    }

    /// The manifest, if it was read ahead, kept for the copy.
    pub(super) fn get(&self, digest: &Digest) -> Option<&Manifest> {
        self.0.get(digest)
    }

    pub(super) fn insert(&mut self, digest: Digest, manifest: Manifest) {
        self.0.insert(digest, manifest);
    }
}
