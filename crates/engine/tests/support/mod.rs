//! Helpers shared by the engine's integration tests.

use std::sync::atomic::{AtomicUsize, Ordering};

use ocisync_engine::{run_sync, ContentRule, CopyOptions, Outcome, Report, SyncLabel, SyncReport};
use ocisync_oci::{MemoryStore, Reference, RepoName, Result, Store, StoreError};

mod faulty;
pub use faulty::{Fault, FaultyStore};

pub fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

/// One pass of a sync from `source` (a memory store, or one wrapping it) to a memory store.
pub async fn run_pass<S: Store>(
    source: &S,
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

/// Whether the pass failed, by the rule the binary's exit code follows
/// ([`Report::has_failures`]): a used-up quota and a missed deadline fail it too.
pub fn has_failures(report: &SyncReport) -> bool {
    Report {
        syncs: vec![report.clone()],
    }
    .has_failures()
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

/// A source whose pull quota runs out, as a registry's does: after `allowed` manifest
/// reads, `manifest` fails with a used-up quota (`exhausted`) or a held reserve.
pub type QuotaStore<'a> = FaultyStore<'a, Quota>;

/// The pull quota of a [`QuotaStore`].
pub struct Quota {
    allowed: AtomicUsize,
    exhausted: bool,
}

impl<'a> QuotaStore<'a> {
    pub fn new(inner: &'a MemoryStore, allowed: usize, exhausted: bool) -> Self {
        FaultyStore {
            inner,
            fault: Quota {
                allowed: AtomicUsize::new(allowed),
                exhausted,
            },
        }
    }
}

impl Fault for Quota {
    fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        let taken = self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1));
        if taken.is_ok() {
            return Ok(());
        }
        let what = format!("source manifest {repo}:{reference}");
        Err(if self.exhausted {
            StoreError::QuotaExhausted { what }
        } else {
            StoreError::QuotaReserve {
                what,
                remaining: 2,
                reserve: 2,
            }
        })
    }
}
