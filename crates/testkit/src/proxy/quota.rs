//! A pull quota the proxy can keep, as Docker Hub does: manifest `GET`s count, every
//! manifest response announces what is left, and `GET`s past the limit get a 429.

use hyper::header::HeaderValue;
use hyper::Response;

/// The quota (see [`CountingProxy::set_pull_quota`](super::CountingProxy::set_pull_quota)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullQuota {
    /// Manifest `GET`s allowed until [`refill_pull_quota`](super::CountingProxy::refill_pull_quota).
    pub limit: u64,
    /// The window announced with `w=` (seconds); nothing refills by itself.
    pub window_seconds: u64,
}

/// A quota and what has been used of it.
#[derive(Debug)]
pub(super) struct QuotaCounter {
    pub quota: PullQuota,
    pub used: u64,
}

/// What the quota says about one manifest request.
#[derive(Debug, Clone, Copy)]
pub(super) struct QuotaAnswer {
    pub quota: PullQuota,
    /// Left after this request.
    pub remaining: u64,
    /// A `GET` past the limit: answered 429, not forwarded.
    pub exhausted: bool,
}

impl QuotaCounter {
    /// Counts a manifest `GET` (`HEAD`s are free, as on Docker Hub).
    pub(super) fn answer(&mut self, is_get: bool) -> QuotaAnswer {
        let exhausted = is_get && self.used >= self.quota.limit;
        if is_get && !exhausted {
            self.used += 1;
        }
        QuotaAnswer {
            quota: self.quota,
            remaining: self.quota.limit.saturating_sub(self.used),
            exhausted,
        }
    }
}

impl QuotaAnswer {
    /// Adds `ratelimit-limit` and `ratelimit-remaining` in Docker Hub's form (`N;w=SECONDS`).
    pub(super) fn announce<B>(&self, mut response: Response<B>) -> Response<B> {
        let window = self.quota.window_seconds;
        let headers = response.headers_mut();
        for (name, count) in [
            ("ratelimit-limit", self.quota.limit),
            ("ratelimit-remaining", self.remaining),
        ] {
            if let Ok(value) = HeaderValue::from_str(&format!("{count};w={window}")) {
                headers.insert(name, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gets_count_heads_do_not_and_gets_past_the_limit_are_refused() {
        let mut counter = QuotaCounter {
            quota: PullQuota {
                limit: 2,
                window_seconds: 60,
            },
            used: 0,
        };
        let remaining_and_refused = |answer: QuotaAnswer| (answer.remaining, answer.exhausted);
        assert_eq!(remaining_and_refused(counter.answer(false)), (2, false));
        assert_eq!(remaining_and_refused(counter.answer(true)), (1, false));
        assert_eq!(remaining_and_refused(counter.answer(true)), (0, false));
        assert_eq!(remaining_and_refused(counter.answer(true)), (0, true));
        assert_eq!(remaining_and_refused(counter.answer(false)), (0, false));
        assert_eq!(counter.used, 2);
    }
}
