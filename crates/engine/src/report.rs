//! What a pass did, per sync, repository and tag: the source of exit codes and summaries.

use ocisync_oci::{Digest, RepoName, Tag};
use serde::Serialize;

use crate::filter::RuleSourceKind;
use crate::lifecycle::TagLifecycle;
use crate::stop::StopCause;

/// Everything one pass did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub syncs: Vec<SyncReport>,
}

/// One sync (upstream → destination) of a pass.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub name: String,
    pub from: String,
    pub to: String,
    /// Set when the sync could not even be planned (catalog unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per content rule, where its repositories came from and how many it took (none
    /// when the sync has no rules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleReport>,
    pub repositories: Vec<RepoReport>,
    /// Which URLs served this pass, with retries and failovers (filled in by the caller,
    /// which owns the stores).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointUse>,
    /// The pull quota each URL announced during the pass (filled in by the caller, as
    /// `endpoints`); URLs that announced none are left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitUse>,
    /// Set when the pass was told to stop before it was done: `shutdown` (the worker
    /// is stopping) or `deadline` (it ran past its `max_pass_duration`, a failure).
    /// Images it left are skipped `interrupted` or `deadline`; repositories it never
    /// reached have no tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopCause>,
    /// How long the pass of this sync took, in seconds (filled in by the caller, which
    /// may count more than the engine's part, such as asking a credential helper).
    pub duration_seconds: f64,
}

impl SyncReport {
    /// The report of a sync before its pass has done anything.
    pub fn new(name: impl Into<String>, from: impl Into<String>, to: impl Into<String>) -> SyncReport {
        SyncReport {
            name: name.into(),
            from: from.into(),
            to: to.into(),
            error: None,
            rules: Vec::new(),
            repositories: Vec::new(),
            endpoints: Vec::new(),
            rate_limits: Vec::new(),
            stopped: None,
            duration_seconds: 0.0,
        }
    }

    /// Whether the pass ran past its `max_pass_duration` and was stopped.
    pub fn passed_deadline(&self) -> bool {
        self.stopped == Some(StopCause::Deadline)
    }
}

/// What a registry URL said of its pull quota (`ratelimit-*` headers) during a pass.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RateLimitUse {
    /// `source` or `destination`.
    pub role: String,
    pub url: String,
    /// Pulls per window, when the registry said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Pulls left, the lowest count announced during the pass (0 once used up).
    pub remaining: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// Pulls the config keeps (`rate_limit.reserve`): manifest `GET`s stopped there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserve: Option<u64>,
    /// A 429 `TOOMANYREQUESTS` stopped manifest `GET`s for the rest of the pass.
    pub exhausted: bool,
}

/// One content rule of a pass: where its repositories came from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleReport {
    /// Its position in the sync's `content` list, from 0.
    pub rule: usize,
    /// `catalog`, `named` or `images`.
    pub source: RuleSourceKind,
    /// What it names: `prefix team/*`, `3 repositories`, `2 images`.
    pub selector: String,
    /// Repositories it took in this pass.
    pub repositories: usize,
    /// Set when the rule could not be planned (its registry refused the catalog).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How one URL of a registry was used during a pass.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EndpointUse {
    /// `source` or `destination`.
    pub role: String,
    pub url: String,
    /// Calls this URL answered successfully.
    pub served: u64,
    /// HTTP requests sent to this URL (retries and authentication rounds included).
    pub requests: u64,
    /// Requests to this URL that were repeated after a transient failure.
    pub retries: u64,
    /// Times a call moved from this registry's current URL to the next one.
    pub failovers: u64,
}

/// One sync task: an upstream repository and where it lands.
#[derive(Debug, Clone, Serialize)]
pub struct RepoReport {
    pub source: RepoName,
    pub destination: RepoName,
    /// Set when the repository's tags could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub tags: Vec<TagReport>,
}

