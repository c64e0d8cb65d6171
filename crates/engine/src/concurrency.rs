//! How much of a pass runs at once, and the defaults: the one place they are set.

use serde::Serialize;

/// How much work runs at the same time (the config's `defaults.concurrency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Concurrency {
    /// Repositories of one sync copied at the same time.
    pub repositories: usize,
    /// Tags of one repository checked and copied at the same time.
    pub tags: usize,
    /// Blobs of one image transferred at the same time.
    pub blobs: usize,
    /// Blob streams of one pass at the same time, the largest waiting one first.
    pub transfers: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            // Many: a repository's tag lists and manifests are cheap, the streams are
            // bounded by `transfers` and every registry by its request cap, and tags
            // found early let the transfer queue start large blobs first.
            repositories: 32,
            tags: 4,
            blobs: 4,
            // As many streams as the plain parallel client of the benchmark runs, half
            // the default request cap (the rest is left to manifests).
            transfers: 8,
        }
    }
}
