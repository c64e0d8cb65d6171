//! The sync logic of ocisync, written against [`Store`](ocisync_oci::Store) alone.
//!
//! - [`plan`] turns content rules (and the upstream catalog, for `prefix` rules) into
//!   [`SyncTask`]s, one per repository.
//! - [`Copier`] copies one tag: blobs streamed and verified, child manifests by
//!   digest, the tagged manifest last, skipping what the destination has.
//! - [`run_sync`] runs one pass of one sync and returns a [`SyncReport`]; a
//!   [`Report`] gathers the passes of all syncs and derives [`Totals`].
//! - [`StopSignal`] stops a pass: no new image, then (abandoned) none under way.
//!
//! This crate knows nothing of HTTP, YAML, files or exit codes.

mod concurrency;
mod copy;
mod error;
mod filter;
mod narrow;
mod outcome;
mod pass;
mod plan;
mod progress;
mod referrers;
mod report;
mod resilience;
mod shard;
mod signatures;
mod stop;
mod work;

pub use concurrency::Concurrency;
pub use copy::{Copier, CopyOptions, PassMemory};
pub use error::CopyError;
pub use filter::{
    ContentRule, ImageReference, PlatformSpec, RepoGlob, RuleError, RulePart, RuleProblem, RuleSource, RuleSourceKind,
    RuleSpec, SourceSpec, TagFilter, TagPatterns,
};
pub use narrow::{PLATFORMS_ANNOTATION, SOURCE_DIGEST_ANNOTATION};
pub use outcome::{FailureKind, Outcome, SkipReason};
pub use pass::{run_sync, run_task, SyncLabel};
pub use plan::{needs_catalog, plan, BadDestination, Plan, SyncTask};
pub use progress::{ProgressEvent, ProgressObserver};
pub use report::{RateLimitUse, RepoReport, Report, RuleReport, SyncReport, TagReport, Totals, UrlUse};
pub use resilience::{
    retry, retry_counting, Failover, RetryPolicy, Retrying, ServedCount, DEFAULT_COOL_DOWN, RETRY_AFTER_CAP_FACTOR,
};
pub use shard::{Shard, ShardError};
pub use signatures::{
    CosignPublicKey, KeyError, SignaturePolicy, COSIGN_SIGNATURE_ARTIFACT, NOTATION_SIGNATURE_ARTIFACT,
    SIGSTORE_BUNDLE_ARTIFACT,
};
pub use stop::{StopCause, StopSignal};
pub use work::Work;
