//! [`PullQuota`]: a Docker-Hub-like pull rate limit that manifest `GET`s spend.

use std::sync::atomic::{AtomicU64, Ordering};

/// What is left of the pull quota. It never refills by itself (tests stay independent of
/// time): the window is only reported in the headers, and [`refill`](Self::refill)
/// restores the quota.
#[derive(Debug)]
pub(crate) struct PullQuota {
    /// `None`: unlimited.
    limit: Option<u64>,
    window_seconds: u64,
    remaining: AtomicU64,
}

impl PullQuota {
    pub(crate) fn new(limit: Option<u64>, window_seconds: u64) -> PullQuota {
        PullQuota {
            limit,
            window_seconds,
            remaining: AtomicU64::new(limit.unwrap_or(u64::MAX)),
        }
    }

    /// Takes one pull; `false` if none is left. Unlimited quotas always have one.
    pub(crate) fn take(&self) -> bool {
        if self.limit.is_none() {
            return true;
        }
        self.remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
            .is_ok()
    }

    /// Gives back a pull taken for a `GET` that was not served (a 401, a 404, ...), so
    /// only manifests actually sent count, and concurrent `GET`s never overspend.
    pub(crate) fn give_back(&self) {
        let Some(limit) = self.limit else { return };
        let _ = self.remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            (left < limit).then_some(left + 1)
        });
    }

    /// The quota back to its limit.
    pub(crate) fn refill(&self) {
        if let Some(limit) = self.limit {
            self.remaining.store(limit, Ordering::SeqCst);
        }
    }

    /// Pulls left; `None` when unlimited.
    pub(crate) fn remaining(&self) -> Option<u64> {
        self.limit.map(|_| self.remaining.load(Ordering::SeqCst))
    }

    /// The values of `ratelimit-limit` and `ratelimit-remaining` in Docker Hub's form
    /// (`100;w=21600`); `None` when unlimited: Docker Hub sends neither header to an
    /// account whose pulls are not limited.
    pub(crate) fn header_values(&self) -> Option<(String, String)> {
        let limit = self.limit?;
        let remaining = self.remaining.load(Ordering::SeqCst);
        let window = self.window_seconds;
        Some((format!("{limit};w={window}"), format!("{remaining};w={window}")))
    }
}

#[cfg(test)]
mod tests {
    use super::PullQuota;

    #[test]
    fn pulls_are_taken_given_back_and_refilled() {
        let quota = PullQuota::new(Some(2), 60);
        assert!(quota.take());
        assert!(quota.take());
        assert!(!quota.take());
        assert_eq!(quota.remaining(), Some(0));
        quota.give_back();
        assert_eq!(quota.header_values(), Some(("2;w=60".to_owned(), "1;w=60".to_owned())));
        quota.give_back();
        quota.give_back();
        assert_eq!(quota.remaining(), Some(2), "never above the limit");
        assert!(quota.take());
        quota.refill();
        assert_eq!(quota.remaining(), Some(2));
    }

    #[test]
    fn unlimited_quota_always_has_a_pull_and_no_headers() {
        let quota = PullQuota::new(None, 60);
        assert!((0..1000).all(|_| quota.take()));
        assert_eq!(quota.remaining(), None);
        assert_eq!(quota.header_values(), None);
    }
}
