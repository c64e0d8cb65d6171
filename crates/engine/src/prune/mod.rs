//! Prune: a destination tag that the rule no longer selects upstream is deleted, so a
//! mirror forgets what upstream removed, within safeguards that keep a misbehaving
//! upstream or a wrong filter from wiping the destination.
//!
//! Runs per repository after the copy part of the pass (`pass.rs` calls
//! [`prune_repository`]), and only when that part succeeded. Nothing is deleted when
//! the upstream list failed, came back empty or had no tag the rule selects, nor when
//! more than `max_fraction` of the repository's tags would go (then the whole
//! repository's prune is refused). `keep` tags and protected tags are never deleted.
//! Cosign and referrers-schema tags follow their subject: they go when the last tag
//! naming their image went, never while one stays. `select.rs` decides from names and
//! digests, `delete.rs` deletes, `report.rs` records.

mod delete;
mod policy;
mod report;
mod select;

use std::collections::{HashMap, HashSet};

use futures_util::{stream, StreamExt, TryStreamExt};
use ocisync_oci::{Digest, Reference, RepoName, Store, StoreError, Tag};

use crate::outcome::{Outcome, SkipReason};
use crate::report::TagReport;

pub use policy::{PrunePolicy, PruneSpec};
pub use report::{PruneOutcome, PruneRefusal, PruneReport, PruneTotals, PrunedTag};

/// Destination `HEAD`s a prune sends at once, to learn its tags' digests.
const HEADS_AT_ONCE: usize = 8;

/// What a rule took from the upstream tag list in this pass: all a prune compares with.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpstreamTags {
    /// Ordinary tags listed (cosign and referrers-schema tags not counted).
    listed: usize,
    selected: HashSet<Tag>,
}

impl UpstreamTags {
    /// From the number of ordinary upstream tags listed and those the rule selected.
    pub(crate) fn new(listed: usize, selected: impl IntoIterator<Item = Tag>) -> UpstreamTags {
        UpstreamTags {
            listed,
            selected: selected.into_iter().collect(),
        }
    }
}

/// What a prune is told about the pass so far.
pub(crate) struct PassState<'a> {
    /// `None`: the rule read no upstream tag list (an `images` rule).
    pub upstream: Option<&'a UpstreamTags>,
    /// The copy part's reports of this repository.
    pub copied: &'a [TagReport],
    /// The pass was told to stop.
    pub stopped: bool,
    /// `check`: list, delete nothing.
    pub dry_run: bool,
}

/// Prunes destination repository `repo` under `policy`, after the copy part of the
/// pass described by `pass`.
pub(crate) async fn prune_repository<D: Store>(
    destination: &D,
    repo: &RepoName,
    policy: &PrunePolicy,
    pass: PassState<'_>,
) -> PruneReport {
    if let Some(refusal) = refusal_before_listing(&pass) {
        return PruneReport::refused(refusal);
    }
    let Some(upstream) = pass.upstream else {
        return PruneReport::refused(PruneRefusal::NoTagList);
    };
    let listed = match destination.tags(repo).await {
        Ok(listed) => listed,
        Err(error) if error.is_not_found() => return PruneReport::default(),
        Err(error) => return PruneReport::failed(format!("destination tags: {error}")),
    };
    let found = select::candidates(listed, &upstream.selected, policy);
    if found.prune.is_empty() {
        return PruneReport::default();
    }
    if select::over_limit(found.prune.len(), found.ordinary(), policy.max_fraction()) {
        return PruneReport::refused(PruneRefusal::OverMaxFraction {
            tags: found.ordinary(),
            would_prune: found.prune,
            max_fraction: policy.max_fraction(),
        });
    }
    // Digests: for the report, and to tell which manifests a staying tag still names.
    let digests = match digests_of(destination, repo, found.prune.iter().chain(&found.staying)).await {
        Ok(digests) => digests,
        Err(error) => return PruneReport::failed(format!("destination digests: {error}")),
    };
    let mut staying: HashMap<Digest, Tag> = HashMap::new();
    for tag in &found.staying {
        if let Some(digest) = digests.get(tag) {
            staying.entry(digest.clone()).or_insert_with(|| tag.clone());
        }
    }
    let mut deleter = delete::Deleter::new(destination, repo, pass.dry_run, staying);
    for tag in &found.prune {
        // Gone between the list and its HEAD: nothing left to delete.
        let Some(digest) = digests.get(tag) else { continue };
        if !deleter.prune(tag, digest, None).await {
            return deleter.finish();
        }
    }
    let (gone, staying) = deleter.gone_and_staying();
    let attachments = select::attachments_to_prune(&found.attachments, &gone, &staying);
    let tags: Vec<Tag> = attachments.iter().map(|(tag, _)| tag.clone()).collect();
    let attachment_digests = match digests_of(destination, repo, tags.iter()).await {
        Ok(digests) => digests,
        Err(error) => {
            let mut report = deleter.finish();
            report.error = Some(format!("destination digests: {error}"));
            return report;
        }
    };
    for (tag, subject) in &attachments {
        let Some(digest) = attachment_digests.get(tag) else {
            continue;
        };
        if !deleter.prune(tag, digest, Some(subject)).await {
            break;
        }
    }
    deleter.finish()
}

/// A refusal the pass's own state decides, before the destination is asked anything.
fn refusal_before_listing(pass: &PassState<'_>) -> Option<PruneRefusal> {
    if pass.stopped {
        return Some(PruneRefusal::Stopped);
    }
    let unfinished = pass.copied.iter().filter(|tag| unfinished(tag)).count();
    if unfinished > 0 {
        return Some(PruneRefusal::CopyIncomplete { unfinished });
    }
    let upstream = pass.upstream?;
    if upstream.listed == 0 {
        return Some(PruneRefusal::UpstreamEmpty);
    }
    if upstream.selected.is_empty() {
        return Some(PruneRefusal::NoneSelected);
    }
    None
}

/// An image the copy part did not finish: failed, or left for a later pass by a used-up
/// quota or a stop.
fn unfinished(tag: &TagReport) -> bool {
    match &tag.outcome {
        Outcome::Failed { .. } => true,
        Outcome::Skipped { reason } => matches!(
            reason,
            SkipReason::RateLimited | SkipReason::Interrupted | SkipReason::Deadline
        ),
        Outcome::Copied | Outcome::WouldCopy => false,
    }
}

/// The destination digest of each tag, `HEADs_AT_ONCE` at a time; a tag gone
/// meanwhile is left out. Any failure fails the whole lookup: a prune that does not
/// know what a staying tag names could delete it along.
async fn digests_of<'a, D: Store>(
    destination: &D,
    repo: &RepoName,
    tags: impl Iterator<Item = &'a Tag>,
) -> Result<HashMap<Tag, Digest>, StoreError> {
    let found: Vec<Option<(Tag, Digest)>> = stream::iter(tags.cloned())
        .map(|tag| async move {
            let descriptor = destination.head_manifest(repo, &Reference::Tag(tag.clone())).await?;
            Ok::<_, StoreError>(descriptor.map(|descriptor| (tag, descriptor.digest)))
        })
        .buffer_unordered(HEADS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}
