//! What one pass has learnt of the destination, shared by all of its copies.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ocisync_oci::{Digest, Reference, RepoName, Tag};

use super::options::CopyOptions;
use super::queue::TransferQueue;

/// What is known to exist at the destination during one pass, so that shared
/// layers and child manifests are checked once, not once per tag.
pub(crate) struct PassMemory {
    present: Mutex<HashSet<(RepoName, Digest)>>,
    /// A destination repository known to hold each blob, to mount it from.
    holders: Mutex<HashMap<Digest, RepoName>>,
    /// One lock per digest. A blob two repositories need at the same moment is
    /// transferred once (the second waits, then mounts it), and the same manifest is
    /// never pushed twice at once: distribution 2.8 rewrites a link file in place, and
    /// a concurrent reader of it sees the content as unknown or its digest as invalid.
    in_flight: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    /// The destination's repositories when the pass started, if it could list them.
    destination_repositories: Option<HashSet<RepoName>>,
    /// Blob streams waiting for their turn, pass-wide.
    pub(super) transfers: TransferQueue,
    /// Repositories the catalog did not list, with the tags their own tag list showed
    /// when their sync started (none: the repository does not exist), while it runs. A
    /// catalog may leave repositories out (some registries show only part of it), so
    /// absence is confirmed before any `HEAD` is skipped. A tag not listed is absent: no
    /// `HEAD` on either side is needed to know it must be copied, so a cold pass reads
    /// upstream straight away.
    unlisted: Mutex<HashMap<RepoName, HashSet<Tag>>>,
}

impl PassMemory {
    /// Memory for a pass whose destination had `destination_repositories` at its start
    /// (`None`: not known).
    pub(super) fn new(destination_repositories: Option<HashSet<RepoName>>, options: &CopyOptions) -> Self {
        PassMemory {
            present: Mutex::default(),
            holders: Mutex::default(),
            in_flight: Mutex::default(),
            transfers: TransferQueue::new(options.concurrency.transfers),
            destination_repositories,
            unlisted: Mutex::default(),
        }
    }

    pub(super) fn knows(&self, repo: &RepoName, digest: &Digest) -> bool {
        self.present.lock().unwrap().contains(&(repo.clone(), digest.clone()))
    }

    pub(super) fn remember(&self, repo: &RepoName, digest: &Digest) {
        self.present.lock().unwrap().insert((repo.clone(), digest.clone()));
    }

    pub(super) fn remember_blob(&self, repo: &RepoName, digest: &Digest) {
        self.remember(repo, digest);
        self.holders
            .lock()
            .unwrap()
            .entry(digest.clone())
            .or_insert_with(|| repo.clone());
    }

    /// Waits until no other task works on `digest`; the guard keeps others waiting.
    pub(super) async fn turn(&self, digest: &Digest) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(self.in_flight.lock().unwrap().entry(digest.clone()).or_default());
        lock.lock_owned().await
    }

    pub(super) fn holder_of(&self, digest: &Digest) -> Option<RepoName> {
        self.holders.lock().unwrap().get(digest).cloned()
    }

    /// True when the destination catalog, read at the start of the pass, lacks `repo`.
    pub(crate) fn is_unlisted(&self, repo: &RepoName) -> bool {
        self.destination_repositories
            .as_ref()
            .is_some_and(|repositories| !repositories.contains(repo))
    }

    /// Records what an unlisted repository's own tag list showed (empty: it does not exist).
    pub(crate) fn confirm_unlisted(&self, repo: &RepoName, tags: impl IntoIterator<Item = Tag>) {
        self.unlisted
            .lock()
            .unwrap()
            .insert(repo.clone(), tags.into_iter().collect());
    }

    /// Forgets an unlisted repository's tags once its sync is over.
    pub(crate) fn forget_unlisted(&self, repo: &RepoName) {
        self.unlisted.lock().unwrap().remove(repo);
    }

    /// True when `reference` is a tag that a confirmed unlisted repository lacked when
    /// its sync started. Unknown (listed, unconfirmed, or a digest) is not absent.
    pub(super) fn lacks_destination_tag(&self, repo: &RepoName, reference: &Reference) -> bool {
        let Reference::Tag(tag) = reference else {
            return false;
        };
        self.unlisted
            .lock()
            .unwrap()
            .get(repo)
            .is_some_and(|tags| !tags.contains(tag))
    }

    /// True when the destination repository did not exist when its sync started:
    /// whatever it holds now, this pass put there (and remembers).
    pub(super) fn is_new_destination_repo(&self, repo: &RepoName) -> bool {
        self.unlisted.lock().unwrap().get(repo).is_some_and(HashSet::is_empty)
    }
}
