//! Running passes of configured syncs: the common core of `once`, `check` and `run`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use ocisync_engine::{run_sync, CopyOptions, Report, SyncLabel, SyncReport, UrlUse};
use ocisync_layout::Access;
use serde::Serialize;
use tracing::Instrument as _;

use crate::config::{Config, SyncConfig};
use crate::deadline::run_within_limit;
use crate::quota;
use crate::stores::AnyStore;
use crate::stores::{store_for, Bandwidths, FailoverUrls, HelperCredentials, LayoutStores};

/// A sync with its stores, set up before any work so that a bad CA file or URL
/// stops the run up front instead of halfway.
pub struct PreparedSync {
    pub config: SyncConfig,
    source: AnyStore,
    destination: AnyStore,
    /// Credential helpers of either side, asked again at the start of every pass.
    helpers: HelperCredentials,
    /// Engine options from the config (concurrency, the source's retry policy).
    pub options: CopyOptions,
}

/// Sets up the stores of the named syncs (all when `only` is `None`).
pub fn prepare(config: &Config, only: Option<&str>) -> anyhow::Result<Vec<PreparedSync>> {
    if let Some(name) = only {
        if !config.syncs.iter().any(|sync| sync.name == name) {
            let known: Vec<&str> = config.syncs.iter().map(|sync| sync.name.as_str()).collect();
            anyhow::bail!("no sync named \"{name}\" (defined: {})", known.join(", "));
        }
    }
    // One store per layout directory, shared by the syncs that use it.
    let mut layouts = LayoutStores::default();
    // One bandwidth cap per registry, shared by the syncs that use it.
    let mut bandwidths = Bandwidths::default();
    config
        .syncs
        .iter()
        .filter(|sync| only.is_none_or(|name| sync.name == name))
        .map(|sync| {
            let source = &config.registries[&sync.from];
            Ok(PreparedSync {
                config: sync.clone(),
                source: store_for(source, Access::Read, &mut layouts, &mut bandwidths)?,
                destination: store_for(
                    &config.registries[&sync.to],
                    Access::Write,
                    &mut layouts,
                    &mut bandwidths,
                )?,
                helpers: HelperCredentials::of(source, &config.registries[&sync.to]),
                options: CopyOptions {
                    concurrency: config.concurrency,
                    blob_retry: source.retry.clone(),
                    max_blob_size: source.max_blob_size,
                    ..CopyOptions::default()
                },
            })
        })
        .collect()
}

impl PreparedSync {
    /// One pass of this sync. `options` are usually `self.options`, adjusted by the mode.
    pub async fn run(&self, options: &CopyOptions) -> SyncReport {
        let started = Instant::now();
        if let Err(error) = self.refresh_credentials().await {
            return SyncReport {
                error: Some(error),
                duration_seconds: started.elapsed().as_secs_f64(),
                ..SyncReport::new(&self.config.name, &self.config.from, &self.config.to)
            };
        }
        quota::reset_pull_quotas(&self.source);
        quota::reset_pull_quotas(&self.destination);
        let before = self.url_usage();
        let label = SyncLabel {
            name: self.config.name.clone(),
            from: self.config.from.clone(),
            to: self.config.to.clone(),
        };
        let span = tracing::info_span!("sync", sync = %self.config.name);
        // Images files are read again for every pass; a bad one fails its rule alone.
        let (rules, file_problems) = self.config.rules_for_pass();
        for (_, problem) in &file_problems {
            tracing::warn!(sync = %self.config.name, error = %problem, "cannot use the images file");
        }
        let mut report = run_sync(&self.source, &self.destination, &label, &rules, options)
            .instrument(span)
            .await;
        for (index, problem) in file_problems {
            if let Some(rule) = report.rules.iter_mut().find(|rule| rule.rule == index) {
                rule.error = Some(problem);
            }
        }
        report.urls = used_since(self.url_usage(), &before);
        report.rate_limits = self.rate_limit_uses();
        report.duration_seconds = started.elapsed().as_secs_f64();
        report
    }

    /// Asks the credential helpers of both registries (if any) again.
    pub async fn refresh_credentials(&self) -> Result<(), String> {
        self.helpers.refresh(&self.source, &self.destination).await
    }

    /// The source and destination stores, for work that is not a whole pass
    /// (`events/sync_one.rs`).
    pub fn stores(&self) -> (&AnyStore, &AnyStore) {
        (&self.source, &self.destination)
    }

