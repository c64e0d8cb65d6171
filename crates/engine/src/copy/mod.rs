//! The copier: one tag from source to destination, children before parents.
//!
//! Order is what keeps the destination consistent: blobs first, then child manifests
//! by digest, then the top manifest under its tag. A crash at any point leaves stray
//! blobs or untagged manifests, never a manifest whose references are missing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures_util::{stream, StreamExt};
use ocisync_oci::media_type::is_non_distributable;
use ocisync_oci::{
    Descriptor, Digest, MalformedManifest, Manifest, ManifestContent, Reference, RepoName, Store, StoreError, Tag,
};
use tracing::{debug, info};

mod blob;
mod queue;
mod size_limit;

use queue::TransferQueue;
use size_limit::ReadAhead;

use crate::error::CopyError;
use crate::filter::select_platforms;
use crate::lifecycle::{self, back_up, judge_age, TagLifecycle};
use crate::narrow::{is_current_narrowing, narrowed_index};
use crate::plan::SyncTask;
use crate::progress::ProgressObserver;
use crate::report::{Outcome, SkipReason, TagReport};
use crate::resilience::RetryPolicy;
use crate::shard::Shard;
use crate::stop::StopSignal;

/// Deepest index nesting followed; real images use one or two levels.
const MAX_DEPTH: usize = 8;

/// Repositories at once unless configured. Many: a repository's tag lists and manifests
/// are cheap, the streams are bounded by [`DEFAULT_TRANSFERS`] and every registry by its
/// request cap, and tags found early let the transfer queue start large blobs first.
pub const DEFAULT_REPOSITORIES: usize = 32;

/// Blob streams at once unless configured: as many as the plain parallel client of the
/// benchmark runs, half the default request cap (the rest is left to manifests).
pub const DEFAULT_TRANSFERS: usize = 8;

/// Knobs of the copy engine.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Repositories synced at the same time.
    pub repositories_in_parallel: usize,
    /// Tags of one repository checked and copied at the same time.
    pub tags_in_parallel: usize,
    /// Blobs of one image transferred at the same time.
    pub blobs_in_parallel: usize,
    /// Blob streams of the whole pass at the same time, the largest waiting one first.
    pub transfers_in_parallel: usize,
    /// Read and compare only: count what would be copied, write nothing.
    pub dry_run: bool,
    /// Retries of a whole blob transfer (the stores retry single requests).
    pub blob_retry: RetryPolicy,
    /// Raised to stop starting new images (a daemon shutting down, a pass past its
    /// deadline); copies under way finish, unless it is abandoned too.
    pub stop: StopSignal,
    /// Told what the pass planned and finished (progress displays); `None`: nobody listens.
    pub progress: Option<ProgressObserver>,
    /// Take only the repositories of this shard of the catalog (scale-out workers).
    pub shard: Option<Shard>,
    /// Skip an image that references a blob larger than this (by its descriptor),
    /// before any of its bytes are transferred; `None`: no limit.
    pub max_blob_size: Option<u64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            repositories_in_parallel: DEFAULT_REPOSITORIES,
            tags_in_parallel: 4,
            blobs_in_parallel: 4,
            transfers_in_parallel: DEFAULT_TRANSFERS,
            dry_run: false,
            blob_retry: RetryPolicy::default(),
            stop: StopSignal::default(),
            progress: None,
            shard: None,
            max_blob_size: None,
        }
    }
}

/// What is known to exist at the destination during one pass, so that shared
/// layers and child manifests are checked once, not once per tag.
pub struct PassMemory {
    present: Mutex<HashSet<(RepoName, Digest)>>,
    /// A destination repository known to hold each blob, to mount it from.
    holders: Mutex<HashMap<Digest, RepoName>>,
    /// One lock per digest. A blob two repositories need at the same moment is
    /// transferred once (the second waits, then mounts it), and the same manifest is
    /// never pushed twice at once: distribution 2.8 rewrites a link file in place, and
    /// a concurrent reader of it sees the content as unknown or its digest as invalid.
    in_flight: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    /// The destination's repositories when the pass started, if it could list them.
    destination_repositories: Option<HashSet<RepoName>>,
    /// Blob streams waiting for their turn, pass-wide.
    transfers: TransferQueue,
    /// Repositories the catalog did not list, with the tags their own tag list showed
    /// when their sync started (none: the repository does not exist), while it runs. A
    /// catalog may leave repositories out (some registries show only part of it), so
    /// absence is confirmed before any `HEAD` is skipped. A tag not listed is absent: no
    /// `HEAD` on either side is needed to know it must be copied, so a cold pass reads
    /// upstream straight away.
    unlisted: Mutex<HashMap<RepoName, HashSet<Tag>>>,
}

