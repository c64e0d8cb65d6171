//! The pull-quota gate of one registry URL: which manifest `GET`s may still be sent.
//!
//! Docker Hub counts every manifest `GET` against a pull quota (`HEAD`s are free) and
//! announces what is left on its manifest responses ([`RateLimit`]). The gate decides:
//!
//! - used up (a 429 `TOOMANYREQUESTS` came back): no `GET` for the rest of the pass;
//! - with a reserve `N`: a `GET` is sent only while what is surely left after every
//!   `GET` under way exceeds `N`, so the reserve holds however many tags run at once.
//!   While nothing is known (the start of a pass), one caller finds out (a `HEAD`,
//!   which costs no pull, then its `GET` alone if the `HEAD` did not tell) and the
//!   others wait for the answer;
//! - without a reserve: every `GET` goes, until the quota is used up.
//!
//! What is surely left: an announcement `A` on the response to a request that went out
//! when `s` `GET`s had been sent and `f` of them were still unanswered may not count those
//! `f`, nor any `GET` sent later; so at least `A − f − (sent now − s)` are left now. The
//! gate keeps the best such bound of the pass (`credit − sent`). Responses overtake each
//! other, so a stale announcement lowers nothing, and `GET`s an announcement already
//! counted are not subtracted twice. Another client spending the same quota is not seen.
//! [`PullQuota::reset`] starts the next pass afresh, when the window may have refilled.

use std::sync::{Mutex, MutexGuard, PoisonError};

use reqwest::header::HeaderMap;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::ratelimit::RateLimit;

/// What a pass has seen of a registry URL's pull quota (see [`crate::RegistryStore::pull_quota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaStatus {
    /// The last announcement's limit and window, with `remaining` the pulls surely left
    /// once every `GET` sent has been counted.
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
    /// The latest announcement (for its limit and window).
    announced: Option<RateLimit>,
    /// The best bound of the pass: at least `credit − sent` pulls are left.
    credit: Option<i128>,
    /// A successful manifest response carried no quota headers: there is none to keep.
    unlimited: bool,
    exhausted: bool,
    /// A caller is finding out the remaining with a `HEAD`.
    probing: bool,
    /// Manifest `GET`s sent (admitted), over all passes.
    sent: u64,
    /// Admitted `GET`s whose response has not been seen yet.
    in_flight: u64,
}

impl State {
    /// Pulls surely left once every `GET` sent is counted; `None`: nothing known.
    fn surely_left(&self) -> Option<u64> {
        let left = self.credit? - i128::from(self.sent);
        Some(u64::try_from(left.max(0)).unwrap_or(u64::MAX))
    }

    fn is_known(&self) -> bool {
        self.credit.is_some() || self.unlimited
    }
}

/// The moment a request went out, for what its response announces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    /// `GET`s sent by then (the request itself included, when it is one).
    sent: u64,
    /// Of those, others still unanswered then.
    unanswered: u64,
}

/// Why a manifest `GET` may not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `remaining`: surely left once the `GET`s under way are counted.
    Reserve {
        remaining: u64,
        reserve: u64,
    },
    Exhausted,
}

/// What [`PullQuota::decide`] allows a caller.
pub(crate) enum Decision<'a> {
    /// Send the `GET`; the permit counts it as under way until dropped.
    Send(QuotaPermit<'a>),
    /// Nothing is known and nobody is finding out: this caller finds out, with a `HEAD`,
    /// then decides again, or sends its `GET` alone ([`Probe::into_get`]) if the `HEAD`
    /// did not tell.
    Probe(Probe<'a>),
    /// Another caller is finding out the remaining: wait, then decide again.
    Wait(Notified<'a>),
    Refuse(Refusal),
}

/// An admitted manifest `GET`; dropping it (after its response was observed, or when
/// it failed) ends it.
pub(crate) struct QuotaPermit<'a> {
    quota: &'a PullQuota,
    ticket: Ticket,
}

impl QuotaPermit<'_> {
    pub(crate) fn ticket(&self) -> Ticket {
        self.ticket
    }
}

impl Drop for QuotaPermit<'_> {
    fn drop(&mut self) {
        let mut state = self.quota.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        drop(state);
        self.quota.changed.notify_waiters();
    }
}

