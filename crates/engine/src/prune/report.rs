//! What a prune did in one repository: each tag deleted (or, in `check`, to be
//! deleted) with its digest, each blocked one with the reason, or why the whole
//! repository's prune was refused.

use ocisync_oci::{Digest, Tag};
use serde::Serialize;

/// The prune of one destination repository.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// Every tag the prune touched, in the order it did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<PrunedTag>,
    /// Set when the repository's prune was refused as a whole; then nothing was deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<PruneRefusal>,
    /// Set when the prune could not go on (the destination refuses deletes, its tag
    /// list failed); tags deleted before stay in `tags`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One destination tag the prune touched.
#[derive(Debug, Clone, Serialize)]
pub struct PrunedTag {
    /// The destination tag.
    pub tag: Tag,
    /// The manifest the tag named at the destination.
    pub digest: Digest,
    /// For a cosign or referrers-schema tag: the image it belongs to, whose last tag
    /// went in this prune.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: PruneOutcome,
}

/// What became of one destination tag a prune took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum PruneOutcome {
    /// Deleted.
    Pruned,
    /// `check`: the tag would be deleted. `note` warns when a registry that deletes by
    /// digest only would block it.
    WouldPrune {
        /// A warning about how the delete would go.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The registry deletes manifests by digest only, and a tag that stays names the
    /// same manifest: deleting it would take that tag along.
    PruneBlocked {
        /// Which staying tag names the manifest.
        reason: String,
    },
    /// The delete failed.
    Failed {
        /// The store's error.
        error: String,
    },
}

/// Why a repository's whole prune was refused. None deletes anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum PruneRefusal {
    /// The upstream tag list could not be read.
    UpstreamListFailed,
    /// The upstream tag list came back empty (a wiped or misbehaving upstream).
    UpstreamEmpty,
    /// The rule's tag filters took none of the upstream tags.
    NoneSelected,
    /// The rule names its images (`images`), so there is no upstream list to compare with.
    NoTagList,
    /// Images of the copy part failed, or waited for a later pass.
    CopyIncomplete {
        /// How many images.
        unfinished: usize,
    },
    /// The pass was told to stop.
    Stopped,
    /// The prune would delete more than `max_fraction` of the repository's tags.
    OverMaxFraction {
        /// The tags it would have deleted.
        would_prune: Vec<Tag>,
        /// The repository's ordinary tags.
        tags: usize,
        /// The rule's limit.
        max_fraction: f64,
    },
}

impl PruneRefusal {
    /// The name used in summaries, e.g. `max-fraction`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PruneRefusal::UpstreamListFailed => "upstream-list-failed",
            PruneRefusal::UpstreamEmpty => "upstream-empty",
            PruneRefusal::NoneSelected => "none-selected",
            PruneRefusal::NoTagList => "no-tag-list",
            PruneRefusal::CopyIncomplete { .. } => "copy-incomplete",
            PruneRefusal::Stopped => "stopped",
            PruneRefusal::OverMaxFraction { .. } => "over-max-fraction",
        }
    }
}

impl std::fmt::Display for PruneRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PruneRefusal::UpstreamListFailed => write!(f, "the upstream tag list could not be read"),
            PruneRefusal::UpstreamEmpty => write!(f, "the upstream tag list is empty"),
            PruneRefusal::NoneSelected => write!(f, "the rule's tag filters took no upstream tag"),
            PruneRefusal::NoTagList => write!(f, "an images rule reads no upstream tag list"),
            PruneRefusal::CopyIncomplete { unfinished } => {
                write!(f, "{unfinished} images of this pass failed or were left for later")
            }
            PruneRefusal::Stopped => write!(f, "the pass was stopped"),
            PruneRefusal::OverMaxFraction {
                would_prune,
                tags,
                max_fraction,
            } => write!(
                f,
                "would delete {} of {tags} tags, more than max_fraction {max_fraction} allows",
                would_prune.len()
            ),
        }
    }
}

/// Prune counts over a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneTotals {
    /// Tags deleted.
    pub tags_pruned: usize,
    /// `check`: tags that would be deleted.
    pub tags_would_prune: usize,
    /// Tags a staying tag kept from a delete by digest.
    pub tags_blocked: usize,
    /// Tags whose delete failed.
    pub tags_failed: usize,
    /// Repositories whose prune was refused as a whole.
    pub repositories_refused: usize,
    /// Repositories whose prune could not go on.
    pub repositories_failed: usize,
}

impl PruneTotals {
    /// Counts one repository's prune.
    pub fn add(&mut self, report: &PruneReport) {
        for tag in &report.tags {
            match tag.outcome {
                PruneOutcome::Pruned => self.tags_pruned += 1,
                PruneOutcome::WouldPrune { .. } => self.tags_would_prune += 1,
                PruneOutcome::PruneBlocked { .. } => self.tags_blocked += 1,
                PruneOutcome::Failed { .. } => self.tags_failed += 1,
            }
        }
        self.repositories_refused += usize::from(report.refused.is_some());
        self.repositories_failed += usize::from(report.error.is_some());
    }

    /// Deletes that failed fail the pass; a refusal or a block is a safeguard at work.
    pub fn failures(&self) -> usize {
        self.tags_failed + self.repositories_failed
    }
}

impl PruneReport {
    /// A prune refused as a whole.
    pub fn refused(refusal: PruneRefusal) -> PruneReport {
        PruneReport {
            refused: Some(refusal),
            ..PruneReport::default()
        }
    }

    /// A prune that could not go on.
    pub fn failed(error: String) -> PruneReport {
        PruneReport {
            error: Some(error),
            ..PruneReport::default()
        }
    }
}
