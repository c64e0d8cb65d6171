//! The one door from event-driven work into the engine: the repositories events asked
//! for, each as one `SyncTask` through `ocisync_engine::run_task`, with the sync's own
//! stores and options (so the same filters, platforms, signature policy and referrers
//! as a pass). When the engine's entry points change, this file alone follows.
//!
//! Each task has its own pass memory: repositories of one batch do not share what
//! they learnt of the destination, but a repository is never in two tasks at once
//! (the queue holds one entry per repository) and the sync's gate keeps passes away.

use std::time::Instant;

use futures_util::{stream, StreamExt as _};
use ocisync_engine::{run_task, CopyOptions, RepoReport, SyncReport, SyncTask};
use tracing::Instrument as _;

use crate::passes::{used_since, PreparedSync};

/// Syncs these repositories of `sync` (up to `concurrency.repositories` at once) and
/// reports them like a pass that took only them.
pub async fn sync_repositories(sync: &PreparedSync, tasks: Vec<SyncTask>, options: &CopyOptions) -> SyncReport {
    let started = Instant::now();
    let config = &sync.config;
    let mut report = SyncReport::new(&config.name, &config.from, &config.to);
    let before = sync.url_usage();
    let (source, destination) = sync.stores();
    let mut repositories: Vec<RepoReport> = stream::iter(tasks)
        .map(|task| {
            let span = tracing::info_span!("repo", repo = %task.source(), dest = %task.destination());
            run_task(source, destination, task, options).instrument(span)
        })
        .buffer_unordered(options.concurrency.repositories.max(1))
        .collect()
        .await;
    repositories.sort_by(|a, b| a.source.cmp(&b.source));
    report.repositories = repositories;
    report.urls = used_since(sync.url_usage(), &before);
    report.rate_limits = sync.rate_limit_uses();
    report.stopped = options.stop.cause();
    report.duration_seconds = started.elapsed().as_secs_f64();
    report
}
