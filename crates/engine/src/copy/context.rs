//! The context of one pass: the two stores, the options and what the pass has learnt.
//! Every copy of a pass goes through it; nobody outside the engine assembles one.

use std::collections::HashSet;
use std::future::Future;

use ocisync_oci::{RepoName, Tag};
use tracing::info;

use super::memory::PassMemory;
use super::options::CopyOptions;
use crate::progress::ProgressEvent;
use crate::report::TagReport;

/// One pass (of a sync, a repository or one image) between a source and a destination.
pub(crate) struct Pass<'a, S, D> {
    pub(crate) source: &'a S,
    pub(crate) destination: &'a D,
    pub(crate) options: &'a CopyOptions,
    pub(crate) memory: PassMemory,
}

impl<'a, S, D> Pass<'a, S, D> {
    /// A pass whose destination had `destination_repositories` at its start (`None`:
    /// not known).
    pub(crate) fn new(
        source: &'a S,
        destination: &'a D,
        options: &'a CopyOptions,
        destination_repositories: Option<HashSet<RepoName>>,
    ) -> Self {
        Pass {
            source,
            destination,
            options,
            memory: PassMemory::new(destination_repositories, options),
        }
    }

    /// Tells the pass's observer, if any.
    pub(crate) fn notify(&self, event: ProgressEvent) {
        if let Some(observer) = &self.options.progress {
            observer.notify(event);
        }
    }

    /// The report of `work` (one image's copy), or, when the pass abandons it mid-copy,
    /// a skip: what it wrote is unreferenced (children before parents), and the next
    /// pass resumes it.
    pub(crate) async fn unless_abandoned(&self, tag: Option<Tag>, work: impl Future<Output = TagReport>) -> TagReport {
        let stop = &self.options.stop;
        match stop.unless_abandoned(work).await {
            Some(report) => report,
            None => {
                let reason = stop.skip_reason();
                info!(
                    tag = tag.as_ref().map(tracing::field::display),
                    reason = reason.as_str(),
                    "image abandoned: the grace period ran out"
                );
                TagReport::skipped(tag, reason, Some(ABANDONED.to_owned()))
            }
        }
    }
}

/// The detail of an image abandoned mid-copy.
const ABANDONED: &str = "abandoned mid-copy when the grace period ran out";
