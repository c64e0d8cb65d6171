//! The hooks the tag loop calls: the signature check before a tag is copied, the
//! referrers carried after it, and the report lines of the referrer tags left out of
//! the loop.

use std::collections::{HashMap, HashSet};

use futures_util::{stream, StreamExt};
use ocisync_oci::{CosignTagKind, Digest, Reference, Store, Tag};
use tracing::{info, warn};

use super::carried::{Carried, TravelError};
use super::discover::discover;
use super::travel::travel;
use super::{Attached, RepoAttachments};
use crate::copy::Pass;
use crate::error::CopyError;
use crate::outcome::{Outcome, SkipReason};
use crate::plan::SyncTask;
use crate::report::TagReport;
use crate::signatures::{judge, Attachments, Verdict};

/// The digest of `reference` and what is attached to it when the rule's signature
/// policy accepts it; else the image's finished report.
pub(crate) async fn check_signatures<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    reference: &Reference,
    resolved: Option<Digest>,
    attachments: &RepoAttachments,
) -> Result<(Digest, Attached), Box<TagReport>> {
    let tag = reference.tag().cloned();
    let digest = match resolved {
        Some(digest) => digest,
        None => match pass.source.head_manifest(&task.source, reference).await {
            Ok(Some(descriptor)) => descriptor.digest,
            Ok(None) => return Err(Box::new(TagReport::skipped(tag, SkipReason::VanishedUpstream, None))),
            Err(error) => return Err(Box::new(unfinished(tag, None, &CopyError::Source(error)))),
        },
    };
    let verdict = match discover(pass.source, &task.source, &digest, attachments).await {
        Ok(attached) => {
            let signatures = Attachments {
                signature_tag: attached.cosign_tag(CosignTagKind::Signature),
                referrers: &attached.referrers,
            };
            judge(pass.source, &task.source, &digest, &task.signatures, signatures)
                .await
                .map_err(CopyError::Source)
                .map(|verdict| (verdict, attached))
        }
        Err(error) => Err(error),
    };
    let (reason, detail) = match verdict {
        Ok((Verdict::Accepted, attached)) => return Ok((digest, attached)),
        Ok((Verdict::Unsigned(detail), _)) => (SkipReason::Unsigned, detail),
        Ok((Verdict::Invalid(detail), _)) => (SkipReason::SignatureInvalid, detail),
        Err(error) => return Err(Box::new(unfinished(tag, Some(digest), &error))),
    };
    info!(repo = %task.source, reference = %reference, digest = %digest, reason = reason.as_str(), detail = %detail, "not copied");
    attachments.hold_back(&digest);
    let mut report = TagReport::skipped(tag, reason, Some(detail));
    report.digest = Some(digest);
    Err(Box::new(report))
}

/// The report of an image whose signature check could not finish: failed, or left for
/// a later pass when a pull quota stopped it.
pub(crate) fn unfinished(tag: Option<Tag>, digest: Option<Digest>, error: &CopyError) -> TagReport {
    let mut report = TagReport::skipped(tag, SkipReason::UpToDate, None);
    report.digest = digest;
    match error.quota_skip() {
        Some(reason) => {
            report.outcome = Outcome::Skipped { reason };
            report.detail = Some(error.to_string());
        }
        None => report.outcome = error.outcome(),
    }
    report
}

/// Marks `report` unfinished because its referrers could not all be carried: failed,
/// or left for a later pass when a pull quota stopped them (the image itself may be
/// copied; the next pass carries what is missing).
fn referrers_unfinished(task: &SyncTask, report: &mut TagReport, error: &TravelError) {
    match error.quota_skip() {
        Some(reason) => {
            info!(repo = %task.source, image = %report.reference_suffix(), reason = reason.as_str(), error = %error, "referrers left for a later pass: pull quota");
            report.outcome = Outcome::Skipped { reason };
            let note = format!("referrers: {error}");
            report.detail = Some(match report.detail.take() {
                Some(detail) => format!("{detail}; {note}"),
                None => note,
            });
        }
        None => {
            warn!(repo = %task.source, image = %report.reference_suffix(), error = %error, "referrers not copied");
            report.outcome = error.outcome();
        }
    }
}

