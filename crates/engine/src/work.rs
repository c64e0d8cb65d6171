//! The one counter of work done, from a single blob transfer up to a whole report.

use std::ops::AddAssign;

use serde::Serialize;

/// What copying wrote (or, in a dry run, would write). Flattened into the report's tag
/// lines and totals, so its field names are the report's.
///
/// Adding saturates: sizes come from manifests, which may claim anything, so
/// `u64::MAX` bytes means "at least this much".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Work {
    /// Blob bytes transferred (blobs already present or mounted cost nothing).
    pub bytes: u64,
    /// Blobs transferred.
    pub blobs_copied: usize,
    /// Blobs made present by a cross-repository mount instead of a transfer.
    pub blobs_mounted: usize,
    /// Manifests written (child manifests by digest, and the tagged one).
    pub manifests_pushed: usize,
}

impl Work {
    /// One blob transferred.
    pub(crate) fn blob(bytes: u64) -> Work {
        Work {
            bytes,
            blobs_copied: 1,
            ..Work::default()
        }
    }

    /// One blob mounted from another repository.
    pub(crate) fn mount() -> Work {
        Work {
            blobs_mounted: 1,
            ..Work::default()
        }
    }

    /// One manifest written.
    pub(crate) fn manifest() -> Work {
        Work {
            manifests_pushed: 1,
            ..Work::default()
        }
    }
}

impl AddAssign for Work {
    fn add_assign(&mut self, other: Work) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.blobs_copied = self.blobs_copied.saturating_add(other.blobs_copied);
        self.blobs_mounted = self.blobs_mounted.saturating_add(other.blobs_mounted);
        self.manifests_pushed = self.manifests_pushed.saturating_add(other.manifests_pushed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_saturates_instead_of_wrapping() {
        let mut work = Work::blob(1 << 63);
        work += Work::blob(1 << 63);
        work += Work::mount();
        work += Work::manifest();
        assert_eq!(
            work,
            Work {
                bytes: u64::MAX,
                blobs_copied: 2,
                blobs_mounted: 1,
                manifests_pushed: 1
            }
        );
        let mut full = Work {
            blobs_copied: usize::MAX,
            ..Work::default()
        };
        full += Work::blob(0);
        assert_eq!(full.blobs_copied, usize::MAX);
    }

    #[test]
    fn serializes_under_the_report_field_names() {
        let json = serde_json::to_value(Work::blob(5)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"bytes": 5, "blobs_copied": 1, "blobs_mounted": 0, "manifests_pushed": 0})
        );
    }
}
