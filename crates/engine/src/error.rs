//! Why copying one image failed.

use ocisync_oci::{Digest, MalformedManifest, StoreError};

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
