//! One pass of one sync: plan from the rules (and the upstream catalog where a rule
//! needs it), then run every task.

use std::collections::HashSet;

use futures_util::{stream, StreamExt};
use ocisync_oci::{Reference, Store, StoreError, Tag};
use tracing::{debug, info, warn, Instrument};

use crate::copy::{Copier, CopyOptions, PassMemory};
use crate::error::CopyError;
use crate::filter::{ContentRule, Dropped, RuleSourceKind};
use crate::plan::{needs_catalog, plan, SyncTask};
use crate::progress::ProgressEvent;
use crate::prune::{PruneRefusal, PruneReport};
use crate::report::{RepoReport, SkipReason, SyncReport, TagReport};

/// The detail of an image abandoned mid-copy.
const ABANDONED: &str = "abandoned mid-copy when the grace period ran out";

/// The detail of an immutable tag left alone because the destination lists it.
const IMMUTABLE_PRESENT: &str = "immutable tag already at the destination; not checked";

/// Names a sync in reports and logs.
#[derive(Debug, Clone)]
pub struct SyncLabel {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// Runs one pass of a sync. Failures of a rule, a repository or an image are recorded
/// in the report and never stop the other tasks.
pub async fn run_sync<S: Store, D: Store>(
    source: &S,
    destination: &D,
    label: &SyncLabel,
    rules: &[ContentRule],
    options: &CopyOptions,
) -> SyncReport {
    let mut report = SyncReport::new(&label.name, &label.from, &label.to);
    // The destination's catalog comes along: a repository it lacks (once its own tag
    // list confirms that) has its tags copied without HEADs. Unknown (not allowed, say)
    // leaves every tag to its HEADs. The upstream catalog is asked for only when a rule
    // needs it: most public registries refuse it.
    let catalogs = async {
        futures_util::join!(
            async {
                if needs_catalog(rules) {
                    Some(source.catalog().await)
                } else {
                    None
                }
            },
            destination.catalog()
        )
    };
    let Some((catalog, destination_catalog)) = options.stop.unless_abandoned(catalogs).await else {
        report.stopped = options.stop.cause();
        return report;
    };
    let destination_repositories = match destination_catalog {
        Ok(repositories) => Some(repositories.into_iter().collect()),
        Err(error) => {
            debug!(registry = %destination.label(), error = %error, "cannot list the destination catalog");
            None
        }
    };
    let (catalog, catalog_error) = match catalog {
        None => (None, None),
        Some(Ok(catalog)) => (Some(catalog), None),
        Some(Err(error)) => {
            warn!(sync = %label.name, registry = %source.label(), error = %error, "cannot list the catalog");
            (None, Some(catalog_problem(source.label(), &error)))
        }
    };
    if rules.is_empty() {
        if let Some(problem) = catalog_error {
            report.error = Some(problem);
            return report;
        }
    }
    let planned = plan(catalog.as_deref(), rules, options.shard);
    report.rules = planned.rules;
    if let Some(problem) = catalog_error {
        // Only the rules that needed the catalog fail; the others run.
        for rule in report.rules.iter_mut() {
            if rule.source == RuleSourceKind::Catalog {
                rule.error = Some(problem.clone());
            }
        }
    }
    for bad in planned.bad_destinations {
        warn!(sync = %label.name, repo = %bad.source, error = %bad.reason, "invalid destination name");
        report.repositories.push(RepoReport {
            destination: bad.source.clone(),
            source: bad.source,
            error: Some(format!("destination name: {}", bad.reason)),
            tags: Vec::new(),
            prune: None,
        });
    }
    let tasks = planned.tasks;
    info!(sync = %label.name, repositories = tasks.len(), "planned");
    notify(options, ProgressEvent::RepositoriesPlanned { total: tasks.len() });
    let memory = PassMemory::new(destination_repositories, options);
    let copier = Copier {
        source,
        destination,
        memory: &memory,
        options,
    };
    let copier = &copier;
    let repositories: Vec<RepoReport> = stream::iter(tasks)
        .map(|task| async move {
            let span = tracing::info_span!("repo", repo = %task.source, dest = %task.destination);
            let repository = sync_repository(copier, task).instrument(span).await;
            notify(options, ProgressEvent::RepositoryDone);
            repository
        })
        .buffer_unordered(options.repositories_in_parallel.max(1))
        .collect()
        .await;
    report.repositories.extend(repositories);
    report.repositories.sort_by(|a, b| a.source.cmp(&b.source));
    report.stopped = options.stop.cause();
    report
}

/// The one line a rule that needed the catalog gets when it could not be read. A
/// refusal (Docker Hub, GHCR, registry.k8s.io, GitLab) says what to do instead.
fn catalog_problem(registry: &str, error: &StoreError) -> String {
    if is_refusal(error) {
        format!(
            "registry {registry} refuses to list its catalog ({error}); list the repositories with `repositories:` (or exact images with `images:`) instead of `prefix:`"
        )
    } else {
        format!("catalog: {error}")
    }
}

/// 401, 403 or 404, or an error body saying UNSUPPORTED or UNAUTHORIZED: the catalog
/// is not offered, as opposed to failing for now.
fn is_refusal(error: &StoreError) -> bool {
    match error {
        StoreError::Unauthorized { .. } | StoreError::Denied { .. } | StoreError::NotFound { .. } => true,
        StoreError::Rejected { detail, .. } => detail.contains("UNSUPPORTED") || detail.contains("UNAUTHORIZED"),
        _ => false,
    }
}

/// Runs one sync task alone: every kept tag of one repository (`ocisync copy host/repo`).
pub async fn run_task<S: Store, D: Store>(
    source: &S,
    destination: &D,
    task: SyncTask,
    options: &CopyOptions,
) -> RepoReport {
    let memory = PassMemory::for_options(options);
    let copier = Copier {
        source,
        destination,
        memory: &memory,
        options,
    };
    sync_repository(&copier, task).await
}

async fn sync_repository<S: Store, D: Store>(copier: &Copier<'_, S, D>, task: SyncTask) -> RepoReport {
    let mut report = RepoReport {
        source: task.source.clone(),
        destination: task.destination.clone(),
        error: None,
        tags: Vec::new(),
        prune: None,
    };
    if copier.options.stop.is_raised() {
        return report;
    }
    // A repository the destination catalog left out is confirmed absent (or its tags
    // read) before its tags skip their HEADs; immutable tags the destination lists are
    // settled by that list alone.
    let unlisted = copier.memory.is_unlisted(&task.destination);
    // Under a signature policy every tag is judged (the config refuses the combination).
    let has_immutable = !task.tags.immutable.is_empty() && !task.signatures.is_active();
    let lists = async {
        futures_util::join!(
            async {
                // An images rule names its tags: no upstream tag list.
                match task.references {
                    Some(_) => None,
                    None => Some(copier.source.tags(&task.source).await),
                }
            },
            async {
                if unlisted || has_immutable {
                    Some(copier.destination.tags(&task.destination).await)
                } else {
                    None
                }
            }
        )
    };
    // Abandoned while listing: like a repository the pass never reached.
    let Some((tags, destination_tags)) = copier.options.stop.unless_abandoned(lists).await else {
        return report;
    };
    let mut settled = HashSet::new();
    match destination_tags {
        Some(Ok(listed)) => {
            if has_immutable {
                settled.extend(listed.iter().filter(|tag| task.tags.is_immutable(tag)).cloned());
            }
            if unlisted {
                copier.memory.confirm_unlisted(&task.destination, listed);
            }
        }
        Some(Err(error)) if error.is_not_found() && unlisted => copier.memory.confirm_unlisted(&task.destination, []),
        Some(Err(error)) if error.is_not_found() => {}
        // Immutable tags then get their HEADs like any other.
        Some(Err(error)) => debug!(repo = %task.destination, error = %error, "cannot list destination tags"),
        None => {}
    }
    let mut upstream_tags = None; // prune: what the rule selected upstream
    let (work, mut attachments) = match tags {
        None => {
            let references = task.references.clone().unwrap_or_default();
            let work = references.into_iter().map(|reference| (reference, Ok(()))).collect();
            (work, None)
        }
        Some(Ok(tags)) => {
            // Cosign and referrers tag schema tags travel with their images, not through the filters.
            let (tags, attachments) = crate::referrers::split_tags(tags);
            let verdicts = task.tags.select(&tags);
            upstream_tags = Some(crate::prune::UpstreamTags::new(&tags, &verdicts));
            let work: Vec<(Reference, Result<(), Dropped>)> =
                tags.into_iter().map(Reference::Tag).zip(verdicts).collect();
            (work, Some(attachments))
        }
        Some(Err(error)) => {
            warn!(repo = %task.source, error = %error, "cannot list tags");
            report.error = Some(format!("tags: {error}"));
            // prune: nothing is deleted without the upstream list.
            report.prune = (task.prune.as_ref()).map(|_| PruneReport::refused(PruneRefusal::UpstreamListFailed));
            copier.memory.forget_unlisted(&task.destination);
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
            if copier.options.stop.is_raised() {
                return TagReport::skipped(tag, copier.options.stop.skip_reason(), None);
            }
            if let Err(dropped) = verdict {
                return TagReport::skipped(tag, dropped.reason, Some(dropped.detail));
            }
            if tag.as_ref().is_some_and(|tag| settled.contains(tag)) {
                debug!(repo = %task.source, tag = %reference, "immutable tag already at the destination");
                return TagReport::skipped(tag, SkipReason::UpToDate, Some(IMMUTABLE_PRESENT.to_owned()));
            }
            notify(
                copier.options,
                ProgressEvent::TagStarted {
                    repo: task.source.clone(),
                    reference: reference.clone(),
                },
            );
            let copy = async {
                match shared {
                    Some(attachments) => {
                        crate::referrers::copy_tag_with_referrers(copier, task, &reference, None, attachments).await
                    }
                    None => copy_named_image(copier, task, &reference).await,
                }
            };
            let done = match copier.options.stop.unless_abandoned(copy).await {
                Some(done) => done,
                None => abandoned(tag, copier.options.stop.skip_reason()),
            };
            notify(
                copier.options,
                ProgressEvent::TagDone {
                    bytes: done.bytes,
                    outcome: done.outcome.clone(),
                },
            );
            done
        })
        .buffered(copier.options.tags_in_parallel.max(1))
        .collect()
        .await;
    report.tags.extend(reports);
    if let Some(attachments) = attachments.as_mut() {
        let referrer_tags = crate::referrers::report_referrer_tags(copier, task, attachments).await;
        report.tags.extend(referrer_tags);
    }
    copier.memory.forget_unlisted(&task.destination);
    // prune: after the copy part, which decides whether it may run at all.
    if let Some(policy) = &task.prune {
        let pass = crate::prune::PassState {
            upstream: upstream_tags.as_ref(),
            copied: &report.tags,
            stopped: copier.options.stop.is_raised(),
            dry_run: copier.options.dry_run,
        };
        let pruned = crate::prune::prune_repository(copier.destination, &task.destination, policy, pass).await;
        report.prune = Some(pruned);
    }
    report
}

/// One image an `images` rule names: its digest is resolved (a tag costs one `HEAD`),
/// its cosign and tag-schema referrer tags are asked for by name, and then it is copied
/// with its referrers like a listed tag.
async fn copy_named_image<S: Store, D: Store>(
    copier: &Copier<'_, S, D>,
    task: &SyncTask,
    reference: &Reference,
) -> TagReport {
    let tag = match reference {
        Reference::Tag(tag) => Some(tag.clone()),
        Reference::Digest(_) => None,
    };
    let digest = match reference {
        Reference::Digest(digest) => digest.clone(),
        Reference::Tag(_) => match copier.source.head_manifest(&task.source, reference).await {
            Ok(Some(descriptor)) => descriptor.digest,
            Ok(None) => {
                return TagReport::skipped(tag, SkipReason::VanishedUpstream, Some("not found upstream".into()))
            }
            Err(error) => return crate::referrers::unfinished(tag, None, &CopyError::Source(error)),
        },
    };
    let attachments = match crate::referrers::probe_attachments(copier, task, &digest).await {
        Ok(attachments) => attachments,
        Err(error) => return crate::referrers::unfinished(tag, Some(digest), &error),
    };
    crate::referrers::copy_tag_with_referrers(copier, task, reference, Some(digest), &attachments).await
}

/// The report of an image whose copy was under way when the pass abandoned it: what it
/// wrote is unreferenced (children before parents), and the next pass resumes it.
pub(crate) fn abandoned(tag: Option<Tag>, reason: SkipReason) -> TagReport {
    info!(
        tag = tag.as_ref().map(tracing::field::display),
        reason = reason.as_str(),
        "image abandoned: the grace period ran out"
    );
    TagReport::skipped(tag, reason, Some(ABANDONED.to_owned()))
}

fn notify(options: &CopyOptions, event: ProgressEvent) {
    if let Some(observer) = &options.progress {
        observer.notify(event);
    }
}
