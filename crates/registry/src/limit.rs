//! A cap on the requests one registry has in flight.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most this many HTTP requests to one registry at a time, response bodies included
/// (a blob download holds its place until its stream ends). Clones share the cap, so the
/// stores of all a registry's URLs can count against one.
#[derive(Debug, Clone)]
pub struct RequestLimit {
    permits: Arc<Semaphore>,
    max: usize,
}

impl RequestLimit {
    /// A cap of `max` requests (at least 1, at most what a semaphore holds: beyond
    /// that, `Semaphore::new` panics).
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        RequestLimit {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Waits for a place; the request holds it until the permit is dropped.
    pub(crate) async fn enter(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
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

    #[test]
    fn a_huge_request_limit_is_clamped_not_a_panic() {
        assert_eq!(RequestLimit::new(usize::MAX).max(), Semaphore::MAX_PERMITS);
    }
}
