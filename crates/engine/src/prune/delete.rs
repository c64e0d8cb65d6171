//! Deleting the tags a prune takes: by tag where the store can, else by digest when no
//! staying tag names the manifest, else blocked.

use std::collections::{HashMap, HashSet};

use ocisync_oci::{Deletion, Digest, RepoName, Store, Tag};
use tracing::{info, warn};

use super::report::{PruneOutcome, PruneReport, PrunedTag};

/// One repository's deletions, in order, with what they taught about the store.
pub(super) struct Deleter<'a, D> {
    destination: &'a D,
    repo: &'a RepoName,
    dry_run: bool,
    /// Each manifest a staying tag names, with one such tag (for the report). A tag
    /// whose delete failed stays, and joins.
    staying: HashMap<Digest, Tag>,
    /// Why the store does not delete a tag alone, once it said so: later tags go
    /// straight to a delete by digest.
    tags_unsupported: Option<String>,
    /// Manifests deleted by digest: every tag naming one went with it.
    deleted_manifests: HashSet<Digest>,
    /// Manifests whose tag this prune deleted (or, in `check`, would).
    gone: HashSet<Digest>,
    report: PruneReport,
}

impl<'a, D: Store> Deleter<'a, D> {
    pub fn new(destination: &'a D, repo: &'a RepoName, dry_run: bool, staying: HashMap<Digest, Tag>) -> Self {
        Deleter {
            destination,
            repo,
            dry_run,
            staying,
            tags_unsupported: None,
            deleted_manifests: HashSet::new(),
            gone: HashSet::new(),
            report: PruneReport::default(),
        }
    }

    /// Deletes `tag` (naming `digest`); `subject`: the image an attachment follows.
    /// `false` when the store refuses deletes altogether: the prune stops there.
    pub async fn prune(&mut self, tag: &Tag, digest: &Digest, subject: Option<&Digest>) -> bool {
        if self.dry_run {
            let note = self.staying.get(digest).map(|other| {
                format!(
                    "a registry that deletes by digest only (distribution 2.x) blocks this: tag {other} stays and names the same manifest"
                )
            });
            self.done(tag, digest, subject, PruneOutcome::WouldPrune { note });
            return true;
        }
        if self.deleted_manifests.contains(digest) {
            // Went with its manifest, deleted by digest for another tag.
            self.done(tag, digest, subject, PruneOutcome::Pruned);
            return true;
        }
        if self.tags_unsupported.is_none() {
            match self.destination.delete_tag(self.repo, tag).await {
                Ok(Deletion::Deleted | Deletion::Absent) => {
                    self.done(tag, digest, subject, PruneOutcome::Pruned);
                    return true;
                }
                Ok(Deletion::Unsupported { reason }) => self.tags_unsupported = Some(reason),
                Err(error) => {
                    self.stays(tag, digest, subject, error.to_string());
                    return true;
                }
            }
        }
        let reason = self.tags_unsupported.clone().unwrap_or_default();
        if let Some(other) = self.staying.get(digest) {
            let reason = format!("{reason}, and tag {other}, which stays, names the same manifest");
            self.record(tag, digest, subject, PruneOutcome::PruneBlocked { reason });
            return true;
        }
        match self.destination.delete_manifest(self.repo, digest).await {
            Ok(Deletion::Deleted | Deletion::Absent) => {
                self.deleted_manifests.insert(digest.clone());
                self.done(tag, digest, subject, PruneOutcome::Pruned);
                true
            }
            Ok(Deletion::Unsupported { reason }) => {
                self.stays(tag, digest, subject, reason.clone());
                self.report.error = Some(format!("cannot delete: {reason}"));
                false
            }
            Err(error) => {
                self.stays(tag, digest, subject, error.to_string());
                true
            }
        }
    }

    /// The manifests whose tags went, and those a staying tag names.
    pub fn gone_and_staying(&self) -> (HashSet<Digest>, HashMap<Digest, Tag>) {
        (self.gone.clone(), self.staying.clone())
    }

    pub fn finish(self) -> PruneReport {
        self.report
    }

    fn done(&mut self, tag: &Tag, digest: &Digest, subject: Option<&Digest>, outcome: PruneOutcome) {
        if outcome == PruneOutcome::Pruned {
            info!(repo = %self.repo, tag = %tag, digest = %digest, "pruned");
        }
        self.gone.insert(digest.clone());
        self.record(tag, digest, subject, outcome);
    }

    /// A delete that failed: the tag stays, and so does what it names.
    fn stays(&mut self, tag: &Tag, digest: &Digest, subject: Option<&Digest>, error: String) {
        warn!(repo = %self.repo, tag = %tag, error = %error, "cannot prune");
        self.staying.entry(digest.clone()).or_insert_with(|| tag.clone());
        self.record(tag, digest, subject, PruneOutcome::Failed { error });
    }

    fn record(&mut self, tag: &Tag, digest: &Digest, subject: Option<&Digest>, outcome: PruneOutcome) {
        self.report.tags.push(PrunedTag {
            tag: tag.clone(),
            digest: digest.clone(),
            subject: subject.cloned(),
            outcome,
        });
    }
}
