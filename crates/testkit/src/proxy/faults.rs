//! What faults to inject ([`Faults`], [`Fault`], [`Rule`], [`RequestMatch`]) and the seeded
//! per-request decision that picks one.

use std::collections::HashMap;
use std::time::Duration;

/// One thing the proxy can do to a request instead of forwarding it faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (e.g. 500, 502, 503) without forwarding. A request body
    /// (an upload) is read to the end first, so the client sees the status, not a broken
    /// pipe. A code that is not a valid HTTP status is sent as 500.
    Status(u16),
    /// Answer `429 Too Many Requests` with a `Retry-After` header, without forwarding
    /// (a request body is read first, as for [`Fault::Status`]).
    TooManyRequests(RetryAfter),
    /// Drop the TCP connection with a reset (RST) before any response; nothing is
    /// forwarded. The client gets a connection error.
    Reset,
    /// Forward the request, then send the response headers (with the upstream
    /// `Content-Length`) and only the first `after_bytes` bytes of the body, then close
    /// the connection, so the client sees an incomplete body.
    ///
    /// The cut is at most one byte short of the body, so it always cuts something. On a
    /// response without a body (HEAD, `Content-Length: 0`, 204, 304) the connection is
    /// reset before the response instead. Forwarded writes have happened upstream.
    Truncate {
        /// Body bytes delivered before the cut.
        after_bytes: u64,
    },
    /// Forward the request, send the response headers and `after_bytes` bytes of the body
    /// (clamped as for [`Fault::Truncate`]), then send nothing for `pause` and close the
    /// connection. Use a `pause` longer than the client's read timeout.
    ///
    /// On a response without a body, waits `pause` before any response and then resets.
    Stall {
        /// Body bytes delivered before the stall.
        after_bytes: u64,
        /// How long nothing is sent before the connection is closed.
        pause: Duration,
    },
    /// Wait this long, then forward faithfully.
    Latency(Duration),
    /// Forward faithfully, but deliver the response body no faster than this many bytes
    /// per second: a slow link (far upstream, congested path) on that connection.
    Throttle {
        /// Rate of the body, per response.
        bytes_per_second: u64,
    },
    /// Answer `429 Too Many Requests` without `Retry-After`, with Docker Hub's error body
    /// (code `TOOMANYREQUESTS`), without forwarding: a used-up pull quota, which waiting
    /// seconds does not cure. [`CountingProxy::set_pull_quota`](super::CountingProxy::set_pull_quota)
    /// answers this past its limit; a rule can inject it anywhere.
    PullQuotaExhausted,
    /// Answer `200 OK` with this JSON body without forwarding (a request body is read
    /// first): a registry that answers wrongly, e.g. a catalog that leaves repositories out.
    Json(&'static str),
}

/// The value of an injected `Retry-After` header (RFC 9110 §10.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>` (delay-seconds form).
    Seconds(u64),
    /// `Retry-After: <HTTP-date>`, this many seconds after the moment of the response
    /// (whole seconds: a client may compute one second less).
    Date(u64),
}

