//! The sync logic of ocisync, written against [`Store`](ocisync_oci::Store) alone.
//!
//! - [`plan`] turns content rules (and the upstream catalog, for `prefix` rules) into
//!   [`SyncTask`]s, one per repository.
//! - [`Copier`] copies one tag: blobs streamed and verified, child manifests by
//!   digest, the tagged manifest last, skipping what the destination has.
//! - [`run_sync`] runs one pass of one sync and returns a [`SyncReport`]; a
//!   [`Report`] gathers the passes of all syncs and derives [`Totals`].
//! - [`StopSignal`] stops a pass: no new image, then (abandoned) none under way.
//! - Lifecycle rules: a tag waits for `TagFilter::min_age`, and a moved tag's old
//!   manifest is first tagged with a [`BackupTemplate`] name.
//!
//! This crate knows nothing of HTTP, YAML, files or exit codes.

mod copy;
mod error;
mod filter;
mod lifecycle;
mod narrow;
mod pass;
mod plan;
mod progress;
mod referrers;
mod report;
mod resilience;
mod schedule;
mod shard;
mod signatures;
mod stop;

pub use copy::{Copier, CopyOptions, ImageCopy, PassMemory, DEFAULT_REPOSITORIES, DEFAULT_TRANSFERS};
pub use error::CopyError;
pub use filter::{
    parse_version, select_platforms, source_pattern, whole_tag_regex, ContentRule, Dropped, ImageReference,
    PlatformSpec, RepoGlob, RuleSource, RuleSourceKind, TagFilter,
};
pub use lifecycle::{format_time, BackupTemplate, TagBackup, TagLifecycle, TemplateError};
pub use narrow::{PLATFORMS_ANNOTATION, SOURCE_DIGEST_ANNOTATION};
pub use pass::{run_sync, run_task, SyncLabel};
pub use plan::{needs_catalog, plan, BadDestination, Plan, SyncTask};
pub use progress::{ProgressEvent, ProgressObserver};
pub use report::{
    EndpointUse, Outcome, RateLimitUse, RepoReport, Report, RuleReport, SkipReason, SyncReport, TagReport, Totals,
};
pub use resilience::{
    retry, retry_counting, Failover, RetryPolicy, Retrying, ServedCount, DEFAULT_COOL_DOWN, RETRY_AFTER_CAP_FACTOR,
};
pub use schedule::{parse_time_zone, CronField, CronSchedule, FieldProblem, Schedule, ScheduleError};
pub use shard::{Shard, ShardError};
pub use signatures::{
    CosignPublicKey, KeyError, SignaturePolicy, COSIGN_SIGNATURE_ARTIFACT, NOTATION_SIGNATURE_ARTIFACT,
    SIGSTORE_BUNDLE_ARTIFACT,
};
pub use stop::{StopCause, StopSignal};
