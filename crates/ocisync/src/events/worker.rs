//! One sync's event worker: waits for work, lets a burst gather for [`SETTLE`], takes
//! the sync's turn (`gate.rs`), syncs every repository waiting, and reports like a
//! pass: log line, summary, `--report` file, metrics, and the mirror lag of each tag.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ocisync_engine::{CopyOptions, Outcome, RepoReport, Report, SkipReason, SyncReport};
use ocisync_oci::RepoName;
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument as _};

use super::gate::SyncGate;
use super::matching::task;
use super::queue::{EventQueue, PendingWork};
use super::sync_one::sync_repositories;
use crate::deadline::within_limit;
use crate::metrics::Metrics;
use crate::passes::{write_event_report, PreparedSync, Timing};
use crate::summary;

/// How long events gather after the first before the worker takes them: a CI job
/// pushing several tags, or a registry's events for a push's children and its tag,
/// become one sync. Part of every event's lag.
pub const SETTLE: Duration = Duration::from_millis(250);

/// How long a credential helper's answer is used for event-driven syncs before the
/// helper is asked again (passes ask at every start).
const CREDENTIALS_FRESH_FOR: Duration = Duration::from_secs(300);

pub struct EventWorker {
    /// The sync's position in the queue.
    pub index: usize,
    pub sync: Arc<PreparedSync>,
    pub gate: SyncGate,
    pub queue: Arc<EventQueue>,
    /// The sync's options as its passes run them (the daemon's stop signal, the
    /// metrics' progress observer).
    pub options: CopyOptions,
    pub metrics: Arc<Metrics>,
    pub report_path: Arc<Option<PathBuf>>,
    /// How long copies under way may finish once the work reaches `max_pass_duration`.
    pub grace_period: Duration,
}

impl EventWorker {
    /// Runs until the daemon stops; work under way ends first (or is abandoned by the
    /// daemon's grace period).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut credentials_asked: Option<Instant> = None;
        loop {
            tokio::select! {
                () = self.queue.wait(self.index) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            }
            tokio::select! {
                () = tokio::time::sleep(SETTLE) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            }
            let turn = self.gate.enter().await;
            if *shutdown.borrow() {
                return;
            }
            let waiting = self.queue.take(self.index);
            self.metrics.event_queue_depth(self.queue.depth());
            if !waiting.is_empty() {
                self.sync_waiting(&waiting, &mut credentials_asked).await;
            }
            drop(turn);
        }
    }

    async fn sync_waiting(&self, waiting: &BTreeMap<RepoName, PendingWork>, credentials_asked: &mut Option<Instant>) {
        let config = &self.sync.config;
        let name = &config.name;
        let timing = Timing::start();
        let (rules, problems) = config.rules_for_pass();
        for (_, problem) in &problems {
            warn!(sync = %name, error = %problem, "cannot use the images file");
        }
        let mut tasks = Vec::new();
        let mut bad_destinations = Vec::new();
        for (repository, work) in waiting {
            match task(&rules, repository, work) {
                Ok(Some(task)) => {
                    info!(
                        sync = %name,
                        repo = %repository,
                        tags = work.tags.len(),
                        whole_repository = work.whole_repository,
                        "syncing on events"
                    );
                    tasks.push(task);
                }
                Ok(None) => debug!(sync = %name, repo = %repository, "the rules no longer ask for it"),
                Err(reason) => {
                    warn!(sync = %name, repo = %repository, error = %reason, "invalid destination name");
                    bad_destinations.push(RepoReport {
                        source: repository.clone(),
                        destination: repository.clone(),
                        error: Some(format!("destination name: {reason}")),
                        tags: Vec::new(),
                    });
                }
            }
        }
        if tasks.is_empty() && bad_destinations.is_empty() {
            return;
        }
        let mut sync_report = if tasks.is_empty() {
            SyncReport::new(name, &config.from, &config.to)
        } else {
            self.run_tasks(tasks, credentials_asked).await
        };
        sync_report.repositories.extend(bad_destinations);
        sync_report.repositories.sort_by(|a, b| a.source.cmp(&b.source));
        let report = Report {
            syncs: vec![sync_report],
        };
        self.metrics.event_work_finished(name, &report);
        self.observe_lag(waiting, &report);
        let totals = report.totals();
        info!(
            sync = %name,
            repositories = waiting.len(),
            copied = totals.tags_copied,
            up_to_date = totals.tags_up_to_date,
            failed = totals.tags_failed + totals.repositories_failed + totals.syncs_failed,
            bytes = totals.work.bytes,
            seconds = timing.elapsed().as_secs_f64(),
            "event-driven sync finished"
        );
        print!("{}", summary::render(&report, timing.elapsed()));
        if let Some(path) = self.report_path.as_ref() {
            if let Err(failure) = write_event_report(path, &report, timing) {
                warn!(sync = %name, error = %format!("{failure:#}"), "cannot write the report");
            }
        }
    }

    /// The engine's part, under the sync's `max_pass_duration`, with fresh credentials.
    async fn run_tasks(
        &self,
        tasks: Vec<ocisync_engine::SyncTask>,
        credentials_asked: &mut Option<Instant>,
    ) -> SyncReport {
        let sync: &PreparedSync = &self.sync;
        let config = &sync.config;
        if credentials_asked.is_none_or(|asked| asked.elapsed() > CREDENTIALS_FRESH_FOR) {
            if let Err(error) = sync.refresh_credentials().await {
                return SyncReport {
                    error: Some(error),
                    ..SyncReport::new(&config.name, &config.from, &config.to)
                };
            }
            *credentials_asked = Some(Instant::now());
        }
        let span = tracing::info_span!("sync", sync = %config.name);
        within_limit(sync, self.options.clone(), self.grace_period, |options| async move {
            sync_repositories(sync, tasks, &options).await
        })
        .instrument(span)
        .await
    }

    /// Each pushed tag now at the destination: from its earliest event to now.
    fn observe_lag(&self, waiting: &BTreeMap<RepoName, PendingWork>, report: &Report) {
        let now = SystemTime::now();
        for repository in report.syncs.iter().flat_map(|sync| &sync.repositories) {
            let Some(work) = waiting.get(&repository.source) else {
                continue;
            };
            for tag_report in &repository.tags {
                let visible = matches!(
                    tag_report.outcome,
                    Outcome::Copied
                        | Outcome::Skipped {
                            reason: SkipReason::UpToDate
                        }
                );
                let Some(occurred_at) = tag_report.tag.as_ref().and_then(|tag| work.tags.get(tag)) else {
                    continue;
                };
                if visible {
                    // A registry clock ahead of ours counts as no lag, not a negative one.
                    let lag = now.duration_since(*occurred_at).unwrap_or_default();
                    self.metrics.mirror_lag(&self.sync.config.name, lag);
                }
            }
        }
    }
}
