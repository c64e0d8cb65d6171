//! `ocisync run`: the daemon. Each scheduled sync loops on its own schedule; a
//! signal stops new work and gives copies under way a grace period to finish.
//!
//! A sync never overlaps itself: its loop runs one pass at a time, and fire times
//! that pass while a pass is still running are skipped (and logged), not queued. A pass
//! that reaches its `max_pass_duration` is stopped the same way, for itself alone
//! (`deadline.rs`): that pass fails, and the loop goes on to the next fire time.
//!
//! A sync whose source registry sends notifications also has an event worker
//! (`events/`), which syncs pushed tags between its passes, never during one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use ocisync_engine::{CopyOptions, Report, StopCause, StopSignal, SyncReport};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::deadline::run_within_limit;
use crate::events::{EventIntake, EventQueue, EventWorker, SyncGate, DEFAULT_CAPACITY};
use crate::health;
use crate::metrics::{Metrics, SyncSettings};
use crate::passes::{prepare, used_since, write_report, PreparedSync, Timing};
use crate::report_path;
use crate::schedule::Schedule;
use crate::summary;

/// How the daemon ended.
pub enum Stopped {
    /// Every pass under way finished within the grace period.
    Cleanly,
    /// The grace period ran out and copies under way were abandoned.
    GraceExceeded,
}

pub async fn run_daemon(
    config: &Config,
    grace_period: Duration,
    report: Option<PathBuf>,
    listen: Option<SocketAddr>,
) -> anyhow::Result<Stopped> {
    if let Some(path) = &report {
        report_path::check(path)?;
    }
    let scheduled: Vec<(Arc<PreparedSync>, Schedule)> = prepare(config, None)?
        .into_iter()
        .filter_map(|sync| match sync.config.schedule.clone() {
            Some(schedule) => Some((Arc::new(sync), schedule)),
            None => {
                warn!(sync = %sync.config.name, "no schedule or interval; run it with `ocisync once --sync`");
                None
            }
        })
        .collect();
    if scheduled.is_empty() {
        anyhow::bail!("no sync has a schedule or interval, so `run` has nothing to do (use `ocisync once`)");
    }
    let metrics = Arc::new(Metrics::new(
        scheduled.iter().map(|(sync, _)| SyncSettings::of(&sync.config)),
    ));
    // Events for a sync queue by its position here; its gate keeps its passes and its
    // event-driven syncs from overlapping (`events/gate.rs`).
    let queue = Arc::new(EventQueue::new(scheduled.len(), DEFAULT_CAPACITY));
    let gates: Vec<SyncGate> = scheduled.iter().map(|_| SyncGate::default()).collect();
    let intake = EventIntake::new(
        config,
        scheduled.iter().map(|(sync, _)| Arc::clone(sync)).collect(),
        Arc::clone(&queue),
        Arc::clone(&metrics),
    )
    .map(Arc::new);
    if let Some(address) = listen {
        let listener = health::bind(address).await?;
        // Spawned, not joined: it keeps answering probes through the grace period and
        // ends with the process.
        tokio::spawn(health::serve(listener, Arc::clone(&metrics), intake.clone()));
    } else if intake.is_some() {
        warn!("registries take notifications but `run` has no listener (defaults.listen or --listen): only the schedule syncs");
    }
    let (shutdown_sender, shutdown) = watch::channel(false);
    let stop = StopSignal::default();
    let report = Arc::new(report);
    let count = scheduled.len();
    let options_of = |sync: &PreparedSync| CopyOptions {
        stop: stop.clone(),
        // Counts images and bytes on /metrics as each image ends.
        progress: Some(metrics.observer(&sync.config.name)),
        ..sync.options.clone()
    };
    let notified = |sync: &PreparedSync| {
        intake.is_some() && listen.is_some() && config.registries[&sync.config.from].notifications.is_some()
    };
    let workers = join_all(
        scheduled
            .iter()
            .zip(&gates)
            .enumerate()
            .filter(|(_, ((sync, _), _))| notified(sync))
            .map(|(index, ((sync, _), gate))| {
                let worker = EventWorker {
                    index,
                    sync: Arc::clone(sync),
                    gate: gate.clone(),
                    queue: Arc::clone(&queue),
                    options: options_of(sync),
                    metrics: Arc::clone(&metrics),
                    report_path: Arc::clone(&report),
                    grace_period,
                };
                worker.run(shutdown.clone())
            }),
    );
    let sync_loops = join_all(scheduled.iter().zip(gates).map(|((sync, schedule), gate)| {
        let observed = Observed {
            report_path: Arc::clone(&report),
            metrics: Arc::clone(&metrics),
            grace_period,
            gate,
        };
        sync_loop(
            Arc::clone(sync),
            schedule.clone(),
            options_of(sync),
            shutdown.clone(),
            observed,
        )
    }));
    // The loops and workers run as one future (not spawned tasks): dropping it is how
    // the grace period abandons copies under way. When every schedule is over, the
    // workers stop too.
    let loops = async {
        tokio::join!(
            async {
                sync_loops.await;
                let _ = shutdown_sender.send(true);
            },
            workers
        )
    };
    tokio::pin!(loops);
    info!(syncs = count, "daemon started");
    tokio::select! {
        _ = &mut loops => {
            info!("no sync has a future fire time; stopping");
            return Ok(Stopped::Cleanly);
        }
        () = wait_for_signal() => {}
    }
    info!(grace_period = %humantime::format_duration(grace_period), "stopping: no new images start; copies under way may finish");
    stop.raise(StopCause::Shutdown);
    let _ = shutdown_sender.send(true);
    match tokio::time::timeout(grace_period, &mut loops).await {
        Ok(_) => {
            info!("stopped cleanly");
            Ok(Stopped::Cleanly)
        }
        Err(_) => {
            // Copies write children before parents, so abandoning them leaves at most
            // unreferenced blobs, never a manifest with missing references.
            warn!("grace period over; abandoning copies under way");
            Ok(Stopped::GraceExceeded)
        }
    }
}

