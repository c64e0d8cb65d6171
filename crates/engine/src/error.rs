//! Why copying one image failed.

use ocisync_oci::{Digest, MalformedManifest, StoreError, Tag};

use crate::report::SkipReason;

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
    BackupName { tag: Tag, rendered: String },
    /// Tagging the old manifest with its backup name failed; the tag stays where it was.
    #[error("backup of {old} as {name}: {source}; the tag was not moved")]
    Backup {
        name: Tag,
        old: Digest,
        /// Boxed: the name and digest beside it would make every `CopyError` larger.
        #[source]
        source: Box<StoreError>,
    },
    /// The backup name holds another digest already: an earlier backup, never overwritten.
    #[error("backup name {name} already holds {held} (an earlier backup, never overwritten), not {old}; the tag was not moved (put {{digest}} in the backup template to give each old digest its own name)")]
    BackupTaken { name: Tag, held: Digest, old: Digest },
}

impl CopyError {
    /// The store failure behind this error, if it is one.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            CopyError::Source(error) | CopyError::Destination(error) => Some(error),
            _ => None,
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
