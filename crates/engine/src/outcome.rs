//! How one image ended: copied, skipped (and why) or failed (and of what kind).

use serde::Serialize;

/// How one image (a tag, or a digest an `images` rule names) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Written to the destination.
    Copied,
    /// A dry run (`check`) found the tag missing or different at the destination.
    WouldCopy,
    /// Not copied, and not a failure (unless the reason says so: see
    /// [`Report::has_failures`](crate::Report::has_failures)(crate::Report::has_failures)).
    Skipped {
        /// Why.
        reason: SkipReason,
    },
    /// Not copied because something went wrong.
    Failed {
        /// Which side or part failed, for counting (metrics label failures by it).
        kind: FailureKind,
        /// What went wrong, for a person.
        error: String,
    },
}

/// What failed an image, kept typed up to the report so that failures can be counted
/// by kind; the report's `error` says the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The source refused or failed a request, or its stream broke.
    Source,
    /// The destination refused or failed a request.
    Destination,
    /// Source content was not what its descriptor said (digest or size mismatch).
    Integrity,
    /// An upstream manifest could not be copied as it is (unreadable, nested too
    /// deep, a schema1 manifest inside an index).
    Manifest,
    /// The image's referrers (signatures, SBOMs, attestations) could not all be copied.
    Referrers,
}

impl FailureKind {
    /// Every kind, in the order metrics list them.
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Source,
        FailureKind::Destination,
        FailureKind::Integrity,
        FailureKind::Manifest,
        FailureKind::Referrers,
    ];

    /// The name used in reports and metric labels, e.g. `source`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Source => "source",
            FailureKind::Destination => "destination",
            FailureKind::Integrity => "integrity",
            FailureKind::Manifest => "manifest",
            FailureKind::Referrers => "referrers",
        }
    }
}

/// Why a tag was not copied, when that is not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// The destination tag already points at the upstream digest.
    UpToDate,
    /// Docker schema1 manifests are deprecated and not copied.
    Schema1Unsupported,
    /// The tag was listed but gone by the time it was read.
    VanishedUpstream,
    /// No `tags.include` pattern matches the tag.
    NotIncluded,
    /// A `tags.exclude` pattern matches the tag.
    Excluded,
    /// The tag is a version outside the `tags.semver` range.
    OutsideSemverRange,
    /// `tags.latest` keeps only higher versions.
    NotAmongLatest,
    /// The index has none of the `platforms` the rule asks for.
    NoMatchingPlatform,
    /// The worker was stopping (SIGTERM) before this image started, or it was
    /// abandoned when the grace period ran out.
    Interrupted,
    /// The pass ran past its `max_pass_duration` before this image was done: it did
    /// not start, or it was abandoned when the grace period ran out. Fails the pass
    /// (see [`Report::has_failures`](crate::Report::has_failures)); the next pass takes the image.
    Deadline,
    /// The image references a blob larger than the source registry's `max_blob_size`
    /// (by the size its descriptor declares); nothing of it was transferred. The
    /// detail names the blob and its size. Not a failure: the config chose it.
    BlobTooLarge,
    /// The rule copies signed images only, and this one has no signature.
    Unsigned,
    /// The rule verifies cosign signatures, and none of this image's verifies.
    SignatureInvalid,
    /// A cosign (`sha256-<hex>.sig|.att|.sbom`) or referrers tag schema (`sha256-<hex>`)
    /// tag: copied with the image it belongs to, never as an image of its own.
    ReferrerTag,
    /// The registry's pull quota is down to the configured reserve (`rate_limit.reserve`):
    /// the manifest `GET` this tag needs waits for a later pass. Not a failure.
    RateLimitReserve,
    /// The registry's pull quota is used up (a 429 `TOOMANYREQUESTS`): this tag waits
    /// for a later pass. Fails the pass (see [`Report::has_failures`](crate::Report::has_failures)), since the
    /// mirror is incomplete for a reason nobody chose.
    RateLimited,
}

impl SkipReason {
    /// Whether a content filter chose this (as opposed to the state of the image).
    pub fn is_filter(self) -> bool {
        matches!(
            self,
            SkipReason::NotIncluded
                | SkipReason::Excluded
                | SkipReason::OutsideSemverRange
                | SkipReason::NotAmongLatest
                | SkipReason::NoMatchingPlatform
                | SkipReason::ReferrerTag
        )
    }

    /// Whether a registry's pull quota left the tag for a later pass.
    pub fn is_quota(self) -> bool {
        matches!(self, SkipReason::RateLimitReserve | SkipReason::RateLimited)
    }

    /// The name used in reports and summaries, e.g. `not-included`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::UpToDate => "up-to-date",
            SkipReason::Schema1Unsupported => "schema1-unsupported",
            SkipReason::VanishedUpstream => "vanished-upstream",
            SkipReason::NotIncluded => "not-included",
            SkipReason::Excluded => "excluded",
            SkipReason::OutsideSemverRange => "outside-semver-range",
            SkipReason::NotAmongLatest => "not-among-latest",
            SkipReason::NoMatchingPlatform => "no-matching-platform",
            SkipReason::Interrupted => "interrupted",
            SkipReason::Deadline => "deadline",
            SkipReason::BlobTooLarge => "blob-too-large",
            SkipReason::Unsigned => "unsigned",
            SkipReason::SignatureInvalid => "signature-invalid",
            SkipReason::ReferrerTag => "referrer-tag",
            SkipReason::RateLimitReserve => "rate-limit-reserve",
            SkipReason::RateLimited => "rate-limited",
        }
    }
}
