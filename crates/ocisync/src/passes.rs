//! Running passes of configured syncs: the common core of `once`, `check` and `run`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use ocisync_engine::{run_sync, CopyOptions, Report, SyncLabel, SyncReport};
use ocisync_registry::RegistryStore;
use serde::Serialize;
use tracing::Instrument as _;

use crate::config::{Config, SyncConfig};
use crate::stores::registry_store;

/// A sync with its stores, set up before any work so that a bad CA file or URL
/// stops the run up front instead of halfway.
pub struct PreparedSync {
    pub config: SyncConfig,
    source: RegistryStore,
    destination: RegistryStore,
}

/// Sets up the stores of the named syncs (all when `only` is `None`).
pub fn prepare(config: &Config, only: Option<&str>) -> anyhow::Result<Vec<PreparedSync>> {
    if let Some(name) = only {
        if !config.syncs.iter().any(|sync| sync.name == name) {
            let known: Vec<&str> = config.syncs.iter().map(|sync| sync.name.as_str()).collect();
            anyhow::bail!("no sync named \"{name}\" (defined: {})", known.join(", "));
        }
    }
    config
        .syncs
        .iter()
        .filter(|sync| only.is_none_or(|name| sync.name == name))
        .map(|sync| {
            Ok(PreparedSync {
                config: sync.clone(),
                source: registry_store(&config.registries[&sync.from])?,
                destination: registry_store(&config.registries[&sync.to])?,
            })
        })
        .collect()
}

impl PreparedSync {
    /// One pass of this sync.
    pub async fn run(&self, options: &CopyOptions) -> SyncReport {
        let label = SyncLabel {
            name: self.config.name.clone(),
            from: self.config.from.clone(),
            to: self.config.to.clone(),
        };
        let span = tracing::info_span!("sync", sync = %self.config.name);
        run_sync(&self.source, &self.destination, &label, &self.config.content, options)
            .instrument(span)
            .await
    }
}

/// Runs every prepared sync once, in config order.
pub async fn run_all(syncs: &[PreparedSync], options: &CopyOptions) -> (Report, Timing) {
    let timing = Timing::start();
    let mut report = Report::default();
    for sync in syncs {
        report.syncs.push(sync.run(options).await);
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
    totals: ocisync_engine::Totals,
    #[serde(flatten)]
    report: &'a Report,
}

/// Writes the JSON report through a temporary file and a rename, so readers never see half a report.
pub fn write_report(path: &Path, report: &Report, timing: Timing, dry_run: bool) -> anyhow::Result<()> {
    let file = ReportFile {
        started_at: humantime::format_rfc3339_seconds(timing.started_at).to_string(),
        duration_seconds: timing.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        dry_run,
        totals: report.totals(),
        report,
    };
    let write = || -> std::io::Result<()> {
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(&file)?)?;
        std::fs::rename(&temporary, path)
    };
    write().with_context(|| format!("cannot write report {}", path.display()))
}

/// `VmHWM` from `/proc/self/status`: the peak resident set size.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
