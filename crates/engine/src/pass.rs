//! One pass of one sync: plan from the upstream catalog, then run every task.

use std::collections::HashSet;

use futures_util::{stream, StreamExt};
use ocisync_oci::Store;
use tracing::{debug, info, warn, Instrument};

use crate::copy::{Copier, CopyOptions, PassMemory};
use crate::filter::ContentRule;
use crate::plan::{plan, SyncTask};
use crate::progress::ProgressEvent;
use crate::report::{RepoReport, SkipReason, SyncReport, TagReport};

/// The detail of an immutable tag left alone because the destination lists it.
const IMMUTABLE_PRESENT: &str = "immutable tag already at the destination; not checked";

/// Names a sync in reports and logs.
#[derive(Debug, Clone)]
pub struct SyncLabel {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// Runs one pass of a sync. Failures of a repository or an image are recorded in
/// the report and never stop the other tasks.
pub async fn run_sync<S: Store, D: Store>(
    source: &S,
    destination: &D,
    label: &SyncLabel,
    rules: &[ContentRule],
    options: &CopyOptions,
) -> SyncReport {
    let mut report = SyncReport {
        name: label.name.clone(),
        from: label.from.clone(),
        to: label.to.clone(),
        error: None,
        repositories: Vec::new(),
        endpoints: Vec::new(),
        rate_limits: Vec::new(),
    };
    // The destination's catalog comes along: a repository it lacks (once its own tag
    // list confirms that) has its tags copied without HEADs. Unknown (not allowed, say)
    // leaves every tag to its HEADs.
    let (catalog, destination_catalog) = futures_util::join!(source.catalog(), destination.catalog());
    let destination_repositories = match destination_catalog {
        Ok(repositories) => Some(repositories.into_iter().collect()),
        Err(error) => {
            debug!(registry = %destination.label(), error = %error, "cannot list the destination catalog");
            None
        }
    };
    let mut catalog = match catalog {
        Ok(catalog) => catalog,
        Err(error) => {
            warn!(sync = %label.name, registry = %source.label(), error = %error, "cannot list the catalog");
            report.error = Some(format!("catalog: {error}"));
            return report;
        }
    };
    if let Some(shard) = options.shard {
        catalog.retain(|repo| shard.takes(repo));
    }
    let (tasks, bad_destinations) = plan(catalog, rules);
    for bad in bad_destinations {
        warn!(sync = %label.name, repo = %bad.source, error = %bad.reason, "invalid destination name");
        report.repositories.push(RepoReport {
            destination: bad.source.clone(),
            source: bad.source,
            error: Some(format!("destination name: {}", bad.reason)),
            tags: Vec::new(),
        });
    }
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
    report
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
    let (tags, destination_tags) = futures_util::join!(copier.source.tags(&task.source), async {
        if unlisted || has_immutable {
            Some(copier.destination.tags(&task.destination).await)
        } else {
            None
        }
    });
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
    let tags = match tags {
        Ok(tags) => tags,
        Err(error) => {
            warn!(repo = %task.source, error = %error, "cannot list tags");
            report.error = Some(format!("tags: {error}"));
            copier.memory.forget_unlisted(&task.destination);
            return report;
        }
    };
    // Cosign and referrers tag schema tags travel with their images, not through the filters.
    let (tags, mut attachments) = crate::referrers::split_tags(tags);
    let verdicts = task.tags.select(&tags);
    // Tags of one repository are checked and copied a few at a time, reported in order.
    let task = &task;
    let shared = &attachments;
    let settled = &settled;
    let reports: Vec<TagReport> = stream::iter(tags.into_iter().zip(verdicts))
        .map(|(tag, verdict)| async move {
            if copier.options.stop.is_raised() {
                return TagReport::skipped(tag, SkipReason::Interrupted, None);
            }
            match verdict {
                Ok(()) if settled.contains(&tag) => {
                    debug!(repo = %task.source, tag = %tag, "immutable tag already at the destination");
                    TagReport::skipped(tag, SkipReason::UpToDate, Some(IMMUTABLE_PRESENT.to_owned()))
                }
                Ok(()) => {
                    notify(
                        copier.options,
                        ProgressEvent::TagStarted {
                            repo: task.source.clone(),
                            tag: tag.clone(),
                        },
                    );
                    let done = crate::referrers::copy_tag_with_referrers(copier, task, &tag, shared).await;
                    notify(copier.options, ProgressEvent::TagDone { bytes: done.bytes });
                    done
                }
                Err(dropped) => TagReport::skipped(tag, dropped.reason, Some(dropped.detail)),
            }
        })
        .buffered(copier.options.tags_in_parallel.max(1))
        .collect()
        .await;
    report.tags.extend(reports);
    let referrer_tags = crate::referrers::report_referrer_tags(copier, task, &mut attachments).await;
    report.tags.extend(referrer_tags);
    copier.memory.forget_unlisted(&task.destination);
    report
}

fn notify(options: &CopyOptions, event: ProgressEvent) {
    if let Some(observer) = &options.progress {
        observer.notify(event);
    }
}
