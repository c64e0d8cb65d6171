//! One image from source to destination, children before parents.
//!
//! Order is what keeps the destination consistent: blobs first, then child manifests
//! by digest, then the top manifest under its tag. A crash at any point leaves stray
//! blobs or untagged manifests, never a manifest whose references are missing.

use futures_util::{stream, StreamExt};
use ocisync_oci::media_type::is_non_distributable;
use ocisync_oci::{Descriptor, Digest, MalformedManifest, Manifest, ManifestContent, Reference, RepoName, Store, Tag};
use tracing::{debug, info};

use super::context::Pass;
use super::read_ahead::ReadAhead;
use crate::error::CopyError;
use crate::filter::select_platforms;
use crate::lifecycle::{self, back_up, judge_age};
use crate::narrow::{is_current_narrowing, narrowed_index};
use crate::outcome::{Outcome, SkipReason};
use crate::plan::SyncTask;
use crate::read_manifest::read_checked_manifest;
use crate::report::TagReport;
use crate::work::Work;

/// Deepest index nesting followed; real images use one or two levels.
pub(super) const MAX_DEPTH: usize = 8;

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

impl<S: Store, D: Store> Pass<'_, S, D> {
    /// Copies the manifest `source` names (a tag or a digest) in `task.source` to
    /// `destination` (a tag, or the same digest) in `task.destination`, and reports it
    /// under the destination tag (by its digest alone when it is a digest). Never
    /// fails the caller: a failure is the report's outcome.
    pub(crate) async fn copy_reference(
        &self,
        task: &SyncTask,
        source: &Reference,
        destination: &Reference,
    ) -> TagReport {
        // The outcome is a placeholder until the copy has one.
        let mut report = TagReport::skipped(destination.tag().cloned(), SkipReason::UpToDate, None);
        report.outcome = match self.try_copy(task, source, destination, &mut report).await {
            Ok(outcome) => outcome,
            Err(CopyError::Interrupted) => {
                let reason = self.options.stop.skip_reason();
                info!(repo = %task.source, tag = tag_field(source), digest = digest_field(source), reason = reason.as_str(), "image interrupted: the pass is stopping");
                Outcome::Skipped { reason }
            }
            Err(error) => match error.quota_skip() {
                Some(reason) => {
                    info!(repo = %task.source, tag = tag_field(source), digest = digest_field(source), reason = reason.as_str(), error = %error, "left for a later pass: pull quota");
                    report.detail = Some(error.to_string());
                    Outcome::Skipped { reason }
                }
                None => {
                    tracing::warn!(repo = %task.source, tag = tag_field(source), digest = digest_field(source), error = %error, "image failed");
                    error.outcome()
                }
            },
        };
        report
    }

    async fn try_copy(
        &self,
        task: &SyncTask,
        source: &Reference,
        destination: &Reference,
        report: &mut TagReport,
    ) -> Result<Outcome, CopyError> {
        let (manifest, replaced) = match self.resolve(task, source, destination, report).await? {
            Resolved::Copy(manifest, replaced) => (manifest, replaced),
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
                    report.detail = Some(format!("index has {}", platform_list(&manifests)));
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
                    report.destination_digest = Some(narrowed.digest.clone());
                    (narrowed, ManifestContent::Index { manifests: kept })
                }
            }
            content => (manifest, content),
        };
        let mut read_ahead = ReadAhead::default();
        // Lifecycle hook (issue 18): `tags.min_age` judges the image the rule would copy,
        // a new tag and a moved one alike.
        if let Some(min_age) = task.tags.min_age() {
            let check = judge_age(self.source, &task.source, &content, min_age, lifecycle::now()).await?;
            read_ahead.keep(check.children);
            if let Some(skip) = check.verdict.skip() {
                info!(repo = %task.source, tag = tag_field(source), digest = %manifest.digest, reason = skip.reason.as_str(), detail = %skip.detail, "image not copied yet");
                report.detail = Some(skip.detail);
                report.lifecycle.eligible_at = skip.eligible_at;
                return Ok(Outcome::Skipped { reason: skip.reason });
            }
        }
        if let Some(limit) = self.options.max_blob_size {
            if let Some(blob) = self.blob_over_limit(task, &content, limit, 0, &mut read_ahead).await? {
                info!(repo = %task.source, tag = tag_field(source), digest = %blob.digest, bytes = blob.size, "image not copied: a blob is larger than max_blob_size");
                report.detail = Some(format!(
                    "blob {} is {} bytes, more than max_blob_size ({limit} bytes)",
                    blob.digest, blob.size
                ));
                return Ok(Outcome::Skipped {
                    reason: SkipReason::BlobTooLarge,
                });
            }
        }
        self.copy_references(task, &manifest, content, 0, &mut report.work, &mut read_ahead)
            .await?;
        // Lifecycle hook (issue 18): a moved tag's old manifest gets its backup name
        // first; if that fails, the tag is not moved.
        if let (Some(template), Reference::Tag(tag), Some(old)) = (&task.backup, destination, &replaced) {
            let now = lifecycle::now();
            let backup = back_up(
                self.destination,
                &task.destination,
                tag,
                old,
                template,
                now,
                self.options.dry_run,
            );
            report.lifecycle.backup = Some(backup.await?);
        }
        if self.options.dry_run {
            return Ok(Outcome::WouldCopy);
        }
        let _turn = self.memory.turn(&manifest.digest).await;
        self.destination
            .put_manifest(&task.destination, destination, &manifest)
            .await
            .map_err(CopyError::Destination)?;
        report.work += Work::manifest();
        info!(repo = %task.source, tag = tag_field(source), digest = %manifest.digest, bytes = report.work.bytes, "copied");
        Ok(Outcome::Copied)
    }

    /// Finds out whether the destination needs the image, and if so reads upstream's
    /// manifest.
    async fn resolve(
        &self,
        task: &SyncTask,
        source: &Reference,
        destination: &Reference,
        report: &mut TagReport,
    ) -> Result<Resolved, CopyError> {
        if self.memory.lacks_destination_tag(&task.destination, destination) {
            // Nothing to compare with: one GET instead of two HEADs and a GET.
            let manifest = match self.source.manifest(&task.source, source).await {
                Ok(manifest) => manifest,
                Err(error) if error.is_not_found() => return Ok(Resolved::Done(vanished())),
                Err(error) => return Err(CopyError::Source(error)),
            };
            report.digest = Some(manifest.digest.clone());
            return Ok(Resolved::Copy(manifest, None));
        }
        // Both sides at once: on a pass with nothing to do, this is all the work.
        let (source_head, destination_head) = futures_util::join!(
            self.source.head_manifest(&task.source, source),
            self.destination.head_manifest(&task.destination, destination)
        );
        let Some(source_descriptor) = source_head.map_err(CopyError::Source)? else {
            return Ok(Resolved::Done(vanished()));
        };
        report.digest = Some(source_descriptor.digest.clone());
        let destination_digest = destination_head
            .map_err(CopyError::Destination)?
            .map(|descriptor| descriptor.digest);
        if destination_digest.as_ref() == Some(&source_descriptor.digest) {
            debug!(repo = %task.source, tag = tag_field(source), digest = %source_descriptor.digest, "up to date");
            return Ok(Resolved::Done(up_to_date()));
        }
        if let Some(destination_digest) = destination_digest.clone().filter(|_| !task.platforms.is_empty()) {
            // Maybe a narrowed index made from this very upstream index: the
            // destination's own copy says so, and upstream need not be read again.
            let current = self
                .destination
                .manifest(&task.destination, &Reference::Digest(destination_digest.clone()))
                .await
                .map_err(CopyError::Destination)?;
            if is_current_narrowing(&current, &source_descriptor.digest, &task.platforms) {
                report.destination_digest = Some(destination_digest);
                return Ok(Resolved::Done(up_to_date()));
            }
        }
        Ok(Resolved::Copy(
            self.read_manifest(&task.source, &source_descriptor).await?,
            destination_digest,
        ))
    }

    /// Reads a manifest by digest and checks it against the descriptor that named it.
    pub(super) async fn read_manifest(&self, repo: &RepoName, descriptor: &Descriptor) -> Result<Manifest, CopyError> {
        read_checked_manifest(self.source, repo, descriptor).await
    }

    /// Makes everything `manifest` references present at the destination.
    async fn copy_references(
        &self,
        task: &SyncTask,
        manifest: &Manifest,
        content: ManifestContent,
        depth: usize,
        work: &mut Work,
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
                    self.copy_child_manifest(task, &child, depth, work, read_ahead).await?;
                }
                Ok(())
            }
            ManifestContent::Image { config, layers, .. } => {
                let blobs: Vec<Descriptor> = std::iter::once(config)
                    .chain(layers)
                    .filter(|blob| !is_non_distributable(&blob.media_type))
                    .collect();
                let mut copies = stream::iter(blobs.iter().map(|blob| self.copy_blob(task, blob)))
                    .buffer_unordered(self.options.concurrency.blobs.max(1));
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
                    *work += copy;
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
        work: &mut Work,
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
            Box::pin(self.copy_references(task, &manifest, content, depth + 1, work, read_ahead)).await?;
            if self.options.dry_run {
                self.memory.remember(destination, &child.digest);
                return Ok(());
            }
            self.destination
                .put_manifest(destination, &by_digest, &manifest)
                .await
                .map_err(CopyError::Destination)?;
            *work += Work::manifest();
        }
        self.memory.remember(destination, &child.digest);
        Ok(())
    }
}

/// What [`Pass::resolve`] found: upstream's manifest to copy, or the image's outcome.
enum Resolved {
    /// Upstream's manifest, to copy; with the digest the destination tag names now,
    /// when the copy moves it (for its backup).
    Copy(Manifest, Option<Digest>),
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