/// The kind of registry API request, from its path (distribution-spec endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `/v2/<name>/manifests/<reference>`.
    Manifest,
    /// `/v2/<name>/blobs/<digest>`.
    Blob,
    /// `/v2/<name>/tags/list`.
    Tags,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/blobs/uploads/...`: starting, sending and committing uploads.
    Upload,
}

impl RequestKind {
    /// The kind of the request with this path (query allowed), if it is one of the above.
    pub fn of_path(path: &str) -> Option<RequestKind> {
        let path = path_without_query(path);
        if path.contains("/blobs/uploads") {
            Some(RequestKind::Upload)
        } else if path == "/v2/_catalog" {
            Some(RequestKind::Catalog)
        } else if path.ends_with("/tags/list") {
            Some(RequestKind::Tags)
        } else if path.contains("/manifests/") {
            Some(RequestKind::Manifest)
        } else if path.contains("/blobs/") {
            Some(RequestKind::Blob)
        } else {
            None
        }
    }
}

/// Which requests a [`Rule`] applies to. Every condition that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatch {
    /// HTTP method, e.g. `"GET"` (case-insensitive); `None` matches any.
    pub method: Option<String>,
    /// Kind of registry request; `None` matches any path.
    pub kind: Option<RequestKind>,
    /// Substring of the path and query, e.g. `"/v2/team/app/"`; `None` matches any.
    pub path_contains: Option<String>,
}

impl RequestMatch {
    /// Matches every request.
    pub fn any() -> RequestMatch {
        RequestMatch::default()
    }

    /// Matches requests of one kind (manifest, blob, tags, catalog, upload).
    pub fn kind(kind: RequestKind) -> RequestMatch {
        RequestMatch::any().and_kind(kind)
    }

    /// Matches requests whose path and query contain `fragment`.
    pub fn path_contains(fragment: impl Into<String>) -> RequestMatch {
        RequestMatch::any().and_path_contains(fragment)
    }

    /// Also requires this HTTP method.
    pub fn method(mut self, method: &str) -> RequestMatch {
        self.method = Some(method.to_owned());
        self
    }

    /// Also requires this kind.
    pub fn and_kind(mut self, kind: RequestKind) -> RequestMatch {
        self.kind = Some(kind);
        self
    }

    /// Also requires the path and query to contain `fragment`.
    pub fn and_path_contains(mut self, fragment: impl Into<String>) -> RequestMatch {
        self.path_contains = Some(fragment.into());
        self
    }

    /// Whether a request with this method and path (with query) matches.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.kind.is_none_or(|kind| RequestKind::of_path(path) == Some(kind))
            && self.path_contains.as_ref().is_none_or(|f| path.contains(f.as_str()))
    }
}

/// A deterministic fault: every matching request, or the first `limit` of them (after
/// the first `skip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Which requests the rule applies to.
    pub when: RequestMatch,
    /// What is done to them.
    pub fault: Fault,
    /// How many matching requests get the fault; `None`: all of them, forever.
    pub limit: Option<u32>,
    /// How many matching requests pass (to the later rules) before this one applies.
    pub skip: u32,
}

impl Rule {
    /// The first `n` matching requests get `fault`; later ones pass.
    pub fn first(n: u32, when: RequestMatch, fault: Fault) -> Rule {
        Rule {
            when,
            fault,
            limit: Some(n),
            skip: 0,
        }
    }

    /// Only the `n`-th matching request (counting from 1) gets `fault`.
    pub fn nth(n: u32, when: RequestMatch, fault: Fault) -> Rule {
        Rule {
            skip: n.saturating_sub(1),
            ..Rule::first(1, when, fault)
        }
    }

    /// Every matching request gets `fault`, for as long as these faults are set.
    pub fn every(when: RequestMatch, fault: Fault) -> Rule {
        Rule {
            when,
            fault,
            limit: None,
            skip: 0,
        }
    }
}

/// Fault-injection configuration: deterministic [`Rule`]s plus seeded random faults.
///
/// For each request the proxy first tries the rules in order; the first one that
/// matches (and has not used up its `limit`) supplies the fault. Otherwise, with
/// probability `rate`, a fault is drawn from `mix` by weight. The random numbers come
/// from a PRNG seeded with `seed`, two draws per request whether or not a fault results,
/// so the n-th request through the proxy always gets the same decision for a given seed
/// (with concurrent requests, which request is n-th depends on arrival order).
///
/// `Faults::default()` injects nothing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Faults {
    /// Seed of the PRNG behind `rate` and `mix`.
    pub seed: u64,
    /// Probability, per request, of a random fault (0.0 to 1.0).
    pub rate: f64,
    /// Random faults and their relative weights (weight 0: never picked).
    pub mix: Vec<(Fault, u32)>,
    /// After this many random faults in a row on the same method and path (query
    /// ignored), the next such request passes, so a client that retries enough always
    /// gets through. `None`: no limit. Rules are not limited by this.
    pub max_consecutive: Option<u32>,
    /// Deterministic faults, tried in order before the random ones.
    pub rules: Vec<Rule>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::none()
    }
}