/// The one caller finding out the remaining; others wait until it is dropped.
pub(crate) struct Probe<'a> {
    quota: &'a PullQuota,
}

impl<'a> Probe<'a> {
    /// The `HEAD` did not tell: this caller's `GET` goes, alone.
    pub(crate) fn into_get(self) -> QuotaPermit<'a> {
        let quota = self.quota;
        let permit = quota.admit(&mut quota.state());
        drop(self);
        permit
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.quota.state().probing = false;
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
        let Some(reserve) = self.reserve.filter(|_| !state.unlimited) else {
            return Decision::Send(self.admit(&mut state));
        };
        match state.surely_left() {
            Some(remaining) if remaining <= reserve => Decision::Refuse(Refusal::Reserve { remaining, reserve }),
            Some(_) => Decision::Send(self.admit(&mut state)),
            None if state.probing || state.in_flight > 0 => Decision::Wait(notified),
            None => {
                state.probing = true;
                Decision::Probe(Probe { quota: self })
            }
        }
    }

    fn admit(&self, state: &mut State) -> QuotaPermit<'_> {
        let unanswered = state.in_flight;
        state.sent += 1;
        state.in_flight += 1;
        QuotaPermit {
            quota: self,
            ticket: Ticket {
                sent: state.sent,
                unanswered,
            },
        }
    }

    /// The moment a request that is not an admitted `GET` (a `HEAD`) goes out.
    pub(crate) fn ticket(&self) -> Ticket {
        let state = self.state();
        Ticket {
            sent: state.sent,
            unanswered: state.in_flight,
        }
    }

    /// Whether a response has told the remaining (or that there is no quota) this pass.
    pub(crate) fn is_known(&self) -> bool {
        self.state().is_known()
    }

    /// Takes in what the response to the request sent at `ticket` (a manifest `GET` or
    /// `HEAD`) announced. `success`: a 2xx, whose lack of quota headers means the
    /// registry keeps no quota for this client.
    pub(crate) fn observe(&self, ticket: Ticket, headers: &HeaderMap, success: bool) {
        let announced = RateLimit::from_headers(headers);
        let mut state = self.state();
        match announced {
            Some(announced) => {
                let credit = i128::from(announced.remaining) - i128::from(ticket.unanswered) + i128::from(ticket.sent);
                state.credit = Some(state.credit.map_or(credit, |known| known.max(credit)));
                state.announced = Some(announced);
                state.unlimited = false;
            }
            None if success && !state.is_known() => state.unlimited = true,
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
        state.announced = None;
        state.credit = None;
        state.unlimited = false;
        state.exhausted = false;
        drop(state);
        self.changed.notify_waiters();
    }

    pub(crate) fn status(&self) -> QuotaStatus {
        let state = self.state();
        let last = state.announced.map(|announced| RateLimit {
            remaining: state.surely_left().unwrap_or(announced.remaining),
            ..announced
        });
        QuotaStatus {
            last,
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

    /// A `HEAD` sent now answers that `remaining` are left.
    fn head_says(quota: &PullQuota, remaining: u64) {
        quota.observe(quota.ticket(), &announcing(remaining), true);
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
    fn the_reserve_counts_the_gets_under_way() {
        // Each row: remaining announced, GETs under way since, reserve → sent?
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
        for &(remaining, under_way, reserve, expected) in cases {
            let quota = PullQuota::new(Some(reserve));
            head_says(&quota, remaining);
            let held: Vec<QuotaPermit<'_>> = (0..under_way).map(|_| quota.admit(&mut quota.state())).collect();
            let decision = quota.decide();
            let was_sent = matches!(decision, Decision::Send(_));
            assert_eq!(
                was_sent,
                expected,
                "remaining {remaining}, under way {under_way}, reserve {reserve}: {}",
                name(&decision)
            );
            if !expected {
                let left = remaining.saturating_sub(under_way);
                assert!(matches!(
                    decision,
                    Decision::Refuse(Refusal::Reserve { remaining: r, reserve: n }) if r == left && n == reserve
                ));
            }
            drop(held);
        }
    }

    #[test]
    fn as_many_gets_as_the_quota_above_the_reserve_however_many_ask_at_once() {
        let quota = PullQuota::new(Some(5));
        head_says(&quota, 12);
        let mut permits = Vec::new();
        while let Decision::Send(permit) = quota.decide() {
            permits.push(permit);
        }
        assert_eq!(permits.len(), 7, "12 left, 5 kept");
        // The first GET's answer already counts all seven: they are not taken off twice.
        let first = permits.remove(0);
        quota.observe(first.ticket(), &announcing(5), true);
        drop(first);
        // A stale answer (the second GET, counted before the others) raises nothing.
        let second = permits.remove(0);
        quota.observe(second.ticket(), &announcing(10), true);
        drop(second);
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

    #[test]
    fn an_answer_that_already_counts_the_gets_under_way_does_not_stop_them_early() {
        let quota = PullQuota::new(Some(2));
        head_says(&quota, 10);
        let early: Vec<_> = (0..4).map(|_| sent(quota.decide())).collect();
        // The server counted all four before answering the first: 6 left, and 4 more may go.
        quota.observe(early[0].ticket(), &announcing(6), true);
        drop(early);
        let late: Vec<_> = (0..4).map(|_| sent(quota.decide())).collect();
        assert!(
            matches!(quota.decide(), Decision::Refuse(_)),
            "10 pulls, 2 kept: 8 GETs"
        );
        drop(late);
    }

    #[test]
    fn a_get_sent_before_an_answer_came_is_taken_off_that_answer() {
        let quota = PullQuota::new(Some(0));
        // Two GETs at once (as after a probe whose GET told the remaining).
        let first = quota.admit(&mut quota.state());
        let second = quota.admit(&mut quota.state());
        // The first's answer counts the first, maybe not the second: 2 announced,
        // 1 surely left.
        quota.observe(first.ticket(), &announcing(2), true);
        drop(first);
        assert_eq!(quota.status().last.map(|last| last.remaining), Some(1));
        let third = sent(quota.decide());
        assert!(
            matches!(quota.decide(), Decision::Refuse(Refusal::Reserve { remaining: 0, .. })),
            "the third may be the last pull"
        );
        drop((second, third));
    }

    #[tokio::test]
    async fn while_nothing_is_known_one_caller_finds_out_and_the_others_wait() {
        let quota = PullQuota::new(Some(2));
        let Decision::Probe(probe) = quota.decide() else {
            panic!("the first caller probes")
        };
        let Decision::Wait(waiting) = quota.decide() else {
            panic!("a second caller waits")
        };
        assert!(!quota.is_known());
        // The probe's HEAD tells: 4 left.
        head_says(&quota, 4);
        drop(probe);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the answer wakes the waiter");
        let first = sent(quota.decide());
        let second = sent(quota.decide());
        assert!(matches!(quota.decide(), Decision::Refuse(_)), "4 − 2 under way ≤ 2");
        drop((first, second));
    }

    #[tokio::test]
    async fn a_probe_that_learns_nothing_sends_one_get_at_a_time() {
        let quota = PullQuota::new(Some(2));
        let Decision::Probe(probe) = quota.decide() else {
            panic!("the first caller probes")
        };
        // A 404 without headers says nothing about the quota: the prober's GET goes
        // alone, and the others keep waiting for its answer.
        quota.observe(quota.ticket(), &HeaderMap::new(), false);
        assert!(!quota.is_known());
        let get = probe.into_get();
        let Decision::Wait(waiting) = quota.decide() else {
            panic!("still one at a time")
        };
        drop(get);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("an answered GET wakes the waiter");
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
        quota.observe(quota.ticket(), &HeaderMap::new(), true);
        drop(probe);
        let permits: Vec<_> = (0..20).map(|_| sent(quota.decide())).collect();
        drop(permits);
        assert_eq!(quota.status().last, None);
    }

    #[test]
    fn without_a_reserve_gets_go_until_the_quota_is_used_up() {
        let quota = PullQuota::new(None);
        let permits: Vec<_> = (0..10).map(|_| sent(quota.decide())).collect();
        head_says(&quota, 0);
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
        head_says(&quota, 1);
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
