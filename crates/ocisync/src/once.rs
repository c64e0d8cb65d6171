//! `ocisync once` and `ocisync check`: one pass over every sync (or one), then an exit code.

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use ocisync_engine::{CopyOptions, Report, Shard};
use url::Url;

use crate::config::Config;
use crate::metrics::SyncSettings;
use crate::passes::{prepare, run_all, write_report};
use crate::progress::ProgressDisplay;
use crate::pushgateway::Pushgateway;
use crate::report_path;
use crate::summary;

/// What `once` or `check` does.
pub struct OnceArgs<'a> {
    pub report_path: Option<&'a Path>,
    pub only_sync: Option<&'a str>,
    /// `check`: compare and plan, write nothing to any destination.
    pub dry_run: bool,
    /// Only the repositories of this shard of each catalog.
    pub shard: Option<Shard>,
    /// How long copies under way may finish once a sync's pass reaches its
    /// `max_pass_duration`.
    pub grace_period: Duration,
    /// A Pushgateway for each sync's metrics (`--push-metrics`, `defaults.push_metrics`).
    pub push_metrics: Option<Url>,
}

/// Runs one pass over the chosen syncs and prints the summary (or, dry, the plan).
pub async fn run_once(config: &Config, args: OnceArgs<'_>) -> anyhow::Result<Report> {
    // A report that cannot be written fails now, not after the whole pass.
    if let Some(path) = args.report_path {
        report_path::check(path)?;
    }
    let syncs = prepare(config, args.only_sync)?;
    let pushgateway = args
        .push_metrics
        .map(|url| Pushgateway::new(url, args.shard))
        .transpose()?;
    let settings: Vec<SyncSettings> = syncs.iter().map(|sync| SyncSettings::of(&sync.config)).collect();
    if let Some(pushgateway) = &pushgateway {
        pushgateway.pass_started(&settings).await;
    }
    let dry_run = args.dry_run;
    let shard = args.shard;
    // Progress goes where the summary goes, and only to a person watching it.
    let progress = (!dry_run && std::io::stdout().is_terminal()).then(ProgressDisplay::on_stdout);
    let observer = progress.as_ref().map(ProgressDisplay::observer);
    let (report, timing) = run_all(&syncs, args.grace_period, |options| CopyOptions {
        dry_run,
        shard,
        progress: observer.clone(),
        ..options
    })
    .await;
    if let Some(progress) = progress {
        progress.finish();
    }
    if let Some(pushgateway) = &pushgateway {
        pushgateway.pass_finished(&settings, &report).await;
    }
    if let Some(path) = args.report_path {
        write_report(path, &report, timing, args.dry_run)?;
    }
    if args.dry_run {
        print!("{}", summary::render_plan(&report));
    } else {
        print!("{}", summary::render(&report, timing.elapsed()));
    }
    Ok(report)
}