impl PassMemory {
    /// Memory for a pass whose destination had `destination_repositories` at its start
    /// (`None`: not known).
    pub fn new(destination_repositories: Option<HashSet<RepoName>>, options: &CopyOptions) -> Self {
        PassMemory {
            destination_repositories,
            ..PassMemory::for_options(options)
        }
    }

    /// Memory for one repository or image copied alone.
    pub fn for_options(options: &CopyOptions) -> Self {
        PassMemory {
            present: Mutex::default(),
            holders: Mutex::default(),
            in_flight: Mutex::default(),
            transfers: TransferQueue::new(options.transfers_in_parallel),
            destination_repositories: None,
            unlisted: Mutex::default(),
        }
    }

    fn knows(&self, repo: &RepoName, digest: &Digest) -> bool {
        self.present.lock().unwrap().contains(&(repo.clone(), digest.clone()))
    }

    fn remember(&self, repo: &RepoName, digest: &Digest) {
        self.present.lock().unwrap().insert((repo.clone(), digest.clone()));
    }

    fn remember_blob(&self, repo: &RepoName, digest: &Digest) {
        self.remember(repo, digest);
        self.holders
            .lock()
            .unwrap()
            .entry(digest.clone())
            .or_insert_with(|| repo.clone());
    }

    /// Waits until no other task works on `digest`; the guard keeps others waiting.
    async fn turn(&self, digest: &Digest) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(self.in_flight.lock().unwrap().entry(digest.clone()).or_default());
        lock.lock_owned().await
    }

    fn holder_of(&self, digest: &Digest) -> Option<RepoName> {
        self.holders.lock().unwrap().get(digest).cloned()
    }

    /// True when the destination catalog, read at the start of the pass, lacks `repo`.
    pub(crate) fn is_unlisted(&self, repo: &RepoName) -> bool {
        self.destination_repositories
            .as_ref()
            .is_some_and(|repositories| !repositories.contains(repo))
    }

    /// Records what an unlisted repository's own tag list showed (empty: it does not exist).
    pub(crate) fn confirm_unlisted(&self, repo: &RepoName, tags: impl IntoIterator<Item = Tag>) {
        self.unlisted
            .lock()
            .unwrap()
            .insert(repo.clone(), tags.into_iter().collect());
    }

    /// Forgets an unlisted repository's tags once its sync is over.
    pub(crate) fn forget_unlisted(&self, repo: &RepoName) {
        self.unlisted.lock().unwrap().remove(repo);
    }

    /// True when `reference` is a tag that a confirmed unlisted repository lacked when
    /// its sync started. Unknown (listed, unconfirmed, or a digest) is not absent.
    fn lacks_destination_tag(&self, repo: &RepoName, reference: &Reference) -> bool {
        let Reference::Tag(tag) = reference else {
            return false;
        };
        self.unlisted
            .lock()
            .unwrap()
            .get(repo)
            .is_some_and(|tags| !tags.contains(tag))
    }

    /// True when the destination repository did not exist when its sync started:
    /// whatever it holds now, this pass put there (and remembers).
    fn is_new_destination_repo(&self, repo: &RepoName) -> bool {
        self.unlisted.lock().unwrap().get(repo).is_some_and(HashSet::is_empty)
    }
}

/// How a blob came to be at the destination.
enum BlobCopy {
    AlreadyPresent,
    Mounted,
    Transferred(u64),
}

/// Copies tags of one sync task.
pub struct Copier<'a, S, D> {
    pub source: &'a S,
    pub destination: &'a D,
    pub memory: &'a PassMemory,
    pub options: &'a CopyOptions,
}