/// Carries the referrers of the image `report` is about, when it is at the destination
/// byte for byte (copied or up to date; a narrowed index is another manifest, which
/// upstream signatures do not sign).
pub(crate) async fn carry_referrers<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    report: &mut TagReport,
    attached: Option<Attached>,
    attachments: &RepoAttachments,
) {
    let at_destination = matches!(
        report.outcome,
        Outcome::Copied
            | Outcome::Skipped {
                reason: SkipReason::UpToDate
            }
    ) && report.destination_digest.is_none();
    if pass.options.dry_run || !at_destination {
        return;
    }
    let Some(digest) = report.digest.clone() else {
        return;
    };
    if attachments.has_traveled(&digest) {
        return;
    }
    let mut carried = Carried::default();
    let result = travel(pass, task, &digest, attached, attachments, 0, &mut carried).await;
    carried.apply_to(report);
    if let Err(error) = result {
        referrers_unfinished(task, report, &error);
    }
}

/// One report line per referrer tag, skipped `referrer-tag`. A referrer tag whose
/// subject no tag of this pass carried is copied here when its subject is at the
/// destination (a platform image of a copied index, or an immutable tag left alone),
/// with the work on the first line of that subject; subjects are handled a few at a
/// time, as the tag loop does.
pub(crate) async fn report_referrer_tags<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    attachments: &mut RepoAttachments,
) -> Vec<TagReport> {
    let listed = std::mem::take(&mut attachments.listed);
    let attachments = &*attachments;
    let mut seen = HashSet::new();
    let firsts: Vec<(Tag, Digest)> = listed
        .iter()
        .filter(|(_, subject)| seen.insert(subject.clone()))
        .cloned()
        .collect();
    let mut first_reports: HashMap<Digest, TagReport> = stream::iter(firsts)
        .map(|(tag, subject)| async move {
            let work = report_subject(pass, task, tag.clone(), &subject, attachments);
            let report = pass.unless_abandoned(Some(tag), work).await;
            (subject, report)
        })
        .buffered(pass.options.concurrency.tags.max(1))
        .collect()
        .await;
    let mut reports = Vec::with_capacity(listed.len());
    let mut details: HashMap<Digest, Option<String>> = HashMap::new();
    for (tag, subject) in listed {
        if let Some(report) = first_reports.remove(&subject) {
            details.insert(subject, report.detail.clone());
            reports.push(report);
        } else {
            // Another tag of the same subject: its work is on the first one's line.
            let detail = details.get(&subject).cloned().flatten();
            reports.push(TagReport::skipped(tag, SkipReason::ReferrerTag, detail));
        }
    }
    reports
}

/// The report line of the first referrer tag of `subject`, carrying its referrers when
/// the subject is at the destination and no tag of this pass carried them.
async fn report_subject<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    tag: Tag,
    subject: &Digest,
    attachments: &RepoAttachments,
) -> TagReport {
    let mut report = TagReport::skipped(tag, SkipReason::ReferrerTag, None);
    report.detail = Some(if attachments.has_traveled(subject) {
        format!("travels with its subject {subject}")
    } else if attachments.is_held_back(subject) {
        format!("its subject {subject} was not copied")
    } else if pass.options.dry_run || pass.options.stop.is_raised() {
        format!("its subject {subject} was not copied in this pass")
    } else {
        match pass
            .destination
            .head_manifest(&task.destination, &Reference::Digest(subject.clone()))
            .await
        {
            Ok(Some(_)) => {
                let mut carried = Carried::default();
                let result = travel(pass, task, subject, None, attachments, 0, &mut carried).await;
                carried.apply_to(&mut report);
                if let Err(error) = result {
                    referrers_unfinished(task, &mut report, &error);
                }
                format!("travels with its subject {subject}, present at the destination")
            }
            Ok(None) => format!("its subject {subject} is not at the destination"),
            Err(error) => {
                report.outcome = CopyError::Destination(error).outcome();
                format!("subject {subject}")
            }
        }
    });
    report
}
