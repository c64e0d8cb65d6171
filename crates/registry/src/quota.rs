//! The pull-quota gate of one registry URL: which manifest `GET`s may still be sent.
//!
//! Docker Hub counts every manifest `GET` against a pull quota (`HEAD`s are free) and
//! announces what is left on its manifest responses ([`RateLimit`]). The gate keeps the
//! last announcement of the pass and the `GET`s in flight since, and decides:
//!
//! - used up (a 429 `TOOMANYREQUESTS` came back): no `GET` for the rest of the pass;
//! - with a reserve `N`: a `GET` is sent only while `remaining − in flight > N`, so the
//!   reserve holds however many tags run at once. While the remaining is unknown (the
//!   start of a pass), one caller finds out (a `HEAD`, which costs no pull, then its
//!   `GET` alone if the `HEAD` did not tell) and the others wait for the answer;
//! - without a reserve: every `GET` goes, until the quota is used up.
//!
//! Announcements only lower the remaining within a pass (responses overtake each
//! other, and a stale one must not raise it); [`PullQuota::reset`] starts the next pass
//! afresh, when the window may have refilled.

use std::sync::{Mutex, MutexGuard, PoisonError};

use reqwest::header::HeaderMap;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::ratelimit::RateLimit;

/// What a pass has seen of a registry URL's pull quota (see [`crate::RegistryStore::pull_quota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaStatus {
    /// The lowest remaining count announced during the pass, with its limit and window.
    pub last: Option<RateLimit>,
    /// A 429 `TOOMANYREQUESTS` ended manifest `GET`s for the rest of the pass.
    pub exhausted: bool,
    /// Pulls the config keeps in reserve (`rate_limit.reserve`).
    pub reserve: Option<u64>,
}

/// The quota gate; see the module documentation.
#[derive(Debug)]
pub(crate) struct PullQuota {
    reserve: Option<u64>,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    last: Option<RateLimit>,
    /// A successful manifest response carried no quota headers: there is none to keep.
    unlimited: bool,
    exhausted: bool,
    /// Admitted `GET`s (and a probing `HEAD`) whose response has not been seen yet.
    in_flight: u64,
}

/// Why a manifest `GET` may not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Reserve { remaining: u64, reserve: u64 },
    Exhausted,
}

/// What [`PullQuota::decide`] allows a caller.
pub(crate) enum Decision<'a> {
    /// Send the `GET`; the permit counts it as in flight until dropped.
    Send(QuotaPermit<'a>),
    /// The remaining is unknown and nobody is finding out: this caller finds out, with a
    /// `HEAD` first. The permit stands for that probe (and for the `GET` if the `HEAD`
    /// did not tell); [`PullQuota::decide`] again once it has been observed.
    Probe(QuotaPermit<'a>),
    /// Another caller is finding out the remaining: wait, then decide again.
    Wait(Notified<'a>),
    Refuse(Refusal),
}

/// A request counted as in flight; dropping it (after its response was observed, or
/// when it failed) frees its place.
pub(crate) struct QuotaPermit<'a> {
    quota: &'a PullQuota,
}

impl Drop for QuotaPermit<'_> {
    fn drop(&mut self) {
        let mut state = self.quota.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        drop(state);
        self.quota.changed.notify_waiters();
    }
}

impl PullQuota {
    pub(crate) fn new(reserve: Option<u64>) -> Self {
        PullQuota {
            reserve,
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// May a manifest `GET` be sent now?
    pub(crate) fn decide(&self) -> Decision<'_> {
        // Created before the state is read: a change after the read still wakes it.
        let notified = self.changed.notified();
        let mut state = self.state();
        if state.exhausted {
            return Decision::Refuse(Refusal::Exhausted);
        }
        let Some(reserve) = self.reserve else {
            return Decision::Send(self.admit(&mut state));
        };
        if state.unlimited {
            return Decision::Send(self.admit(&mut state));
        }
        match state.last {
            Some(last) if last.remaining.saturating_sub(state.in_flight) <= reserve => {
                Decision::Refuse(Refusal::Reserve {
                    remaining: last.remaining,
                    reserve,
                })
            }
            Some(_) => Decision::Send(self.admit(&mut state)),
            None if state.in_flight == 0 => Decision::Probe(self.admit(&mut state)),
            None => Decision::Wait(notified),
        }
    }

    fn admit(&self, state: &mut State) -> QuotaPermit<'_> {
        state.in_flight += 1;
        QuotaPermit { quota: self }
    }

