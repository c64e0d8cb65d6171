//! A cap on the requests one registry has in flight.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most this many HTTP requests to one registry at a time, response bodies included
/// (a blob download holds its place until its stream ends). Clones share the cap, so the
/// stores of all a registry's URLs can count against one.
///
/// An eighth of the places is kept for blob streams: the other requests (manifests, tag
/// lists, referrers) together hold at most the rest. At a distance a pass asks for
/// hundreds of manifests at once; a stream queued behind all of them would leave the
/// link idle meanwhile. Streams are few anyway (the engine's `transfers`).
#[derive(Debug, Clone)]
pub struct RequestLimit {
    permits: Arc<Semaphore>,
    /// The places requests other than streams may take, at most.
    others: Arc<Semaphore>,
    max: usize,
}

/// A request's place under the limit, given back when dropped.
pub(crate) struct Place {
    _other: OwnedSemaphorePermit,
    _place: OwnedSemaphorePermit,
}

impl RequestLimit {
    /// A cap of `max` requests (at least 1, at most what a semaphore holds: beyond
    /// that, `Semaphore::new` panics).
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        RequestLimit {
            permits: Arc::new(Semaphore::new(max)),
            others: Arc::new(Semaphore::new(max - max / 8)),
            max,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Waits for a place for a request that is not a blob stream; it holds the place
    /// until the `Place` is dropped.
    pub(crate) async fn enter(&self) -> Place {
        let other = acquire(&self.others).await;
        Place {
            _other: other,
            _place: acquire(&self.permits).await,
        }
    }

    /// Waits for a place for a blob stream (a download or an upload), which may take
    /// the places kept for streams; it holds it until the permit is dropped.
    pub(crate) async fn enter_stream(&self) -> OwnedSemaphorePermit {
        acquire(&self.permits).await
    }
}

async fn acquire(semaphore: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    Arc::clone(semaphore)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_are_shared_by_clones_and_come_back_when_dropped() {
        let limit = RequestLimit::new(2);
        let other_url = limit.clone();
        let first = limit.enter().await;
        let _second = other_url.enter().await;
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), limit.enter())
                .await
                .is_err(),
            "a third request waits"
        );
        drop(first);
        let _third = limit.enter().await;
        assert_eq!(RequestLimit::new(0).max(), 1);
    }

    #[tokio::test]
    async fn streams_get_the_places_kept_for_them_while_other_requests_wait() {
        let limit = RequestLimit::new(16);
        let mut held = Vec::new();
        for _ in 0..14 {
            held.push(limit.enter().await);
        }
        let wait = std::time::Duration::from_millis(20);
        assert!(
            tokio::time::timeout(wait, limit.enter()).await.is_err(),
            "other requests hold 14 of 16 places at most"
        );
        let first = tokio::time::timeout(wait, limit.enter_stream()).await;
        let second = tokio::time::timeout(wait, limit.enter_stream()).await;
        assert!(first.is_ok() && second.is_ok(), "two places are kept for streams");
        assert!(
            tokio::time::timeout(wait, limit.enter_stream()).await.is_err(),
            "and the cap still holds"
        );
        drop(held.pop());
        assert!(tokio::time::timeout(wait, limit.enter()).await.is_ok());
    }

    #[test]
    fn a_huge_request_limit_is_clamped_not_a_panic() {
        assert_eq!(RequestLimit::new(usize::MAX).max(), Semaphore::MAX_PERMITS);
    }
}
