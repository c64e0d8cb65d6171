//! Reports for the unit tests of what reads them: the summary and the metrics.

use ocisync_engine::{RepoReport, SkipReason, SyncReport, TagReport};
use ocisync_oci::Tag;

/// Sync `hub` (upstream -> mirror), before its pass, but for its one repository,
/// `library/alpine`, holding `tags`.
pub fn alpine_sync(tags: Vec<TagReport>) -> SyncReport {
    let alpine: ocisync_oci::RepoName = "library/alpine".parse().unwrap();
    SyncReport {
        repositories: vec![RepoReport::new(alpine.clone(), alpine, tags)],
        ..SyncReport::new("hub", "upstream", "mirror")
    }
}

/// Tag `name`, skipped for `reason`; tests change what they need.
pub fn skipped(name: &str, reason: SkipReason) -> TagReport {
    TagReport::skipped(name.parse::<Tag>().unwrap(), reason, None)
}

/// Tags `t0`, `t1`, … skipped for `reasons`, in that order.
pub fn skipped_in_order(reasons: &[SkipReason]) -> Vec<TagReport> {
    let names = (0..reasons.len()).map(|index| format!("t{index}"));
    names
        .zip(reasons)
        .map(|(name, reason)| skipped(&name, *reason))
        .collect()
}