/// What copying one image did: the body of a [`TagReport`].
#[derive(Debug, Clone)]
pub struct ImageCopy {
    /// The upstream manifest digest, when it was resolved.
    pub digest: Option<Digest>,
    /// The digest written at the destination when it differs from upstream.
    pub destination_digest: Option<Digest>,
    pub outcome: Outcome,
    pub detail: Option<String>,
    pub bytes: u64,
    pub blobs_copied: usize,
    pub blobs_mounted: usize,
    pub manifests_pushed: usize,
    /// What `tags.min_age` and `backup` did.
    pub lifecycle: TagLifecycle,
}

impl ImageCopy {
    /// The report of this image under `tag` (`None`: an image named by digest alone).
    pub fn into_tag_report(self, tag: impl Into<Option<Tag>>) -> TagReport {
        TagReport {
            tag: tag.into(),
            digest: self.digest,
            destination_digest: self.destination_digest,
            outcome: self.outcome,
            detail: self.detail,
            bytes: self.bytes,
            blobs_copied: self.blobs_copied,
            blobs_mounted: self.blobs_mounted,
            manifests_pushed: self.manifests_pushed,
            lifecycle: self.lifecycle,
        }
    }
}

/// What was learned about one image on the way, for its report.
#[derive(Default)]
struct TagFacts {
    digest: Option<Digest>,
    destination_digest: Option<Digest>,
    detail: Option<String>,
    /// What the destination tag pointed at before this copy moves it.
    replaced: Option<Digest>,
    lifecycle: TagLifecycle,
}

/// `linux/amd64, linux/arm64`: the platforms an index offers, for skip details.
fn platform_list(entries: &[Descriptor]) -> String {
    let platforms: Vec<String> = entries
        .iter()
        .filter_map(|entry| entry.platform.as_ref())
        .filter(|platform| platform.os != "unknown")
        .map(|platform| match &platform.variant {
            Some(variant) => format!("{}/{}/{variant}", platform.os, platform.architecture),
            None => format!("{}/{}", platform.os, platform.architecture),
        })
        .collect();
    if platforms.is_empty() {
        "no platforms".to_owned()
    } else {
        platforms.join(", ")
    }
}

/// Work done for one tag.
#[derive(Default)]
struct Transfer {
    bytes: u64,
    blobs: usize,
    mounted: usize,
    manifests: usize,
}

