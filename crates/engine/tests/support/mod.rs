//! Helpers shared by the engine's integration tests.

use ocisync_engine::{run_sync, ContentRule, CopyOptions, Outcome, SyncLabel, SyncReport};
use ocisync_oci::{MemoryStore, RepoName};

pub fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

/// One pass of a sync between two memory stores.
pub async fn run_pass(
    source: &MemoryStore,
    destination: &MemoryStore,
    rules: &[ContentRule],
    options: &CopyOptions,
) -> SyncReport {
    let label = SyncLabel {
        name: "test".into(),
        from: "source".into(),
        to: "destination".into(),
    };
    run_sync(source, destination, &label, rules, options).await
}

/// The outcome reported for `repo_name:tag_name`; fails the test when it is missing.
pub fn outcome_of(report: &SyncReport, repo_name: &str, tag_name: &str) -> Outcome {
    report
        .repositories
        .iter()
        .find(|r| r.source.as_str() == repo_name)
        .and_then(|r| {
            r.tags
                .iter()
                .find(|t| t.tag.as_ref().map(|tag| tag.as_str()) == Some(tag_name))
        })
        .map(|t| t.outcome.clone())
        .unwrap_or_else(|| panic!("{repo_name}:{tag_name} not in report {report:#?}"))
}
