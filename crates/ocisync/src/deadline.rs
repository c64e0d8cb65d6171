//! `max_pass_duration`: a pass that reaches it starts no new image, its copies under
//! way get the grace period to finish and are then abandoned. The sync's report says
//! `stopped: deadline` (the pass fails, exit 1); the next pass, or the next sync of
//! `once`, runs with its own budget. Without the limit, one stalled upstream would hold
//! a `once` (and, under `concurrencyPolicy: Forbid`, every later CronJob run) for ever.

use std::future::Future;
use std::time::Duration;

use ocisync_engine::{CopyOptions, StopCause, SyncReport};
use tracing::warn;

use crate::passes::PreparedSync;

/// How long a pass may take to hand in its report once its work is abandoned, before
/// it is dropped whole. The engine ends abandoned work at once; this covers what it
/// cannot cut short (a credential helper still running, say).
const REPORT_SLACK: Duration = Duration::from_secs(5);

/// One pass of `sync` under its `max_pass_duration` (none: as long as it takes).
/// `options.stop` may be raised by others too (a shutdown); the deadline raises only
/// this pass's own child of it.
pub async fn run_within_limit(sync: &PreparedSync, options: CopyOptions, grace_period: Duration) -> SyncReport {
    within_limit(sync, options, grace_period, |options| async move {
        sync.run(&options).await
    })
    .await
}

/// `work` of `sync` (a pass, or the repositories events asked for) under the sync's
/// `max_pass_duration`, with the options it must run with.
pub async fn within_limit<F>(
    sync: &PreparedSync,
    options: CopyOptions,
    grace_period: Duration,
    work: impl FnOnce(CopyOptions) -> F,
) -> SyncReport
where
    F: Future<Output = SyncReport>,
{
    let Some(limit) = sync.config.max_pass_duration else {
        return work(options).await;
    };
    let stop = options.stop.child();
    let options = CopyOptions {
        stop: stop.clone(),
        ..options
    };
    let name = &sync.config.name;
    let watchdog = async {
        tokio::time::sleep(limit).await;
        warn!(
            sync = %name,
            max_pass_duration = %humantime::format_duration(limit),
            grace_period = %humantime::format_duration(grace_period),
            "the pass reached max_pass_duration: no new image starts; copies under way may finish"
        );
        stop.raise(StopCause::Deadline);
        tokio::time::sleep(grace_period).await;
        warn!(sync = %name, "grace period over; abandoning copies under way");
        stop.abandon(StopCause::Deadline);
        tokio::time::sleep(REPORT_SLACK).await;
    };
    tokio::select! {
        report = work(options) => report,
        () = watchdog => {
            warn!(sync = %name, "the pass did not end when its work was abandoned; dropping it");
            let mut report = SyncReport::new(name, &sync.config.from, &sync.config.to);
            report.error = Some(format!(
                "the pass ran past max_pass_duration ({}) and did not end when its work was abandoned",
                humantime::format_duration(limit)
            ));
            report.stopped = Some(StopCause::Deadline);
            report
        }
    }
}
