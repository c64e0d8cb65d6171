//! The work events are waiting for: one entry per (sync, repository), bounded.
//!
//! A push makes one event per blob and manifest, a CI job pushes several tags at once,
//! and a registry retries what it could not deliver: the events for one repository
//! merge into one entry (the tags to sync, or the whole repository) until a worker
//! takes it. New repositories are refused once [`EventQueue::capacity`] wait, and
//! an entry holds at most [`MAX_TAGS_PER_REPOSITORY`] tags before it becomes "the whole
//! repository", so memory stays flat under a flood: the listener answers 503, which
//! the registry retries later.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use ocisync_oci::{RepoName, Tag};
use tokio::sync::Notify;

use super::matching::Wanted;

/// Repositories waiting, over all syncs, before new ones are refused.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Tags one entry lists before it asks for the whole repository instead.
pub const MAX_TAGS_PER_REPOSITORY: usize = 64;

/// What waits for one repository of one sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingWork {
    /// Every tag the rule keeps, not only those named.
    pub whole_repository: bool,
    /// The tags pushed, each with the time of its earliest event (the start of its lag).
    pub tags: BTreeMap<Tag, SystemTime>,
}

impl PendingWork {
    fn add(&mut self, wanted: Wanted, occurred_at: SystemTime) {
        match wanted {
            Wanted::Repository => self.whole_repository = true,
            Wanted::Tag(tag) => {
                if let Some(earliest) = self.tags.get_mut(&tag) {
                    *earliest = (*earliest).min(occurred_at);
                } else if self.tags.len() < MAX_TAGS_PER_REPOSITORY {
                    self.tags.insert(tag, occurred_at);
                } else {
                    self.whole_repository = true;
                }
            }
        }
    }
}

/// What became of an offered piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A new entry.
    Queued,
    /// Merged into the entry already waiting for the repository.
    Coalesced,
    /// The queue is full: nothing was recorded.
    Full,
}

pub struct EventQueue {
    capacity: usize,
    /// One map per sync, by repository.
    waiting: Mutex<Vec<BTreeMap<RepoName, PendingWork>>>,
    /// Wakes each sync's worker.
    wake: Vec<Notify>,
}

impl EventQueue {
    pub fn new(syncs: usize, capacity: usize) -> EventQueue {
        EventQueue {
            capacity,
            waiting: Mutex::new(vec![BTreeMap::new(); syncs]),
            wake: (0..syncs).map(|_| Notify::new()).collect(),
        }
    }

    /// Records work for `repository` of sync number `sync`.
    pub fn offer(&self, sync: usize, repository: &RepoName, wanted: Wanted, occurred_at: SystemTime) -> Offer {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let depth: usize = waiting.iter().map(BTreeMap::len).sum();
        let Some(entries) = waiting.get_mut(sync) else {
            return Offer::Full;
        };
        let offer = match entries.get_mut(repository) {
            Some(work) => {
                work.add(wanted, occurred_at);
                Offer::Coalesced
            }
            None if depth >= self.capacity => return Offer::Full,
            None => {
                let mut work = PendingWork::default();
                work.add(wanted, occurred_at);
                entries.insert(repository.clone(), work);
                Offer::Queued
            }
        };
        drop(waiting);
        // A permit is stored when the worker is busy: it looks again when done.
        self.wake[sync].notify_one();
        offer
    }

    /// Takes everything waiting for sync number `sync`.
    pub fn take(&self, sync: usize) -> BTreeMap<RepoName, PendingWork> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.get_mut(sync).map(std::mem::take).unwrap_or_default()
    }

    /// Resolves when work was offered to sync number `sync` since it last looked.
    pub async fn wait(&self, sync: usize) {
        match self.wake.get(sync) {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Repositories waiting, over all syncs.
    pub fn depth(&self) -> usize {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.iter().map(BTreeMap::len).sum()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn name(text: &str) -> RepoName {
        text.parse().unwrap()
    }

    fn tag(text: &str) -> Wanted {
        Wanted::Tag(text.parse().unwrap())
    }

    #[test]
    fn events_for_one_repository_coalesce_and_new_ones_wait_for_room() {
        let queue = EventQueue::new(2, 2);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let earlier = t0 - Duration::from_secs(5);
        assert_eq!(queue.offer(0, &name("a"), tag("v1"), t0), Offer::Queued);
        assert_eq!(queue.offer(0, &name("a"), tag("v1"), earlier), Offer::Coalesced);
        assert_eq!(queue.offer(0, &name("a"), tag("v2"), t0), Offer::Coalesced);
        assert_eq!(
            queue.offer(1, &name("a"), tag("v1"), t0),
            Offer::Queued,
            "another sync's entry"
        );
        assert_eq!(queue.depth(), 2);
        // Full for new repositories, whichever the sync; work already waiting still merges.
        assert_eq!(queue.offer(0, &name("b"), tag("v1"), t0), Offer::Full);
        assert_eq!(queue.offer(1, &name("a"), Wanted::Repository, t0), Offer::Coalesced);

        let taken = queue.take(0);
        let work = &taken[&name("a")];
        assert!(!work.whole_repository);
        assert_eq!(work.tags.len(), 2);
        assert_eq!(
            work.tags[&"v1".parse::<Tag>().unwrap()],
            earlier,
            "the earliest event starts the lag"
        );
        assert_eq!(queue.depth(), 1);
        assert_eq!(queue.offer(0, &name("b"), tag("v1"), t0), Offer::Queued, "room again");
        assert!(queue.take(1)[&name("a")].whole_repository);
    }

    #[test]
    fn too_many_tags_become_the_whole_repository() {
        let queue = EventQueue::new(1, 10);
        let now = SystemTime::now();
        for index in 0..=MAX_TAGS_PER_REPOSITORY {
            queue.offer(0, &name("a"), tag(&format!("t{index}")), now);
        }
        let work = &queue.take(0)[&name("a")];
        assert!(work.whole_repository);
        assert_eq!(work.tags.len(), MAX_TAGS_PER_REPOSITORY);
    }

    #[tokio::test]
    async fn an_offer_wakes_the_sync_even_when_made_before_it_waits() {
        let queue = EventQueue::new(1, 10);
        queue.offer(0, &name("a"), tag("v1"), SystemTime::now());
        tokio::time::timeout(Duration::from_secs(5), queue.wait(0))
            .await
            .expect("the stored permit wakes the worker");
    }
}
