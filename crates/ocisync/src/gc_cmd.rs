//! `ocisync gc --layout PATH`: removes the blobs of a layout directory that nothing
//! reachable from its repositories' `index.json` references, and says what it removed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use ocisync_layout::{check_root, collect_garbage, Access, GcReport};

use crate::summary::human_bytes;

/// Collects `layout` (`dry_run`: removes nothing); the text to print, and whether a
/// repository could not be collected.
pub fn run_gc(layout: &Path, dry_run: bool) -> anyhow::Result<(String, bool)> {
    check_root(layout, Access::Read)?;
    if !dry_run {
        check_root(layout, Access::Write)?;
    }
    let report = collect_garbage(layout, dry_run).with_context(|| format!("layout {}", layout.display()))?;
    Ok((render(&report, dry_run), report.has_failures()))
}

fn render(report: &GcReport, dry_run: bool) -> String {
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut text = String::new();
    for repo in &report.repositories {
        match &repo.error {
            Some(error) => {
                let _ = writeln!(text, "  FAILED {}: {error}; nothing removed", repo.repo);
            }
            None if !repo.removed.is_empty() => {
                let bytes = repo
                    .removed
                    .iter()
                    .fold(0u64, |sum, (_, size)| sum.saturating_add(*size));
                let _ = writeln!(
                    text,
                    "  {}: {verb} {} blobs ({}), kept {}",
                    repo.repo,
                    repo.removed.len(),
                    human_bytes(bytes),
                    repo.kept
                );
            }
            None => {}
        }
    }
    let _ = writeln!(
        text,
        "gc: {verb} {} blobs ({}) from {} repositories",
        report.blobs_removed(),
        human_bytes(report.bytes_removed()),
        report.repositories.len()
    );
    text
}