/// Where a pass's results go besides the summary, and how it ends past its limit.
struct Observed {
    report_path: Arc<Option<PathBuf>>,
    metrics: Arc<Metrics>,
    /// How long copies under way may finish once a pass reaches its `max_pass_duration`.
    grace_period: Duration,
    /// Taken for each pass: the sync's event-driven syncs wait meanwhile.
    gate: SyncGate,
}

async fn sync_loop(
    sync: Arc<PreparedSync>,
    schedule: Schedule,
    options: CopyOptions,
    mut shutdown: watch::Receiver<bool>,
    observed: Observed,
) {
    let name = sync.config.name.clone();
    // An interval sync starts with a pass; a cron sync waits for its first fire time.
    let mut next = match &schedule {
        Schedule::Interval(_) => Some(Utc::now()),
        Schedule::Cron(_) => schedule.next_after(Utc::now()),
    };
    loop {
        let Some(due) = next else {
            warn!(sync = %name, "the schedule has no future fire time; this sync stops");
            return;
        };
        info!(sync = %name, next = %due.to_rfc3339(), "next pass");
        tokio::select! {
            () = tokio::time::sleep(until(due)) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        // An event-driven sync of this sync may be under way: the pass waits its turn.
        let turn = tokio::select! {
            turn = observed.gate.enter() => turn,
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        };
        let started = Utc::now();
        let timing = Timing::start();
        let sync_report = observed_pass(&sync, options.clone(), &observed.metrics, observed.grace_period).await;
        let report = Report {
            syncs: vec![sync_report],
        };
        // The report is on disk before /metrics and /readyz say the pass is over, so
        // whoever waits for those finds the report of that pass.
        if let Some(path) = observed.report_path.as_ref() {
            if let Err(failure) = write_report(path, &report, timing, false) {
                warn!(sync = %name, error = %format!("{failure:#}"), "cannot write the report");
            }
        }
        observed.metrics.pass_finished(&name, &report, timing.elapsed());
        drop(turn);
        let totals = report.totals();
        info!(
            sync = %name,
            copied = totals.tags_copied,
            up_to_date = totals.tags_up_to_date,
            failed = totals.tags_failed + totals.repositories_failed + totals.syncs_failed + totals.rules_failed,
            bytes = totals.work.bytes,
            seconds = timing.elapsed().as_secs_f64(),
            "pass finished"
        );
        print!("{}", summary::render(&report, timing.elapsed()));
        if *shutdown.borrow() {
            return;
        }
        next = next_fire(&schedule, started, Utc::now(), &name);
    }
}

/// How often the request counters of a pass under way reach `/metrics`.
const REQUESTS_SAMPLED_EVERY: Duration = Duration::from_secs(1);

/// One pass, with its request counters handed to the metrics while it runs (the
/// images and bytes arrive through `options.progress`).
async fn observed_pass(
    sync: &PreparedSync,
    options: CopyOptions,
    metrics: &Metrics,
    grace_period: Duration,
) -> SyncReport {
    let (name, from, to) = (&sync.config.name, &sync.config.from, &sync.config.to);
    metrics.pass_started(name);
    let before = sync.url_usage();
    let pass = run_within_limit(sync, options, grace_period);
    tokio::pin!(pass);
    let mut ticker = tokio::time::interval(REQUESTS_SAMPLED_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            report = &mut pass => return report,
            _ = ticker.tick() => {
                metrics.urls_in_pass(name, from, to, &used_since(sync.url_usage(), &before));
            }
        }
    }
}

