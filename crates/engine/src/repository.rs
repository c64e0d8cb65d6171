//! One repository of a pass: its tags listed (or named), filtered, and each copied
//! (after its rule's signature check, and with its referrers) a few at a time; then
//! the report lines of its referrer tags.

use std::collections::HashSet;

use futures_util::{stream, StreamExt};
use ocisync_oci::{Digest, Reference, Store};
use tracing::{debug, warn};

use crate::copy::Pass;
use crate::error::CopyError;
use crate::filter::Dropped;
use crate::outcome::SkipReason;
use crate::plan::SyncTask;
use crate::progress::ProgressEvent;
use crate::referrers::{
    carry_referrers, check_signatures, probe_attachments, report_referrer_tags, split_tags, unfinished, RepoAttachments,
};
use crate::report::{RepoReport, TagReport};

/// The detail of an immutable tag left alone because the destination lists it.
const IMMUTABLE_PRESENT: &str = "immutable tag already at the destination; not checked";

/// Syncs one repository: never fails the caller (a tag list that cannot be read is the
/// report's error).
pub(crate) async fn sync_repository<S: Store, D: Store>(pass: &Pass<'_, S, D>, task: SyncTask) -> RepoReport {
    let mut report = RepoReport {
        source: task.source.clone(),
        destination: task.destination.clone(),
        error: None,
        tags: Vec::new(),
    };
    if pass.options.stop.is_raised() {
        return report;
    }
    // A repository the destination catalog left out is confirmed absent (or its tags
    // read) before its tags skip their HEADs; immutable tags the destination lists are
    // settled by that list alone.
    let unlisted = pass.memory.is_unlisted(&task.destination);
    // Under a signature policy every tag is judged (the config refuses the combination).
    let has_immutable = task.tags.has_immutable() && !task.signatures.is_active();
    let lists = async {
        futures_util::join!(
            async {
                // An images rule names its tags: no upstream tag list.
                match task.references {
                    Some(_) => None,
                    None => Some(pass.source.tags(&task.source).await),
                }
            },
            async {
                if unlisted || has_immutable {
                    Some(pass.destination.tags(&task.destination).await)
                } else {
                    None
                }
            }
        )
    };
    // Abandoned while listing: like a repository the pass never reached.
    let Some((tags, destination_tags)) = pass.options.stop.unless_abandoned(lists).await else {
        return report;
    };
    let mut settled = HashSet::new();
    match destination_tags {
        Some(Ok(listed)) => {
            if has_immutable {
                settled.extend(listed.iter().filter(|tag| task.tags.is_immutable(tag)).cloned());
            }
            if unlisted {
                pass.memory.confirm_unlisted(&task.destination, listed);
            }
        }
        Some(Err(error)) if error.is_not_found() && unlisted => pass.memory.confirm_unlisted(&task.destination, []),
        Some(Err(error)) if error.is_not_found() => {}
        // Immutable tags then get their HEADs like any other.
        Some(Err(error)) => debug!(repo = %task.destination, error = %error, "cannot list destination tags"),
        None => {}
    }
    let (work, mut attachments) = match tags {
        None => {
            let references = task.references.clone().unwrap_or_default();
            let work = references.into_iter().map(|reference| (reference, Ok(()))).collect();
            (work, None)
        }
        Some(Ok(tags)) => {
            // Cosign and referrers tag schema tags travel with their images, not through the filters.
            let (tags, attachments) = split_tags(tags);
            let verdicts = task.tags.select(&tags);
            let work: Vec<(Reference, Result<(), Dropped>)> =
                tags.into_iter().map(Reference::Tag).zip(verdicts).collect();
            (work, Some(attachments))
        }
        Some(Err(error)) => {
            warn!(repo = %task.source, error = %error, "cannot list tags");
            report.error = Some(format!("tags: {error}"));
            pass.memory.forget_unlisted(&task.destination);
            return report;
        }
    };
    // Tags of one repository are checked and copied a few at a time, reported in order.
    let task = &task;
    let shared = attachments.as_ref();
    let settled = &settled;
    let reports: Vec<TagReport> = stream::iter(work)
        .map(|(reference, verdict)| async move {
            let tag = match &reference {
                Reference::Tag(tag) => Some(tag.clone()),
                Reference::Digest(_) => None,
            };
            if pass.options.stop.is_raised() {
                return TagReport::skipped(tag, pass.options.stop.skip_reason(), None);
            }
            if let Err(dropped) = verdict {
                return TagReport::skipped(tag, dropped.reason, Some(dropped.detail));
            }
            if tag.as_ref().is_some_and(|tag| settled.contains(tag)) {
                debug!(repo = %task.source, tag = %reference, "immutable tag already at the destination");
                return TagReport::skipped(tag, SkipReason::UpToDate, Some(IMMUTABLE_PRESENT.to_owned()));
            }
            pass.notify(ProgressEvent::TagStarted {
                repo: task.source.clone(),
                reference: reference.clone(),
            });
            let copy = async {
                match shared {
                    Some(attachments) => copy_tag_with_referrers(pass, task, &reference, None, attachments).await,
                    None => copy_named_image(pass, task, &reference).await,
                }
            };
            let done = pass.unless_abandoned(tag, copy).await;
            pass.notify(ProgressEvent::TagDone {
                bytes: done.work.bytes,
                outcome: done.outcome.clone(),
            });
            done
        })
        .buffered(pass.options.concurrency.tags.max(1))
        .collect()
        .await;
    report.tags.extend(reports);
    if let Some(attachments) = attachments.as_mut() {
        let referrer_tags = report_referrer_tags(pass, task, attachments).await;
        report.tags.extend(referrer_tags);
    }
    pass.memory.forget_unlisted(&task.destination);
    report
}

