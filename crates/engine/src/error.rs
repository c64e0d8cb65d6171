//! Why copying one image failed.

use ocisync_oci::{Digest, MalformedManifest, StoreError, Tag};

use crate::outcome::{FailureKind, Outcome, SkipReason};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("source: {0}")]
    Source(#[source] StoreError),
    #[error("destination: {0}")]
    Destination(#[source] StoreError),
    #[error("manifest {digest}: {source}")]
    Malformed {
        digest: Digest,
        #[source]
        source: MalformedManifest,
    },
    #[error("manifest {digest}: nested more than {limit} levels deep")]
    TooDeep { digest: Digest, limit: usize },
    #[error("manifest {digest}: a schema1 manifest inside an index cannot be copied")]
    NestedSchema1 { digest: Digest },
    /// The pass was told to stop while this image still had blobs waiting to stream.
    #[error("stopped before its blobs were all copied")]
    Interrupted,
    /// The moved tag's backup name is no valid tag (a long tag made it pass 128
    /// characters); the tag stays where it was.
    #[error(
        "backup name \"{rendered}\" of tag {tag} is not a valid tag (at most 128 characters); the tag was not moved"
    )]
    BackupName {
        /// The tag that was to move.
        tag: Tag,
        /// The name the template rendered.
        rendered: String,
    },
    /// Tagging the old manifest with its backup name failed; the tag stays where it was.
    #[error("backup of {old} as {name}: {source}; the tag was not moved")]
    Backup {
        /// The backup name.
        name: Tag,
        /// The digest the tag pointed at.
        old: Digest,
        /// Boxed: the name and digest beside it would make every `CopyError` larger.
        #[source]
        source: Box<StoreError>,
    },
    /// The backup name holds another digest already: an earlier backup, never overwritten.
    #[error("backup name {name} already holds {held} (an earlier backup, never overwritten), not {old}; the tag was not moved (put {{digest}} in the backup template to give each old digest its own name)")]
    BackupTaken {
        /// The backup name.
        name: Tag,
        /// What it holds.
        held: Digest,
        /// The digest the tag pointed at.
        old: Digest,
    },
}

impl CopyError {
    /// The store failure behind this error, if it is one.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            CopyError::Source(error) | CopyError::Destination(error) => Some(error),
            _ => None,
        }
    }

    /// What failed, for counting: a mismatch is about content, whichever side saw it.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            CopyError::Source(error) | CopyError::Destination(error) if error.is_mismatch() => FailureKind::Integrity,
            CopyError::Source(_) => FailureKind::Source,
            CopyError::Destination(_) => FailureKind::Destination,
            CopyError::Malformed { .. } | CopyError::TooDeep { .. } | CopyError::NestedSchema1 { .. } => {
                FailureKind::Manifest
            }
            // Not a failure where it is caught (the image is skipped); counted with the
            // source if it ever reaches a report.
            CopyError::Interrupted => FailureKind::Source,
            CopyError::BackupName { .. } | CopyError::Backup { .. } | CopyError::BackupTaken { .. } => {
                FailureKind::Backup
            }
        }
    }

    /// The failed outcome this error gives an image.
    pub fn outcome(&self) -> Outcome {
        Outcome::Failed {
            kind: self.failure_kind(),
            error: self.to_string(),
        }
    }

    /// The skip reason when a registry's pull quota, not a fault, stopped the copy:
    /// the tag waits for a later pass.
    pub fn quota_skip(&self) -> Option<SkipReason> {
        match self.store_error()? {
            StoreError::QuotaReserve { .. } => Some(SkipReason::RateLimitReserve),
            StoreError::QuotaExhausted { .. } => Some(SkipReason::RateLimited),
            _ => None,
        }
    }
}