/// The next fire time after a pass that started at `started` and ended at `now`.
/// Fire times that fell inside the pass are skipped, so a sync never runs twice at once
/// and never runs a backlog.
fn next_fire(schedule: &Schedule, started: DateTime<Utc>, now: DateTime<Utc>, name: &str) -> Option<DateTime<Utc>> {
    let mut next = schedule.next_after(started)?;
    let mut skipped = 0u32;
    while next <= now && skipped < 10_000 {
        skipped += 1;
        next = schedule.next_after(next)?;
    }
    if skipped > 0 {
        warn!(sync = %name, skipped, "the pass ran past its next fire time; those runs are skipped");
    }
    Some(next)
}

fn until(due: DateTime<Utc>) -> Duration {
    (due - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(failure) => {
                warn!(error = %failure, "cannot listen for SIGTERM; only SIGINT stops the daemon");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => info!("SIGTERM received"),
        result = tokio::signal::ctrl_c() => match result {
            Ok(()) => info!("SIGINT received"),
            Err(failure) => warn!(error = %failure, "cannot listen for SIGINT"),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::schedule::CronSchedule;
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn fire_times_inside_a_long_pass_are_skipped_not_queued() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
        let every_second = Schedule::Interval(Duration::from_secs(1));
        // A pass of 3.5 s skips the fire times at +1, +2, +3 s; the next is +4 s.
        let now = t0 + chrono::Duration::milliseconds(3500);
        assert_eq!(
            next_fire(&every_second, t0, now, "test"),
            Some(t0 + chrono::Duration::seconds(4))
        );
        // A short pass keeps the regular rhythm.
        let now = t0 + chrono::Duration::milliseconds(200);
        assert_eq!(
            next_fire(&every_second, t0, now, "test"),
            Some(t0 + chrono::Duration::seconds(1))
        );
        // Cron: a pass from 10:00 to 10:31 under */15 runs next at 10:45, not 10:15 or 10:30.
        let quarterly = Schedule::Cron(CronSchedule::parse("*/15 * * * *", chrono_tz::UTC).unwrap());
        let now = t0 + chrono::Duration::minutes(31);
        assert_eq!(
            next_fire(&quarterly, t0, now, "test"),
            Some(t0 + chrono::Duration::minutes(45))
        );
    }
}
