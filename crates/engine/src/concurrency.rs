//! How much of a pass runs at once, and the defaults: the one place they are set.

use serde::Serialize;

/// HTTP requests one registry may have in flight at once unless its config says
/// otherwise (`max_requests_in_flight`), over all its URLs and syncs.
///
/// Most of a pass's requests are cheap for a registry and cost a round trip each: tag
/// lists, manifest `HEAD`s and `GET`s, referrers. At internet distance a pass is as long
/// as its round trips one after another, so this is wide enough for a no-op pass of the
/// default concurrency (32 repositories × 4 tags) to check its tags a few round trips
/// deep rather than a hundred requests behind one another. Heavy work stays bounded
/// elsewhere: at most `transfers` blob streams (8) per pass. Polite for a public
/// registry: without HTTP/2 each request in flight is a connection, and 64 is half of
/// the streams an HTTP/2 server lets one connection have by default (nginx 128); lower
/// it for a registry that limits requests per second (`docs/upstreams.md`: Quay).
pub const REQUESTS_IN_FLIGHT: usize = 64;

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
            // As many streams as the plain parallel client of the benchmark runs: the
            // eighth of the default request cap a registry keeps for streams.
            transfers: 8,
        }
    }
}
