//! Referrers travel with their subject: signatures, SBOMs and attestations of every
//! image copied (or already up to date) are copied too, recursively.
//!
//! What is attached to a manifest digest ([`Attached`]):
//! - cosign's tags `sha256-<hex>.sig`, `.att` and `.sbom`, taken from the tag list the
//!   pass already read (no request);
//! - its OCI referrers: the referrers API, or, when the store has none, the referrers
//!   tag schema index `sha256-<hex>` (read only when the tag list has that tag).
//!
//! Referrer tags are never synced as images of their own: the tag loop leaves them out
//! and reports each as skipped `referrer-tag` (a filter), and the work of copying them is
//! counted in the report of the tag whose image they belong to. A referrer tag whose
//! subject no tag of this pass names (the signature of one platform of a multi-arch
//! image) is copied when its subject is present at the destination, and its work is
//! counted on that referrer tag's own report line.
//!
//! At the destination, referrers are pushed with their `subject`; a destination with
//! the referrers API indexes them itself, one without it gets the tag schema index
//! maintained (read, add the missing descriptors, push back; never rewritten when
//! already complete).

mod carried;
mod destination;
mod discover;
mod tag_loop;
mod travel;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use ocisync_oci::{
    cosign_tag, referrers_tag, CosignTagKind, Descriptor, Digest, Reference, ReferrerTag, RepoName, Store, Tag,
};

pub(crate) use tag_loop::{carry_referrers, check_signatures, report_referrer_tags, unfinished};

use crate::error::CopyError;

/// Deepest chain of referrers followed (a signature on an SBOM on an image is 2).
const MAX_DEPTH: usize = 4;

/// The referrer tags of one repository's tag list, by subject.
#[derive(Default)]
pub(crate) struct RepoAttachments {
    cosign: BTreeMap<Digest, Vec<(CosignTagKind, Tag)>>,
    /// Subjects whose referrers tag schema index is in the tag list.
    schema: HashSet<Digest>,
    /// Every referrer tag with its subject, in listing order, for the report.
    listed: Vec<(Tag, Digest)>,
    /// Subjects whose attachments were synced during this pass (tags of a repository
    /// run concurrently, hence the locks).
    traveled: Mutex<HashSet<Digest>>,
    /// Subjects the signature policy turned away: their referrer tags stay behind.
    held_back: Mutex<HashSet<Digest>>,
}

impl RepoAttachments {
    fn cosign_tags_of(&self, subject: &Digest) -> Vec<(CosignTagKind, Tag)> {
        self.cosign.get(subject).cloned().unwrap_or_default()
    }

    fn has_schema_tag(&self, subject: &Digest) -> bool {
        self.schema.contains(subject)
    }

    fn has_traveled(&self, subject: &Digest) -> bool {
        self.traveled.lock().unwrap().contains(subject)
    }

    /// Claims `subject` for travel; `false` when another task already did.
    fn claim_travel(&self, subject: &Digest) -> bool {
        self.traveled.lock().unwrap().insert(subject.clone())
    }

    fn hold_back(&self, subject: &Digest) {
        self.held_back.lock().unwrap().insert(subject.clone());
    }

    fn is_held_back(&self, subject: &Digest) -> bool {
        self.held_back.lock().unwrap().contains(subject)
    }
}

/// Splits a tag list into the tags synced as images and the referrer tags.
pub(crate) fn split_tags(tags: Vec<Tag>) -> (Vec<Tag>, RepoAttachments) {
    let mut images = Vec::new();
    let mut attachments = RepoAttachments::default();
    for tag in tags {
        match ReferrerTag::parse(&tag) {
            None => images.push(tag),
            Some(role) => {
                let subject = role.subject().clone();
                match role {
                    ReferrerTag::Cosign { kind, .. } => attachments
                        .cosign
                        .entry(subject.clone())
                        .or_default()
                        .push((kind, tag.clone())),
                    ReferrerTag::Schema { .. } => {
                        attachments.schema.insert(subject.clone());
                    }
                }
                attachments.listed.push((tag, subject));
            }
        }
    }
    (images, attachments)
}

/// The referrer tags of `subject` in `repo`, found by asking for each by name:
/// an `images` rule reads no tag list. One `HEAD` per cosign kind and one for the
/// referrers tag schema, all at once (manifest `HEAD`s do not count against Docker
/// Hub's pull quota).
pub(crate) async fn probe_attachments(
    source: &impl Store,
    repo: &RepoName,
    subject: &Digest,
) -> Result<RepoAttachments, CopyError> {
    let candidates: Vec<Tag> = CosignTagKind::ALL
        .iter()
        .filter_map(|kind| cosign_tag(subject, *kind))
        .chain(std::iter::once(referrers_tag(subject)))
        .collect();
    let references: Vec<Reference> = candidates.iter().cloned().map(Reference::Tag).collect();
    let answers =
        futures_util::future::join_all(references.iter().map(|reference| source.head_manifest(repo, reference))).await;
    let mut present = Vec::new();
    for (tag, answer) in candidates.into_iter().zip(answers) {
        if answer.map_err(CopyError::Source)?.is_some() {
            present.push(tag);
        }
    }
    let (_, mut attachments) = split_tags(present);
    // Nobody named these tags, so they get no report lines of their own.
    attachments.listed.clear();
    Ok(attachments)
}

/// What is attached to one manifest at the source.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attached {
    pub cosign: Vec<(CosignTagKind, Tag)>,
    pub referrers: Vec<Descriptor>,
}

impl Attached {
    pub fn cosign_tag(&self, kind: CosignTagKind) -> Option<&Tag> {
        self.cosign.iter().find(|(k, _)| *k == kind).map(|(_, tag)| tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_tags_leave_the_tag_loop() {
        let subject = Digest::sha256_of(b"image");
        let hex = subject.hex().to_owned();
        let tags: Vec<Tag> = [
            "latest".to_owned(),
            format!("sha256-{hex}.sig"),
            format!("sha256-{hex}.att"),
            format!("sha256-{hex}"),
            "sha256-not-a-digest.sig".to_owned(),
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        let (images, attachments) = split_tags(tags);
        let images: Vec<&str> = images.iter().map(Tag::as_str).collect();
        assert_eq!(images, ["latest", "sha256-not-a-digest.sig"]);
        let kinds: Vec<CosignTagKind> = attachments.cosign_tags_of(&subject).iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [CosignTagKind::Signature, CosignTagKind::Attestation]);
        assert!(attachments.has_schema_tag(&subject));
        assert_eq!(attachments.listed.len(), 3);
    }
}