impl Faults {
    /// No faults: the proxy forwards everything faithfully.
    pub fn none() -> Faults {
        Faults {
            seed: 0,
            rate: 0.0,
            mix: Faults::default_mix(),
            max_consecutive: Some(2),
            rules: Vec::new(),
        }
    }

    /// Random faults at `rate` per request (0.0 to 1.0), drawn from
    /// [`default_mix`](Faults::default_mix), with a PRNG seeded by `seed`.
    pub fn random(seed: u64, rate: f64) -> Faults {
        assert!(
            (0.0..=1.0).contains(&rate),
            "testkit: fault rate must be between 0 and 1, got {rate}"
        );
        Faults {
            seed,
            rate,
            ..Faults::none()
        }
    }

    /// The quick faults, equally weighted: 500, 502, 503, 429 with `Retry-After: 0`, reset,
    /// and a body truncated after 10 bytes. Time-based faults (stall, latency) are left
    /// out so that runs stay fast; add them with [`with_mix`](Faults::with_mix).
    pub fn default_mix() -> Vec<(Fault, u32)> {
        vec![
            (Fault::Status(500), 1),
            (Fault::Status(502), 1),
            (Fault::Status(503), 1),
            (Fault::TooManyRequests(RetryAfter::Seconds(0)), 1),
            (Fault::Reset, 1),
            (Fault::Truncate { after_bytes: 10 }, 1),
        ]
    }

    /// The same faults with another weighted mix for the random ones.
    pub fn with_mix(mut self, mix: Vec<(Fault, u32)>) -> Faults {
        self.mix = mix;
        self
    }

    /// The same faults with another limit on random faults in a row (see the field).
    pub fn with_max_consecutive(mut self, max_consecutive: Option<u32>) -> Faults {
        self.max_consecutive = max_consecutive;
        self
    }

    /// Adds a rule: the first `n` requests matching `when` get `fault`.
    pub fn first(self, n: u32, when: RequestMatch, fault: Fault) -> Faults {
        self.with_rule(Rule::first(n, when, fault))
    }

    /// Adds a rule: only the `n`-th request matching `when` (from 1) gets `fault`.
    pub fn nth(self, n: u32, when: RequestMatch, fault: Fault) -> Faults {
        self.with_rule(Rule::nth(n, when, fault))
    }

    /// Adds a rule: every request matching `when` gets `fault`.
    pub fn every(self, when: RequestMatch, fault: Fault) -> Faults {
        self.with_rule(Rule::every(when, fault))
    }

    /// Adds a rule, tried after the existing ones.
    pub fn with_rule(mut self, rule: Rule) -> Faults {
        self.rules.push(rule);
        self
    }
}

/// [`Faults`] plus what deciding has used up so far: the PRNG, rule counts and streaks.
#[derive(Debug)]
pub(super) struct FaultState {
    faults: Faults,
    rng: SplitMix64,
    /// How many requests each rule has faulted, by index in `faults.rules`.
    rule_hits: Vec<u32>,
    /// How many matching requests each rule let pass before applying (up to its `skip`).
    rule_skipped: Vec<u32>,
    /// Random faults in a row per `"METHOD path"`; a key leaves when its request passes.
    streaks: HashMap<String, u32>,
}

impl FaultState {
    pub(super) fn new(faults: Faults) -> FaultState {
        FaultState {
            rng: SplitMix64(faults.seed),
            rule_hits: vec![0; faults.rules.len()],
            rule_skipped: vec![0; faults.rules.len()],
            streaks: HashMap::new(),
            faults,
        }
    }

