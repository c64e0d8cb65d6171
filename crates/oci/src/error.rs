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
    /// Not sent: the registry's pull quota is down to the reserve the config keeps
    /// (`remaining`: as last announced, less the requests still in flight).
    #[error("{what}: not sent: the pull quota is at its reserve ({remaining} left, reserve {reserve})")]
    QuotaReserve { what: String, remaining: u64, reserve: u64 },
    /// The registry's pull quota is used up: a 429 with `TOOMANYREQUESTS` and no
    /// `Retry-After` (Docker Hub), or one received earlier in the pass. Waiting seconds
    /// does not help; the quota's window refills in hours.
    #[error("{what}: pull quota exhausted (429 TOOMANYREQUESTS)")]
    QuotaExhausted { what: String },
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
    /// The TLS handshake failed (an unknown CA, a wrong name, an expired certificate):
    /// a setting to fix, not a fault to retry.
    #[error("{what}: TLS: {reason}")]
    Tls { what: String, reason: String },
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

    /// Whether the same request may succeed if sent again later: the one place that
    /// sorts failures into "wait and retry / try another mirror" and "give up now".
    ///
    /// Transient: transport failures (connect, timeout, body cut short), every 5xx, 429,
    /// and I/O errors of kinds that describe an interrupted exchange (timed out, reset,
    /// aborted, broken pipe, unexpected end, interrupted). Other I/O errors (permission,
    /// disk full, missing file) need someone to act, so they are not.
    ///
    /// Never transient: 404, 403, 401 (the registry client has already answered one
    /// challenge, so a 401 that remains means wrong credentials), other 4xx, and
    /// malformed content. Nor is a used-up pull quota (429 `TOOMANYREQUESTS` without
    /// `Retry-After`) or a request held back for the quota's reserve: the quota refills
    /// in hours, so repeating the request only spends what is left. Digest and size mismatches are not transient here either:
    /// a mismatch shows up inside a blob stream, so only the copier, which can repeat a
    /// whole transfer, may give it one more try (see [`StoreError::is_mismatch`]).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Transport { .. } | StoreError::Server { .. } | StoreError::RateLimited { .. } => true,
            StoreError::Io { source, .. } => is_interrupted_exchange(source.kind()),
            StoreError::NotFound { .. }
            | StoreError::Unauthorized { .. }
            | StoreError::Denied { .. }
            | StoreError::Rejected { .. }
            | StoreError::DigestMismatch { .. }
            | StoreError::SizeMismatch { .. }
            | StoreError::Invalid { .. }
            | StoreError::Tls { .. }
            | StoreError::QuotaReserve { .. }
            | StoreError::QuotaExhausted { .. } => false,
        }
    }

    /// Content arrived, but not the content its descriptor names. Worth one more whole
    /// transfer (a proxy or mirror may have served a damaged copy), not a backoff loop.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. }
        )
    }

    /// How long the registry asked us to wait (`Retry-After` on a 429), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StoreError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn is_interrupted_exchange(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind;
    matches!(
        kind,
        ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn what() -> String {
        "registry r manifest a:b".to_owned()
    }

    fn digest(hex_char: char) -> Digest {
        format!("sha256:{}", hex_char.to_string().repeat(64)).parse().unwrap()
    }

    fn io_error(kind: io::ErrorKind) -> StoreError {
        StoreError::Io {
            what: what(),
            source: io::Error::from(kind),
        }
    }

    #[test]
    fn transient_errors_are_the_ones_worth_repeating() {
        let cases: Vec<(StoreError, bool)> = vec![
            (
                StoreError::Transport {
                    what: what(),
                    source: Box::new(io::Error::other("reset")),
                },
                true,
            ),
            (
                StoreError::Server {
                    what: what(),
                    status: 500,
                },
                true,
            ),
            (
                StoreError::Server {
                    what: what(),
                    status: 502,
                },
                true,
            ),
            (
                StoreError::Server {
                    what: what(),
                    status: 503,
                },
                true,
            ),
            (
                StoreError::Server {
                    what: what(),
                    status: 504,
                },
                true,
            ),
            (
                StoreError::Server {
                    what: what(),
                    status: 599,
                },
                true,
            ),
            (
                StoreError::RateLimited {
                    what: what(),
                    retry_after: None,
                },
                true,
            ),
            (io_error(io::ErrorKind::TimedOut), true),
            (io_error(io::ErrorKind::ConnectionReset), true),
            (io_error(io::ErrorKind::UnexpectedEof), true),
            (io_error(io::ErrorKind::PermissionDenied), false),
            (io_error(io::ErrorKind::NotFound), false),
            (StoreError::NotFound { what: what() }, false),
            (StoreError::Unauthorized { what: what() }, false),
            (StoreError::Denied { what: what() }, false),
            (
                StoreError::Rejected {
                    what: what(),
                    status: 400,
                    detail: String::new(),
                },
                false,
            ),
            (
                StoreError::Rejected {
                    what: what(),
                    status: 405,
                    detail: String::new(),
                },
                false,
            ),
            (
                StoreError::Invalid {
                    what: what(),
                    reason: "not JSON".to_owned(),
                },
                false,
            ),
            (StoreError::QuotaExhausted { what: what() }, false),
            (
                StoreError::QuotaReserve {
                    what: what(),
                    remaining: 3,
                    reserve: 5,
                },
                false,
            ),
            (
                StoreError::DigestMismatch {
                    what: what(),
                    expected: digest('a'),
                    actual: digest('b'),
                },
                false,
            ),
            (
                StoreError::SizeMismatch {
                    what: what(),
                    expected: 1,
                    actual: 2,
                },
                false,
            ),
        ];
        for (error, transient) in cases {
            assert_eq!(error.is_transient(), transient, "{error}");
        }
    }

    #[test]
    fn only_mismatches_are_mismatches() {
        assert!(StoreError::DigestMismatch {
            what: what(),
            expected: digest('a'),
            actual: digest('b')
        }
        .is_mismatch());
        assert!(StoreError::SizeMismatch {
            what: what(),
            expected: 1,
            actual: 2
        }
        .is_mismatch());
        assert!(!StoreError::Server {
            what: what(),
            status: 500
        }
        .is_mismatch());
    }

    #[test]
    fn retry_after_comes_from_rate_limits_only() {
        let seven = Some(Duration::from_secs(7));
        assert_eq!(
            StoreError::RateLimited {
                what: what(),
                retry_after: seven
            }
            .retry_after(),
            seven
        );
        assert_eq!(
            StoreError::RateLimited {
                what: what(),
                retry_after: None
            }
            .retry_after(),
            None
        );
        assert_eq!(
            StoreError::Server {
                what: what(),
                status: 503
            }
            .retry_after(),
            None
        );
    }
}
