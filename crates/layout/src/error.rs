//! Turning file-system errors into [`StoreError`]s that name the object.

use std::io;

use ocisync_oci::StoreError;

/// A missing file is `NotFound` (the engine treats that as "absent"); anything else is `Io`.
pub fn io_error(what: String, error: io::Error) -> StoreError {
    if error.kind() == io::ErrorKind::NotFound {
        StoreError::NotFound { what }
    } else {
        StoreError::Io { what, source: error }
    }
}

/// Content on disk or arriving that the layout format does not allow.
pub fn invalid(what: String, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        what,
        reason: reason.into(),
    }
}