/// Copies one tag or digest after its rule's signature check, then carries its
/// referrers (also when the image was already up to date, so a signature added later is
/// picked up). `resolved` is the digest `reference` was already found to name, if any:
/// that digest is copied, even if a tag moves meanwhile.
async fn copy_tag_with_referrers<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    reference: &Reference,
    resolved: Option<Digest>,
    attachments: &RepoAttachments,
) -> TagReport {
    let resolved = resolved.or_else(|| reference.digest().cloned());
    let (mut report, attached) = if task.signatures.is_active() {
        match check_signatures(pass, task, reference, resolved, attachments).await {
            Err(report) => return *report,
            Ok((digest, attached)) => (
                pass.copy_reference(task, &Reference::Digest(digest), reference).await,
                Some(attached),
            ),
        }
    } else {
        let source = resolved.map_or_else(|| reference.clone(), Reference::Digest);
        (pass.copy_reference(task, &source, reference).await, None)
    };
    carry_referrers(pass, task, &mut report, attached, attachments).await;
    report
}

/// One image an `images` rule names: its digest is resolved (a tag costs one `HEAD`),
/// its cosign and tag-schema referrer tags are asked for by name, and then it is copied
/// with its referrers like a listed tag.
async fn copy_named_image<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    reference: &Reference,
) -> TagReport {
    let tag = reference.tag().cloned();
    let digest = match reference {
        Reference::Digest(digest) => digest.clone(),
        Reference::Tag(_) => match pass.source.head_manifest(&task.source, reference).await {
            Ok(Some(descriptor)) => descriptor.digest,
            Ok(None) => {
                return TagReport::skipped(tag, SkipReason::VanishedUpstream, Some("not found upstream".into()))
            }
            Err(error) => return unfinished(tag, None, &CopyError::Source(error)),
        },
    };
    let attachments = match probe_attachments(pass.source, &task.source, &digest).await {
        Ok(attachments) => attachments,
        Err(error) => return unfinished(tag, Some(digest), &error),
    };
    copy_tag_with_referrers(pass, task, reference, Some(digest), &attachments).await
}
