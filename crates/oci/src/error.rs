//! Errors of stores and of parsing OCI vocabulary.

use std::time::Duration;

use crate::digest::Digest;

/// A value that does not parse as the OCI vocabulary says it must.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} \"{value}\": {reason}")]
pub struct ParseError {
    what: &'static str,
    value: String,
    reason: String,
}

impl ParseError {
    pub fn new(what: &'static str, value: &str, reason: &str) -> Self {
        ParseError {
            what,
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a store operation failed. Variants are what the retry policy matches on;
/// `what` names the object (`registry 127.0.0.1:5000 manifest library/alpine:3.19`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{what}: unauthorized (check the credentials)")]
    Unauthorized { what: String },
    #[error("{what}: access denied")]
    Denied { what: String },
    #[error("{what}: rate limited{}", retry_after_text(.retry_after))]
    RateLimited {
        what: String,
        retry_after: Option<Duration>,
    },
    #[error("{what}: server error {status}")]
    Server { what: String, status: u16 },
    #[error("{what}: rejected with status {status}: {detail}")]
    Rejected { what: String, status: u16, detail: String },
    #[error("{what}: {source}")]
    Transport {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(delay) => format!(" (retry after {}s)", delay.as_secs()),
        None => String::new(),
    }
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
