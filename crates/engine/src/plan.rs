//! The planner: one sync task per upstream repository.

use ocisync_oci::RepoName;

/// The unit of work: copy the tags of one upstream repository to its destination name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTask {
    pub source: RepoName,
    pub destination: RepoName,
}

/// Turns the upstream catalog into sync tasks. With no content rules every repository
/// is synced under its own name.
pub fn plan(catalog: Vec<RepoName>) -> Vec<SyncTask> {
    catalog
        .into_iter()
        .map(|source| SyncTask {
            destination: source.clone(),
            source,
        })
        .collect()
}
