//! Copying what is attached to a subject, and what is attached to that, recursively.

use ocisync_oci::{Digest, Reference, Store};

use super::carried::{Carried, TravelError};
use super::destination::place_referrers;
use super::discover::discover;
use super::{Attached, RepoAttachments, MAX_DEPTH};
use crate::copy::Pass;
use crate::plan::SyncTask;

/// Copies everything attached to `subject` (already at the destination), then what is
/// attached to each of those, down to [`MAX_DEPTH`] levels. `attached` is what the
/// signature check found attached to `subject`, if it looked; else it is discovered here.
pub(super) async fn travel<S: Store, D: Store>(
    pass: &Pass<'_, S, D>,
    task: &SyncTask,
    subject: &Digest,
    attached: Option<Attached>,
    attachments: &RepoAttachments,
    depth: usize,
    carried: &mut Carried,
) -> Result<(), TravelError> {
    let attached = match attached {
        Some(attached) => attached,
        None => discover(pass.source, &task.source, subject, attachments).await?,
    };
    if !attachments.claim_travel(subject) || depth >= MAX_DEPTH {
        return Ok(());
    }
    let mut next: Vec<Digest> = Vec::new();
    for (_, tag) in &attached.cosign {
        let reference = Reference::Tag(tag.clone());
        let copy = pass.copy_reference(task, &reference, &reference).await;
        carried.add(&reference, &copy)?;
        next.extend(copy.digest);
    }
    place_referrers(pass, task, subject, &attached.referrers, carried).await?;
    next.extend(attached.referrers.iter().map(|referrer| referrer.digest.clone()));
    for digest in next {
        if attachments.has_traveled(&digest) {
            continue;
        }
        Box::pin(travel(pass, task, &digest, None, attachments, depth + 1, carried)).await?;
    }
    Ok(())
}