    /// Whether a response has told the remaining (or that there is no quota) this pass.
    pub(crate) fn is_known(&self) -> bool {
        let state = self.state();
        state.last.is_some() || state.unlimited
    }

    /// Takes in what a manifest response (`GET` or `HEAD`) announced. `success`: a 2xx,
    /// whose lack of quota headers means the registry keeps no quota for this client.
    pub(crate) fn observe(&self, headers: &HeaderMap, success: bool) {
        let announced = RateLimit::from_headers(headers);
        let mut state = self.state();
        match announced {
            Some(announced) => {
                state.unlimited = false;
                state.last = Some(match state.last {
                    Some(last) if last.remaining < announced.remaining => RateLimit {
                        remaining: last.remaining,
                        ..announced
                    },
                    _ => announced,
                });
            }
            None if success && state.last.is_none() => state.unlimited = true,
            None => return,
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// A 429 `TOOMANYREQUESTS` arrived: no more `GET`s this pass.
    pub(crate) fn mark_exhausted(&self) {
        self.state().exhausted = true;
        self.changed.notify_waiters();
    }

    /// Forgets what this pass learned; the next pass finds out afresh.
    pub(crate) fn reset(&self) {
        let mut state = self.state();
        state.last = None;
        state.unlimited = false;
        state.exhausted = false;
        drop(state);
        self.changed.notify_waiters();
    }

    pub(crate) fn status(&self) -> QuotaStatus {
        let state = self.state();
        QuotaStatus {
            last: state.last,
            exhausted: state.exhausted,
            reserve: self.reserve,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::HeaderValue;

    use super::*;

    fn announcing(remaining: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
        headers.insert(
            "ratelimit-remaining",
            HeaderValue::from_str(&format!("{remaining};w=21600")).unwrap(),
        );
        headers
    }

    fn sent(decision: Decision<'_>) -> QuotaPermit<'_> {
        match decision {
            Decision::Send(permit) => permit,
            other => panic!("expected Send, got {}", name(&other)),
        }
    }

    fn name(decision: &Decision<'_>) -> String {
        match decision {
            Decision::Send(_) => "Send".into(),
            Decision::Probe(_) => "Probe".into(),
            Decision::Wait(_) => "Wait".into(),
            Decision::Refuse(refusal) => format!("Refuse({refusal:?})"),
        }
    }

    #[test]
    fn the_reserve_counts_the_gets_in_flight() {
        // Each row: remaining announced, GETs already in flight, reserve → sent?
        let cases: &[(u64, u64, u64, bool)] = &[
            (10, 0, 5, true),
            (10, 4, 5, true),
            (10, 5, 5, false),
            (10, 9, 5, false),
            (6, 0, 5, true),
            (5, 0, 5, false),
            (1, 0, 0, true),
            (1, 1, 0, false),
            (0, 0, 0, false),
            (3, 0, 5, false),
        ];
        for &(remaining, in_flight, reserve, expected) in cases {
            let quota = PullQuota::new(Some(reserve));
            quota.observe(&announcing(remaining), true);
            let held: Vec<QuotaPermit<'_>> = (0..in_flight).map(|_| quota.admit(&mut quota.state())).collect();
            let decision = quota.decide();
            let was_sent = matches!(decision, Decision::Send(_));
            assert_eq!(
                was_sent,
                expected,
                "remaining {remaining}, in flight {in_flight}, reserve {reserve}: {}",
                name(&decision)
            );
            if !expected {
                assert!(matches!(
                    decision,
                    Decision::Refuse(Refusal::Reserve { remaining: r, reserve: n }) if r == remaining && n == reserve
                ));
            }
            drop(held);
        }
    }

    #[test]
    fn as_many_gets_as_the_quota_above_the_reserve_however_many_ask_at_once() {
        let quota = PullQuota::new(Some(5));
        quota.observe(&announcing(12), true);
        let mut permits = Vec::new();
        while let Decision::Send(permit) = quota.decide() {
            permits.push(permit);
        }
        assert_eq!(permits.len(), 7, "12 left, 5 kept");
        // Their answers arrive in any order; a stale higher count does not raise it.
        quota.observe(&announcing(6), true);
        quota.observe(&announcing(11), true);
        drop(permits.drain(..2));
        assert!(matches!(quota.decide(), Decision::Refuse(_)), "6 − 5 in flight ≤ 5");
        quota.observe(&announcing(5), true);
        drop(permits);
        assert!(matches!(
            quota.decide(),
            Decision::Refuse(Refusal::Reserve {
                remaining: 5,
                reserve: 5
            })
        ));
        assert_eq!(quota.status().last.map(|last| last.remaining), Some(5));
    }

    #[tokio::test]
    async fn while_the_remaining_is_unknown_one_caller_finds_out_and_the_others_wait() {
        let quota = PullQuota::new(Some(2));
        let Decision::Probe(probe) = quota.decide() else {
            panic!("the first caller probes")
        };
        let Decision::Wait(waiting) = quota.decide() else {
            panic!("a second caller waits")
        };
        assert!(!quota.is_known());
        // The probe's HEAD tells: 4 left.
        quota.observe(&announcing(4), true);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the answer wakes the waiter");
        assert!(quota.is_known());
        drop(probe);
        let first = sent(quota.decide());
        let second = sent(quota.decide());
        assert!(matches!(quota.decide(), Decision::Refuse(_)), "4 − 2 in flight ≤ 2");
        drop((first, second));
    }

    #[tokio::test]
    async fn a_probe_that_learns_nothing_keeps_one_get_at_a_time() {
        let quota = PullQuota::new(Some(2));
        let Decision::Probe(probe) = quota.decide() else {
            panic!("the first caller probes")
        };
        // A 404 without headers says nothing about the quota: still unknown, so the
        // prober's GET is the only one in flight and the others keep waiting.
        quota.observe(&HeaderMap::new(), false);
        assert!(!quota.is_known());
        let Decision::Wait(waiting) = quota.decide() else {
            panic!("still one at a time")
        };
        drop(probe);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a freed place wakes the waiter");
        assert!(
            matches!(quota.decide(), Decision::Probe(_)),
            "the next caller finds out"
        );
    }

    #[test]
    fn a_registry_without_quota_headers_is_not_held_back() {
        let quota = PullQuota::new(Some(2));
        let probe = quota.decide();
        assert!(matches!(probe, Decision::Probe(_)));
        quota.observe(&HeaderMap::new(), true);
        let permits: Vec<_> = (0..20).map(|_| sent(quota.decide())).collect();
        drop((probe, permits));
        assert_eq!(quota.status().last, None);
    }

    #[test]
    fn without_a_reserve_gets_go_until_the_quota_is_used_up() {
        let quota = PullQuota::new(None);
        let permits: Vec<_> = (0..10).map(|_| sent(quota.decide())).collect();
        quota.observe(&announcing(0), true);
        assert!(
            matches!(quota.decide(), Decision::Send(_)),
            "no reserve: only a 429 stops it"
        );
        quota.mark_exhausted();
        assert!(matches!(quota.decide(), Decision::Refuse(Refusal::Exhausted)));
        drop(permits);
        let status = quota.status();
        assert!(status.exhausted);
        assert_eq!(status.reserve, None);
    }

    #[test]
    fn a_new_pass_starts_afresh() {
        let quota = PullQuota::new(Some(1));
        quota.observe(&announcing(1), true);
        quota.mark_exhausted();
        quota.reset();
        assert_eq!(
            quota.status(),
            QuotaStatus {
                last: None,
                exhausted: false,
                reserve: Some(1)
            }
        );
        assert!(matches!(quota.decide(), Decision::Probe(_)));
    }
}
