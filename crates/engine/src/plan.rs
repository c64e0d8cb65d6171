//! The planner: one sync task per upstream repository that a content rule takes.

use ocisync_oci::RepoName;

use crate::filter::{ContentRule, PlatformSpec, TagFilter};
use crate::signatures::SignaturePolicy;

/// The unit of work: copy the kept tags of one upstream repository to its destination name.
#[derive(Debug, Clone)]
pub struct SyncTask {
    pub source: RepoName,
    pub destination: RepoName,
    pub tags: TagFilter,
    /// Platforms kept from multi-arch indexes; empty keeps indexes whole.
    pub platforms: Vec<PlatformSpec>,
    /// What the rule demands of signatures before an image is copied.
    pub signatures: SignaturePolicy,
}

/// A repository a rule took but whose destination name is not a valid repository name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDestination {
    pub source: RepoName,
    pub reason: String,
}

/// Turns the upstream catalog into sync tasks. With no content rules every repository
/// is synced under its own name with every tag; with rules, the first rule whose prefix
/// matches takes the repository, and a repository no rule matches is left alone.
pub fn plan(catalog: Vec<RepoName>, rules: &[ContentRule]) -> (Vec<SyncTask>, Vec<BadDestination>) {
    let mut tasks = Vec::new();
    let mut bad = Vec::new();
    for source in catalog {
        if rules.is_empty() {
            tasks.push(SyncTask {
                destination: source.clone(),
                source,
                tags: TagFilter::default(),
                platforms: Vec::new(),
                signatures: SignaturePolicy::default(),
            });
            continue;
        }
        let Some((rule, mapped)) = rules
            .iter()
            .find_map(|rule| rule.destination_for(&source).map(|m| (rule, m)))
        else {
            continue;
        };
        match mapped {
            Ok(destination) => tasks.push(SyncTask {
                source,
                destination,
                tags: rule.tags.clone(),
                platforms: rule.platforms.clone(),
                signatures: rule.signatures.clone(),
            }),
            Err(reason) => bad.push(BadDestination { source, reason }),
        }
    }
    (tasks, bad)
}