impl<S: Store, D: Store> Copier<'_, S, D> {
    /// Copies one tag under the same tag and reports what happened; never fails the caller.
    pub async fn copy_tag(&self, task: &SyncTask, tag: &Tag) -> TagReport {
        let reference = Reference::Tag(tag.clone());
        self.copy_reference(task, &reference, &reference)
            .await
            .into_tag_report(tag.clone())
    }

    /// Copies the manifest `source` names (a tag or a digest) in `task.source` to
    /// `destination` (a tag, or the same digest) in `task.destination`.
    pub async fn copy_reference(&self, task: &SyncTask, source: &Reference, destination: &Reference) -> ImageCopy {
        let mut transfer = Transfer::default();
        let mut facts = TagFacts::default();
        let outcome = match self
            .try_copy(task, source, destination, &mut transfer, &mut facts)
            .await
        {
            Ok(outcome) => outcome,
            Err(CopyError::Interrupted) => {
                let reason = self.options.stop.skip_reason();
                info!(repo = %task.source, tag = tag_field(source), digest = digest_field(source), reason = reason.as_str(), "image interrupted: the pass is stopping");
                Outcome::Skipped { reason }
            }
            Err(error) => match error.quota_skip() {
                Some(reason) => {
                    info!(repo = %task.source, tag = tag_field(source), digest = digest_field(source), reason = reason.as_str(), error = %error, "left for a later pass: pull quota");
                    facts.detail = Some(error.to_string());
                    Outcome::Skipped { reason }
                }
                None => {
                    tracing::warn!(repo = %task.source, tag = tag_field(source), digest = digest_field(source), error = %error, "image failed");
                    Outcome::Failed {
                        error: error.to_string(),
                    }
                }
            },
        };
        ImageCopy {
            digest: facts.digest,
            destination_digest: facts.destination_digest,
            outcome,
            detail: facts.detail,
            bytes: transfer.bytes,
            blobs_copied: transfer.blobs,
            blobs_mounted: transfer.mounted,
            manifests_pushed: transfer.manifests,
            lifecycle: facts.lifecycle,
        }
    }

    async fn try_copy(
        &self,
        task: &SyncTask,
        source: &Reference,
        destination: &Reference,
        transfer: &mut Transfer,
        facts: &mut TagFacts,
    ) -> Result<Outcome, CopyError> {
        let manifest = match self.resolve(task, source, destination, facts).await? {
            Resolved::Copy(manifest) => manifest,
            Resolved::Done(outcome) => return Ok(outcome),
        };
        let content = manifest.content().map_err(|source| CopyError::Malformed {
            digest: manifest.digest.clone(),
            source,
        })?;
        let (manifest, content) = match content {
            ManifestContent::Schema1 => {
                return Ok(Outcome::Skipped {
                    reason: SkipReason::Schema1Unsupported,
                })
            }
            ManifestContent::Index { manifests } if !task.platforms.is_empty() => {
                let kept = select_platforms(&manifests, &task.platforms);
                if kept.is_empty() {
                    facts.detail = Some(format!("index has {}", platform_list(&manifests)));
                    return Ok(Outcome::Skipped {
                        reason: SkipReason::NoMatchingPlatform,
                    });
                }
                if kept.len() == manifests.len() {
                    (manifest, ManifestContent::Index { manifests })
                } else {
                    let narrowed =
                        narrowed_index(&manifest, &kept, &task.platforms).map_err(|reason| CopyError::Malformed {
                            digest: manifest.digest.clone(),
                            source: MalformedManifest::new(reason),
                        })?;
                    facts.destination_digest = Some(narrowed.digest.clone());
                    (narrowed, ManifestContent::Index { manifests: kept })
                }
            }
            content => (manifest, content),
        };
        let mut read_ahead = ReadAhead::default();
        // Lifecycle hook (issue 18): `tags.min_age` judges the image the rule would copy,
        // a new tag and a moved one alike.
        if let Some(min_age) = task.tags.min_age {
            let check = judge_age(self.source, &task.source, &content, min_age, lifecycle::now()).await?;
            read_ahead.keep(check.children);
            if let Some(skip) = check.verdict.skip() {
                info!(repo = %task.source, tag = tag_field(source), digest = %manifest.digest, reason = skip.reason.as_str(), detail = %skip.detail, "image not copied yet");
                facts.detail = Some(skip.detail);
                facts.lifecycle.eligible_at = skip.eligible_at;
                return Ok(Outcome::Skipped { reason: skip.reason });
            }
        }
        if let Some(limit) = self.options.max_blob_size {
            if let Some(blob) = self.blob_over_limit(task, &content, limit, 0, &mut read_ahead).await? {
                info!(repo = %task.source, tag = tag_field(source), digest = %blob.digest, bytes = blob.size, "image not copied: a blob is larger than max_blob_size");
                facts.detail = Some(format!(
                    "blob {} is {} bytes, more than max_blob_size ({limit} bytes)",
                    blob.digest, blob.size
                ));
                return Ok(Outcome::Skipped {
                    reason: SkipReason::BlobTooLarge,
                });
            }
        }
        self.copy_references(task, &manifest, content, 0, transfer, &mut read_ahead)
            .await?;
        // Lifecycle hook (issue 18): a moved tag's old manifest gets its backup name
        // first; if that fails, the tag is not moved.
        if let (Some(template), Reference::Tag(tag), Some(old)) = (&task.backup, destination, &facts.replaced) {
            let backup = back_up(
                self.destination,
                &task.destination,
                tag,
                old,
                template,
                lifecycle::now(),
                self.options.dry_run,
            )
            .await?;
            facts.lifecycle.backup = Some(backup);
        }
        if self.options.dry_run {
            return Ok(Outcome::WouldCopy);
        }
        let _turn = self.memory.turn(&manifest.digest).await;
        self.destination
            .put_manifest(&task.destination, destination, &manifest)
            .await
            .map_err(CopyError::Destination)?;
        transfer.manifests += 1;
        info!(repo = %task.source, tag = tag_field(source), digest = %manifest.digest, bytes = transfer.bytes, "copied");
        Ok(Outcome::Copied)
    }

    /// Finds out whether the destination needs the image, and if so reads upstream's
    /// manifest.
    async fn resolve(
        &self,
        task: &SyncTask,
        source: &Reference,
        destination: &Reference,
        facts: &mut TagFacts,
    ) -> Result<Resolved, CopyError> {
        if self.memory.lacks_destination_tag(&task.destination, destination) {
            // Nothing to compare with: one GET instead of two HEADs and a GET.
            let manifest = match self.source.manifest(&task.source, source).await {
                Ok(manifest) => manifest,
                Err(error) if error.is_not_found() => return Ok(Resolved::Done(vanished())),
                Err(error) => return Err(CopyError::Source(error)),
            };
            facts.digest = Some(manifest.digest.clone());
            return Ok(Resolved::Copy(manifest));
        }
        // Both sides at once: on a pass with nothing to do, this is all the work.
        let (source_head, destination_head) = futures_util::join!(
            self.source.head_manifest(&task.source, source),
            self.destination.head_manifest(&task.destination, destination)
        );
        let Some(source_descriptor) = source_head.map_err(CopyError::Source)? else {
            return Ok(Resolved::Done(vanished()));
        };
        facts.digest = Some(source_descriptor.digest.clone());
        let destination_digest = destination_head
            .map_err(CopyError::Destination)?
            .map(|descriptor| descriptor.digest);
        if destination_digest.as_ref() == Some(&source_descriptor.digest) {
            debug!(repo = %task.source, tag = tag_field(source), digest = %source_descriptor.digest, "up to date");
            return Ok(Resolved::Done(up_to_date()));
        }
        facts.replaced.clone_from(&destination_digest);
        if let Some(destination_digest) = destination_digest.filter(|_| !task.platforms.is_empty()) {
            // Maybe a narrowed index made from this very upstream index: the
            // destination's own copy says so, and upstream need not be read again.
            let current = self
                .destination
                .manifest(&task.destination, &Reference::Digest(destination_digest.clone()))
                .await
                .map_err(CopyError::Destination)?;
            if is_current_narrowing(&current, &source_descriptor.digest, &task.platforms) {
                facts.destination_digest = Some(destination_digest);
                return Ok(Resolved::Done(up_to_date()));
            }
        }
        Ok(Resolved::Copy(
            self.read_manifest(&task.source, &source_descriptor).await?,
        ))
    }

    /// Reads a manifest by digest and checks it against the descriptor that named it.
    async fn read_manifest(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<Manifest, CopyError> {
        let manifest = self
            .source
            .manifest(repo, &Reference::Digest(descriptor.digest.clone()))
            .await
            .map_err(CopyError::Source)?;
        let actual = descriptor.digest.recompute(&manifest.bytes);
        if actual != descriptor.digest {
            return Err(CopyError::Source(StoreError::DigestMismatch {
                what: format!("manifest {repo}@{}", descriptor.digest),
                expected: descriptor.digest.clone(),
                actual,
            }));
        }
        if manifest.bytes.len() as u64 != descriptor.size {
            return Err(CopyError::Source(StoreError::SizeMismatch {
                what: format!("manifest {repo}@{}", descriptor.digest),
                expected: descriptor.size,
                actual: manifest.bytes.len() as u64,
            }));
        }
        Ok(manifest)
    }

    /// Makes everything `manifest` references present at the destination.
    async fn copy_references(
        &self,
        task: &SyncTask,
        manifest: &Manifest,
        content: ManifestContent,
        depth: usize,
        transfer: &mut Transfer,
        read_ahead: &mut ReadAhead,
    ) -> Result<(), CopyError> {
        if depth > MAX_DEPTH {
            return Err(CopyError::TooDeep {
                digest: manifest.digest.clone(),
                limit: MAX_DEPTH,
            });
        }
        match content {
            ManifestContent::Index { manifests } => {
                for child in manifests {
                    self.copy_child_manifest(task, &child, depth, transfer, read_ahead)
                        .await?;
                }
                Ok(())
            }
            ManifestContent::Image { config, layers, .. } => {
                let blobs: Vec<Descriptor> = std::iter::once(config)
                    .chain(layers)
                    .filter(|blob| !is_non_distributable(&blob.media_type))
                    .collect();
                let mut copies = stream::iter(blobs.iter().map(|blob| self.copy_blob(task, blob)))
                    .buffer_unordered(self.options.blobs_in_parallel.max(1));
                let mut done = Vec::with_capacity(blobs.len());
                let mut interrupted = false;
                while let Some(copy) = copies.next().await {
                    match copy {
                        Ok(copy) => done.push(copy),
                        // A stopping pass starts no more of this image's blobs, but the
                        // streams under way finish: ending here would cut them off.
                        Err(CopyError::Interrupted) => interrupted = true,
                        Err(error) => return Err(error),
                    }
                }
                for copy in done {
                    match copy {
                        BlobCopy::AlreadyPresent => {}
                        BlobCopy::Mounted => transfer.mounted += 1,
                        BlobCopy::Transferred(bytes) => {
                            transfer.blobs += 1;
                            // Sizes are what manifests claim: adding them must not wrap.
                            transfer.bytes = transfer.bytes.saturating_add(bytes);
                        }
                    }
                }
                if interrupted {
                    return Err(CopyError::Interrupted);
                }
                Ok(())
            }
            ManifestContent::Schema1 => Err(CopyError::NestedSchema1 {
                digest: manifest.digest.clone(),
            }),
        }
    }

    async fn copy_child_manifest(
        &self,
        task: &SyncTask,
        child: &Descriptor,
        depth: usize,
        transfer: &mut Transfer,
        read_ahead: &mut ReadAhead,
    ) -> Result<(), CopyError> {
        let destination = &task.destination;
        // Tags sharing a child copy it one at a time (see `PassMemory::turn`).
        let _turn = self.memory.turn(&child.digest).await;
        if self.memory.knows(destination, &child.digest) {
            return Ok(());
        }
        let by_digest = Reference::Digest(child.digest.clone());
        // In a repository new in this pass, only what this pass put there is present,
        // and that is known: no need to ask.
        let present = !self.memory.is_new_destination_repo(destination)
            && self
                .destination
                .head_manifest(destination, &by_digest)
                .await
                .map_err(CopyError::Destination)?
                .is_some();
        if !present {
            let manifest = match read_ahead.take(&child.digest) {
                Some(manifest) => manifest,
                None => self.read_manifest(&task.source, child).await?,
            };
            let content = manifest.content().map_err(|source| CopyError::Malformed {
                digest: manifest.digest.clone(),
                source,
            })?;
            Box::pin(self.copy_references(task, &manifest, content, depth + 1, transfer, read_ahead)).await?;
            if self.options.dry_run {
                self.memory.remember(destination, &child.digest);
                return Ok(());
            }
            self.destination
                .put_manifest(destination, &by_digest, &manifest)
                .await
                .map_err(CopyError::Destination)?;
            transfer.manifests += 1;
        }
        self.memory.remember(destination, &child.digest);
        Ok(())
    }
}

/// What [`Copier::resolve`] found: upstream's manifest to copy, or the image's outcome.
enum Resolved {
    Copy(Manifest),
    Done(Outcome),
}

fn up_to_date() -> Outcome {
    Outcome::Skipped {
        reason: SkipReason::UpToDate,
    }
}

fn vanished() -> Outcome {
    Outcome::Skipped {
        reason: SkipReason::VanishedUpstream,
    }
}

/// The `tag` log field: set only when the reference is a tag (the fixed field names
/// keep `tag` and `digest` apart).
fn tag_field(reference: &Reference) -> Option<tracing::field::DisplayValue<&Tag>> {
    match reference {
        Reference::Tag(tag) => Some(tracing::field::display(tag)),
        Reference::Digest(_) => None,
    }
}

/// The `digest` log field of a reference that names a digest.
fn digest_field(reference: &Reference) -> Option<tracing::field::DisplayValue<&Digest>> {
    match reference {
        Reference::Tag(_) => None,
        Reference::Digest(digest) => Some(tracing::field::display(digest)),
    }
}