    pub(super) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Picks the fault (if any) for the next request.
    pub(super) fn decide(&mut self, method: &str, path: &str) -> Option<Fault> {
        // Drawn up front so that request n uses the same numbers whatever happens.
        let roll = self.rng.next_f64();
        let pick = self.rng.next_u64();

        let counts = self.rule_hits.iter_mut().zip(self.rule_skipped.iter_mut());
        for (rule, (hits, skipped)) in self.faults.rules.iter().zip(counts) {
            if !rule.when.matches(method, path) {
                continue;
            }
            if *skipped < rule.skip {
                *skipped += 1;
                continue;
            }
            if rule.limit.is_none_or(|limit| *hits < limit) {
                *hits = hits.saturating_add(1);
                return Some(rule.fault.clone());
            }
        }

        let key = format!("{method} {}", path_without_query(path));
        let fault = if roll < self.faults.rate {
            pick_weighted(&self.faults.mix, pick)
        } else {
            None
        };
        let Some(fault) = fault else {
            self.streaks.remove(&key);
            return None;
        };
        let streak = self.streaks.entry(key.clone()).or_insert(0);
        if self.faults.max_consecutive.is_some_and(|max| *streak >= max) {
            // This request passes, which ends the streak.
            self.streaks.remove(&key);
            return None;
        }
        *streak += 1;
        Some(fault)
    }
}

/// The fault whose weight range contains `pick` modulo the total weight.
fn pick_weighted(mix: &[(Fault, u32)], pick: u64) -> Option<Fault> {
    let total: u64 = mix.iter().map(|(_, weight)| u64::from(*weight)).sum();
    if total == 0 {
        return None;
    }
    let mut point = pick % total;
    for (fault, weight) in mix {
        let weight = u64::from(*weight);
        if point < weight {
            return Some(fault.clone());
        }
        point -= weight;
    }
    None
}

fn path_without_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(path, _)| path)
}

