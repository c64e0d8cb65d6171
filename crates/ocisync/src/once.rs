//! `ocisync once`: every sync, one pass, then an exit code.

use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use ocisync_engine::{run_sync, CopyOptions, Report, SyncLabel};
use serde::Serialize;
use tracing::Instrument as _;

use crate::config::Config;
use crate::stores::registry_store;
use crate::summary;

/// The JSON written by `--report`.
#[derive(Serialize)]
struct ReportFile<'a> {
    started_at: String,
    duration_seconds: f64,
    /// Peak resident memory of the process so far (Linux), to show streaming at work.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_rss_bytes: Option<u64>,
    totals: ocisync_engine::Totals,
    #[serde(flatten)]
    report: &'a Report,
}

/// Runs one pass over every sync; returns the report.
pub async fn run_once(config: &Config, report_path: Option<&Path>) -> anyhow::Result<Report> {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let options = CopyOptions::default();
    let mut report = Report::default();
    // Every endpoint is set up before any work, so a bad CA file stops the run up front.
    let mut endpoints = Vec::new();
    for sync in &config.syncs {
        let source = registry_store(&config.registries[&sync.from])?;
        let destination = registry_store(&config.registries[&sync.to])?;
        endpoints.push((sync, source, destination));
    }
    for (sync, source, destination) in endpoints {
        let label = SyncLabel {
            name: sync.name.clone(),
            from: sync.from.clone(),
            to: sync.to.clone(),
        };
        let span = tracing::info_span!("sync", sync = %sync.name);
        let sync_report = run_sync(&source, &destination, &label, &sync.content, &options)
            .instrument(span)
            .await;
        report.syncs.push(sync_report);
    }
    let duration = started.elapsed();
    if let Some(path) = report_path {
        let file = ReportFile {
            started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
            duration_seconds: duration.as_secs_f64(),
            peak_rss_bytes: peak_rss_bytes(),
            totals: report.totals(),
            report: &report,
        };
        write_atomically(path, &serde_json::to_vec_pretty(&file)?)
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    print!("{}", summary::render(&report, duration));
    Ok(report)
}

/// Writes through a temporary file and a rename, so readers never see half a report.
fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, content)?;
    std::fs::rename(&temporary, path)
}

/// `VmHWM` from `/proc/self/status`: the peak resident set size.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