/// What happened to one tag.
#[derive(Debug, Clone, Serialize)]
pub struct TagReport {
    /// The tag; `None` for an image named by digest alone (an `images` rule's
    /// `NAME@sha256:…`), which `digest` then names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<Tag>,
    /// The upstream manifest digest, when it was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The digest of the manifest written under the tag when it differs from upstream
    /// (an index narrowed to the configured platforms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_digest: Option<Digest>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What exactly a filter matched, or other detail of a skip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Blob bytes transferred for this tag (blobs already present cost nothing).
    pub bytes: u64,
    pub blobs_copied: usize,
    /// Blobs made present by a cross-repository mount instead of a transfer.
    pub blobs_mounted: usize,
    pub manifests_pushed: usize,
    /// What the rule's `tags.min_age` and `backup` did: when a young tag is eligible,
    /// which backup name the old digest got.
    #[serde(flatten)]
    pub lifecycle: TagLifecycle,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Copied,
    /// A dry run (`check`) found the tag missing or different at the destination.
    WouldCopy,
    Skipped {
        reason: SkipReason,
    },
    Failed {
        error: String,
    },
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
    /// (see [`Report::has_failures`]); the next pass takes the image.
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
    /// for a later pass. Fails the pass (see [`Report::has_failures`]), since the
    /// mirror is incomplete for a reason nobody chose.
    RateLimited,
    /// The image is younger than the rule's `tags.min_age` (by its config's `created`;
    /// an index by its youngest platform image): it is copied once it is old enough,
    /// at the report's `eligible_at`. Not a failure.
    TooYoung,
    /// The rule has `tags.min_age`, and the image's config has no readable `created`
    /// time, so its age is unknown: never copied under that rule. Not a failure.
    NoCreatedTime,
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
            SkipReason::TooYoung => "too-young",
            SkipReason::NoCreatedTime => "no-created-time",
        }
    }
}

impl TagReport {
    /// A tag left alone before anything was read.
    pub fn skipped(tag: impl Into<Option<Tag>>, reason: SkipReason, detail: Option<String>) -> TagReport {
        TagReport {
            tag: tag.into(),
            digest: None,
            destination_digest: None,
            outcome: Outcome::Skipped { reason },
            detail,
            bytes: 0,
            blobs_copied: 0,
            blobs_mounted: 0,
            manifests_pushed: 0,
            lifecycle: TagLifecycle::default(),
        }
    }
}

impl TagReport {
    /// How the image is named after its repository: `:v1` or `@sha256:…`.
    pub fn reference_suffix(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => format!(":{tag}"),
            (None, Some(digest)) => format!("@{digest}"),
            (None, None) => String::new(),
        }
    }
}

/// Counts over a whole report, for summaries and exit codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub repositories: usize,
    pub repositories_failed: usize,
    pub tags_copied: usize,
    /// Tags a dry run found to need copying.
    pub tags_would_copy: usize,
    pub tags_up_to_date: usize,
    /// Tags left out by content filters (include, exclude, semver, latest, platforms).
    pub tags_filtered: usize,
    pub tags_skipped_other: usize,
    /// Of `tags_skipped_other`, those a used-up pull quota left for a later pass
    /// (`rate-limited`); they fail the pass.
    pub tags_rate_limited: usize,
    pub tags_failed: usize,
    /// Blob bytes, added without wrapping: sizes come from manifests, which may claim
    /// anything, so `u64::MAX` means "at least this much".
    pub bytes: u64,
    pub blobs_copied: usize,
    pub blobs_mounted: usize,
    pub manifests_pushed: usize,
    pub syncs_failed: usize,
    /// Content rules that could not be planned (a refused catalog).
    pub rules_failed: usize,
    /// Syncs whose pass ran past its `max_pass_duration` and was stopped; they fail.
    pub syncs_past_deadline: usize,
}