    /// What each URL of both registries announced of its pull quota since the last
    /// pass started.
    pub fn rate_limit_uses(&self) -> Vec<ocisync_engine::RateLimitUse> {
        [
            quota::rate_limit_uses("source", &self.source),
            quota::rate_limit_uses("destination", &self.destination),
        ]
        .concat()
    }

    /// The counters of every URL of both registries, so far (cumulative: `run` keeps
    /// its stores from pass to pass).
    pub fn url_usage(&self) -> Vec<UrlUse> {
        [usage("source", &self.source), usage("destination", &self.destination)].concat()
    }
}

/// What each URL did between two readings of [`PreparedSync::url_usage`]; URLs
/// that did nothing are left out.
pub fn used_since(after: Vec<UrlUse>, before: &[UrlUse]) -> Vec<UrlUse> {
    after
        .into_iter()
        .zip(before)
        .map(|(after, before)| UrlUse {
            served: after.served - before.served,
            requests: after.requests - before.requests,
            retries: after.retries - before.retries,
            failovers: after.failovers - before.failovers,
            ..after
        })
        .filter(|usage| usage.requests + usage.served + usage.retries + usage.failovers > 0)
        .collect()
}

/// The counters of every URL of a registry, so far (cumulative).
fn usage(role: &str, store: &AnyStore) -> Vec<UrlUse> {
    match store {
        AnyStore::Registry(urls) => registry_usage(role, urls),
        AnyStore::Layout(_) => Vec::new(),
    }
}

fn registry_usage(role: &str, urls: &FailoverUrls) -> Vec<UrlUse> {
    let served = urls.served();
    // Failovers are counted per registry; they are shown on its first URL.
    let failovers = urls.failovers();
    urls.stores()
        .zip(served)
        .enumerate()
        .map(|(index, (store, served))| UrlUse {
            role: role.to_owned(),
            url: served.label,
            served: served.calls,
            requests: store.inner().requests(),
            retries: store.retries(),
            failovers: if index == 0 { failovers } else { 0 },
        })
        .collect()
}

/// Runs every prepared sync once, in config order, with its options as `adjust` changes
/// them, each under its own `max_pass_duration` (`grace_period`: how long copies under
/// way may finish once a pass reaches it).
pub async fn run_all(
    syncs: &[PreparedSync],
    grace_period: Duration,
    adjust: impl Fn(CopyOptions) -> CopyOptions,
) -> (Report, Timing) {
    let timing = Timing::start();
    let mut report = Report::default();
    for sync in syncs {
        let options = adjust(sync.options.clone());
        report.syncs.push(run_within_limit(sync, options, grace_period).await);
    }
    (report, timing)
}

/// When a pass started and how long it took.
#[derive(Clone, Copy)]
pub struct Timing {
    pub started_at: SystemTime,
    started: Instant,
}

impl Timing {
    pub fn start() -> Timing {
        Timing {
            started_at: SystemTime::now(),
            started: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The JSON written by `--report`.
#[derive(Serialize)]
struct ReportFile<'a> {
    started_at: String,
    duration_seconds: f64,
    /// Peak resident memory of the process so far (Linux), to show streaming at work.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_rss_bytes: Option<u64>,
    dry_run: bool,
    /// `event` for the report of an event-driven sync (`run` with notifications);
    /// absent for a pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: Option<&'static str>,
    totals: ocisync_engine::Totals,
    #[serde(flatten)]
    report: &'a Report,
}

/// Writes the JSON report: a file through a temporary file and a rename, so readers
/// never see half a report; a device or FIFO in place (`report_path`).
pub fn write_report(path: &Path, report: &Report, timing: Timing, dry_run: bool) -> anyhow::Result<()> {
    write_report_file(path, report, timing, dry_run, None)
}

/// [`write_report`] for the sync of some repositories that events asked for.
pub fn write_event_report(path: &Path, report: &Report, timing: Timing) -> anyhow::Result<()> {
    write_report_file(path, report, timing, false, Some("event"))
}

fn write_report_file(
    path: &Path,
    report: &Report,
    timing: Timing,
    dry_run: bool,
    trigger: Option<&'static str>,
) -> anyhow::Result<()> {
    let file = ReportFile {
        started_at: humantime::format_rfc3339_seconds(timing.started_at).to_string(),
        duration_seconds: timing.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        dry_run,
        trigger,
        totals: report.totals(),
        report,
    };
    let bytes = serde_json::to_vec_pretty(&file).context("cannot serialize the report")?;
    crate::report_path::write(path, &bytes)
}

/// `VmHWM` from `/proc/self/status`: the peak resident set size.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
