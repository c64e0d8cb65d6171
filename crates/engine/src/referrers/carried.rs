//! What carrying an image's referrers did, and why it could not finish.

use ocisync_oci::Reference;

use crate::error::CopyError;
use crate::outcome::{FailureKind, Outcome, SkipReason};
use crate::report::TagReport;
use crate::work::Work;

/// Work done carrying the referrers of one subject, added to its report line.
#[derive(Debug, Default)]
pub(crate) struct Carried {
    /// Referrer manifests (cosign tags included) written to the destination.
    pub referrers_copied: usize,
    pub work: Work,
}

impl Carried {
    /// Adds one referrer's copy; its failure becomes the error of the whole journey.
    pub(super) fn add(&mut self, what: &Reference, copy: &TagReport) -> Result<(), TravelError> {
        self.work += copy.work;
        match &copy.outcome {
            Outcome::Copied => self.referrers_copied += 1,
            Outcome::Failed { error, .. } => {
                return Err(TravelError::Referrer {
                    reference: what.to_string(),
                    error: error.clone(),
                })
            }
            // The quota that stopped this referrer stops the rest of the journey too.
            Outcome::Skipped { reason } if reason.is_quota() => {
                return Err(TravelError::Quota {
                    reference: what.to_string(),
                    reason: *reason,
                    detail: copy.detail.clone().unwrap_or_default(),
                })
            }
            Outcome::WouldCopy | Outcome::Skipped { .. } => {}
        }
        Ok(())
    }

    /// Puts the work on `report` (bytes and counts add up in the totals).
    pub(super) fn apply_to(&self, report: &mut TagReport) {
        report.work += self.work;
        if self.referrers_copied > 0 {
            let note = format!("{} referrers copied", self.referrers_copied);
            report.detail = Some(match report.detail.take() {
                Some(detail) => format!("{detail}; {note}"),
                None => note,
            });
        }
    }
}

/// Why the referrers of an image could not all be copied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TravelError {
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error("referrer {reference}: {error}")]
    Referrer { reference: String, error: String },
    /// A registry's pull quota stopped a referrer's copy: a later pass carries it.
    #[error("referrer {reference}: {detail}")]
    Quota {
        reference: String,
        reason: SkipReason,
        detail: String,
    },
}

impl TravelError {
    /// The skip reason when a pull quota, not a fault, stopped the journey.
    pub(crate) fn quota_skip(&self) -> Option<SkipReason> {
        match self {
            TravelError::Copy(error) => error.quota_skip(),
            TravelError::Quota { reason, .. } => Some(*reason),
            TravelError::Referrer { .. } => None,
        }
    }

    /// The failed outcome this error gives the image whose referrers these are.
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome::Failed {
            kind: FailureKind::Referrers,
            error: format!("referrers: {self}"),
        }
    }
}
