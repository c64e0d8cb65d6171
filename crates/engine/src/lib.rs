//! The sync logic of ocisync, written against [`Store`](ocisync_oci::Store) alone.
//!
//! Three doors, each running its own pass context (the stores, the [`CopyOptions`] and
//! what the pass learns of the destination):
//! - [`run_sync`] runs one pass of one sync: its [`ContentRule`]s (and the upstream
//!   catalog, for `prefix` rules) become one [`SyncTask`] per repository, each is
//!   copied, and the result is a [`SyncReport`];
//! - [`run_task`] syncs one repository's task (`ocisync copy host/repo`, events);
//! - [`copy_one`] copies one image named by tag or digest.
//!
//! Copying an image streams and verifies its blobs, puts child manifests by digest and
//! the tagged manifest last, and skips what the destination has. A [`Report`] gathers
//! the passes of all syncs and derives [`Totals`]; [`Work`] counts what was written,
//! [`FailureKind`] what failed. [`StopSignal`] stops a pass: no new image, then
//! (abandoned) none under way.
//!
//! This crate knows nothing of HTTP, YAML, files or exit codes.

#![deny(missing_docs)]

mod concurrency;
mod copy;
mod error;
mod filter;
mod lifecycle;
mod narrow;
mod outcome;
mod pass;
mod plan;
mod progress;
mod prune;
mod read_manifest;
mod referrers;
mod report;
mod repository;
mod resilience;
mod shard;
mod signatures;
mod stop;
mod work;

pub use concurrency::{Concurrency, REQUESTS_IN_FLIGHT};
pub use copy::CopyOptions;
pub use filter::{
    ContentRule, ImageReference, PlatformSpec, RepoGlob, RuleError, RulePart, RuleProblem, RuleSource, RuleSourceKind,
    RuleSpec, SourceSpec, TagFilter, TagPatterns,
};
pub use lifecycle::{format_time, BackupTemplate, TagBackup, TagLifecycle, TemplateError};
pub use outcome::{FailureKind, Outcome, SkipReason};
pub use pass::{copy_one, run_sync, run_task, SyncLabel};
pub use plan::SyncTask;
pub use progress::{ProgressEvent, ProgressObserver};
pub use prune::{PruneOutcome, PrunePolicy, PruneRefusal, PruneReport, PruneSpec, PruneTotals, PrunedTag};
pub use report::{RateLimitUse, RepoReport, Report, RuleReport, SyncReport, TagReport, Totals, UrlUse};
pub use resilience::{Failover, RetryPolicy, Retrying, ServedCount, DEFAULT_COOL_DOWN};
pub use shard::{Shard, ShardError};
pub use signatures::{CosignPublicKey, KeyError, SignaturePolicy};
pub use stop::{StopCause, StopSignal};
pub use work::Work;