impl Report {
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for sync in &self.syncs {
            totals.syncs_failed += usize::from(sync.error.is_some());
            totals.syncs_past_deadline += usize::from(sync.passed_deadline());
            totals.rules_failed += sync.rules.iter().filter(|rule| rule.error.is_some()).count();
            for repo in &sync.repositories {
                totals.repositories += 1;
                totals.repositories_failed += usize::from(repo.error.is_some());
                for tag in &repo.tags {
                    match &tag.outcome {
                        Outcome::Copied => totals.tags_copied += 1,
                        Outcome::WouldCopy => totals.tags_would_copy += 1,
                        Outcome::Skipped {
                            reason: SkipReason::UpToDate,
                        } => totals.tags_up_to_date += 1,
                        Outcome::Skipped { reason } if reason.is_filter() => totals.tags_filtered += 1,
                        Outcome::Skipped { reason } => {
                            totals.tags_skipped_other += 1;
                            totals.tags_rate_limited += usize::from(*reason == SkipReason::RateLimited);
                        }
                        Outcome::Failed { .. } => totals.tags_failed += 1,
                    }
                    totals.bytes = totals.bytes.saturating_add(tag.bytes);
                    totals.blobs_copied += tag.blobs_copied;
                    totals.blobs_mounted += tag.blobs_mounted;
                    totals.manifests_pushed += tag.manifests_pushed;
                }
            }
        }
        totals
    }

    /// Whether any sync, repository or tag failed, a used-up pull quota left tags
    /// behind (`rate-limited`; a configured reserve's skips do not count), or a pass ran
    /// past its `max_pass_duration` (a shutdown's `interrupted` does not count).
    pub fn has_failures(&self) -> bool {
        let totals = self.totals();
        totals.syncs_failed
            + totals.rules_failed
            + totals.repositories_failed
            + totals.tags_failed
            + totals.tags_rate_limited
            + totals.syncs_past_deadline
            > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_with(reasons: &[SkipReason]) -> Report {
        let tags = reasons
            .iter()
            .enumerate()
            .map(|(index, reason)| {
                TagReport::skipped(format!("t{index}").parse::<ocisync_oci::Tag>().unwrap(), *reason, None)
            })
            .collect();
        Report {
            syncs: vec![SyncReport {
                repositories: vec![RepoReport {
                    source: "library/alpine".parse().unwrap(),
                    destination: "library/alpine".parse().unwrap(),
                    error: None,
                    tags,
                }],
                ..SyncReport::new("hub", "upstream", "mirror")
            }],
        }
    }

    #[test]
    fn a_used_up_quota_fails_the_pass_and_a_reserve_does_not() {
        use SkipReason::{RateLimitReserve, RateLimited, UpToDate};
        let reserve = report_with(&[UpToDate, RateLimitReserve, RateLimitReserve]);
        assert!(!reserve.has_failures());
        assert_eq!(reserve.totals().tags_skipped_other, 2);
        assert_eq!(reserve.totals().tags_rate_limited, 0);
        let exhausted = report_with(&[UpToDate, RateLimited]);
        assert!(exhausted.has_failures());
        assert_eq!(exhausted.totals().tags_skipped_other, 1);
        assert_eq!(exhausted.totals().tags_rate_limited, 1);
        assert_eq!(RateLimited.as_str(), "rate-limited");
        assert_eq!(RateLimitReserve.as_str(), "rate-limit-reserve");
        assert!(!RateLimited.is_filter() && RateLimited.is_quota() && !UpToDate.is_quota());
    }

    #[test]
    fn a_deadline_fails_the_pass_and_a_shutdown_does_not() {
        use SkipReason::{Deadline, Interrupted, UpToDate};
        let mut shutdown = report_with(&[UpToDate, Interrupted]);
        shutdown.syncs[0].stopped = Some(StopCause::Shutdown);
        assert!(!shutdown.has_failures());
        let mut deadline = report_with(&[UpToDate, Deadline]);
        deadline.syncs[0].stopped = Some(StopCause::Deadline);
        assert!(deadline.has_failures());
        assert_eq!(deadline.totals().syncs_past_deadline, 1);
        // Stopped while listing, before any tag: still a failure.
        let mut early = report_with(&[]);
        early.syncs[0].stopped = Some(StopCause::Deadline);
        assert!(early.has_failures());
        assert_eq!(Deadline.as_str(), "deadline");
        assert_eq!(SkipReason::BlobTooLarge.as_str(), "blob-too-large");
        let json = serde_json::to_value(&deadline).unwrap();
        assert_eq!(json["syncs"][0]["stopped"], "deadline");
    }

    #[test]
    fn byte_totals_saturate_instead_of_wrapping() {
        let mut report = report_with(&[SkipReason::UpToDate, SkipReason::UpToDate]);
        for tag in &mut report.syncs[0].repositories[0].tags {
            tag.bytes = 1 << 63;
        }
        assert_eq!(report.totals().bytes, u64::MAX);
    }
}
