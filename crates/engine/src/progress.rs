//! An optional observer of a pass, for progress displays: the engine says what it
//! planned and finished, the caller decides how (or whether) to show it.

use std::fmt;
use std::sync::Arc;

use ocisync_oci::{Reference, RepoName};

use crate::outcome::Outcome;

/// What a pass has just done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A sync planned this many repositories.
    RepositoriesPlanned {
        /// Repositories planned.
        total: usize,
    },
    /// An image is about to be copied (or compared).
    TagStarted {
        /// Its upstream repository.
        repo: RepoName,
        /// Its tag or digest.
        reference: Reference,
    },
    /// That image is done. Counters that must move during a pass (the daemon's
    /// `/metrics`) count its outcome.
    TagDone {
        /// Blob bytes transferred for it.
        bytes: u64,
        /// How it ended.
        outcome: Outcome,
    },
    /// One planned repository is done, whatever its outcome.
    RepositoryDone,
}

/// A callback for [`ProgressEvent`]s. It runs on the copying tasks, so it must be quick.
#[derive(Clone)]
pub struct ProgressObserver(Arc<dyn Fn(ProgressEvent) + Send + Sync>);

impl ProgressObserver {
    /// An observer calling `observe` with every event.
    pub fn new(observe: impl Fn(ProgressEvent) + Send + Sync + 'static) -> ProgressObserver {
        ProgressObserver(Arc::new(observe))
    }

    /// Tells the observer.
    pub fn notify(&self, event: ProgressEvent) {
        (self.0)(event);
    }
}

impl fmt::Debug for ProgressObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressObserver")
    }
}
