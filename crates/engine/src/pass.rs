//! The engine's doors: one pass of one sync ([`run_sync`]: plan from the rules, and
//! the upstream catalog where a rule needs it, then run every task), one repository
//! ([`run_task`]) and one image ([`copy_one`]). Each builds its own [`Pass`] context.

use futures_util::{stream, StreamExt};
use ocisync_oci::{Store, StoreError};
use tracing::{debug, info, warn, Instrument};

use crate::copy::{CopyOptions, Pass};
use crate::filter::{ContentRule, ImageReference, RuleSourceKind};
use crate::plan::{needs_catalog, plan, SyncTask};
use crate::progress::ProgressEvent;
use crate::report::{RepoReport, SyncReport};
use crate::repository::sync_repository;

/// Names a sync in reports and logs.
#[derive(Debug, Clone)]
pub struct SyncLabel {
    /// The sync's name.
    pub name: String,
    /// Its source registry's name.
    pub from: String,
    /// Its destination registry's name.
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
        });
    }
    let tasks = planned.tasks;
    info!(sync = %label.name, repositories = tasks.len(), "planned");
    let pass = &Pass::new(source, destination, options, destination_repositories);
    pass.notify(ProgressEvent::RepositoriesPlanned { total: tasks.len() });
    let repositories: Vec<RepoReport> = stream::iter(tasks)
        .map(|task| async move {
            let span = tracing::info_span!("repo", repo = %task.source, dest = %task.destination);
            let repository = sync_repository(pass, task).instrument(span).await;
            pass.notify(ProgressEvent::RepositoryDone);
            repository
        })
        .buffer_unordered(options.concurrency.repositories.max(1))
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

/// Runs one sync task alone: every kept tag of one repository (`ocisync copy host/repo`,
/// a repository an event names), with a pass memory of its own.
pub async fn run_task<S: Store, D: Store>(
    source: &S,
    destination: &D,
    task: SyncTask,
    options: &CopyOptions,
) -> RepoReport {
    sync_repository(&Pass::new(source, destination, options, None), task).await
}

/// Copies one image, `from` (a tag or a digest) to `to` (a tag, or the same digest),
/// without its referrers, and reports it as a repository of one image: under the
/// destination tag, or by its digest alone when no tag is written.
pub async fn copy_one<S: Store, D: Store>(
    source: &S,
    destination: &D,
    from: &ImageReference,
    to: &ImageReference,
    options: &CopyOptions,
) -> RepoReport {
    let pass = Pass::new(source, destination, options, None);
    let task = SyncTask::unfiltered(from.repository.clone(), to.repository.clone(), None);
    let image = pass.copy_reference(&task, &from.reference, &to.reference).await;
    RepoReport {
        source: task.source,
        destination: task.destination,
        error: None,
        tags: vec![image],
    }
}
