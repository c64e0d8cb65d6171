//! `ocisync once` and `ocisync check`: one pass over every sync (or one), then an exit code.

use std::path::Path;

use ocisync_engine::{CopyOptions, Report};

use crate::config::Config;
use crate::passes::{prepare, run_all, write_report};
use crate::summary;

/// What `once` or `check` does.
pub struct OnceArgs<'a> {
    pub report_path: Option<&'a Path>,
    pub only_sync: Option<&'a str>,
    /// `check`: compare and plan, write nothing to any destination.
    pub dry_run: bool,
}

/// Runs one pass over the chosen syncs and prints the summary (or, dry, the plan).
pub async fn run_once(config: &Config, args: OnceArgs<'_>) -> anyhow::Result<Report> {
    let syncs = prepare(config, args.only_sync)?;
    let dry_run = args.dry_run;
    let (report, timing) = run_all(&syncs, |options| CopyOptions { dry_run, ..options }).await;
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
