//! What a pass did, per sync, repository and tag: the source of exit codes and summaries.

use ocisync_oci::{Digest, RepoName, Tag};
use serde::Serialize;

use crate::filter::RuleSourceKind;
use crate::lifecycle::TagLifecycle;
use crate::outcome::{FailureKind, Outcome, SkipReason};
use crate::prune::{PruneReport, PruneTotals};
use crate::stop::StopCause;
use crate::work::Work;

/// Everything one pass did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// Each sync's pass, in the order run.
    pub syncs: Vec<SyncReport>,
}

/// One sync (upstream → destination) of a pass.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// The sync's name.
    pub name: String,
    /// Its source registry's name.
    pub from: String,
    /// Its destination registry's name.
    pub to: String,
    /// Set when the sync could not even be planned (catalog unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per content rule, where its repositories came from and how many it took (none
    /// when the sync has no rules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleReport>,
    /// Each repository planned, by source name.
    pub repositories: Vec<RepoReport>,
    /// Which URLs served this pass, with retries and failovers (filled in by the caller,
    /// which owns the stores).
    /// Kept under its old report key, `endpoints`, so the JSON report keeps its shape.
    #[serde(rename = "endpoints", skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<UrlUse>,
    /// The pull quota each URL announced during the pass (filled in by the caller, as
    /// `urls`); URLs that announced none are left out.
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
            urls: Vec::new(),
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
    /// The URL, without credentials.
    pub url: String,
    /// Pulls per window, when the registry said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Pulls left, the lowest count announced during the pass (0 once used up).
    pub remaining: u64,
    /// The window the quota counts over, when the registry said.
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
pub struct UrlUse {
    /// `source` or `destination`.
    pub role: String,
    /// The URL, without credentials.
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
    /// The upstream repository.
    pub source: RepoName,
    /// Its name at the destination.
    pub destination: RepoName,
    /// Set when the repository's tags could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each tag (or digest), in the order listed or named.
    pub tags: Vec<TagReport>,
    /// What the rule's `prune` did here, after the copy (`None`: the rule does not prune).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneReport>,
}

impl RepoReport {
    /// A repository whose tags were listed: `tags`, no error, nothing pruned (yet).
    pub fn new(source: RepoName, destination: RepoName, tags: Vec<TagReport>) -> RepoReport {
        RepoReport {
            source,
            destination,
            error: None,
            tags,
            prune: None,
        }
    }
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
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What exactly a filter matched, or other detail of a skip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What copying the tag (and its referrers) wrote.
    #[serde(flatten)]
    pub work: Work,
    /// What the rule's `tags.min_age` and `backup` did: when a young tag is eligible,
    /// which backup name the old digest got.
    #[serde(flatten)]
    pub lifecycle: TagLifecycle,
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
            work: Work::default(),
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
    /// Repositories planned.
    pub repositories: usize,
    /// Repositories whose tags could not be listed.
    pub repositories_failed: usize,
    /// Tags copied.
    pub tags_copied: usize,
    /// Tags a dry run found to need copying.
    pub tags_would_copy: usize,
    /// Tags already at the upstream digest.
    pub tags_up_to_date: usize,
    /// Tags left out by content filters (include, exclude, semver, latest, platforms).
    pub tags_filtered: usize,
    /// Tags skipped for any other reason.
    pub tags_skipped_other: usize,
    /// Of `tags_skipped_other`, those a used-up pull quota left for a later pass
    /// (`rate-limited`); they fail the pass.
    pub tags_rate_limited: usize,
    /// Tags that failed.
    pub tags_failed: usize,
    /// What every tag's copy wrote, added up.
    #[serde(flatten)]
    pub work: Work,
    /// Syncs that could not be planned.
    pub syncs_failed: usize,
    /// Content rules that could not be planned (a refused catalog).
    pub rules_failed: usize,
    /// Syncs whose pass ran past its `max_pass_duration` and was stopped; they fail.
    pub syncs_past_deadline: usize,
    /// What the rules' `prune` did; its failed deletes fail the pass.
    pub prune: PruneTotals,
}

impl Report {
    /// Counts over the whole report.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for sync in &self.syncs {
            totals.syncs_failed += usize::from(sync.error.is_some());
            totals.syncs_past_deadline += usize::from(sync.passed_deadline());
            totals.rules_failed += sync.rules.iter().filter(|rule| rule.error.is_some()).count();
            for repo in &sync.repositories {
                totals.repositories += 1;
                totals.repositories_failed += usize::from(repo.error.is_some());
                if let Some(prune) = &repo.prune {
                    totals.prune.add(prune);
                }
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
                    totals.work += tag.work;
                }
            }
        }
        totals
    }

    /// What failed each failed tag, one kind per failed tag.
    pub fn failure_kinds(&self) -> impl Iterator<Item = FailureKind> + '_ {
        self.syncs
            .iter()
            .flat_map(|sync| &sync.repositories)
            .flat_map(|repo| &repo.tags)
            .filter_map(|tag| match tag.outcome {
                Outcome::Failed { kind, .. } => Some(kind),
                _ => None,
            })
    }

    /// Whether any sync, repository or tag failed, a used-up pull quota left tags
    /// behind (`rate-limited`; a configured reserve's skips do not count), or a pass ran
    /// past its `max_pass_duration` (a shutdown's `interrupted` does not count), or a
    /// prune's delete failed (a refused or blocked prune does not count).
    pub fn has_failures(&self) -> bool {
        let totals = self.totals();
        totals.syncs_failed
            + totals.rules_failed
            + totals.repositories_failed
            + totals.tags_failed
            + totals.tags_rate_limited
            + totals.syncs_past_deadline
            + totals.prune.failures()
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
                    prune: None,
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
            tag.work.bytes = 1 << 63;
        }
        assert_eq!(report.totals().work.bytes, u64::MAX);
    }
}