/// The splitmix64 generator: tiny, seedable, and good enough to spread test faults.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decisions for `count` identical requests.
    fn decisions(faults: Faults, method: &str, path: &str, count: usize) -> Vec<Option<Fault>> {
        let mut state = FaultState::new(faults);
        (0..count).map(|_| state.decide(method, path)).collect()
    }

    #[test]
    fn request_kinds_from_paths() {
        for (path, kind) in [
            ("/v2/_catalog?n=100", Some(RequestKind::Catalog)),
            ("/v2/team/app/tags/list", Some(RequestKind::Tags)),
            ("/v2/team/app/tags/list?n=10&last=a", Some(RequestKind::Tags)),
            ("/v2/team/app/manifests/v1", Some(RequestKind::Manifest)),
            ("/v2/a/b/c/manifests/sha256:00", Some(RequestKind::Manifest)),
            ("/v2/team/app/blobs/sha256:00", Some(RequestKind::Blob)),
            ("/v2/team/app/blobs/uploads/", Some(RequestKind::Upload)),
            (
                "/v2/team/app/blobs/uploads/1234?_state=x&digest=sha256:00",
                Some(RequestKind::Upload),
            ),
            ("/v2/", None),
            ("/v2/team/app/referrers/sha256:00", None),
        ] {
            assert_eq!(RequestKind::of_path(path), kind, "{path}");
        }
    }

    #[test]
    fn match_requires_every_condition_set() {
        let when = RequestMatch::kind(RequestKind::Tags)
            .and_path_contains("/v2/team/")
            .method("get");
        assert!(when.matches("GET", "/v2/team/app/tags/list"));
        assert!(!when.matches("HEAD", "/v2/team/app/tags/list"));
        assert!(!when.matches("GET", "/v2/other/app/tags/list"));
        assert!(!when.matches("GET", "/v2/team/app/manifests/v1"));
        assert!(RequestMatch::any().matches("PATCH", "/anything"));
    }

    #[test]
    fn first_n_rule_faults_exactly_n_matching_requests() {
        let faults = Faults::none().first(3, RequestMatch::kind(RequestKind::Blob), Fault::Status(503));
        let mut state = FaultState::new(faults);
        assert_eq!(state.decide("GET", "/v2/a/manifests/v1"), None);
        for _ in 0..3 {
            assert_eq!(state.decide("GET", "/v2/a/blobs/sha256:00"), Some(Fault::Status(503)));
        }
        assert_eq!(state.decide("GET", "/v2/a/blobs/sha256:00"), None);
        assert_eq!(state.decide("HEAD", "/v2/b/blobs/sha256:11"), None);
    }

    #[test]
    fn an_nth_rule_faults_only_that_matching_request() {
        let faults = Faults::none().nth(3, RequestMatch::kind(RequestKind::Upload).method("PATCH"), Fault::Reset);
        let mut state = FaultState::new(faults);
        let got: Vec<Option<Fault>> = (0..5).map(|_| state.decide("PATCH", "/v2/a/blobs/uploads/1")).collect();
        assert_eq!(got, [None, None, Some(Fault::Reset), None, None]);
        assert_eq!(state.decide("GET", "/v2/a/blobs/uploads/1"), None);
    }

    #[test]
    fn rules_are_tried_in_order_and_every_rule_never_runs_out() {
        let tags = RequestMatch::path_contains("/v2/team/app/tags/list");
        let faults = Faults::none()
            .first(1, tags.clone(), Fault::Reset)
            .every(tags, Fault::Status(500));
        let got = decisions(faults, "GET", "/v2/team/app/tags/list", 50);
        assert_eq!(got[0], Some(Fault::Reset));
        assert!(got[1..].iter().all(|d| *d == Some(Fault::Status(500))), "{got:?}");
    }

    #[test]
    fn same_seed_same_decisions_other_seed_others() {
        let run = |seed| decisions(Faults::random(seed, 0.3).with_max_consecutive(None), "GET", "/v2/", 200);
        let first = run(11);
        assert_eq!(first, run(11));
        assert_ne!(first, run(12));
        let injected = first.iter().filter(|d| d.is_some()).count();
        assert!((30..=90).contains(&injected), "{injected} of 200 at rate 0.3");
    }

    #[test]
    fn rate_zero_and_one_are_exact() {
        let never = decisions(Faults::random(1, 0.0), "GET", "/v2/", 100);
        assert!(never.iter().all(Option::is_none));
        let always = decisions(Faults::random(1, 1.0).with_max_consecutive(None), "GET", "/v2/", 100);
        assert!(always.iter().all(Option::is_some));
    }

    #[test]
    fn mix_weights_choose_the_kinds() {
        let mix = vec![(Fault::Status(500), 0), (Fault::Status(502), 3), (Fault::Reset, 1)];
        let faults = Faults::random(5, 1.0).with_mix(mix).with_max_consecutive(None);
        let got = decisions(faults, "GET", "/v2/", 400);
        let count = |fault: Fault| got.iter().filter(|d| **d == Some(fault.clone())).count();
        assert_eq!(count(Fault::Status(500)), 0);
        let (bad_gateway, reset) = (count(Fault::Status(502)), count(Fault::Reset));
        assert_eq!(bad_gateway + reset, 400);
        assert!(bad_gateway > 2 * reset, "502: {bad_gateway}, reset: {reset}");
        // No weight at all: no random faults.
        let none = Faults::random(5, 1.0).with_mix(vec![(Fault::Reset, 0)]);
        assert!(decisions(none, "GET", "/v2/", 20).iter().all(Option::is_none));
    }

    #[test]
    fn random_faults_in_a_row_are_capped_per_request() {
        let faults = Faults::random(3, 1.0).with_max_consecutive(Some(2));
        let mut state = FaultState::new(faults);
        let pattern: Vec<bool> = (0..6)
            .map(|_| state.decide("GET", "/v2/a/tags/list?n=1").is_some())
            .collect();
        assert_eq!(pattern, [true, true, false, true, true, false]);
        // Another request has its own streak; the query does not make a new one.
        assert!(state.decide("GET", "/v2/b/tags/list").is_some());
        assert!(state.decide("GET", "/v2/a/tags/list?n=2").is_some());
        assert!(state.decide("GET", "/v2/a/tags/list").is_some());
        assert!(state.decide("GET", "/v2/a/tags/list").is_none());
    }

    #[test]
    #[should_panic(expected = "fault rate must be between 0 and 1")]
    fn rate_above_one_is_rejected() {
        let _ = Faults::random(1, 1.5);
    }
}
