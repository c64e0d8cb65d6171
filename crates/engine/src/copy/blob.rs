//! Copying one blob: skip, mount, or stream it verified, retrying whole transfers.
//!
//! The stores retry single requests; a blob stream that breaks halfway (or a
//! destination that fails the upload) can only be retried from the start, which is
//! what [`Pass::transfer_with_retries`] does. A digest or size mismatch gets one
//! more try (a flaky proxy can corrupt a body), never more: a blob that is wrong
//! twice is wrong upstream.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use ocisync_oci::{verify_blob_stream, BlobPlacement, BlobStream, Descriptor, Digest, RepoName, Store, StoreError};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::context::Pass;
use super::queue::TransferSlot;
use crate::error::CopyError;
use crate::plan::SyncTask;
use crate::work::Work;

impl<S: Store, D: Store> Pass<'_, S, D> {
    /// Makes one blob present at the destination: nothing if it is there, a
    /// cross-repository mount if another destination repository has it, else a
    /// verified stream from the source. Returns the work it took (none when present).
    pub(super) async fn copy_blob(&self, task: &SyncTask, blob: &Descriptor) -> Result<Work, CopyError> {
        let _turn = self.memory.turn(&blob.digest).await;
        let destination = &task.destination;
        if self.memory.knows(destination, &blob.digest) {
            return Ok(Work::default());
        }
        // A stopping pass asks nothing more of the destination for an image it leaves.
        if self.options.stop.is_raised() {
            return Err(CopyError::Interrupted);
        }
        if self.options.dry_run {
            // Only reads: a mount or an upload session would be a write.
            let present = self
                .destination
                .has_blob(destination, &blob.digest)
                .await
                .map_err(CopyError::Destination)?;
            self.memory.remember_blob(destination, &blob.digest);
            // Counted as a transfer when missing; the source is not read.
            return Ok(if present {
                Work::default()
            } else {
                Work::blob(blob.size)
            });
        }
        // A repository new in this pass holds only what the pass put there, which is
        // known: the blob is missing, and its upload session opens at its turn, beside
        // the source's first bytes, instead of a round trip before it.
        let unasked = self.memory.holder_of(&blob.digest).is_none() && self.memory.is_new_destination_repo(destination);
        let placement = if unasked {
            BlobPlacement::Missing
        } else {
            self.prepare_blob(destination, &blob.digest).await?
        };
        let copy = match placement {
            BlobPlacement::Present => Work::default(),
            BlobPlacement::Mounted => Work::mount(),
            BlobPlacement::Missing => {
                let copy = self.transfer_with_retries(task, blob, unasked).await?;
                debug!(repo = %destination, digest = %blob.digest, bytes = blob.size, "blob copied");
                copy
            }
        };
        self.memory.remember_blob(destination, &blob.digest);
        Ok(copy)
    }

    /// Asks the destination for the blob in one step, offering to mount it from a
    /// repository this pass put it in (else from the repository itself, which tells
    /// whether it is there).
    async fn prepare_blob(&self, destination: &RepoName, digest: &Digest) -> Result<BlobPlacement, CopyError> {
        let Some(holder) = self.memory.holder_of(digest).filter(|holder| holder != destination) else {
            return self
                .destination
                .prepare_blob(destination, digest, destination)
                .await
                .map_err(CopyError::Destination);
        };
        match self.destination.prepare_blob(destination, digest, &holder).await {
            Ok(placement) => {
                if placement == BlobPlacement::Mounted {
                    debug!(repo = %destination, from = %holder, %digest, "blob mounted");
                }
                Ok(placement)
            }
            // A registry may refuse a mount from a repository these credentials cannot
            // read; asking without the other repository is still right.
            Err(error) if !error.is_transient() => {
                debug!(repo = %destination, from = %holder, %digest, error = %error, "mount refused; uploading");
                self.destination
                    .prepare_blob(destination, digest, destination)
                    .await
                    .map_err(CopyError::Destination)
            }
            Err(error) => Err(CopyError::Destination(error)),
        }
    }

    /// Streams a blob from source to destination, retrying the whole transfer on
    /// transient failures (and once on a mismatch) as the copy's retry policy allows.
    /// `unasked`: the destination has not been asked about the blob yet, so the first
    /// attempt asks (and opens the upload session) beside the source's request.
    async fn transfer_with_retries(
        &self,
        task: &SyncTask,
        blob: &Descriptor,
        unasked: bool,
    ) -> Result<Work, CopyError> {
        let policy = &self.options.blob_retry;
        let started = Instant::now();
        let mut attempt: u32 = 1;
        let mut mismatch_retried = false;
        let mut backoff = policy.initial_delay;
        loop {
            // Only streams queue, one turn per attempt: a blob found present or mounted
            // never takes a slot, and a backoff sleeps without one. The upload session
            // `prepare_blob` opened waits along; the registry store opens a fresh one if
            // it has grown old or is gone by the blob's turn.
            // Told to stop while waiting: the streams under way finish, queued ones do
            // not start (what they would have copied is fetched by the next pass).
            let Some(slot) = self
                .options
                .stop
                .unless_raised(self.memory.transfers.enter(blob.size))
                .await
            else {
                return Err(CopyError::Interrupted);
            };
            if self.options.stop.is_raised() {
                return Err(CopyError::Interrupted);
            }
            let outcome = self.transfer(task, blob, slot, unasked && attempt == 1).await;
            let error = match outcome {
                Ok(copy) => return Ok(copy),
                Err(error) => error,
            };
            let Some(cause) = error.store_error() else {
                return Err(error);
            };
            let again = if cause.is_mismatch() {
                !std::mem::replace(&mut mismatch_retried, true)
            } else {
                cause.is_transient() && attempt < policy.max_attempts
            };
            let delay = if cause.is_mismatch() {
                Some(Duration::ZERO)
            } else {
                policy.delay_before_next_attempt(cause, Some(backoff), started.elapsed())
            };
            let Some(delay) = delay.filter(|_| again) else {
                return Err(error);
            };
            warn!(
                repo = %task.source,
                digest = %blob.digest,
                attempt,
                delay = ?delay,
                error = %error,
                "blob transfer failed; retrying it from the start"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
            backoff = backoff.saturating_mul(2).min(policy.max_delay);
        }
    }

    /// One attempt: source stream, verified on the way, into one upload. The stream
    /// holds `slot` until the source has delivered its last byte.
    async fn transfer(
        &self,
        task: &SyncTask,
        blob: &Descriptor,
        slot: TransferSlot,
        ask: bool,
    ) -> Result<Work, CopyError> {
        let destination = &task.destination;
        let ask_destination = async {
            if !ask {
                return Ok(BlobPlacement::Missing);
            }
            self.destination
                .prepare_blob(destination, &blob.digest, destination)
                .await
        };
        let (stream, placement) = futures_util::join!(self.source.blob(&task.source, blob), ask_destination);
        // Something besides this pass put it there meanwhile: the read is dropped unread.
        match placement.map_err(CopyError::Destination)? {
            BlobPlacement::Missing => {}
            BlobPlacement::Present => return Ok(Work::default()),
            BlobPlacement::Mounted => return Ok(Work::mount()),
        }
        let stream = stream.map_err(CopyError::Source)?;
        let what = format!("{} blob {}@{}", self.source.label(), task.source, blob.digest);
        let (stream, source_failure) = capture_failure(verify_blob_stream(stream, blob, what));
        let stream = slot.until_end_of(stream);
        let result = self.destination.put_blob(&task.destination, blob, stream).await;
        // A failure of the source side (cut short, wrong digest) surfaces at the
        // destination as an aborted upload; report the cause, not the symptom.
        if let Some(cause) = source_failure.lock().unwrap().take() {
            return Err(CopyError::Source(cause));
        }
        result.map_err(CopyError::Destination)?;
        Ok(Work::blob(blob.size))
    }
}

/// Passes a stream through, keeping its first error for the caller to inspect.
fn capture_failure(stream: BlobStream) -> (BlobStream, Arc<Mutex<Option<StoreError>>>) {
    let slot = Arc::new(Mutex::new(None));
    let writer = Arc::clone(&slot);
    let stream = stream.map_err(move |error| {
        let summary = StoreError::Invalid {
            what: "source stream".to_owned(),
            reason: error.to_string(),
        };
        writer.lock().unwrap().get_or_insert(error);
        summary
    });
    (Box::pin(stream), slot)
}
